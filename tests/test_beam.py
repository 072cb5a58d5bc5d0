"""`generation.beam`: `gen preprocess --runner beam` writes the local path's records, shards and report."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pytest

pytest.importorskip("apache_beam", reason="Apache Beam is an optional extra: pip install -e '.[beam]'")

from click.testing import CliRunner  # noqa: E402

import generation.beam as beam_module  # noqa: E402
from cli import cli  # noqa: E402
from generation.beam import DEFAULT_RUNNER, beam_preprocess, pipeline_options  # noqa: E402
from generation.errors import GenError, NoExamplesError, OutputError  # noqa: E402
from generation.io.tfrecord import read_records  # noqa: E402
from generation.preprocess import parse_split_fractions, preprocess  # noqa: E402

from .conftest import FIXTURES  # noqa: E402

FRACTIONS = "train=0.5,validation=0.25,test=0.25"


def written(folder: Path) -> dict[str, bytes]:
    """{file name: bytes} of every file in `folder`, hidden ones included (there must be none)."""
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def record_multiset(folder: Path) -> Counter:
    return Counter(record for path in sorted(folder.glob("*.tfrecord")) for record in read_records(path))


def same_report(local, beam, local_dir: Path, beam_dir: Path) -> dict:
    """The two reports as dicts, output paths made relative, `seconds` left out; asserts they are equal."""
    def relative(report, folder: Path) -> dict:
        fields = asdict(report)
        del fields["seconds"]
        fields["sequences_written"] = {str(Path(path).relative_to(folder)): n
                                       for path, n in fields["sequences_written"].items()}
        return fields

    local_fields, beam_fields = relative(local, local_dir), relative(beam, beam_dir)
    assert beam_fields == local_fields
    return beam_fields


@pytest.fixture
def with_duplicates(mixed_folder: Path) -> Path:
    """The mixed folder plus a copy of one of its files under another name."""
    (mixed_folder / "sub").mkdir()
    shutil.copy(FIXTURES / "multitrack" / "pop_arrangement.mid", mixed_folder / "sub" / "copy.mid")
    return mixed_folder


@pytest.mark.parametrize("dedup", [True, False])
@pytest.mark.parametrize("shards", [1, 3])
def test_beam_writes_the_local_paths_records_and_report(with_duplicates: Path, tmp_path: Path, dedup: bool,
                                                        shards: int) -> None:
    fractions = parse_split_fractions(FRACTIONS)
    local = preprocess([with_duplicates], tmp_path / "local" / "m", split_fractions=fractions, jobs=2,
                       dedup=dedup, shards=shards)
    beam = beam_preprocess([with_duplicates], tmp_path / "beam" / "m", split_fractions=fractions, dedup=dedup,
                           shards=shards)
    assert record_multiset(tmp_path / "beam") == record_multiset(tmp_path / "local")
    # Stronger than the same records: the same files, byte for byte (each shard in plan order), no temporaries.
    assert written(tmp_path / "beam") == written(tmp_path / "local")
    report = same_report(local, beam, tmp_path / "local", tmp_path / "beam")
    assert len(report["skipped"]) == 8 and report["files_converted"] == 10
    duplicate = (str(with_duplicates / "sub" / "copy.mid"), str(with_duplicates / "multitrack" / "pop_arrangement.mid"))
    assert report["duplicates_dropped" if dedup else "duplicates_kept"] == [duplicate]
    assert beam.total_sequences == (16 if dedup else 17)
    assert len(report["sequences_written"]) == 3 * shards


def test_beam_follows_the_metadata_csv(tmp_path: Path) -> None:
    groove = FIXTURES / "groove"
    local = preprocess([groove], tmp_path / "local" / "g", metadata=groove / "info.csv", jobs=1, shards=2)
    beam = beam_preprocess([groove], tmp_path / "beam" / "g", metadata=groove / "info.csv", shards=2)
    assert written(tmp_path / "beam") == written(tmp_path / "local")
    assert same_report(local, beam, tmp_path / "local", tmp_path / "beam")["sequences_written"] == {
        "g-test-00000-of-00002.tfrecord": 0, "g-test-00001-of-00002.tfrecord": 1,
        "g-train-00000-of-00002.tfrecord": 2, "g-train-00001-of-00002.tfrecord": 0,
        "g-validation-00000-of-00002.tfrecord": 0, "g-validation-00001-of-00002.tfrecord": 1}


def test_beam_options_pass_through_and_the_default_runner_never_tries_prism(with_duplicates: Path,
                                                                             tmp_path: Path) -> None:
    assert pipeline_options([]).get_all_options()["runner"] == DEFAULT_RUNNER == "BundleBasedDirectRunner"
    options = pipeline_options(["--runner=FnApiRunner", "--direct_num_workers=2"]).get_all_options()
    assert (options["runner"], options["direct_num_workers"]) == ("FnApiRunner", 2)
    preprocess([with_duplicates], tmp_path / "local" / "m", jobs=1, shards=2)
    beam_preprocess([with_duplicates], tmp_path / "fn" / "m", shards=2, pipeline_args=["--runner=FnApiRunner"])
    assert written(tmp_path / "fn") == written(tmp_path / "local")
    with pytest.raises(GenError, match="unknown Beam pipeline option.*--runer"):
        pipeline_options(["--runer=DataflowRunner"])


def test_beam_converting_nothing_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(NoExamplesError, match="no music converted from 8 file"):
        beam_preprocess([FIXTURES / "broken"], tmp_path / "none")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_pipeline_leaves_no_output_and_no_temporaries(tmp_path: Path, monkeypatch) -> None:
    def full_disk(group, output, shards, run_id):
        beam_module.TFRecordWriter(beam_module.staged_path(Path(output).with_suffix(".tfrecord"), run_id)).close()
        raise OutputError(f"{output}: cannot write: no space left on device")

    monkeypatch.setattr(beam_module, "write_shard", full_disk)
    with pytest.raises(OutputError, match=r"no space left on device \[while running 'Write shards'\]"):
        beam_preprocess([FIXTURES / "multitrack"], tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_gen_preprocess_runner_beam_through_the_cli(with_duplicates: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    local = runner.invoke(cli, ["preprocess", str(with_duplicates), "-o", str(tmp_path / "local" / "m"), "-q",
                                "--split", FRACTIONS, "--shards", "2", "--report", str(tmp_path / "local.json")])
    assert local.exit_code == 0, local.output
    beam = runner.invoke(cli, ["preprocess", str(with_duplicates), "-o", str(tmp_path / "beam" / "m"), "-q",
                               "--split", FRACTIONS, "--shards", "2", "--report", str(tmp_path / "beam.json"),
                               "--runner", "beam", "--", "--runner=BundleBasedDirectRunner"])
    assert beam.exit_code == 0, beam.output
    assert written(tmp_path / "beam") == written(tmp_path / "local")
    assert "Dropped 1 duplicate sequence" in beam.output and "Wrote 16 sequences" in beam.output
    reports = [json.loads((tmp_path / f"{name}.json").read_text()) for name in ("local", "beam")]
    for report in reports:
        del report["seconds"]
        report["sequences_written"] = {Path(p).name: n for p, n in report.pop("sequences_written").items()}
    assert reports[0] == reports[1]

    mistyped = runner.invoke(cli, ["preprocess", str(with_duplicates), "-o", str(tmp_path / "x"), "--runner", "beam",
                                   "--", "--runer=DataflowRunner"])
    assert mistyped.exit_code == 1 and "Error: unknown Beam pipeline option(s): --runer" in mistyped.output
    unknown = runner.invoke(cli, ["preprocess", str(with_duplicates), "-o", str(tmp_path / "x" / "y"), "--runner",
                                  "beam", "--", "--runner=NoSuchRunner"])
    assert unknown.exit_code == 1 and "Error: Beam: Unexpected pipeline runner: NoSuchRunner" in unknown.output
    for wrong in (["--", "--runner=FnApiRunner"], ["--runner", "beam", "-j", "2"]):
        result = runner.invoke(cli, ["preprocess", str(with_duplicates), "-o", str(tmp_path / "x"), *wrong])
        assert result.exit_code == 2, result.output
    assert not list(tmp_path.glob("x*"))


def test_python_m_generation_beam(tmp_path: Path, capsys) -> None:
    groove = FIXTURES / "groove"
    code = beam_module.main([str(groove), "-o", str(tmp_path / "g"), "--metadata", str(groove / "info.csv"),
                             "--runner=BundleBasedDirectRunner"])
    assert code == 0
    assert "Read 4 files" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g-test.tfrecord", "g-train.tfrecord", "g-validation.tfrecord"]
    assert beam_module.main([str(groove), "-o", str(tmp_path / "h"), "--split", "train=2"]) == 1
    assert "Error: --split" in capsys.readouterr().err


def test_whole_groove_dataset_same_records_as_the_local_path(groove_dir: Path, tmp_path: Path) -> None:
    metadata = groove_dir / "info.csv"
    local = preprocess([groove_dir], tmp_path / "local" / "groove", metadata=metadata, jobs=2)
    beam = beam_preprocess([groove_dir], tmp_path / "beam" / "groove", metadata=metadata)
    assert record_multiset(tmp_path / "beam") == record_multiset(tmp_path / "local")
    assert written(tmp_path / "beam") == written(tmp_path / "local")
    report = same_report(local, beam, tmp_path / "local", tmp_path / "beam")
    assert report["sequences_written"] == {"groove-train.tfrecord": 897, "groove-validation.tfrecord": 124,
                                           "groove-test.tfrecord": 129}
    assert [Path(p).name for p, _ in beam.duplicates_kept] == ["8_rock_130_beat_4-4.mid"]
