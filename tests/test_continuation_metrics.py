"""Continuation metrics by hand on tiny sequences (no models, no ../shared)."""

from __future__ import annotations

import math

import pytest

from generation.continuation_metrics import (
    DISSONANT_INTERVALS, Grid, beat_similarity, compare, density_log_ratio, dissonance_share, drum_pattern,
    drum_similarity, novelty_share, pitch_class_similarity, register_difference, silent_track_gaps, start_gap,
    steps_per_bar, top_line, trigrams,
)
from generation.protos import NoteSequence

GRID = Grid.from_tempo(120.0)  # 2 s bars, 0.5 s beats, 16ths of 0.125 s


def sequence(*notes: tuple) -> NoteSequence:
    """(pitch, start, end[, program[, is_drum[, instrument]]]) tuples."""
    result = NoteSequence()
    for pitch, start, end, *rest in notes:
        program = rest[0] if len(rest) > 0 else 0
        is_drum = rest[1] if len(rest) > 1 else False
        instrument = rest[2] if len(rest) > 2 else (9 if is_drum else program)
        result.notes.add(pitch=pitch, start_time=start, end_time=end, velocity=80, program=program,
                         is_drum=is_drum, instrument=instrument)
    return result


def piece() -> NoteSequence:
    melody = [(60 + p, i * 0.25, i * 0.25 + 0.25, 40) for i, p in enumerate([0, 2, 4, 5, 7, 5, 4, 2] * 2)]
    bass = [(36 + p, i * 1.0, i * 1.0 + 1.0, 33) for i, p in enumerate([0, 7, 5, 7])]
    drums = [(36, i * 0.5, i * 0.5 + 0.05, 0, True) for i in range(8)] + \
            [(42, i * 0.25, i * 0.25 + 0.05, 0, True) for i in range(16)]
    return sequence(*melody, *bass, *drums)


def test_identical_sequences_are_at_distance_zero() -> None:
    a = piece()
    metrics = compare(a, piece(), a, GRID)
    assert metrics.distance == pytest.approx(0.0)
    assert metrics.pitch_class_similarity == pytest.approx(1.0)
    assert metrics.beat_similarity == pytest.approx(1.0)
    assert metrics.drum_similarity == pytest.approx(1.0)
    assert metrics.density_log_ratio == 0 and metrics.register_difference == 0
    assert metrics.start_gap == 0 and metrics.silent_gaps == 0
    assert metrics.dissonance == metrics.dissonance_truth and metrics.dissonance_difference == 0
    assert metrics.novelty == metrics.novelty_truth == 1.0


def test_tritone_transposition_lowers_pitch_class_similarity() -> None:
    a = sequence((60, 0, 1), (64, 1, 2), (67, 2, 3))
    b = sequence((66, 0, 1), (70, 1, 2), (73, 2, 3))  # every pitch class moved by 6: none shared
    assert pitch_class_similarity(a, a) == pytest.approx(1.0)
    assert pitch_class_similarity(a, b) == pytest.approx(0.0)  # disjoint supports: JS = 1 bit
    half = sequence((60, 0, 1), (64, 1, 2), (73, 2, 3))
    assert 0 < pitch_class_similarity(a, half) < 1
    metrics = compare(b, a, a, GRID)
    assert metrics.register_difference == pytest.approx(6.0) and metrics.distance > 0.1


def test_dissonance_share() -> None:
    assert 1 in DISSONANT_INTERVALS and 6 in DISSONANT_INTERVALS and 7 not in DISSONANT_INTERVALS
    minor_second = sequence((60, 0, 1, 0), (61, 0, 1, 40))  # two tracks, a semitone apart
    assert dissonance_share(minor_second) == 1.0
    fifth = sequence((60, 0, 1, 0), (67, 0, 1, 40))
    assert dissonance_share(fifth) == 0.0
    # a second for 1 s, a fifth for 3 s: overlap-weighted share 1/4
    mixed = sequence((60, 0, 4, 0), (62, 0, 1, 40), (67, 1, 4, 40))
    assert dissonance_share(mixed) == pytest.approx(0.25)
    same_track = sequence((60, 0, 1, 0), (61, 0, 1, 0))  # within one track: not counted
    assert dissonance_share(same_track) is None
    no_overlap = sequence((60, 0, 1, 0), (61, 1, 2, 40))
    assert dissonance_share(no_overlap) is None
    # by instrument, two instruments with one program are two tracks
    two_violins = sequence((60, 0, 1, 40, False, 0), (61, 0, 1, 40, False, 1))
    assert dissonance_share(two_violins) is None
    assert dissonance_share(two_violins, by_instrument=True) == 1.0


def test_density_log_ratio_of_twice_the_notes() -> None:
    four = sequence(*[(60, i, i + 1) for i in range(4)])
    eight = sequence(*[(60, i / 2, i / 2 + 0.5) for i in range(8)])
    assert density_log_ratio(eight, four) == pytest.approx(math.log(9 / 5))
    # a second track absent from the truth: its own term ln((3 + 1) / 1), averaged with the first
    extra = sequence(*[(60, i / 2, i / 2 + 0.5) for i in range(8)], *[(40, i, i + 1, 33) for i in range(3)])
    assert density_log_ratio(extra, four) == pytest.approx((math.log(9 / 5) + math.log(4)) / 2)
    assert silent_track_gaps(extra, four) == pytest.approx(0.5)


def test_register_and_start_gap() -> None:
    a = sequence((60, 1.0, 2), (64, 2, 3))  # median 62, first onset 1 s = 2 beats
    b = sequence((72, 0, 1), (76, 1, 2))  # median 74
    assert register_difference(a, b) == pytest.approx(12.0)
    assert start_gap(a, b, GRID) == pytest.approx(2.0)
    late = sequence((60, 10.0, 11))
    assert start_gap(late, b, GRID) == pytest.approx(4.0)  # capped


def test_beat_similarity() -> None:
    downbeats = sequence((60, 0, 0.1), (60, 2, 2.1))
    offbeats = sequence((60, 0.125, 0.2), (60, 2.125, 2.2))
    half = sequence((60, 0, 0.1), (60, 2.125, 2.2))
    assert beat_similarity(downbeats, downbeats, GRID) == 1.0
    assert beat_similarity(downbeats, offbeats, GRID) == 0.0
    assert beat_similarity(downbeats, half, GRID) == pytest.approx(0.5)
    assert steps_per_bar(Grid.from_tempo(120, (3, 4))) == 12 and steps_per_bar(GRID) == 16


def test_drum_pattern_cosine_by_hand() -> None:
    # truth: kick on 1 and 3, snare on 2 and 4 (steps 0, 8 and 4, 12), one bar
    truth = sequence((36, 0, 0.05, 0, True), (36, 1.0, 1.05, 0, True), (38, 0.5, 0.55, 0, True), (38, 1.5, 1.55, 0, True))
    assert drum_pattern(truth, GRID, 1) == {(0, 0): 1, (0, 8): 1, (1, 4): 1, (1, 12): 1}
    # kicks only, on 1 and 3 (35 is the same class as 36): cosine = 2 / (sqrt(2) * 2) = 1/sqrt(2)
    kicks = sequence((35, 0, 0.05, 0, True), (36, 1.0, 1.05, 0, True))
    assert drum_similarity(kicks, truth, GRID, 1) == pytest.approx(1 / math.sqrt(2))
    assert drum_similarity(truth, truth, GRID, 1) == pytest.approx(1.0)
    assert drum_similarity(sequence((60, 0, 1)), truth, GRID, 1) == 0.0
    assert drum_similarity(truth, sequence((60, 0, 1)), GRID, 1) is None  # the truth has no drums


def test_novelty_share_on_hand_trigrams() -> None:
    prefix = sequence(*[(p, i, i + 1) for i, p in enumerate([60, 62, 64, 65])])  # 3-grams (60,62,64), (62,64,65)
    assert trigrams(top_line(prefix.notes)) == [(60, 62, 64), (62, 64, 65)]
    # (60,62,64) known, (62,64,67) new, (64,67,69) new: 1/3
    cont = sequence(*[(p, i, i + 1) for i, p in enumerate([60, 62, 64, 67, 69])])
    assert novelty_share(cont, prefix) == pytest.approx(1 / 3)
    # a chord's top note stands for its onset: (48 + 60 at once) -> 60
    chords = sequence((48, 0, 1), (60, 0, 1), (62, 1, 2), (64, 2, 3))
    assert novelty_share(chords, prefix) == 1.0
    assert novelty_share(sequence((60, 0, 1), (62, 1, 2)), prefix) is None  # no 3-gram
    other_track = sequence(*[(p, i, i + 1, 40) for i, p in enumerate([60, 62, 64])])
    assert novelty_share(other_track, prefix) == 0.0  # 3-grams are matched within the same track


def test_empty_continuation_is_far() -> None:
    truth = piece()
    metrics = compare(NoteSequence(), truth, truth, GRID)
    assert metrics.silent_gaps == 1.0 and metrics.pitch_class_similarity == 0.0
    assert metrics.distance > 0.8
