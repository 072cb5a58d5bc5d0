"""MusicXML, ABC and kern read into NoteSequences with Magenta's ids and fields."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from generation.errors import BadInputFile
from generation.io.readers import generate_note_sequence_id, read_music_file, split_abc_tunebook
from generation.protos import SourceInfo

from .conftest import FIXTURES

SCORES = FIXTURES / "scores"


def test_ids_follow_magentas_convention() -> None:
    fingerprint = hashlib.sha1(b"drummer1/a.mid").hexdigest()
    assert generate_note_sequence_id("drummer1/a.mid", "groove", "MIDI") == f"/id/midi/groove/{fingerprint}"


def test_musicxml_chorale() -> None:
    contents = read_music_file(SCORES / "bwv66.6.mxl", collection_name="scores", filename="bwv66.6.mxl")
    (sequence,) = contents.sequences
    assert sequence.source_info.encoding_type == SourceInfo.MUSIC_XML
    assert sequence.source_info.parser == SourceInfo.MAGENTA_MUSIC_XML
    assert len({note.part for note in sequence.notes}) == 4  # soprano, alto, tenor, bass
    assert len(sequence.notes) > 100
    assert (4, 4) in [(t.numerator, t.denominator) for t in sequence.time_signatures]
    assert sequence.id == generate_note_sequence_id("bwv66.6.mxl", "scores", "musicxml")
    assert sequence.total_time >= max(note.end_time for note in sequence.notes)  # note_seq counts to the last barline


def test_abc_tunebook_gives_one_sequence_per_tune() -> None:
    contents = read_music_file(SCORES / "oneills1850_0001-0008.abc", collection_name="scores")
    sequences = contents.sequences
    assert len(sequences) == 8 and contents.warnings == []
    # note_seq reads some tunes, music21 those note_seq refuses (grace notes, tuplets).
    assert {s.source_info.parser for s in sequences} == {SourceInfo.MAGENTA_ABC, SourceInfo.MUSIC21}
    assert all(s.source_info.encoding_type == SourceInfo.ABC and s.notes for s in sequences)
    assert [s.reference_number for s in sequences] == list(range(1, 9))
    for sequence in sequences:
        assert sequence.id == generate_note_sequence_id(
            f"oneills1850_0001-0008.abc_{sequence.reference_number}", "scores", "abc"
        )


def test_abc_tune_that_cannot_be_read_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    book = "X:1\nT:Good\nM:4/4\nL:1/8\nK:G\nGABc dedB|\n\nX:2\nT:Silent\nM:4/4\nK:G\n\nfree text between tunes\n"
    (tmp_path / "book.abc").write_text(book)
    contents = read_music_file(tmp_path / "book.abc")
    assert [s.sequence_metadata.title for s in contents.sequences] == ["Good"]
    assert contents.warnings == ["tune 2: no notes"]


def test_abc_tunebook_with_a_duplicate_reference_number_keeps_the_first(tmp_path: Path) -> None:
    tune = "X:1\nT:A\nM:4/4\nL:1/8\nK:G\nGABc dedB|\n"
    (tmp_path / "book.abc").write_text(tune + "\n" + tune.replace("T:A", "T:B").replace("GABc", "ABcd"))
    contents = read_music_file(tmp_path / "book.abc")
    assert len(contents.sequences) == 1
    assert "reference number used twice" in contents.warnings[0]


def test_kern_through_music21() -> None:
    (sequence,) = read_music_file(SCORES / "Credo_67_c.krn").sequences
    assert sequence.source_info.parser == SourceInfo.MUSIC21
    assert sequence.source_info.source_type == SourceInfo.SCORE_BASED
    assert len({note.instrument for note in sequence.notes}) == 4
    assert [info.name for info in sequence.instrument_infos][:2] == ["Soprano", "Alto"]


def test_music21_corpus_folk_tune_via_corpus_path() -> None:
    corpus = pytest.importorskip("music21.corpus")
    path = next(p for p in corpus.getPaths() if p.name == "altdeu10.abc")
    contents = read_music_file(path)
    assert len(contents.sequences) + len(contents.warnings) == len(split_abc_tunebook(path.read_text())[1]) == 313
    assert len(contents.sequences) > 300


def test_unsupported_suffix_named_in_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("C D E")
    with pytest.raises(BadInputFile, match=r"notes\.txt: unsupported file type '\.txt'"):
        read_music_file(tmp_path / "notes.txt")
