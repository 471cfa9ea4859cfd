"""`handover validate` on mutated playbooks: exit 0 or 2 with clean lines, never a traceback (#12).

The example playbooks are mutated the ways a hurried edit, a bad merge or a
hostile file would: lines deleted, duplicated or re-indented, values swapped
for wrong types or YAML tags, huge scalars, deep nesting, alias bombs, stray
binary bytes, truncation. Whatever comes in, the command must answer with
`ok:` (exit 0) or `error:`/`warning:` lines (exit 2), promptly.

The budget is fixed and derandomized (the same examples on every run, about
10 s): this is a regression net for the loader's limits, not an open-ended
search.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import typer.main
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handover.cli import _register, app
from handover.contract.yaml_lines import MAX_PLAYBOOK_BYTES

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SEEDS = [
    (PROJECT_ROOT / "playbooks" / "examples" / name).read_bytes()
    for name in ("acme.yaml", "demo.yaml")
]
WRONG_VALUES = [
    "[]",
    "{}",
    "123",
    "-1",
    "1e999",
    ".nan",
    "true",
    "null",
    "~",
    "''",
    "2026-13-45",
    "2026-02-30",
    "!!int zz",
    "!!float x",
    "!!timestamp nope",
    "!!bool maybe",
    "2026-02-01T10:00:00Z",
    "!!binary aGVsbG8=",
    "!!python/object/apply:os.system ['true']",
    "!custom x",
    "*nowhere",
    "&anchor",
    "|",
    ">-",
    '"unterminated',
    "{a: [b, {c: d}]}",
    "- x",
    "? complex",
    "%YAML 1.1",
    "---",
    "...",
    "PGPASSWORD=hunter2 pg_dump acme",
    "postgres://u:p@h/db",
    "-----BEGIN OPENSSH PRIVATE KEY-----",
    "vault:",
    "env:",
]
BOMB = b"".join(
    [b"lol0: &l0 [a, a, a, a, a, a, a, a, a, a]\n"]
    + [f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n".encode() for i in range(1, 9)]
)

_register()
COMMAND = typer.main.get_command(app)  # built once: typer's runner rebuilds it per call
RUNNER = CliRunner()

Lines = list[bytes]
Draw = Callable[[st.SearchStrategy[object]], object]


def _index(draw: st.DrawFn, lines: Lines) -> int:
    return draw(st.integers(0, max(0, len(lines) - 1)))


def _set_value(line: bytes, value: bytes) -> bytes:
    """`line` with what follows its first ': ' replaced (or `value` appended)."""
    head, sep, _rest = line.partition(b": ")
    if not sep:
        return line.rstrip(b"\n") + b" " + value + b"\n"
    return head + sep + value + b"\n"


def _mutate(draw: st.DrawFn, lines: Lines) -> Lines:
    if not lines:
        return [draw(st.binary(max_size=40))]
    i = _index(draw, lines)
    kind = draw(
        st.sampled_from(
            [
                "delete",
                "duplicate",
                "indent",
                "wrong",
                "huge",
                "deep",
                "bomb",
                "binary",
                "text",
                "truncate",
                "swap",
            ]
        )
    )
    out = list(lines)
    if kind == "delete":
        del out[i : i + draw(st.integers(1, 5))]
    elif kind == "duplicate":
        out[i:i] = out[i : i + draw(st.integers(1, 5))]
    elif kind == "indent":
        out[i] = out[i][2:] if draw(st.booleans()) else b"  " + out[i]
    elif kind == "wrong":
        out[i] = _set_value(out[i], draw(st.sampled_from(WRONG_VALUES)).encode())
    elif kind == "huge":
        size = draw(st.sampled_from([5_000, 200_000, 1_100_000]))
        out[i] = _set_value(out[i], b"x" * size)
    elif kind == "deep":
        depth = draw(st.sampled_from([20, 31, 33, 600, 900, 20_000]))
        if draw(st.booleans()):
            value = b"[" * depth + b"]" * depth + b"\n"
        else:  # block style, as deep as 1 MiB of indentation allows
            value = b"\n" + b"".join(b"  " * (n + 1) + b"k:\n" for n in range(min(depth, 900)))
        if draw(st.booleans()):  # a section of its own: the document stays valid YAML
            out.append(b"deep: " + value)
        else:
            out[i] = _set_value(out[i], value.rstrip(b"\n"))
    elif kind == "bomb":
        out = [BOMB, *out] if draw(st.booleans()) else [*out, BOMB]
    elif kind == "binary":
        at = draw(st.integers(0, len(out[i])))
        out[i] = out[i][:at] + draw(st.binary(min_size=1, max_size=8)) + out[i][at:]
    elif kind == "text":
        out.insert(i, draw(st.text(max_size=60)).encode("utf-8", "surrogatepass") + b"\n")
    elif kind == "truncate":
        out = [*out[:i], out[i][: draw(st.integers(0, len(out[i])))]]
    else:
        j = _index(draw, lines)
        out[i], out[j] = out[j], out[i]
    return out


def _hostile_section(draw: st.DrawFn) -> bytes:
    """A top-level section built to exhaust a parser: deep, aliased or huge, else valid YAML."""
    kind = draw(st.sampled_from(["flow", "block", "bomb", "huge", "wide"]))
    depth = draw(st.sampled_from([31, 33, 600, 900, 20_000]))
    if kind == "flow":
        return b"deep: " + b"[" * depth + b"]" * depth + b"\n"
    if kind == "block":  # as deep as 1 MiB of indentation allows
        return b"deep:\n" + b"".join(b"  " * (n + 1) + b"k:\n" for n in range(min(depth, 900)))
    if kind == "bomb":
        return BOMB
    if kind == "huge":
        return b"huge: " + b"x" * draw(st.sampled_from([300_000, 1_100_000])) + b"\n"
    return b"wide: [" + b"0, " * draw(st.sampled_from([10_000, 60_000])) + b"0]\n"


@st.composite
def mutated_playbooks(draw: st.DrawFn) -> bytes:
    lines = draw(st.sampled_from(SEEDS)).splitlines(keepends=True)
    for _ in range(draw(st.integers(0, 3))):
        lines = _mutate(draw, lines)
    if draw(st.booleans()):  # last, so that earlier edits do not always hide it
        if lines and not lines[-1].endswith(b"\n"):
            lines.append(b"\n")
        lines.append(_hostile_section(draw))
    return b"".join(lines)


def validate(data: bytes) -> tuple[int, str, str, BaseException | None, float]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.yaml"
        path.write_bytes(data)
        started = time.monotonic()
        result = RUNNER.invoke(COMMAND, ["validate", str(path)])
        elapsed = time.monotonic() - started
    exception = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.exit_code, result.stdout, result.stderr, exception, elapsed


def test_the_seeds_validate() -> None:
    for seed in SEEDS:
        code, out, err, exception, _elapsed = validate(seed)
        assert (code, exception) == (0, None), err
        assert out.startswith("ok: ")


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated_playbooks())
def test_validate_answers_cleanly_whatever_the_playbook(data: bytes) -> None:
    code, out, err, exception, elapsed = validate(data)
    assert exception is None, f"{type(exception).__name__}: {exception}"
    assert code in (0, 2), (code, out, err)
    assert "Traceback" not in out + err
    assert elapsed < 10, f"validate took {elapsed:.1f} s"
    if len(data) > MAX_PLAYBOOK_BYTES:
        assert code == 2 and "playbook too large" in err, err[:300]
    if code == 0:
        assert out.startswith("ok: "), (out, err)
        return
    rows = err.splitlines()
    assert rows, "exit 2 without a message"
    for row in rows:
        assert row.startswith(("error: ", "warning: ")), row
        assert len(row) < 1_000, f"a line of {len(row)} characters: {row[:200]}..."
