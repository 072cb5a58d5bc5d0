"""A piece's own structure, bar by bar: what each track plays in each bar, which bars resemble each
other, the chord of each bar, and a plan for going on the way the piece goes.

Everything here works on the piece laid on its grid (`generation.transcription.on_grid`: downbeats
on bar lines from 0, in seconds), knows no models and reads no files.

The plan (`plan_bars`) continues a piece bar by bar with the piece's own bars: the last `context`
bars are compared with every earlier stretch of as many bars, and the bar that followed the most
similar stretch comes next (a piece that loops four bars goes on looping them; a song that has
played this verse before goes on as it did then, into its chorus). Bars are compared track by
track on their pitch classes (duration-weighted) and their onsets within the bar (16ths), so a
match means the same harmony and the same rhythm in the same instruments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from generation.continuation_metrics import dissonance_share
from generation.protos import NoteSequence

STEPS_PER_BAR = 16  # onset positions compared within a bar, whatever its meter
NO_CHORD = "N.C."

TrackKey = tuple[int, int, bool]  # (instrument, program, is_drum)


def track_key(note: Any) -> TrackKey:
    return (note.instrument, note.program, note.is_drum)


@dataclass
class Bars:
    """The notes of each track in each bar of a piece on its grid, and each bar's features.

    Bars are numbered from `first` (the grid bar of the first note) to `end` (exclusive: the bar the
    continuation begins at); `index(b)` is a bar's row in `features`."""

    bar_seconds: float
    first: int
    end: int
    tracks: list[TrackKey]
    notes: dict[tuple[TrackKey, int], list[Any]] = field(default_factory=dict)  # (track, bar) -> notes
    features: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))  # [bars, tracks, 12 + 16]

    @property
    def count(self) -> int:
        return self.end - self.first

    def index(self, bar: int) -> int:
        return bar - self.first

    def bar_notes(self, track: TrackKey, bar: int) -> list[Any]:
        return self.notes.get((track, bar), [])

    def plays(self, track: TrackKey, bars: range) -> bool:
        return any(self.notes.get((track, b)) for b in bars)


def bars_of(grid: NoteSequence, bar_seconds: float, end_time: float) -> Bars:
    """`Bars` of a piece on its grid (`on_grid`), up to `end_time` (grid seconds, a bar line)."""
    notes = [n for n in grid.notes if n.start_time < end_time - 1e-9]
    tracks = sorted({track_key(n) for n in notes})
    # A note a hair before its bar line (an estimate's rounding) belongs to the bar it starts.
    first = min((int(math.floor(n.start_time / bar_seconds + 1 / 32)) for n in notes), default=0)
    end = max(first + 1, int(round(end_time / bar_seconds)))
    last_onset = max((n.start_time for n in notes), default=0.0)
    if end - first > 1 and last_onset < (end - 0.5) * bar_seconds:
        # The music stops in the first half of its last bar (a piece cut off, not a bar that rests):
        # that bar is no model of a whole bar.
        end -= 1
        notes = [n for n in notes if n.start_time < end * bar_seconds - bar_seconds / 32]
    result = Bars(bar_seconds, first, end, tracks)
    step = bar_seconds / STEPS_PER_BAR
    features = np.zeros((end - first, len(tracks), 12 + STEPS_PER_BAR))
    column = {t: i for i, t in enumerate(tracks)}
    for note in notes:
        bar = int(math.floor(note.start_time / bar_seconds + 1 / 32))
        bar = min(max(bar, first), end - 1)
        result.notes.setdefault((track_key(note), bar), []).append(note)
        row, col = bar - first, column[track_key(note)]
        features[row, col, 12 + bar_position(note.start_time, bar * bar_seconds, bar_seconds)] += 1.0
        if not note.is_drum:
            features[row, col, note.pitch % 12] += max(min(note.end_time, (bar + 1) * bar_seconds) - note.start_time, step)
        else:  # drums: which drums, in place of pitch classes
            features[row, col, note.pitch % 12] += step
    result.features = features
    return result


def bar_similarity(bars: Bars) -> np.ndarray:
    """[bars, bars] similarity of every pair of bars, 0 to 1: per track the mean of the cosine of
    their pitch classes and the cosine of their onsets, averaged over the tracks playing in either
    bar (a track playing in one bar only counts 0); two bars where nothing plays count 1."""
    f = bars.features
    pitch, onset = f[..., :12], f[..., 12:]

    def unit(x: np.ndarray) -> np.ndarray:
        norm = np.linalg.norm(x, axis=-1, keepdims=True)
        return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)

    p, o = unit(pitch), unit(onset)
    per_track = 0.5 * (np.einsum("atk,btk->abt", p, p) + np.einsum("atk,btk->abt", o, o))  # [bars, bars, tracks]
    active = f.sum(axis=-1) > 0  # [bars, tracks]
    either = active[:, None, :] | active[None, :, :]
    counted = either.sum(axis=-1)
    total = (per_track * either).sum(axis=-1)
    return np.where(counted > 0, total / np.maximum(counted, 1), 1.0)


@dataclass(frozen=True)
class _Span:
    """A note clipped to its bar, as `dissonance_share` reads notes."""

    start_time: float
    end_time: float
    pitch: int
    instrument: int
    program: int
    is_drum: bool


def bar_dissonance(bars: Bars) -> np.ndarray:
    """[bars] each bar's `dissonance_share` between its tracks, its notes clipped to the bar; NaN
    where no two pitched tracks overlap."""
    levels = np.full(bars.count, np.nan)
    for row, bar in enumerate(range(bars.first, bars.end)):
        begin, end = bar * bars.bar_seconds, (bar + 1) * bars.bar_seconds
        spans = [_Span(max(n.start_time, begin), min(n.end_time, end), n.pitch, *track)
                 for track in bars.tracks for n in bars.bar_notes(track, bar)]
        share = dissonance_share(spans, by_instrument=True)
        if share is not None:
            levels[row] = share
    return levels


TENSION_WEIGHT = 0.5  # how much a candidate bar's distance from the piece's dissonance level counts
TENSION_BARS = 8  # the last bars whose clashes set the level the plan keeps
PHASE_WEIGHT = 0.1  # how much a bar at its place in the piece's loop counts, times the loop's similarity
PHRASE_BARS = 4  # the bars of a phrase, the unit a short loop is heard in


def plan_bars(bars: Bars, count: int, *, context: int = 4, rng: np.random.Generator | None = None,
              spread: float = 0.0) -> list[int]:
    """The bar of the piece to play in each of `count` bars after its end (bar numbers of `bars`).

    Bar by bar, the last `context` bars played (the piece's, then the plan's own) are compared with
    every earlier stretch of as many bars (`bar_similarity`, averaged over the stretch), and the bar
    that followed the best stretch comes next. Besides: a slight preference goes to later stretches,
    the piece as it is now; a bar at the same place in the piece's loop (`repeat_period`) as the bar
    to be played counts more, by PHASE_WEIGHT times the loop's similarity, so that a 2-bar groove
    keeps its two bars in order however alike they are; a bar whose clashes between tracks
    (`bar_dissonance`) are far from the level of the piece's last TENSION_BARS bars counts less
    (TENSION_WEIGHT per unit of share): the most repeated material of a piece is its plainest, and
    the plan would otherwise drift to it. In a short piece every bar but the first may follow (an
    early one matched on the fewer bars it has before it). `spread` > 0 draws among the stretches
    instead, with probability growing as exp(similarity / spread) (`rng` then required): the
    piece's own alternatives, as it varies itself. A piece of one bar repeats it."""
    if bars.count <= 1:
        return [bars.first] * count
    similarity = bar_similarity(bars)
    tension = bar_dissonance(bars)
    # The level the piece is at now: its tension moves slowly, so its last bars tell what comes next.
    recent_tension = tension[-TENSION_BARS:]
    level = (float(np.nanmean(recent_tension)) if np.isfinite(recent_tension).any()
             else float(np.nanmean(tension)) if np.isfinite(tension).any() else 0.0)
    off_level = np.nan_to_num(np.abs(tension - level), nan=0.0)  # [bars]
    period, loop_similarity = repeat_period(bars)
    # Bars go in phrases of four: a loop of one or two bars is heard as one of four (its fourth bar
    # often varied), and the plan keeps that phrase's order, where the piece holds a whole one.
    if 0 < period < PHRASE_BARS and PHRASE_BARS % period == 0 and bars.count >= PHRASE_BARS:
        period = PHRASE_BARS
    played = list(range(bars.count))  # rows of `similarity`
    # Short pieces match shorter stretches, so that there is more than one stretch to choose from.
    length = max(1, min(context, (bars.count - 1) // 2))
    # In a short piece an early bar may follow too, matched on the fewer bars before it: a phrase
    # may start there. A longer piece matches whole stretches only.
    first_follower = 1 if bars.count <= 2 * PHRASE_BARS else length
    plan: list[int] = []
    for k in range(count):
        recent = played[-length:]
        followers = np.arange(first_follower, bars.count)  # bar j + 1 follows the stretch ending at j
        if len(followers) == 0:
            choice = played[-1]
        else:
            total, counted = np.zeros(len(followers)), np.zeros(len(followers))
            for i in range(length):  # recent[i] against the bar length - i before each follower
                earlier = followers - length + i
                valid = earlier >= 0  # an early bar is matched on the bars it has before it
                total += np.where(valid, similarity[recent[i], np.maximum(earlier, 0)], 0.0)
                counted += valid
            scores = total / np.maximum(counted, 1)
            scores = scores + 0.02 * followers / bars.count
            in_phase = (bars.count + k - followers) % period == 0 if period else np.zeros(len(followers), bool)
            scores = scores + PHASE_WEIGHT * loop_similarity * in_phase
            # The piece's harmonic tension goes on: a bar far from its usual share of clashes (a
            # plain cadence in a chromatic piece, or the reverse) counts less.
            scores = scores - TENSION_WEIGHT * off_level[followers]
            # A bar the plan played within its last four bars counts less again: no bar repeated
            # over and over unless the piece itself does that (then its similarity still wins), or
            # it comes round again at its place in the piece's loop.
            repeats = np.array([_plan_rows(played, plan)[-4:].count(c) for c in followers])
            scores = scores - 0.15 * repeats * (1 - loop_similarity * in_phase)
            if spread > 0 and rng is not None:
                weights = np.exp((scores - scores.max()) / spread)
                choice = int(rng.choice(followers, p=weights / weights.sum()))
            else:
                choice = int(followers[int(np.argmax(scores))])
        played.append(choice)
        plan.append(bars.first + choice)
    return plan


def _plan_rows(played: list[int], plan: list[int]) -> list[int]:
    """The rows the plan itself has played so far (the tail of `played`)."""
    return played[len(played) - len(plan):] if plan else []


def repeat_period(bars: Bars, *, longest: int = 16) -> tuple[int, float]:
    """(period in bars, mean similarity of each bar to the bar one period earlier) of the piece's
    strongest repetition, among periods 1 to `longest` that fit twice; (0, 0.0) for a piece too short.
    A 4-bar loop gives (4, ~1.0)."""
    similarity = bar_similarity(bars)
    best = (0, 0.0)
    for period in range(1, min(longest, bars.count // 2) + 1):
        rows = np.arange(period, bars.count)
        score = float(similarity[rows, rows - period].mean())
        if score > best[1] + 0.02:  # a longer period must be clearly better to win
            best = (period, score)
    return best


def bar_chords(grid: NoteSequence, bar_seconds: float, qpm: float, time_signature: tuple[int, int], first: int,
               end: int) -> list[str]:
    """One chord symbol per bar from `first` to `end` (exclusive), inferred from every pitched note
    sounding (note-seq's `chord_inference`, one chord per bar, on a 16th grid); "N.C." where
    nothing sounds or inference fails. `qpm` in quarter notes per minute, `time_signature` as
    (numerator, denominator): a 6/8 bar is 6 eighths, 12 16ths."""
    from note_seq import chord_inference, sequences_lib

    pitched = NoteSequence()
    pitched.tempos.add(qpm=qpm)
    numerator, denominator = time_signature
    pitched.time_signatures.add(numerator=numerator, denominator=denominator)
    start = first * bar_seconds
    for note in grid.notes:
        if note.is_drum or note.end_time <= start or note.start_time >= end * bar_seconds:
            continue
        added = pitched.notes.add()
        added.CopyFrom(note)
        added.start_time = max(note.start_time, start) - start
        added.end_time = min(note.end_time, end * bar_seconds) - start
        added.instrument, added.program = 0, 0
    if not pitched.notes:
        return [NO_CHORD] * (end - first)
    pitched.total_time = (end - first) * bar_seconds
    try:
        quantized = sequences_lib.quantize_note_sequence(pitched, steps_per_quarter=4)
        chord_inference.infer_chords_for_sequence(quantized, chords_per_bar=1)
    except (chord_inference.ChordInferenceError, sequences_lib.QuantizationStatusError, ValueError):
        return [NO_CHORD] * (end - first)
    # Inference writes a chord where the chord changes: each holds until the next.
    steps_per_bar = int(round(16 * numerator / denominator))
    changes = sorted((int(round(a.quantized_step / steps_per_bar)), a.text) for a in quantized.text_annotations)
    chords, current = [], NO_CHORD
    for bar in range(end - first):
        for changed_at, text in changes:
            if changed_at == bar:
                current = text
        chords.append(current)
    return chords


def texture(notes: Sequence[Any]) -> tuple[float, float, float]:
    """(notes, median pitch, most notes at once) of one track's notes in a bar; (0, nan, 0) when none."""
    if not notes:
        return 0.0, float("nan"), 0.0
    onsets = np.round([n.start_time for n in notes], 3)
    _, counts = np.unique(onsets, return_counts=True)
    return float(len(notes)), float(np.median([n.pitch for n in notes])), float(counts.max())


def bar_position(time: float, bar_start: float, bar_seconds: float) -> int:
    """The 16th (0 to STEPS_PER_BAR - 1) of the bar starting at `bar_start` nearest to `time`."""
    return int(round((time - bar_start) / bar_seconds * STEPS_PER_BAR)) % STEPS_PER_BAR


def onset_pattern(notes: Sequence[Any], bar_start: float, bar_seconds: float) -> np.ndarray:
    """[STEPS_PER_BAR] onsets of `notes` on each 16th of the bar starting at `bar_start`."""
    pattern = np.zeros(STEPS_PER_BAR)
    for note in notes:
        pattern[bar_position(note.start_time, bar_start, bar_seconds)] += 1
    return pattern
