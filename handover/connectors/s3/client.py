"""S3 clients and `s3://` URLs (botocore errors are translated in `errors.py`).

The client honours boto3's standard configuration first (AWS_PROFILE,
AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION,
~/.aws/config and credentials), then the contract's `perimeter.s3` settings
override it. Credentials given as references are resolved here, at the last
moment, and handed to boto3 only: they never reach a log or an exception.

A `prefect-aws` AwsCredentials block cannot be read from the core (no Prefect
import here): the tasks layer registers a provider with
`register_credentials_provider(fn)`, and `s3_client` calls it with the block
name.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from handover.errors import AuthFailed, SecretRefError, UsageError
from handover.secrets.references import Secret, resolve_secret

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
else:
    S3Client = object

__all__ = [
    "S3Client",
    "S3Credentials",
    "S3SettingsLike",
    "check_bucket",
    "is_aws_endpoint",
    "join_key",
    "normalize_prefix",
    "parse_s3_url",
    "register_credentials_provider",
    "s3_client",
]

MAX_POOL_CONNECTIONS = 64  # several volumes at once, each with its own bounded pool of requests
CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 120
MAX_ATTEMPTS = 4  # botocore "standard" retry mode: throttling, 5xx, resets

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class S3SettingsLike(Protocol):
    """The fields of `handover.playbook.S3Settings` that the client reads."""

    @property
    def endpoint_url(self) -> str | None: ...
    @property
    def region(self) -> str | None: ...
    @property
    def addressing_style(self) -> Literal["auto", "path", "virtual"]: ...
    @property
    def checksum_when_required(self) -> bool: ...
    @property
    def profile(self) -> str | None: ...
    @property
    def access_key_id(self) -> str | None: ...
    @property
    def secret_access_key(self) -> str | None: ...
    @property
    def aws_credentials_block(self) -> str | None: ...


@dataclass(frozen=True)
class S3Credentials:
    """Credentials handed over by a provider (e.g. a prefect-aws AwsCredentials block)."""

    access_key_id: str
    secret_access_key: Secret
    session_token: Secret | None = None
    region: str | None = None


CredentialsProvider = Callable[[str], S3Credentials]
_credentials_provider: CredentialsProvider | None = None


def register_credentials_provider(provider: CredentialsProvider | None) -> None:
    """Let `s3_client` resolve `aws_credentials_block: NAME` by calling `provider(NAME)`.

    The tasks layer registers a function that loads the prefect-aws block;
    None unregisters it.
    """
    global _credentials_provider
    _credentials_provider = provider


_loader_lock = threading.Lock()
_loader: Any = None


def _botocore_session() -> Any:
    """A new botocore session reading its data files through the process's one loader.

    Why: each boto3 Session loads and keeps its own copy of botocore's
    endpoints and S3 model (~10 MiB, ~50 ms). An exit makes a client per
    dataset, delivery and evidence sync; with one loader they share one copy.
    Credentials, profile and configuration stay each session's own. Called
    with `_loader_lock` held (boto3 adds its data folder to the loader's
    search paths on every new Session: only the first is kept).
    """
    global _loader
    import botocore.loaders
    import botocore.session

    if _loader is None:
        # duck-typed (botocore calls `exists` and `load_file`): botocore is imported only here
        _loader = botocore.loaders.Loader(file_loader=cast(Any, _PlainJSONFileLoader()))
    session = botocore.session.get_session()
    session.register_component("data_loader", _loader)
    return session


class _PlainJSONFileLoader:
    """botocore's data files (`NAME.json` or `NAME.json.gz`) read into plain dicts.

    Why: botocore's own file loader builds an OrderedDict for every JSON
    object, ~23,000 of them for S3's model, endpoints and rules; a dict keeps
    the order as well and costs less. A first S3 client costs a process
    13.6 MiB with botocore's loader, 9.2 with this one (one run each).
    Same interface as botocore.loaders.JSONFileLoader: `exists`, `load_file`.
    """

    _EXTENSIONS = (".json", ".json.gz")

    def exists(self, file_path: str) -> bool:
        return any(os.path.isfile(file_path + ext) for ext in self._EXTENSIONS)

    def load_file(self, file_path: str) -> Any:
        for ext in self._EXTENSIONS:
            path = Path(file_path + ext)
            if path.is_file():
                data = path.read_bytes()
                return json.loads(gzip.decompress(data) if ext.endswith(".gz") else data)
        return None


def _dedupe_search_paths() -> None:
    if _loader is not None:
        paths = _loader.search_paths
        paths[:] = list(dict.fromkeys(paths))


def s3_client(
    settings: S3SettingsLike | None = None, *, credentials: S3Credentials | None = None
) -> S3Client:
    """A thread-safe boto3 S3 client: boto3's standard configuration, then `settings`.

    `credentials` (if given) wins over everything; then the settings'
    access-key references, then its credentials block, then boto3's chain
    (environment, profile, instance role). Raises SecretRefError for a
    reference that does not resolve, AuthFailed for an unknown profile or a
    missing credentials provider. No request is made here: wrong credentials
    show on the first call.
    """
    import boto3
    import botocore.exceptions
    from botocore.config import Config

    profile = settings.profile if settings else None
    region = settings.region if settings else None
    if credentials is None and settings is not None:
        credentials = _settings_credentials(settings)
    if credentials is not None:
        region = region or credentials.region
    secret = credentials.secret_access_key if credentials else None
    token = credentials.session_token if credentials else None
    endpoint = settings.endpoint_url if settings and settings.endpoint_url else None
    with _loader_lock:
        try:
            session = boto3.session.Session(
                profile_name=profile,
                aws_access_key_id=credentials.access_key_id if credentials else None,
                aws_secret_access_key=secret.reveal_text() if secret else None,
                aws_session_token=token.reveal_text() if token else None,
                region_name=region,
                botocore_session=_botocore_session(),
            )
            client = session.client(
                "s3", endpoint_url=endpoint, config=Config(**_client_options(settings))
            )
        except botocore.exceptions.ProfileNotFound:
            raise AuthFailed(f"AWS profile {profile!r} not found in ~/.aws/config") from None
        except ValueError as exc:  # botocore rejects a malformed endpoint URL
            raise UsageError(f"perimeter.s3.endpoint_url {endpoint!r}: {exc}") from None
        finally:
            _dedupe_search_paths()
    return client  # type: ignore[no-any-return]


def _settings_credentials(settings: S3SettingsLike) -> S3Credentials | None:
    """The credentials the playbook names (references, or a block), or None for boto3's chain."""
    if settings.access_key_id and settings.secret_access_key:
        return S3Credentials(
            access_key_id=resolve_secret(settings.access_key_id).reveal_text(),
            secret_access_key=Secret(
                resolve_secret(settings.secret_access_key).reveal_text().encode()
            ),
        )
    if settings.aws_credentials_block:
        if _credentials_provider is None:
            raise SecretRefError(
                f"perimeter.s3.aws_credentials_block {settings.aws_credentials_block!r}: "
                "no credentials provider registered in this process (run through the flows)"
            )
        return _credentials_provider(settings.aws_credentials_block)
    return None


def _client_options(settings: S3SettingsLike | None) -> dict[str, Any]:
    """botocore Config arguments: pools, timeouts and retries for bulk transfers, then settings."""
    options: dict[str, Any] = {
        "max_pool_connections": MAX_POOL_CONNECTIONS,
        "tcp_keepalive": True,
        "connect_timeout": CONNECT_TIMEOUT_S,
        "read_timeout": READ_TIMEOUT_S,
        "retries": {"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        "signature_version": "s3v4",
    }
    if settings is not None and settings.addressing_style != "auto":
        options["s3"] = {"addressing_style": settings.addressing_style}
    if settings is not None and settings.checksum_when_required:
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    return options


def is_aws_endpoint(client: S3Client) -> bool:
    """True when `client` talks to AWS itself (presigned URLs are then capped at 7 days)."""
    from urllib.parse import urlsplit

    host = urlsplit(client.meta.endpoint_url).hostname or ""
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))


def parse_s3_url(url: str) -> tuple[str, str]:
    """Split `s3://bucket/prefix` into (bucket, normalized prefix).

    Raises UsageError for another scheme or a bucket name S3 would refuse.
    """
    if not url.startswith("s3://"):
        raise UsageError(f"{url!r}: not an s3://bucket/prefix URL")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    check_bucket(bucket, url)
    return bucket, normalize_prefix(prefix)


def check_bucket(bucket: str, where: str) -> None:
    """Raise UsageError when `bucket` is not a valid S3 bucket name."""
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise UsageError(f"{where}: bad bucket name {bucket!r} (3-63 characters a-z 0-9 . -)")


def normalize_prefix(prefix: str) -> str:
    """A prefix is a folder: '' or 'a/b/' (leading slashes dropped, trailing one added)."""
    prefix = prefix.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return prefix


def join_key(prefix: str, relpath: str) -> str:
    """The object key of `relpath` under the folder `prefix` (normalized here: 'a' -> 'a/')."""
    return normalize_prefix(prefix) + relpath.lstrip("/")
