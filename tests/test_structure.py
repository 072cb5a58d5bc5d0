"""The piece's own structure: chords per bar, repetition, the plan for going on, and `gen continue`
keeping each track's texture and rests (style "piece")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from generation import structure
from generation.continuation import continue_piece
from generation.io.readers import read_music_file
from generation.protos import NoteSequence
from generation.transcription import analyse, on_grid

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bantry_lasses.mid"
BAR = 2.0  # seconds: 4/4 at 120 qpm

CHORDS = {"C": (48, 52, 55), "F": (53, 57, 60), "G": (55, 59, 62), "Am": (57, 60, 64), "Dm": (50, 53, 57)}


def piece(bars: list[dict[int, list[tuple[float, int]]]]) -> NoteSequence:
    """A 4/4, 120 qpm piece: for each bar, {program: [(beat, pitch), ...]}, each note a beat long."""
    sequence = NoteSequence(ticks_per_quarter=480)
    sequence.tempos.add(qpm=120)
    sequence.time_signatures.add(numerator=4, denominator=4)
    for number, bar in enumerate(bars):
        for program, notes in bar.items():
            for beat, pitch in notes:
                note = sequence.notes.add(pitch=pitch, velocity=90, program=program, instrument=program,
                                          start_time=number * BAR + beat * 0.5, end_time=number * BAR + beat * 0.5 + 0.45)
    sequence.total_time = len(bars) * BAR
    return sequence


def chord_bar(name: str, melody: list[int]) -> dict[int, list[tuple[float, int]]]:
    """A bar: the chord struck on every beat (piano, program 0) and a melody note per beat (flute, 73)."""
    return {0: [(beat, pitch) for beat in range(4) for pitch in CHORDS[name]],
            73: [(beat, pitch) for beat, pitch in enumerate(melody)]}


def bars_and_grid(sequence: NoteSequence):
    analysis = analyse(sequence)
    grid = on_grid(sequence, analysis)
    return analysis, grid, structure.bars_of(grid, analysis.bar_seconds, analysis.continuation_grid_start)


def test_chords_are_inferred_per_bar() -> None:
    sequence = piece([chord_bar(c, [72, 74, 76, 77]) for c in ("C", "F", "G", "C", "Am", "Dm", "G", "C")])
    analysis, grid, bars = bars_and_grid(sequence)
    chords = structure.bar_chords(grid, analysis.bar_seconds, analysis.tempo_bpm, (4, 4), bars.first, bars.end)
    assert chords == ["C", "F", "G", "C", "Am", "Dm", "G", "C"]


def test_chords_in_six_eight_are_inferred_per_bar_of_six_eighths() -> None:
    """A 6/8 bar is 3 quarter notes long: each chord is struck on both dotted-quarter beats."""
    names = ("C", "F", "G", "C", "Am", "Dm", "G", "C")
    sequence = NoteSequence(ticks_per_quarter=480)
    sequence.tempos.add(qpm=120)
    sequence.time_signatures.add(numerator=6, denominator=8)
    bar = 1.5  # seconds: six eighths at 120 qpm
    for number, name in enumerate(names):
        for beat in (0.0, 0.75):
            for pitch in CHORDS[name]:
                sequence.notes.add(pitch=pitch, velocity=90, start_time=number * bar + beat,
                                   end_time=number * bar + beat + 0.7)
    sequence.total_time = len(names) * bar
    analysis, grid, bars = bars_and_grid(sequence)
    assert analysis.bar_seconds == pytest.approx(bar)
    chords = structure.bar_chords(grid, analysis.bar_seconds, analysis.tempo_bpm, analysis.time_signature,
                                  bars.first, bars.end)
    assert chords == list(names)


LOOP = [chord_bar("C", [72, 76, 79, 76]), chord_bar("Am", [69, 72, 76, 72]),
        chord_bar("F", [65, 69, 72, 69]), chord_bar("G", [67, 71, 74, 71])]


def test_a_looped_piece_goes_on_looping() -> None:
    _, _, bars = bars_and_grid(piece(LOOP * 3))
    assert structure.repeat_period(bars) == (4, pytest.approx(1.0))
    plan = [b - bars.first for b in structure.plan_bars(bars, 8)]
    assert [b % 4 for b in plan] == [0, 1, 2, 3] * 2, plan  # the loop's bars in the loop's order


def test_a_groove_of_alike_bars_keeps_its_phrase_in_order(monkeypatch) -> None:
    """A 4-bar phrase of three bars of one figure and a fourth with its last note changed, twice,
    then half of it again: the bars are all alike, but the plan plays the phrase on in its order,
    the varied bar at its fourth place, and a bar may come round again there. Without the phase
    term the plan leaves the varied bar out."""
    plain, varied = chord_bar("C", [72, 74, 76, 77]), chord_bar("C", [72, 74, 76, 79])
    figures = "PPPVPPPVPP"
    _, _, bars = bars_and_grid(piece([{"P": plain, "V": varied}[f] for f in figures]))
    played = "".join(figures[b - bars.first] for b in structure.plan_bars(bars, 8))
    assert played == "PVPPPVPP"
    monkeypatch.setattr(structure, "PHASE_WEIGHT", 0.0)
    played = "".join(figures[b - bars.first] for b in structure.plan_bars(bars, 8))
    assert played != "PVPPPVPP"


def test_a_verse_heard_before_leads_into_its_chorus() -> None:
    verse = LOOP
    chorus = [chord_bar("F", [77, 77, 76, 74]), chord_bar("G", [74, 74, 72, 71]),
              chord_bar("C", [72, 72, 76, 79]), chord_bar("C", [84, 79, 76, 72])]
    _, _, bars = bars_and_grid(piece(verse + chorus + verse))
    assert [b - bars.first + 1 for b in structure.plan_bars(bars, 4)] == [5, 6, 7, 8]  # the chorus again


def test_the_continuation_keeps_each_tracks_texture() -> None:
    """On the README's example with the bundled models, at the default novelty: every track's new notes
    stay within a fifth of its range in the last 8 bars, at 0.5 to 2 times its density there."""
    sequence = read_music_file(EXAMPLE).sequences[0]
    result = continue_piece(sequence, _bundled_models(), bars=8, seed=0)
    start = result.analysis.continuation_start
    for track in result.analysis.tracks:
        key = (track.instrument, track.program, track.is_drum)
        old = [n for n in sequence.notes if (n.instrument, n.program, n.is_drum) == key]
        new = [n for n in result.sequence.notes if (n.instrument, n.program, n.is_drum) == key and n.start_time >= start - 1e-6]
        assert 0.5 <= len(new) / len(old) <= 2, (track.role, len(new), len(old))  # 8 bars each
        low, high = min(n.pitch for n in old), max(n.pitch for n in old)
        assert all(low - 7 <= n.pitch <= high + 7 for n in new), (track.role, low, high, sorted({n.pitch for n in new}))
        if track.is_drum:
            assert {n.pitch for n in new} <= {n.pitch for n in old}
        velocities = [n.velocity for n in old]
        assert all(min(velocities) <= n.velocity <= max(velocities) for n in new)


def test_a_resting_track_stays_at_rest_and_novelty_zero_plays_only_the_piece() -> None:
    bars = [chord_bar(c, [72, 74, 76, 77]) for c in ("C", "F", "G", "C") * 3]
    for bar in bars[4:]:
        del bar[73]  # the flute stops after four bars
    sequence = piece(bars)
    result = continue_piece(sequence, _bundled_models(), bars=4, seed=0, novelty=0.0)
    start = result.analysis.continuation_start
    new = [n for n in result.sequence.notes if n.start_time >= start - 1e-6]
    assert new and all(n.program == 0 for n in new)
    flute = next(t for t in result.tracks if t.track.program == 73)
    assert flute.new_notes == 0 and "resting" in flute.skipped
    piano_bars = {(round((n.start_time - start) % BAR, 3), n.pitch) for n in new}
    assert piano_bars <= {(round(n.start_time % BAR, 3), n.pitch) for n in sequence.notes if n.program == 0}
    assert result.chords_planned == ["C", "F", "G", "C"]


@pytest.mark.parametrize("chord, melody, moving", [
    ((48, 52, 55), (72, 74, 77, 79), False),  # C major: G may become E; D and F (seconds) have no clashing chord tone near
    ((43, 47, 50, 53), (71, 77, 74, 79), True),  # G7: F may become G (each a second against the other); D stays
], ids=["C major", "G7"])
def test_a_varied_bar_keeps_its_clashes_and_adds_none(chord, melody, moving) -> None:
    """Over a held chord, a varied melody note moves only to a tone whose clash with the chord (a
    second, tritone or seventh against one of its notes) is as the original's; the downbeat stays."""
    from generation.continuation import _vary_pitches
    from generation.continuation_metrics import DISSONANT_INTERVALS

    held = [(0.0, 2.0, pitch) for pitch in chord]
    original = piece([{73: list(enumerate(melody))}]).notes

    def clashes(pitch: int) -> bool:
        return any(abs(pitch - q) % 12 in DISSONANT_INTERVALS for _, _, q in held)

    moved = set()
    for seed in range(30):
        notes = [type(n)() for n in original]
        for copied, note in zip(notes, original):
            copied.CopyFrom(note)
        _vary_pitches(notes, held, (65, 84), 0.0, np.random.default_rng(seed))
        assert notes[0].pitch == melody[0]
        for before, after in zip(original, notes):
            if after.pitch != before.pitch:
                moved.add((before.pitch, after.pitch))
                assert clashes(after.pitch) == clashes(before.pitch), (before.pitch, after.pitch)
    assert moved and all(clashes(a) == moving for a, _ in moved), moved


def _bundled_models():
    from generation.continuation import choose_models, load_models

    return load_models(choose_models({}))


def _two_voices(upper: list[int]) -> NoteSequence:
    """Bars of 2 s in half notes: a cello on C3 under a violin on `upper[k]` in bar k."""
    piece = NoteSequence()
    for k, pitch in enumerate(upper):
        for instrument, note_pitch in ((0, 48), (1, pitch)):
            for half in (0.0, 1.0):
                piece.notes.add(pitch=note_pitch, velocity=80, start_time=2.0 * k + half, end_time=2.0 * k + half + 1.0,
                                instrument=instrument, program=42 if instrument == 0 else 40)
    return piece


def test_each_bars_clashes_are_measured_between_its_tracks() -> None:
    piece = _two_voices([64, 61, 67])  # C-E, C-C#, C-G
    piece.notes.add(pitch=36, start_time=0.0, end_time=6.0, instrument=9, is_drum=True)  # drums do not count
    levels = structure.bar_dissonance(structure.bars_of(piece, 2.0, 6.0))
    assert levels.tolist() == [0.0, 1.0, 0.0]
    alone = NoteSequence()
    alone.notes.add(pitch=60, start_time=0.0, end_time=2.0)
    assert np.isnan(structure.bar_dissonance(structure.bars_of(alone, 2.0, 2.0))).all()  # no two tracks


def test_the_plan_keeps_the_tension_the_piece_has_reached(monkeypatch) -> None:
    """Eight plain bars (C-E), then eight where most bars clash (C-C#): the continuation goes on
    clashing, as the piece now does; measured against the whole piece's level, it went back to
    the plain bars."""
    E, C_SHARP = 64, 61
    upper = [E] * 8 + [C_SHARP, C_SHARP, C_SHARP, E] * 2
    bars = structure.bars_of(_two_voices(upper), 2.0, 2.0 * len(upper))
    assert [upper[b - bars.first] for b in structure.plan_bars(bars, 2, context=1)] == [C_SHARP, C_SHARP]
    monkeypatch.setattr(structure, "TENSION_BARS", len(upper))
    assert [upper[b - bars.first] for b in structure.plan_bars(bars, 2, context=1)] == [E, E]


def test_the_plan_keeps_the_pieces_level_of_tension(monkeypatch) -> None:
    """The last bar (C-E) was heard twice before: once followed by a clash (C-C#), once, later, by
    a plain fifth (C-G). In a piece where most bars clash, the clash goes on; without the tension
    term, the later (plainer) successor would win."""
    E, C_SHARP, G = 64, 61, 67
    # The fixture repeats every 5 bars; only the tension term is under test here.
    monkeypatch.setattr(structure, "PHASE_WEIGHT", 0.0)
    bars = structure.bars_of(_two_voices([E, C_SHARP, C_SHARP, C_SHARP, E, G, C_SHARP, C_SHARP, C_SHARP, E]), 2.0, 20.0)
    assert structure.plan_bars(bars, 1, context=1) == [1]
    monkeypatch.setattr(structure, "TENSION_WEIGHT", 0.0)
    assert structure.plan_bars(bars, 1, context=1) == [5]
