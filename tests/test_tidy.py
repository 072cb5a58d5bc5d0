"""`gen tidy`: an MT3-style transcription with its grid written in, every note kept in time, one
named track per instrument (program jumps merged), playable drum hits, optional quantizing."""

from __future__ import annotations

from pathlib import Path

import pretty_midi
import pytest

from generation.io.readers import read_music_file
from generation.protos import NoteSequence
from generation.tidy import lengthen_drums, merge_program_jumps, quantize
from generation.transcription import analyse

from .test_cli import run
from .test_written_midi import assert_bar_lines_on_downbeats, assert_originals_kept, mt3_copy

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.mark.parametrize("bpm", [65, 137])
def test_tidy_writes_the_grid_and_keeps_every_pitched_note_in_time(tmp_path: Path, bpm: float) -> None:
    song = mt3_copy(tmp_path, bpm)
    out = tmp_path / "clean.mid"
    result = run("tidy", str(song), "-o", str(out))
    assert result.exit_code == 0, result.output
    original, written = read_music_file(song).sequences[0], read_music_file(out).sequences[0]
    assert_originals_kept(original, written, drums=False)
    drums_in = sorted((n.pitch, n.start_time) for n in original.notes if n.is_drum)
    drums_out = sorted((n.pitch, n.start_time) for n in written.notes if n.is_drum)
    assert [p for p, _ in drums_in] == [p for p, _ in drums_out]  # the hits where they were, only longer
    assert max(abs(a - b) for (_, a), (_, b) in zip(drums_in, drums_out)) <= 1e-3
    assert min(n.end_time - n.start_time for n in written.notes if n.is_drum) > 0.05
    analysis = analyse(original)
    assert abs(analysis.tempo_bpm - bpm) / bpm < 0.01
    assert_bar_lines_on_downbeats(out, analysis, written.total_time - analysis.bar_seconds)
    names = [i.name for i in pretty_midi.PrettyMIDI(str(out)).instruments]
    assert sorted(names) == sorted(["Violin", "Acoustic Grand Piano", "Electric Bass (finger)", "Drums"])


def test_tidy_on_a_groove_file_writes_the_estimated_tempo_and_its_bar_lines(tmp_path: Path) -> None:
    from generation.transcription import mt3_style_midi

    groove = FIXTURES / "groove" / "drummer1" / "eval_session" / "1_funk-groove1_138_beat_4-4.mid"
    song = tmp_path / "funk_mt3.mid"
    song.write_bytes(mt3_style_midi(read_music_file(groove).sequences[0]))
    out = tmp_path / "clean.mid"
    assert run("tidy", str(song), "-o", str(out)).exit_code == 0
    original = read_music_file(song).sequences[0]
    analysis = analyse(original)
    written = pretty_midi.PrettyMIDI(str(out))
    _, qpms = written.get_tempo_changes()
    assert abs(qpms[-1] - analysis.tempo_bpm) < 0.01 and abs(analysis.tempo_bpm - 138) < 1.5
    assert_bar_lines_on_downbeats(out, analysis, original.total_time - analysis.bar_seconds)
    starts = sorted(n.start for i in written.instruments for n in i.notes)
    assert max(abs(a - b) for a, b in zip(starts, sorted(n.start_time for n in original.notes))) <= 1e-3


def _segments(program: int, spans: list[tuple[float, float]], pitch: int = 60) -> list[tuple]:
    return [(program, pitch + (k % 3), start + 0.25 * k, start + 0.25 * k + 0.2)
            for start, end in spans for k in range(int((end - start) / 0.25))]


def _sequence(notes: list[tuple]) -> NoteSequence:
    sequence = NoteSequence(ticks_per_quarter=220)
    for program, pitch, start, end in notes:
        sequence.notes.add(program=program, instrument=program, pitch=pitch, velocity=100, start_time=start,
                           end_time=end)
    return sequence


def test_an_instrument_jumping_between_programs_is_merged_and_two_instruments_are_not() -> None:
    notes = (_segments(0, [(0, 2), (4, 6), (8, 10)])  # piano, in MT3's 2-second segments ...
             + _segments(4, [(2, 4), (6, 8)])  # ... and the same player read as an electric piano between
             + _segments(48, [(0, 10)], pitch=72)  # strings all along: another instrument, another family
             + _segments(25, [(0, 10)], pitch=40) + _segments(27, [(0, 10)], pitch=52))  # two guitars together
    sequence = _sequence(notes)
    merges = merge_program_jumps(sequence)
    assert merges == [(4, 0, 16)]
    assert sorted({n.program for n in sequence.notes}) == [0, 25, 27, 48]
    assert all(n.instrument == 0 for n in sequence.notes if n.program == 0)


def test_drum_hits_get_a_sixteenth_or_up_to_the_next_hit_and_quantize_snaps_to_sixteenths() -> None:
    sequence = NoteSequence(ticks_per_quarter=220)
    sequence.tempos.add(qpm=120)
    for start in (0.0, 0.5, 1.0, 1.06, 1.5, 2.0):
        sequence.notes.add(pitch=36, velocity=100, start_time=start, end_time=start + 0.01, is_drum=True)
    for start in (0.02, 0.51, 0.99, 1.49):
        sequence.notes.add(pitch=60, velocity=90, start_time=start, end_time=start + 0.4)
    analysis = analyse(sequence, estimate=False)  # 120 bpm from the file: a 16th is 0.125 s
    assert lengthen_drums(sequence, analysis) == 6
    ends = [round(n.end_time - n.start_time, 3) for n in sequence.notes if n.is_drum]
    assert ends == [0.125, 0.125, 0.06, 0.125, 0.125, 0.125]  # the hit at 1.0 s rings until the next, at 1.06
    assert quantize(sequence, analysis) > 0
    assert all(abs(n.start_time / 0.125 - round(n.start_time / 0.125)) < 1e-9 for n in sequence.notes)
    assert all(n.end_time - n.start_time >= 0.125 - 1e-9 for n in sequence.notes)


def test_tidy_errors_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "x.mid"
    result = run("tidy", str(FIXTURES / "broken" / "truncated.mid"), "-o", str(out))
    assert result.exit_code == 1 and "truncated" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = run("tidy", str(mt3_copy(tmp_path, 87)), "-o", str(out), "--groove", "groove-humanize")
    assert result.exit_code == 2 and "--groove chooses the model for --humanize" in result.output
    assert not out.exists()


def test_a_transcription_starting_a_few_milliseconds_in_gets_no_bar_of_milliseconds(tmp_path: Path) -> None:
    """The first note at 11 ms (audio transcribed from its start): the first bar is drawn from 0 to
    the second downbeat, not as a pickup of a few milliseconds at an absurd tempo."""
    from generation.limits import check_piece
    from generation.transcription import mt3_style_midi

    sequence = read_music_file(FIXTURES.parent.parent / "examples" / "bantry_lasses.mid").sequences[0]
    for note in sequence.notes:
        note.start_time += 0.011
        note.end_time += 0.011
    song = tmp_path / "from_audio.mid"
    song.write_bytes(mt3_style_midi(sequence))
    out = tmp_path / "clean.mid"
    assert run("tidy", str(song), "-o", str(out)).exit_code == 0
    written = read_music_file(out).sequences[0]
    check_piece(written, str(out))  # every tempo within the limits: `gen render` and the rest read it
    assert max(t.qpm for t in written.tempos) < 200
    analysis = analyse(read_music_file(song).sequences[0])
    assert 0 < analysis.first_downbeat < 0.03
    downbeats = pretty_midi.PrettyMIDI(str(out)).get_downbeats()
    expected = [analysis.first_downbeat + k * analysis.bar_seconds for k in range(1, 8)]  # a steady 112 bpm
    assert downbeats[0] == 0.0 and max(abs(a - b) for a, b in zip(downbeats[1:8], expected)) < 1e-3
    assert_originals_kept(read_music_file(song).sequences[0], written, drums=False)
