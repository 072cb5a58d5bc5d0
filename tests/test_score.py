"""`gen score`: a readable score whose every note is the quantized note of the piece, read back by music21."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from generation.io.midi import midi_to_note_sequence
from generation.io.readers import read_music_file
from generation.score import STEP, track_events
from generation.transcription import analyse, on_grid

from .test_cli import run

REPOSITORY = Path(__file__).resolve().parents[1]
EXAMPLE = REPOSITORY / "examples" / "bantry_lasses.mid"


def expected_notes(sequence) -> set[tuple[float, int]]:
    """(onset in quarter notes, MIDI pitch) of every pitched note, quantized as the score quantizes."""
    analysis = analyse(sequence)
    grid = on_grid(sequence, analysis)
    quarter = 60.0 / analysis.tempo_bpm
    tracks: dict = {}
    for note in grid.notes:
        if not note.is_drum:
            tracks.setdefault((note.instrument, note.program), []).append(note)
    return {(e.onset, p) for notes in tracks.values() for e in track_events(notes, quarter) for p in e.pitches}


def read_back(path: Path):
    from music21 import converter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.parse(str(path))


def pitched_notes(score) -> set[tuple[float, int]]:
    found = set()
    for part in score.parts:
        for element in part.flatten().notes:
            if element.isChord and hasattr(element, "pitches") and element.pitches:
                found |= {(float(element.offset), p.midi) for p in element.pitches}
            elif element.isNote:
                found.add((float(element.offset), element.pitch.midi))
    return found


def test_the_example_round_trips_every_note_and_puts_drums_on_a_percussion_staff(tmp_path: Path) -> None:
    out = tmp_path / "bantry.musicxml"
    result = run("score", str(EXAMPLE), "-o", str(out))
    assert result.exit_code == 0, result.output
    score = read_back(out)
    expected = expected_notes(read_music_file(EXAMPLE).sequences[0])
    found = pitched_notes(score)
    assert expected <= found, sorted(expected - found)[:5]
    assert len(found - expected) <= len(expected) // 20  # only the tied halves of bar-crossing notes
    names = [p.partName for p in score.parts]
    assert sorted(names) == ["Acoustic Grand Piano", "Drums", "Electric Bass (finger)", "Violin"]
    from music21 import clef

    drums = score.parts[names.index("Drums")]
    assert any(isinstance(c, clef.PercussionClef) for c in drums.recurse().getElementsByClass(clef.Clef))
    assert len(drums.flatten().notes) > 0
    assert str(score.parts[0].recurse().getElementsByClass("KeySignature")[0].asKey()) == "G major"


def test_a_string_quartet_from_music21s_corpus_round_trips(tmp_path: Path) -> None:
    from music21 import corpus
    from music21.midi import translate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = translate.streamToMidiFile(corpus.parse("mozart/k155/movement2.mxl")).writestr()
    song = tmp_path / "k155.mid"
    song.write_bytes(data)
    out = tmp_path / "k155.mxl"
    result = run("score", str(song), "-o", str(out), "--bars", "12")
    assert result.exit_code == 0, result.output
    sequence = midi_to_note_sequence(data, str(song))
    analysis = analyse(sequence)
    within = analysis.bar_seconds / (60.0 / analysis.tempo_bpm) * 12 - STEP / 2
    expected = {n for n in expected_notes(sequence) if n[0] < within}
    found = pitched_notes(read_back(out))
    assert expected <= found, sorted(expected - found)[:5]
    assert len(read_back(out).parts) == 4


def test_parts_bars_and_errors(tmp_path: Path) -> None:
    out = tmp_path / "violin.musicxml"
    result = run("score", str(EXAMPLE), "-o", str(out), "--parts", "violin", "--from-bar", "5", "--bars", "2")
    assert result.exit_code == 0, result.output
    score = read_back(out)
    assert [p.partName for p in score.parts] == ["Violin"]
    assert [m.number for m in score.parts[0].getElementsByClass("Measure")] == [5, 6]
    result = run("score", str(EXAMPLE), "-o", str(tmp_path / "x.musicxml"), "--parts", "tuba")
    assert result.exit_code == 1 and "no instrument named tuba" in result.stderr
    result = run("score", str(EXAMPLE), "-o", str(tmp_path / "x.pdf"))
    assert result.exit_code == 2 and "a score is written as" in result.output
    assert not list(tmp_path.glob("x*"))


def test_an_svg_page_is_engraved(tmp_path: Path) -> None:
    pytest.importorskip("verovio", reason="SVG scores need the score extra (pip install '.[score]')")
    out = tmp_path / "bantry.svg"
    result = run("score", str(EXAMPLE), "-o", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.lstrip().startswith(("<?xml", "<svg")) and text.count('class="note"') > 100


def test_a_piano_with_two_hands_gets_a_braced_grand_staff_and_a_tenor_voice_does_not(tmp_path: Path) -> None:
    from generation.protos import NoteSequence
    from generation.io.writers import write_midi

    sequence = NoteSequence(ticks_per_quarter=480)
    sequence.tempos.add(qpm=120)
    sequence.time_signatures.add(numerator=4, denominator=4)
    for beat in range(16):
        for pitch, program, instrument in ((36 + beat % 5, 0, 0), (72 + beat % 7, 0, 0), (57 + beat % 5, 0, 1)):
            sequence.notes.add(pitch=pitch, velocity=80, program=program, instrument=instrument,
                               start_time=beat * 0.5, end_time=beat * 0.5 + 0.45)
    song = tmp_path / "two_pianos.mid"
    write_midi(sequence, song)
    out = tmp_path / "two_pianos.musicxml"
    assert run("score", str(song), "-o", str(out)).exit_code == 0
    score = read_back(out)
    from music21 import layout

    groups = list(score.recurse().getElementsByClass(layout.StaffGroup))
    assert len(score.parts) == 3 and len(groups) == 1 and groups[0].symbol == "brace"
    assert sorted(len(p.flatten().notes) for p in score.parts) == [16, 16, 16]
