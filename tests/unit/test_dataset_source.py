"""Which VolumeSource a playbook dataset reads: a tree, a dump, or an S3 prefix, and its label."""

from __future__ import annotations

from pathlib import Path

from handover.bundle.local import LocalPathSource
from handover.connectors.datasets import dataset_source
from handover.connectors.local import LocalConnector, LocalDumpSource
from handover.connectors.s3.source import S3PrefixSource
from handover.contract.perimeter import Dataset, DumpSpec, S3DatasetSpec, S3Settings


def test_a_paths_dataset_reads_a_tree_of_its_host(tmp_path: Path) -> None:
    dataset = Dataset(name="www", host="web01", paths=["/var/www"])
    source = dataset_source(dataset, LocalConnector("web01", tmp_path), None)
    assert isinstance(source, LocalPathSource) and source.label == "web01-www"


def test_a_dump_dataset_reads_the_command_output(tmp_path: Path) -> None:
    dump = DumpSpec(command="echo dump", filename="erp.sql")
    dataset = Dataset(name="erp", host="db01", dump=dump)
    source = dataset_source(dataset, LocalConnector("db01", tmp_path), None)
    assert isinstance(source, LocalDumpSource) and source.label == "db01-erp"


def test_an_s3_dataset_reads_its_prefix_with_the_contract_settings() -> None:
    dataset = Dataset(
        name="shared", s3=S3DatasetSpec(bucket="acme-files", prefix="shared/", versions="all")
    )
    settings = S3Settings(endpoint_url="http://127.0.0.1:9", region="eu-west-3")
    source = dataset_source(dataset, None, settings)
    assert isinstance(source, S3PrefixSource) and source.label == "shared"
    assert (source.bucket, source.prefix, source.versions) == ("acme-files", "shared/", "all")
    assert source.client.meta.endpoint_url == "http://127.0.0.1:9"
