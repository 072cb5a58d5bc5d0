"""How much a continuation sounds like the piece going on: figures against the piece's TRUE continuation.

Every function here is pure and works on NoteSequences (note_seq protos) whose times are in seconds.
`compare(continuation, truth, prefix, grid)` takes the continuation and the truth as the same
stretch of music (N bars, time 0 = the cut point, on a downbeat) and gives a `Metrics`: one figure
per musical aspect, and a summary `distance` in [0, 1] (0 = the truth itself).

Tracks. A note's track is (instrument, program, is_drum); tracks are matched between the
continuation, the truth and the prefix by `track_key`: by (program, is_drum) by default (what a
transcription such as MT3 keeps: instruments sharing a program are merged into one track), or by
(instrument, program, is_drum) with `by_instrument=True` (when every side keeps the instrument
numbers, e.g. a continuation of a score's own parts).

Units: times in seconds; pitches and pitch distances in semitones (MIDI numbers); gaps in beats of
the grid; densities in notes (per track, over the compared stretch). A figure that cannot be
computed (no notes to compute it from) is None and is left out of `distance`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

# Interval classes (|pitch difference| mod 12, semitones) counted as dissonant: minor and major
# second, tritone, minor and major seventh. (Unisons, thirds, fourths, fifths, sixths and octaves
# are not.)
DISSONANT_INTERVALS = frozenset({1, 2, 6, 10, 11})

# Magenta's 9 reduced drum classes (note_seq.drums_encoder_decoder.DEFAULT_DRUM_TYPE_PITCHES):
# kick, snare, closed hi-hat, open hi-hat, low tom, mid tom, high tom, crash, ride. A drum pitch in
# none of them is a class of its own.
DRUM_CLASSES: tuple[tuple[int, ...], ...] = (
    (36, 35), (38, 27, 28, 31, 32, 33, 34, 37, 39, 40, 56, 65, 66, 75, 85),
    (42, 44, 54, 68, 69, 70, 71, 73, 78, 80, 22), (46, 67, 72, 74, 79, 81, 26),
    (45, 29, 41, 43, 61, 64, 84), (48, 47, 60, 63, 77, 86, 87), (50, 30, 62, 76, 83),
    (49, 52, 55, 57, 58), (51, 53, 59, 82),
)
_DRUM_CLASS_OF = {pitch: index for index, pitches in enumerate(DRUM_CLASSES) for pitch in pitches}

# Normalizations of the summary distance (each component clipped to [0, 1]).
DENSITY_CAP = math.log(4.0)  # density log-ratio: a track with 4x (or 1/4) the notes counts fully
REGISTER_CAP = 12.0  # semitones: a track an octave off counts fully
DISSONANCE_CAP = 0.25  # |share difference|: 25 points more or less dissonance counts fully
START_GAP_CAP = 4.0  # beats: a track starting a bar (of 4/4) early or late counts fully

TrackKey = tuple[Any, ...]


class GridLike(Protocol):
    """The grid the music lies on: `generation.transcription.Analysis` is one, and so is `Grid`."""

    @property
    def bar_seconds(self) -> float: ...

    @property
    def beat_seconds(self) -> float: ...

    @property
    def time_signature(self) -> tuple[int, int]: ...


@dataclass(frozen=True)
class Grid:
    """A steady grid: `bar_seconds` and `beat_seconds` in seconds, the meter as (numerator, denominator)."""

    bar_seconds: float
    beat_seconds: float
    time_signature: tuple[int, int] = (4, 4)

    @classmethod
    def from_tempo(cls, qpm: float, time_signature: tuple[int, int] = (4, 4)) -> Grid:
        """The grid of a tempo in quarter notes per minute and a meter."""
        beat = 60.0 / qpm * 4 / time_signature[1]
        return cls(beat * time_signature[0], beat, time_signature)


def steps_per_bar(grid: GridLike) -> int:
    """Sixteenth notes in one bar of the grid's meter (16 in 4/4, 12 in 3/4 and 6/8, 18 in 9/8)."""
    numerator, denominator = grid.time_signature
    return max(1, int(round(numerator * 16 / denominator)))


@dataclass
class Metrics:
    """One continuation against the truth. Each figure's unit and range is in its comment; None
    where there was nothing to compute it from."""

    pitch_class_similarity: float | None  # 1 - JS divergence (base 2) of pitch-class histograms; 1 = same
    dissonance: float | None  # the continuation's cross-track dissonant share (0-1)
    dissonance_truth: float | None  # the truth's
    dissonance_difference: float | None  # |dissonance - dissonance_truth|
    density_log_ratio: float | None  # mean over tracks of |ln((n_cont + 1) / (n_truth + 1))|
    register_difference: float | None  # semitones: mean |median pitch difference| over shared pitched tracks
    beat_similarity: float | None  # 1 - total variation distance of onset positions in the bar; 1 = same
    drum_similarity: float | None  # cosine of per-class step patterns; None when the truth has no drums
    novelty: float | None  # share of the continuation's pitch 3-grams found in the prefix (0-1)
    novelty_truth: float | None  # the truth's own share
    start_gap: float | None  # beats (0-4): mean |first onset difference| over shared tracks
    silent_gaps: float  # share of tracks playing in exactly one of continuation and truth
    distance: float  # mean of the normalized components, 0-1; 0 = the truth itself
    components: dict[str, float] = field(default_factory=dict)  # the normalized components behind `distance`

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def track_key(note: Any, by_instrument: bool = False) -> TrackKey:
    """The track a note belongs to, as matched across sequences: (program, is_drum), or
    (instrument, program, is_drum) with `by_instrument`."""
    if by_instrument:
        return (int(note.instrument), int(note.program), bool(note.is_drum))
    return (int(note.program), bool(note.is_drum))


def tracks(notes: Iterable[Any], by_instrument: bool = False) -> dict[TrackKey, list[Any]]:
    """Notes grouped by `track_key`, each group in onset order (then pitch, highest last)."""
    groups: dict[TrackKey, list[Any]] = {}
    for note in _seq(notes):
        groups.setdefault(track_key(note, by_instrument), []).append(note)
    for group in groups.values():
        group.sort(key=lambda n: (n.start_time, n.pitch))
    return groups


def _seq(notes: Any) -> Any:
    """The notes of a NoteSequence, or `notes` itself when it is already a list of notes."""
    return notes.notes if hasattr(notes, "notes") else notes


def _is_drum_key(key: TrackKey) -> bool:
    return bool(key[-1])


def pitch_class_histogram(notes: Iterable[Any]) -> np.ndarray:
    """12 weights, one per pitch class (C = 0): seconds sounded by the pitched notes of that class."""
    histogram = np.zeros(12)
    for note in _seq(notes):
        if not note.is_drum:
            histogram[note.pitch % 12] += max(note.end_time - note.start_time, 0.0)
    return histogram


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (base 2, 0-1) of two weight vectors, each normalized to sum 1."""
    p = np.asarray(p, dtype=np.float64) / np.sum(p)
    q = np.asarray(q, dtype=np.float64) / np.sum(q)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    return min(max((kl(p) + kl(q)) / 2, 0.0), 1.0)


def pitch_class_similarity(a: Sequence[Any], b: Sequence[Any]) -> float | None:
    """1 - JS divergence (bits) of the duration-weighted pitch-class histograms of two note lists'
    pitched notes: 1 = the same distribution. None when neither has pitched notes; 0 when one has."""
    ha, hb = pitch_class_histogram(a), pitch_class_histogram(b)
    if ha.sum() <= 0 and hb.sum() <= 0:
        return None
    if ha.sum() <= 0 or hb.sum() <= 0:
        return 0.0
    return 1.0 - js_divergence(ha, hb)


def dissonance_share(notes: Sequence[Any], by_instrument: bool = False) -> float | None:
    """Over every pair of notes from two DIFFERENT pitched tracks that sound together, weighted by
    the seconds they overlap: the share of that time whose interval (|pitch difference| mod 12) is in
    DISSONANT_INTERVALS (1, 2, 6, 10 or 11 semitones). 0-1; None when no two tracks overlap."""
    groups = [g for k, g in tracks(notes, by_instrument).items() if not _is_drum_key(k)]
    arrays = [(np.array([n.start_time for n in g]), np.array([n.end_time for n in g]),
               np.array([n.pitch for n in g])) for g in groups]
    total = dissonant = 0.0
    dissonant_classes = np.array(sorted(DISSONANT_INTERVALS))
    for i in range(len(arrays)):
        for j in range(i + 1, len(arrays)):
            (s1, e1, p1), (s2, e2, p2) = arrays[i], arrays[j]
            overlap = np.minimum(e1[:, None], e2[None, :]) - np.maximum(s1[:, None], s2[None, :])
            overlap = np.where(overlap > 0, overlap, 0.0)
            interval = np.abs(p1[:, None] - p2[None, :]) % 12
            total += float(overlap.sum())
            dissonant += float(overlap[np.isin(interval, dissonant_classes)].sum())
    return dissonant / total if total > 0 else None


def density_log_ratio(a: Sequence[Any], b: Sequence[Any], by_instrument: bool = False) -> float | None:
    """Mean over the tracks present in either of |ln((notes in a + 1) / (notes in b + 1))| (nats;
    0 = the same note counts; ln 2 = 0.69 for a track with about twice the notes). None when neither has notes."""
    ta, tb = tracks(a, by_instrument), tracks(b, by_instrument)
    keys = set(ta) | set(tb)
    if not keys:
        return None
    return float(np.mean([abs(math.log((len(ta.get(k, [])) + 1) / (len(tb.get(k, [])) + 1))) for k in keys]))


def register_difference(a: Sequence[Any], b: Sequence[Any], by_instrument: bool = False) -> float | None:
    """Semitones: |median pitch in a - median pitch in b| for each pitched track playing in both,
    averaged. None when no pitched track plays in both (a track missing on one side counts in
    `silent_track_gaps` instead)."""
    ta, tb = tracks(a, by_instrument), tracks(b, by_instrument)
    shared = [k for k in ta if k in tb and not _is_drum_key(k)]
    if not shared:
        return None
    return float(np.mean([abs(float(np.median([n.pitch for n in ta[k]])) - float(np.median([n.pitch for n in tb[k]])))
                          for k in shared]))


def onset_positions(notes: Iterable[Any], grid: GridLike) -> np.ndarray:
    """Counts of note onsets (every note, drums included) at each sixteenth of the bar: position =
    round(onset / sixteenth) mod `steps_per_bar(grid)`, time 0 being a downbeat."""
    steps = steps_per_bar(grid)
    step = grid.bar_seconds / steps
    counts = np.zeros(steps)
    for note in _seq(notes):
        counts[int(round(note.start_time / step)) % steps] += 1
    return counts


def beat_similarity(a: Sequence[Any], b: Sequence[Any], grid: GridLike) -> float | None:
    """1 - total variation distance (0-1) of the two onset-position distributions (`onset_positions`):
    1 = onsets fall on the bar's sixteenths in the same proportions. None when neither has notes; 0 when one has."""
    pa, pb = onset_positions(a, grid), onset_positions(b, grid)
    if pa.sum() == 0 and pb.sum() == 0:
        return None
    if pa.sum() == 0 or pb.sum() == 0:
        return 0.0
    return 1.0 - 0.5 * float(np.abs(pa / pa.sum() - pb / pb.sum()).sum())


def drum_class(pitch: int) -> int:
    """Index of a drum pitch's reduced class (0-8, `DRUM_CLASSES`), or 100 + pitch for one outside them."""
    return _DRUM_CLASS_OF.get(pitch, 100 + pitch)


def drum_pattern(notes: Iterable[Any], grid: GridLike, bars: int) -> dict[tuple[int, int], float]:
    """(drum class, sixteenth of the bar) -> hits there per bar, averaged over `bars` bars (drum notes only)."""
    steps = steps_per_bar(grid)
    step = grid.bar_seconds / steps
    pattern: Counter[tuple[int, int]] = Counter()
    for note in _seq(notes):
        if note.is_drum:
            pattern[(drum_class(note.pitch), int(round(note.start_time / step)) % steps)] += 1
    return {cell: count / max(bars, 1) for cell, count in pattern.items()}


def cosine(a: dict[Any, float], b: dict[Any, float]) -> float:
    """Cosine similarity of two sparse non-negative vectors (0-1); 0 when either is all zeros."""
    dot = sum(value * b.get(cell, 0.0) for cell, value in a.items())
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norm if norm > 0 else 0.0


def drum_similarity(a: Sequence[Any], b: Sequence[Any], grid: GridLike, bars: int) -> float | None:
    """Cosine similarity (0-1) of a's and b's `drum_pattern`s: 1 = the same hits in the same
    proportions at the same steps. None when b (the truth) has no drums; 0 when only a lacks them."""
    pb = drum_pattern(b, grid, bars)
    if not pb:
        return None
    return cosine(drum_pattern(a, grid, bars), pb)


def top_line(notes: Sequence[Any], resolution: float = 0.001) -> list[int]:
    """The pitches of a track's consecutive onsets (onsets within `resolution` seconds are one;
    a chord gives its highest note)."""
    tops: dict[int, int] = {}
    for note in _seq(notes):
        if note.is_drum:
            continue
        slot = int(round(note.start_time / resolution))
        tops[slot] = max(tops.get(slot, -1), int(note.pitch))
    return [tops[slot] for slot in sorted(tops)]


def trigrams(line: Sequence[int]) -> list[tuple[int, int, int]]:
    """Consecutive pitch 3-grams of a line."""
    return [tuple(line[i:i + 3]) for i in range(len(line) - 2)]  # type: ignore[misc]


def novelty_share(notes: Sequence[Any], prefix: Sequence[Any], by_instrument: bool = False) -> float | None:
    """Share (0-1) of the pitch 3-grams of `notes` (per pitched track, `top_line`) that also occur in
    the same track of `prefix`, pooled over tracks: 1 = every 3-gram is one the piece has played,
    0 = all new. None when `notes` has no 3-gram."""
    ours, theirs = tracks(notes, by_instrument), tracks(prefix, by_instrument)
    found = count = 0
    for key, group in ours.items():
        if _is_drum_key(key):
            continue
        known = set(trigrams(top_line(theirs.get(key, []))))
        grams = trigrams(top_line(group))
        count += len(grams)
        found += sum(g in known for g in grams)
    return found / count if count else None


def start_gap(a: Sequence[Any], b: Sequence[Any], grid: GridLike, by_instrument: bool = False) -> float | None:
    """Beats (0-4): per track playing in both, |first onset in a - first onset in b| / beat, capped
    at START_GAP_CAP, averaged. None when no track plays in both."""
    ta, tb = tracks(a, by_instrument), tracks(b, by_instrument)
    shared = [k for k in ta if k in tb]
    if not shared:
        return None
    return float(np.mean([min(abs(ta[k][0].start_time - tb[k][0].start_time) / grid.beat_seconds, START_GAP_CAP)
                          for k in shared]))


def silent_track_gaps(a: Sequence[Any], b: Sequence[Any], by_instrument: bool = False) -> float:
    """Share (0-1) of the tracks present in either that play in exactly one of them; 0 when neither has notes."""
    ka, kb = set(tracks(a, by_instrument)), set(tracks(b, by_instrument))
    union = ka | kb
    return len(ka ^ kb) / len(union) if union else 0.0


def _notes(sequence: Any) -> list[Any]:
    """The notes of a NoteSequence (or a list of notes) that sound: positive length, or drums."""
    notes = sequence.notes if hasattr(sequence, "notes") else sequence
    return [n for n in notes if n.end_time > n.start_time or n.is_drum]


def _clip(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def compare(continuation: Any, truth: Any, prefix: Any, grid: GridLike, *, bars: int | None = None,
            by_instrument: bool = False) -> Metrics:
    """`continuation` against `truth`, both NoteSequences (or note lists) of the same stretch, time
    0 = the cut (a downbeat of `grid`), in seconds; `prefix` is the music before the cut (for
    novelty: any times). `bars` (for the drum patterns' per-bar average) defaults to the bars the
    truth spans. Tracks are matched by `track_key` (`by_instrument`).

    `distance` is the mean of these components, each in [0, 1] (0 = as the truth), over those that
    are not None:
      1 - pitch_class_similarity;  min(dissonance_difference / 0.25, 1);
      min(density_log_ratio / ln 4, 1);  min(register_difference / 12 semitones, 1);
      1 - beat_similarity;  1 - drum_similarity (only when the truth has drums);
      |novelty - novelty_truth| (only when both are defined);  start_gap / 4 beats;  silent_gaps.
    """
    cont, true, before = _notes(continuation), _notes(truth), _notes(prefix)
    if bars is None:
        end = max([n.end_time for n in true] + [n.start_time for n in true] + [grid.bar_seconds])
        bars = max(1, int(math.ceil(end / grid.bar_seconds - 1e-6)))
    dissonance, dissonance_truth = dissonance_share(cont, by_instrument), dissonance_share(true, by_instrument)
    difference = None if dissonance is None or dissonance_truth is None else abs(dissonance - dissonance_truth)
    novelty, novelty_truth = novelty_share(cont, before, by_instrument), novelty_share(true, before, by_instrument)
    metrics = Metrics(
        pitch_class_similarity=pitch_class_similarity(cont, true),
        dissonance=dissonance, dissonance_truth=dissonance_truth, dissonance_difference=difference,
        density_log_ratio=density_log_ratio(cont, true, by_instrument),
        register_difference=register_difference(cont, true, by_instrument),
        beat_similarity=beat_similarity(cont, true, grid),
        drum_similarity=drum_similarity(cont, true, grid, bars),
        novelty=novelty, novelty_truth=novelty_truth,
        start_gap=start_gap(cont, true, grid, by_instrument),
        silent_gaps=silent_track_gaps(cont, true, by_instrument),
        distance=0.0,
    )
    parts: dict[str, float | None] = {
        "pitch_class": None if metrics.pitch_class_similarity is None else 1 - metrics.pitch_class_similarity,
        "dissonance": None if difference is None else _clip(difference / DISSONANCE_CAP),
        "density": None if metrics.density_log_ratio is None else _clip(metrics.density_log_ratio / DENSITY_CAP),
        "register": None if metrics.register_difference is None else _clip(metrics.register_difference / REGISTER_CAP),
        "beat": None if metrics.beat_similarity is None else 1 - metrics.beat_similarity,
        "drums": None if metrics.drum_similarity is None else 1 - metrics.drum_similarity,
        "novelty": None if novelty is None or novelty_truth is None else abs(novelty - novelty_truth),
        "start_gap": None if metrics.start_gap is None else _clip(metrics.start_gap / START_GAP_CAP),
        "silent_gaps": metrics.silent_gaps,
    }
    metrics.components = {k: float(_clip(v)) for k, v in parts.items() if v is not None}
    metrics.distance = float(np.mean(list(metrics.components.values()))) if metrics.components else 0.0
    return metrics
