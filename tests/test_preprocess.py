"""`generation.preprocess`: folders -> TFRecords, bad files skipped, splits, duplicates, atomic output."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from generation.errors import BadInputFile, GenError, NoExamplesError, OutputError
from generation.io.readers import generate_note_sequence_id
from generation.io.tfrecord import read_records
from generation.metadata import get_metadata
import generation.preprocess as preprocess_module
from generation.preprocess import convert_file, output_paths, parse_split_fractions, preprocess, split_by_hash
from generation.protos import NoteSequence

from .conftest import FIXTURES


def sequences(path: Path) -> list[NoteSequence]:
    return [NoteSequence.FromString(record) for record in read_records(path)]


def test_mixed_folder_converts_what_it_can_and_names_each_skipped_file(mixed_folder: Path, tmp_path: Path) -> None:
    report = preprocess([mixed_folder], tmp_path / "out" / "mixed", jobs=2)
    output = tmp_path / "out" / "mixed.tfrecord"
    assert report.sequences_written == {str(output): 16}  # 4 drums + 2 multi-track + chorale + kern + 8 tunes
    assert report.files_seen == 17 and report.files_converted == 9
    skipped = dict(report.skipped)
    assert sorted(Path(p).name for p in skipped) == sorted(p.name for p in (FIXTURES / "broken").iterdir())
    assert all(reason for reason in skipped.values())
    written = sequences(output)
    assert {s.collection_name for s in written} == {"mixed"}
    assert "groove/drummer1/eval_session/1_funk-groove1_138_beat_4-4.mid" in {s.filename for s in written}
    assert sum(len(s.notes) for s in written) == report.notes_written
    assert sorted(p.name for p in output.parent.iterdir()) == ["mixed.tfrecord"]  # no temporary files


def test_output_does_not_depend_on_jobs(mixed_folder: Path, tmp_path: Path) -> None:
    preprocess([mixed_folder], tmp_path / "one", jobs=1)
    preprocess([mixed_folder], tmp_path / "two", jobs=2)
    assert (tmp_path / "one.tfrecord").read_bytes() == (tmp_path / "two.tfrecord").read_bytes()


def test_duplicate_content_is_written_once(tmp_path: Path) -> None:
    source = FIXTURES / "multitrack" / "pop_arrangement.mid"
    (tmp_path / "in" / "sub").mkdir(parents=True)
    shutil.copy(source, tmp_path / "in" / "a.mid")
    shutil.copy(source, tmp_path / "in" / "sub" / "copy.mid")
    report = preprocess([tmp_path / "in"], tmp_path / "dedup", jobs=1)
    assert report.total_sequences == 1
    assert report.duplicates_dropped == [(str(tmp_path / "in" / "sub" / "copy.mid"), str(tmp_path / "in" / "a.mid"))]
    assert preprocess([tmp_path / "in"], tmp_path / "all", jobs=1, dedup=False).total_sequences == 2


def test_metadata_assigns_splits_and_travels_with_the_sequence(tmp_path: Path) -> None:
    groove = FIXTURES / "groove"
    report = preprocess([groove], tmp_path / "g", metadata=groove / "info.csv", jobs=2)
    paths = output_paths(tmp_path / "g", ["train", "validation", "test"])
    assert report.sequences_written == {str(paths["test"]): 1, str(paths["train"]): 2, str(paths["validation"]): 1}
    (test_sequence,) = sequences(paths["test"])
    filename = "drummer1/eval_session/1_funk-groove1_138_beat_4-4.mid"
    assert test_sequence.filename == filename
    assert test_sequence.collection_name == "groove"
    assert test_sequence.id == generate_note_sequence_id(filename, "groove", "midi")
    columns = get_metadata(test_sequence)
    assert columns["style"] == "funk/groove1" and columns["bpm"] == "138" and columns["split"] == "test"
    assert list(test_sequence.sequence_metadata.genre) == ["funk/groove1"]
    assert test_sequence.sequence_metadata.artist == "drummer1"


def test_metadata_rows_and_files_that_do_not_match_are_reported(tmp_path: Path) -> None:
    folder = tmp_path / "groove"
    shutil.copytree(FIXTURES / "groove", folder)
    shutil.copy(FIXTURES / "multitrack" / "pop_arrangement.mid", folder / "unlisted.mid")
    (folder / "drummer6" / "session1" / "3_rock_80_beat_6-8.mid").unlink()
    report = preprocess([folder], tmp_path / "g", metadata=folder / "info.csv", jobs=1)
    reasons = {Path(path).name: reason for path, reason in report.skipped}
    assert reasons["unlisted.mid"] == "not listed in info.csv"
    assert reasons["3_rock_80_beat_6-8.mid"] == "listed in info.csv but missing"
    assert report.total_sequences == 3


def test_metadata_without_a_filename_column_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "info.csv").write_text("name,split\na.mid,train\n")
    with pytest.raises(BadInputFile, match=r"info\.csv: no 'midi_filename' or 'filename' column"):
        preprocess([FIXTURES / "groove"], tmp_path / "x", metadata=tmp_path / "info.csv")


def test_split_fractions_are_stable_and_cover_every_sequence(mixed_folder: Path, tmp_path: Path) -> None:
    fractions = parse_split_fractions("train=0.5,validation=0.25,test=0.25")
    report = preprocess([mixed_folder], tmp_path / "s", split_fractions=fractions, jobs=1)
    assert report.total_sequences == 16
    for path in report.sequences_written:
        split = Path(path).stem.rsplit("-", 1)[1]
        assert all(split_by_hash(s.id, fractions) == split for s in sequences(Path(path)))


def test_shards_hold_the_same_records_named_as_tf_data_names_them(mixed_folder: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli import cli
    from generation.preprocess import shard_of

    fractions = parse_split_fractions("train=0.5,validation=0.25,test=0.25")
    whole = preprocess([mixed_folder], tmp_path / "whole", split_fractions=fractions, jobs=1)
    sharded = preprocess([mixed_folder], tmp_path / "sharded", split_fractions=fractions, jobs=1, shards=3)
    for split in ("train", "validation", "test"):
        paths = [tmp_path / f"sharded-{split}-{k:05d}-of-00003.tfrecord" for k in range(3)]
        assert [str(p) for p in paths] == [p for p in sharded.sequences_written if f"-{split}-" in p]
        assert all(p.exists() for p in paths)  # every shard, empty or not
        records = sorted(r for p in paths for r in read_records(p))
        assert records == sorted(read_records(tmp_path / f"whole-{split}.tfrecord"))
        for k, path in enumerate(paths):
            assert all(shard_of(s.id, 3) == k for s in sequences(path))
    assert sharded.total_sequences == whole.total_sequences == 16
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left
    # --force with another shard count replaces the earlier run's files: one folder, one run
    result = CliRunner().invoke(cli, ["preprocess", str(mixed_folder), "-o", str(tmp_path / "sharded"), "-q",
                                      "--shards", "2", "--split", "train=0.5,validation=0.25,test=0.25", "--force"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("sharded-*")) == sorted(
        f"sharded-{split}-{k:05d}-of-00002.tfrecord" for split in ("train", "validation", "test") for k in range(2))


@pytest.mark.parametrize("text", ["train=0.8,test=0.1", "train=x", "=0.5,test=0.5", "train=1.5"])
def test_bad_split_fractions(text: str) -> None:
    with pytest.raises(GenError, match="--split"):
        parse_split_fractions(text)


def test_nothing_convertible_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(NoExamplesError, match="no music converted from 8 file"):
        preprocess([FIXTURES / "broken"], tmp_path / "none", jobs=1)
    assert list(tmp_path.iterdir()) == []


def test_output_directory_is_created(tmp_path: Path) -> None:
    report = preprocess([FIXTURES / "multitrack"], tmp_path / "new" / "dir" / "out", jobs=1)
    assert report.sequences_written == {str(tmp_path / "new" / "dir" / "out.tfrecord"): 2}


def test_unwritable_output_is_an_output_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a file where a directory should be")
    with pytest.raises(OutputError, match="cannot create directory"):
        preprocess([FIXTURES / "multitrack"], tmp_path / "file" / "out", jobs=1)
    (tmp_path / "out.tfrecord").mkdir()
    with pytest.raises(OutputError, match="cannot write"):
        preprocess([FIXTURES / "multitrack"], tmp_path / "out", jobs=1)


def test_whole_groove_dataset_gives_the_official_split(groove_dir: Path, tmp_path: Path) -> None:
    report = preprocess([groove_dir], tmp_path / "groove", metadata=groove_dir / "info.csv", jobs=2)
    counts = {Path(path).name: count for path, count in report.sequences_written.items()}
    assert counts == {"groove-train.tfrecord": 897, "groove-validation.tfrecord": 124, "groove-test.tfrecord": 129}
    assert report.notes_written == 445_494
    assert report.skipped == []
    # The dataset lists two byte-identical files as two rows: both are kept, and reported.
    assert [Path(p).name for p, _ in report.duplicates_kept] == ["8_rock_130_beat_4-4.mid"]


def _crash_on_the_chorale(task):
    if task.path.suffix == ".mxl":
        os.kill(os.getpid(), signal.SIGSEGV)  # as a C parser crashing on a bad file would
    return convert_file(task)


def test_a_crashed_worker_is_an_error_not_a_hang(mixed_folder: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(preprocess_module, "convert_file", _crash_on_the_chorale)
    with pytest.raises(GenError, match="a worker process died while reading"):
        preprocess([mixed_folder], tmp_path / "out", jobs=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixed"]  # no output, not even half-written
