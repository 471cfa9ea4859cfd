"""What may be recorded of a bundle outside the writer: counts, sizes, hashes, no file names."""

from __future__ import annotations

import json
from pathlib import Path

from handover.bundle.age import X25519Identity
from handover.bundle.local import LocalPathSource
from handover.bundle.sshsig import SigningKey
from handover.bundle.summary import sealed_bundle, volume_summary
from handover.bundle.writer import BundleWriter


def test_the_summaries_count_the_files_and_name_none(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "secret-client-name.txt").write_text("client data")
    (data / "sub" / "other.bin").write_bytes(b"\0" * 100)
    writer = BundleWriter(
        tmp_path / "bundle", [X25519Identity.generate().recipient()], SigningKey.generate()
    )
    record = writer.add_volume(LocalPathSource("web01-www", tmp_path, ["data"]))
    result = writer.finish()

    summary = volume_summary(record)
    assert (summary.number, summary.file, summary.size, summary.sha256) == (
        record.number,
        record.file,
        record.size,
        record.sha256,
    )
    assert (summary.files, summary.bytes) == (2, len("client data") + 100)

    sealed = sealed_bundle(result)
    assert sealed.location == result.location and sealed.files == result.files
    assert sealed.provider_key == result.provider_key and sealed.volumes == [summary]
    recorded = json.dumps(sealed.model_dump(mode="json"))
    assert "secret-client-name" not in recorded and "other.bin" not in recorded
