"""deployments/README.md, "Several server replicas", followed as written (issue #13).

handover's one-writer guarantee is a Prefect concurrency lease per contract
and phase (`flows.writer_lease`). Prefect counts a limit's taken slots in
PostgreSQL, which every replica shares; the *lease* (what a renewal extends,
what a release frees, what expires when a run dies) lives in the lease
storage, by default in the memory of the replica that granted it. Behind a
load balancer the renewals and the release of one run reach any replica:
with in-memory leases, a renewal through another replica fails (410 Gone),
a release there frees nothing (the slot stays taken), and the lease expires
where it was granted while its run still works, or never when services run
elsewhere. The README's settings put the leases in Redis.

The test builds the README's setup from its own text: the environment
lines of its `sh` block (Redis URLs pointed at a private `redis-server` on
loopback), `prefect server database upgrade -y` once, two API replicas with
`--no-services` on one PostgreSQL database, one `prefect server services
start`. Then, with handover's own lease code in separate client processes:
a lease taken through replica 1 is in Redis; replica 2 refuses the slot,
renews that lease and releases it; then replica 2 grants the slot.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.redis import RedisServer, redis_server
from tests.prefect_team import BIN, base_env, read_env_file, run, start_server, stop

pytestmark = pytest.mark.integration

README = PROJECT_ROOT / "deployments" / "README.md"
# The README's placeholder Redis; here a private server on loopback, so `redis://`
# (plain TCP never leaves the machine), where a real one is `rediss://` (TLS).
PLACEHOLDER = re.compile(r"rediss://default:<password>@redis\.example\.net:6379/(\d+)")
LIMIT = "contract-C-REDIS-reversibility"  # flows.writer_lease.limit_name("C-REDIS", ...)

# One step of a client, run as a process of its own against one replica (PREFECT_API_URL):
# handover's lease code (`_acquire`, `_release`) and the renewal writer_lease makes.
STEP = """
import sys
from uuid import UUID

from prefect.client.orchestration import get_client

from flows.writer_lease import LEASE_S, PhaseBusy, _acquire, _release
from tasks.runtime import ensure_concurrency_limit

step, argument = sys.argv[1], sys.argv[2]
if step == "acquire":
    ensure_concurrency_limit(argument, 1)
    try:
        print("lease", _acquire(argument, "C-REDIS", "reversibility"))
    except PhaseBusy as exc:
        print("busy", exc)
elif step == "renew":
    with get_client(sync_client=True) as client:
        client.renew_concurrency_lease(UUID(argument), lease_duration=LEASE_S)
    print("renewed")
elif step == "release":
    _release(UUID(argument))
    print("released")
"""


def replica_settings(redis: RedisServer) -> tuple[str, str]:
    """The README's replica paragraph and its environment lines, Redis URLs made local."""
    text = README.read_text()
    start = text.index("**Several server replicas**")
    paragraph = text[start : text.index("**TLS.**", start)]
    block = re.search(r"```sh\n(.*?)```", paragraph, re.S)
    assert block, "the replica paragraph has no sh block of settings"
    lines = [line.strip() for line in block.group(1).splitlines() if "=" in line]
    local = "".join(
        PLACEHOLDER.sub(lambda match: redis.url(int(match.group(1))), line) + "\n" for line in lines
    )
    assert "<password>" not in local and "example.net" not in local, local
    return paragraph, local


@dataclass
class Replicas:
    urls: tuple[str, str]
    auth: str
    redis: RedisServer
    services: subprocess.Popen[bytes]
    tmp: Path

    def step(self, replica: int, *argv: str) -> str:
        env = {
            **base_env(self.tmp, "client"),
            "PREFECT_API_URL": self.urls[replica - 1],
            "PREFECT_API_AUTH_STRING": self.auth,
            "HANDOVER_WRITER_WAIT_SECONDS": "0",  # busy is an answer, not something to wait out
        }
        return run(env, sys.executable, "-c", STEP, *argv).strip().splitlines()[-1]


@pytest.fixture
def replicas(tmp_path: Path, postgres_server: PostgresServer) -> Iterator[Replicas]:
    pg = postgres_server
    auth = f"handover:{secrets.token_urlsafe(33)}"
    processes: list[subprocess.Popen[bytes]] = []
    # Redis stops last: the Prefect processes it serves are stopped before it (inner finally).
    with redis_server(tmp_path / "redis") as redis:
        database = pg.create_database()
        database_url = (
            f"postgresql+asyncpg://{pg.role}:{pg.password}@{pg.host}:{pg.port}/{database}"
        )
        try:
            paragraph, env_lines = replica_settings(redis)
            assert "--no-services" in paragraph and "prefect server services start" in paragraph
            assert "prefect server database upgrade -y" in paragraph
            env_file = tmp_path / "prefect-services.env"
            env_file.touch(mode=0o600)
            env_file.write_text(f"PREFECT_SERVER_API_AUTH_STRING={auth}\n{env_lines}")
            services_env = {
                **base_env(tmp_path, "services"),
                **read_env_file(env_file),
                "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            }
            prefect = str(BIN / "prefect")
            run(services_env, prefect, "server", "database", "upgrade", "-y")
            with (tmp_path / "services.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        [prefect, "server", "services", "start"],
                        env=services_env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            urls = []
            for name in ("replica-1", "replica-2"):
                server, url = start_server(
                    tmp_path,
                    database_url,
                    auth,
                    name=name,
                    env_lines=env_lines,
                    extra_args=("--no-services",),
                )
                processes.append(server)
                urls.append(url)
            yield Replicas((urls[0], urls[1]), auth, redis, processes[0], tmp_path)
        finally:
            for process in reversed(processes):
                stop(process)
            pg.drop_database(database)


def test_a_lease_taken_through_one_replica_binds_the_other(replicas: Replicas) -> None:
    started = time.monotonic()
    first = replicas.step(1, "acquire", LIMIT)
    assert first.startswith("lease "), first
    lease = first.split()[1]
    # Through Redis, not the memory of replica 1 (the lease storage setting is in effect).
    assert any(lease in key for key in replicas.redis.keys("prefect:concurrency:*")), (
        replicas.redis.keys("*")
    )

    # Replica 2: the slot is taken; the lease is its own to renew and to release.
    assert replicas.step(2, "acquire", LIMIT).startswith("busy "), "replica 2 granted the slot"
    assert replicas.step(2, "renew", lease) == "renewed"
    assert replicas.step(2, "release", lease) == "released"
    assert not any(lease in key for key in replicas.redis.keys("prefect:concurrency:*"))

    # The slot is free for the next run, whichever replica it asks.
    second = replicas.step(2, "acquire", LIMIT)
    assert second.startswith("lease "), f"the release through replica 2 freed nothing: {second}"
    assert replicas.step(1, "release", second.split()[1]) == "released"

    # The background services run apart, on the same Redis (Docket's database, /1).
    log = (replicas.tmp / "services.log").read_text()
    assert replicas.services.poll() is None and "Traceback" not in log, log[-3000:]
    assert replicas.redis.keys("*", database=1), "nothing of the services in Redis database 1"
    # prefect-redis's worker cleanup queue reads settings of its own (not the messaging URL):
    # its reconciler, every 5 s in the services process, must reach the shared Redis too, not
    # a default localhost:6379 that each machine may or may not have.
    deadline = time.monotonic() + 30
    while not replicas.redis.keys("prefect:worker-cleanup:*") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert replicas.redis.keys("prefect:worker-cleanup:*"), replicas.redis.keys("*")
    print(f"lease checks: {time.monotonic() - started:.1f} s")
