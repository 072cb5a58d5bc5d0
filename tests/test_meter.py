"""Meter and downbeat of estimated grids (`generation.transcription.estimate_meter`, `_downbeat`): pieces
built here in 3/4, 6/8 and 4/4, written as MT3 writes MIDI (120 bpm, 4/4, 220 ticks per quarter),
read back and analysed; cut at a bar line, drifting, and drums from the committed Groove fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from generation.io.midi import midi_to_note_sequence
from generation.io.readers import read_music_file
from generation.protos import NoteSequence
from generation.transcription import _downbeat, analyse, is_mt3_style, mt3_style_midi, ramped_performance

from .conftest import FIXTURES

# (onset, length) in eighth notes within a bar, one rhythm per bar in turn, and the melody's pitches.
WALTZ = ([(0, 4), (4, 2)], [(0, 2), (2, 2), (4, 2)], [(0, 3), (3, 1), (4, 2)], [(0, 6)])
JIG = ([(0, 2), (2, 1), (3, 2), (5, 1)], [(0, 1), (1, 1), (2, 1), (3, 1), (4, 1), (5, 1)],
       [(0, 3), (3, 2), (5, 1)], [(0, 1), (1, 1), (2, 1), (3, 3)])
MARCH = ([(0, 2), (2, 1), (3, 1), (4, 4)], [(0, 3), (3, 1), (4, 2), (6, 2)], [(0, 4), (4, 2), (6, 2)],
         [(0, 1), (1, 1), (2, 1), (3, 1), (4, 4)])
SCALE = (72, 74, 76, 77, 79, 77, 76, 74, 72, 71)
# (eighths per bar, eighth in seconds, melody rhythms, where the bass and where the chords play in the bar)
PIECES = {
    "3/4": (6, 0.2, WALTZ, [0], [2, 4]),  # oom-pah-pah at 150 quarter notes per minute
    "6/8": (6, 0.2, JIG, [0, 3], []),  # a jig at 100 dotted quarters per minute
    "4/4": (8, 0.25, MARCH, [0, 4], [2, 6]),  # at 120 quarter notes per minute
}
SIGNATURES = {"3/4": (3, 4), "6/8": (6, 8), "4/4": (4, 4)}


def tune(meter: str, bars: int, pickup: int = 0) -> NoteSequence:
    """`bars` bars of a tune in `meter` (a melody, a bass note per beat, maybe chords; the harmony
    changes every bar), after `pickup` eighth notes of melody; times in seconds, steady."""
    eighths, eighth, rhythms, bass, chords = PIECES[meter]
    sequence = NoteSequence(ticks_per_quarter=480)
    step = 0

    def add(pitch: int, start: float, length: float, program: int) -> None:
        sequence.notes.add(pitch=pitch, start_time=start * eighth, end_time=(start + length) * eighth, velocity=90,
                           program=program, instrument=program)

    for k in range(pickup):
        add(SCALE[k], k, 1, 73)
    for bar in range(bars):
        start = pickup + bar * eighths
        root = (48, 43, 45, 41)[bar % 4]  # C, G, A, F: a new chord each bar
        for onset, length in rhythms[bar % len(rhythms)]:
            add(SCALE[step % len(SCALE)], start + onset, length, 73)
            step += 1
        for onset in bass:
            add(root, start + onset, 2 if chords else 3, 32)
        for onset in chords:
            for interval in (16, 19, 24):
                add(root + interval, start + onset, 1, 0)
    sequence.total_time = max(n.end_time for n in sequence.notes)
    return sequence


def mt3_copy(sequence: NoteSequence, cut: float | None = None) -> NoteSequence:
    """As MT3 writes it (120 bpm, 4/4), read back; with `cut`, only the notes before it, clipped there."""
    if cut is not None:
        kept = NoteSequence(ticks_per_quarter=sequence.ticks_per_quarter)
        for note in sequence.notes:
            if note.start_time < cut - 1e-6:
                added = kept.notes.add()
                added.CopyFrom(note)
                added.end_time = min(note.end_time, cut)
        sequence = kept
    copy = midi_to_note_sequence(mt3_style_midi(sequence), "tune.mid")
    assert is_mt3_style(copy)
    return copy


def bar_seconds(meter: str) -> float:
    eighths, eighth, *_ = PIECES[meter]
    return eighths * eighth


@pytest.mark.parametrize("meter", list(PIECES))
def test_the_meter_and_bar_of_a_tune_are_found(meter: str) -> None:
    analysis = analyse(mt3_copy(tune(meter, 24)))
    assert analysis.tempo_source == "estimated"
    assert analysis.time_signature == SIGNATURES[meter]
    assert analysis.bar_seconds == pytest.approx(bar_seconds(meter), rel=0.01)
    # The beat is the signature's: the quarter in 3/4 and 4/4, the eighth in 6/8 (its tempo in quarters).
    eighth = PIECES[meter][1]
    assert analysis.beat_seconds == pytest.approx(eighth * (1 if meter == "6/8" else 2), rel=0.01)
    assert analysis.tempo_bpm == pytest.approx(60 / (2 * eighth), rel=0.01)


@pytest.mark.parametrize("meter", list(PIECES))
@pytest.mark.parametrize("pickup", [0, 2])
def test_a_tune_cut_at_a_bar_line_goes_on_at_the_cut(meter: str, pickup: int) -> None:
    """The first 13 bars (after a pickup of two eighths, or none), notes clipped at the cut."""
    eighth = PIECES[meter][1]
    cut = pickup * eighth + 13 * bar_seconds(meter)
    analysis = analyse(mt3_copy(tune(meter, 24, pickup), cut))
    assert analysis.time_signature == SIGNATURES[meter]
    assert analysis.continuation_start == pytest.approx(cut, abs=eighth / 2)  # within a 16th
    bar = bar_seconds(meter)
    assert (analysis.first_downbeat - pickup * eighth + bar / 2) % bar - bar / 2 == pytest.approx(0, abs=eighth / 2)


def test_a_cut_between_bar_lines_keeps_the_downbeat_of_the_notes() -> None:
    """The end weighs less than what the notes say: cut after beat 2 of a waltz bar, the bass and
    the long notes still put the downbeats on the bar lines, and the continuation waits for one."""
    cut = 13 * bar_seconds("3/4") + 0.8  # two beats into bar 14
    analysis = analyse(mt3_copy(tune("3/4", 24), cut))
    assert analysis.time_signature == (3, 4)
    bar = bar_seconds("3/4")
    assert (analysis.first_downbeat + bar / 2) % bar - bar / 2 == pytest.approx(0, abs=0.05)
    assert analysis.continuation_start == pytest.approx(14 * bar_seconds("3/4"), abs=0.05)


def test_the_end_settles_a_downbeat_the_notes_leave_open() -> None:
    """Notes on every beat, all alike (any beat could start the bar; the first note says the one at
    0.5 s, a little): the end, when the notes cut there end together on a beat, is taken for a
    downbeat; when it is off the beats, the last onset (a closing chord) is."""
    notes = [NoteSequence.Note(pitch=pitch, start_time=0.5 + beat * 0.5, end_time=1.0 + beat * 0.5, velocity=90)
             for beat in range(15) for pitch in (60, 64)]  # 3/4 at 120 qpm from 0.5 s, the last beat at 7.5 s
    times = np.array([n.start_time for n in notes])
    ends = np.array([n.end_time for n in notes])
    ends[::2] = np.minimum(ends[::2] + 0.5, 8.0)  # one voice held over the next beat, cut at 8 s
    assert _downbeat(notes, 0.0, 0.5, 3, times=times, ends=ends) == pytest.approx(0.5)  # 8 s on a downbeat
    assert _downbeat(notes, 0.0, 0.5, 3, times=times, ends=ends + 0.5) == pytest.approx(1.0)  # 8.5 s on one
    assert _downbeat(notes, 0.0, 0.5, 3, times=times, ends=ends + 0.25) == pytest.approx(0.0)  # 7.5 s on one


def test_a_drifting_waltz_gets_a_beat_map_of_its_own_bars() -> None:
    """A waltz played three times over from 135 to 165 quarter notes per minute: the beat map's
    beats are the performance's quarter notes, its bar lines every third one."""
    steady = tune("3/4", 16)
    steady.tempos.add(qpm=150.0)
    played, time_of = ramped_performance(steady, 135.0, 165.0)
    analysis = analyse(mt3_copy(played))
    assert analysis.drifting and analysis.time_signature == (3, 4)
    bar_lines = np.asarray(analysis.from_grid(analysis.to_grid(analysis.first_downbeat)
                                              + np.arange(40) * analysis.bar_seconds))
    true_bar_lines = time_of(np.arange(0, 200, 3.0))
    nearest = np.abs(bar_lines[:, None] - true_bar_lines[None, :]).min(axis=1)
    assert nearest.max() < 0.05, nearest
    assert analysis.end_tempo_bpm == pytest.approx(165, rel=0.03)


@pytest.mark.parametrize("name, signature", [("1_funk-groove1_138_beat_4-4.mid", (4, 4)),
                                             ("1_latin-chacarera_157_beat_3-4.mid", (3, 4))])
def test_drum_grooves_keep_their_meter(name: str, signature: tuple[int, int]) -> None:
    path = next(Path(FIXTURES / "groove").rglob(name))
    original = read_music_file(path).sequences[0]
    analysis = analyse(midi_to_note_sequence(mt3_style_midi(original), name))
    assert analysis.time_signature == signature
    bar = 60 / original.tempos[0].qpm * 4 / signature[1] * signature[0]
    assert analysis.bar_seconds == pytest.approx(bar, rel=0.02)


def test_meter_estimation_is_fast_on_a_long_piece() -> None:
    """A 40-minute tune (some 14,000 notes): well under a second for the meter on top of the tempo."""
    import time

    from generation.transcription import estimate_meter

    notes = list(tune("6/8", 2000).notes)
    positions = np.array([n.start_time for n in notes]) / 0.4
    started = time.perf_counter()
    meter = estimate_meter(notes, positions, 0.4)
    assert time.perf_counter() - started < 1.0
    assert meter.time_signature == (6, 8) and meter.beat == pytest.approx(1.5)


def test_a_files_short_last_bar_does_not_set_its_meter() -> None:
    """BWV 66.6 ends on a 3/4 bar after its 4/4 (the pickup's complement), and music21 reads the first
    O'Neill tune's last partial bar as 1/16: the meter the piece goes on in is 4/4 and 2/4."""
    scores = FIXTURES / "scores"
    for name, meter in (("bwv66.6.mxl", (4, 4)), ("oneills1850_0001-0008.abc", (2, 4))):
        sequence = read_music_file(scores / name).sequences[0]
        assert len({(s.numerator, s.denominator) for s in sequence.time_signatures}) > 1, name
        assert analyse(sequence).time_signature == meter, name
