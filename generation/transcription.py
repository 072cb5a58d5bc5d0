"""Reading a transcription: tempo, meter, beat and downbeat from the notes, track roles, key.

MT3 writes every file at 120 bpm in 4/4 with 220 ticks per quarter, whatever the music does, so
the grid in the file means nothing. `analyse` recognises that fingerprint (`is_mt3_style`) and
then estimates the tempo and meter from the note onsets; an ordinary MIDI file's own tempo and
meter are trusted (`tempo_source`), unless `estimate=True`.

Tempo estimation, for symbolic onsets (exact times, no audio): for every candidate tempo from 60
to 200 bpm in 0.25% steps, the onsets are scored by how tightly they sit on that tempo's 16th-note
grid or its eighth-note-triplet grid (the mean resultant length of their phases, summed per
8-second window so a slowly drifting performance still scores), plus how tightly the strong hits
(kick and snare, or notes below G3) sit on its beat and half-beat grids. The best score wins; the
tempo's double or half is the same grid, which is why the range spans about one octave. On
MT3-style copies of the Groove MIDI Dataset's test split this finds the tempo (or its double or
half) within 4% for 70 of the 72 files longer than 10 seconds and 34 of the 57 shorter ones (one-
and two-bar fills); librosa's beat tracker on an onset envelope built from the same notes, timed
in the same run, finds 55 of 72 and 37 of 57, mostly missing at 4/3 of the tempo, and takes 5x
longer (`python benchmarks/tempo_estimation.py`).

The meter (`estimate_meter`) is built up from the tatum (the estimated beat's half or third): each
metrical level groups the one below in twos or threes, whichever multiples of its length the
onsets, weighted by their longest note and their bass, repeat at more; the beat is the level
nearest 115 quarter notes (2/4, 3/4, 4/4) or 80 dotted quarters (6/8, 9/8) per minute, the bar the
level above it, 4/4 preferred to 2/4, which onsets rarely tell apart; drums keep 4/4, 3/4 or 6/8,
and a fast beat in threes under them swings in 4/4. `tempo_bpm` stays in quarter notes per
minute. On MT3-style copies of music21's chorales, Essen and O'Neill folk tunes and string
quartets and of the Groove test split, cut at a bar line (`python benchmarks/meter_estimation.py`),
the bar is found for 244 of 353 (its double for 31, mostly 2/4 taken for 4/4; its half for 24)
and the signature for 288, against 120 and 194 when every estimated grid was 4/4; the Groove
files stay in 4/4 (127 of 129).

The beat phase comes from where the long and strong notes start, refined to where they are
played; the downbeat from where kicks, crashes and low notes fall, the first note, and the end (a
piece given up to a bar line ends on a downbeat: `_downbeat`); the continuation then starts within
a 16th of the cut for 214 of those 300 cuts, against 108 before. The piece is laid on a steady
grid: the continuation begins on the first downbeat at or after the piece's end. A performance
whose tempo drifts (`track_beats`: windows of 16 beats a bar apart get their own tempo and phase,
and the beats are walked through them) gets a beat map instead, when the steady grid would stray
more than a 16th note from it somewhere: the models see every beat on the grid's beat
(`Analysis.to_grid`), and the continuation goes on at the tempo of the piece's last seconds, from
its own last beats (`Analysis.from_grid`). The original notes never move; an MT3 file's tempo map
gets each bar's tempo (`midi_grid`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from generation.protos import NoteSequence

MT3_TICKS_PER_QUARTER = 220
MIN_BPM, MAX_BPM, BPM_STEP = 60.0, 200.0, 1.0025
WINDOW_SECONDS = 8.0
CHUNK = 4096  # onsets per block of the tempo fit
STRONG_DRUMS = {35, 36, 37, 38, 40}  # kicks and snares: where the beat is
DOWNBEAT_DRUMS = {35, 36, 49, 57, 52, 55}  # kicks and crashes
LOW_PITCH = 55  # below G3, a pitched note weighs as a strong hit
# Drift: each window of LOCAL_BEATS beats (LOCAL_SECONDS at least) may run up to DRIFT_RANGE faster
# or slower than the whole piece; a beat map replaces the steady grid where that grid would put
# some beat more than DRIFT_BEATS (a 16th note) away from the performance's own.
LOCAL_BEATS, LOCAL_SECONDS, DRIFT_RANGE, DRIFT_BEATS = 16, 10.0, 0.1, 0.25
END_FITS = 4  # the tempo trend at the end: a straight line through the last windows' tempos
# Meter (`estimate_meter`). Onsets are counted in METER_BINS bins per beat of the tempo estimate, on
# which its halves, thirds, quarters, sixths and eighths all fall.
METER_BINS = 24
TERNARY_TATUM = 0.1  # the triplet grid must fit the onsets this much better than the 16th grid
SIMPLE_BPM, COMPOUND_BPM = 115.0, 80.0  # the commonest beats: quarter notes, dotted quarter notes per minute
COMMON_TIME = 0.3  # 4/4 over 2/4 (a quarter of an octave of tempo): onsets rarely tell them apart
LONGEST_LEVEL = 8.0  # seconds: no bar is longer
DRUM_SHARE = 0.3  # drums above this share of the notes: 4/4, 3/4 or 6/8, with swing (below)
DRUM_THREES = 0.02  # under drums, a level goes in threes only with this much more evidence (`_grouping`)
SWING_PER_MINUTE = 240.0  # under drums, a beat divided in three faster than this swings: 4/4, not 6/8
BACKBEAT = 0.5  # weight of kicks and snares alternating beat by beat (in octaves of tempo squared)
KICKS, SNARES = {35, 36}, {37, 38, 40}
END_BARS = 2.0  # the end of the music weighs as this many bars of the downbeat's own evidence

ROLES = ("drums", "bass", "melody", "chords")
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


@dataclass
class Track:
    role: str
    instrument: int
    program: int
    is_drum: bool
    notes: int
    median_pitch: float
    chord_share: float  # onsets that start with another note of the same track

    @property
    def instrument_name(self) -> str:
        return instrument_name(self.program, self.is_drum)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "instrument_name": self.instrument_name}


@dataclass
class Analysis:
    """What a piece is, on the grid the continuation will follow. Times in seconds."""

    mt3_style: bool
    flat_velocities: bool
    tempo_bpm: float
    tempo_source: str  # "file" or "estimated"
    time_signature: tuple[int, int]
    first_downbeat: float  # the first downbeat at or after time 0 (bars before it are counted too)
    end_time: float  # the end of the last note
    continuation_start: float  # the first downbeat at or after end_time
    bars: float  # from the first note to end_time
    key: str
    tracks: list[Track] = field(default_factory=list)
    end_tempo_bpm: float = 0.0  # the tempo at the end, which the continuation keeps (tempo_bpm unless drifting)
    # When the performance drifts: the time of each of its beats (seconds), and the grid beat of the
    # first one. Empty for a steady grid, where a shift alone puts the downbeats on bar lines.
    beat_times: list[float] = field(default_factory=list)
    grid_beat_offset: int = 0

    @property
    def beat_seconds(self) -> float:
        return 60.0 / self.tempo_bpm * 4 / self.time_signature[1]

    @property
    def bar_seconds(self) -> float:
        return self.beat_seconds * self.time_signature[0]

    @property
    def drifting(self) -> bool:
        return bool(self.beat_times)

    @property
    def grid_shift(self) -> float:
        """Seconds to add to a time of a steady piece to put its downbeats on bar lines from 0."""
        return (-self.first_downbeat) % self.bar_seconds

    def _beat_grid(self) -> tuple[np.ndarray, np.ndarray]:
        beats = np.asarray(self.beat_times)
        return beats, (np.arange(len(beats)) + self.grid_beat_offset) * self.beat_seconds

    def to_grid(self, seconds: Any) -> Any:
        """Times of the piece (seconds) on the models' steady grid: downbeats on bar lines from 0, every
        beat of a drifting performance on a beat of the grid (piecewise linear between beats)."""
        if not self.beat_times:
            return seconds + self.grid_shift
        return _piecewise_linear(seconds, *self._beat_grid())

    def from_grid(self, seconds: Any) -> Any:
        """The inverse of `to_grid`: beyond the last beat, the performance's last beat length goes on."""
        if not self.beat_times:
            return seconds - self.grid_shift
        beats, grid = self._beat_grid()
        return _piecewise_linear(seconds, grid, beats)

    @property
    def continuation_grid_start(self) -> float:
        return float(self.to_grid(self.continuation_start))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["time_signature"] = f"{self.time_signature[0]}/{self.time_signature[1]}"
        data["drifting"] = self.drifting
        del data["beat_times"], data["grid_beat_offset"]
        return data


def _piecewise_linear(x: Any, xs: np.ndarray, ys: np.ndarray) -> Any:
    """y(x) through the points (xs, ys), xs increasing, extended past both ends by the end segments."""
    values = np.interp(x, xs, ys)
    before = (ys[1] - ys[0]) / (xs[1] - xs[0])
    after = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    values = np.where(np.asarray(x) < xs[0], ys[0] + (np.asarray(x) - xs[0]) * before, values)
    values = np.where(np.asarray(x) > xs[-1], ys[-1] + (np.asarray(x) - xs[-1]) * after, values)
    return float(values) if np.ndim(values) == 0 else values


def is_mt3_style(sequence: NoteSequence) -> bool:
    """MT3's fingerprint: 220 ticks per quarter, one 120 bpm tempo and one 4/4 at time 0 (or none)."""
    tempos = [(round(t.time, 6), round(t.qpm, 3)) for t in sequence.tempos]
    signatures = [(round(s.time, 6), s.numerator, s.denominator) for s in sequence.time_signatures]
    return (sequence.ticks_per_quarter == MT3_TICKS_PER_QUARTER and tempos in ([], [(0.0, 120.0)])
            and signatures in ([], [(0.0, 4, 4)]))


def _resultants(times: np.ndarray, weights: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """Complex resultants [P, windows] of onsets on each period's grid, per 8-second window."""
    window = np.floor(times / WINDOW_SECONDS).astype(np.int64)
    sums = np.zeros((len(periods), int(window.max()) + 1), complex)
    for start in range(0, len(times), CHUNK):  # a 45-minute file has ~100,000 notes: bounded memory
        part = slice(start, start + CHUNK)
        phases = np.exp(2j * np.pi * times[None, part] / periods[:, None]) * weights[None, part]  # [P, chunk]
        np.add.at(sums.T, window[part], phases.T)
    return sums


def _fit(times: np.ndarray, weights: np.ndarray, periods: np.ndarray) -> np.ndarray:
    """How tightly weighted onsets sit on each period's grid: 0 (anywhere) to 1 (exactly on it)."""
    return np.abs(_resultants(times, weights, periods)).sum(axis=1) / weights.sum()


def _strength(note: Any) -> float:
    if note.is_drum:
        return 1.0 if note.pitch in STRONG_DRUMS else 0.3
    return 1.0 if note.pitch < LOW_PITCH else 0.5


def estimate_tempo(notes: Sequence[Any]) -> tuple[float, float]:
    """(bpm, beat phase in seconds) from note onsets; bpm in [60, 200)."""
    times = np.array([n.start_time for n in notes], dtype=np.float64)
    ones = np.ones(len(times))
    strong = np.array([_strength(n) for n in notes])
    bpms = MIN_BPM * BPM_STEP ** np.arange(int(math.log(MAX_BPM / MIN_BPM) / math.log(BPM_STEP)))
    subdivision = np.maximum(_fit(times, ones, 15.0 / bpms), _fit(times, ones, 20.0 / bpms))
    score = subdivision + _fit(times, strong, 60.0 / bpms) + 0.5 * _fit(times, strong, 30.0 / bpms)
    bpm = float(bpms[int(score.argmax())])
    bpm = _refine(times, strong, bpm)
    beat = 60.0 / bpm
    angle = np.angle(np.sum(strong * np.exp(2j * np.pi * times / beat)))
    return bpm, float((angle / (2 * np.pi) * beat) % beat)


def _refine(times: np.ndarray, weights: np.ndarray, bpm: float) -> float:
    """The tempo to 0.01%: the best whole-piece fit of the onsets near the coarse estimate."""
    candidates = bpm * np.linspace(0.995, 1.005, 201)
    sums = np.zeros(len(candidates), complex)
    for start in range(0, len(times), CHUNK):
        part = slice(start, start + CHUNK)
        sums += (weights[None, part] * np.exp(2j * np.pi * times[None, part] * candidates[:, None] / 15.0)).sum(axis=1)
    return float(candidates[int(np.abs(sums).argmax())])


def _local_fits(times: np.ndarray, strong: np.ndarray, bpm: float) -> list[tuple[float, float, float]]:
    """(centre, beat period, beat phase) in seconds for windows of LOCAL_BEATS beats, a bar apart:
    the tempo within DRIFT_RANGE of `bpm` whose 16th grid and beat grid the window's onsets fit best."""
    beat = 60.0 / bpm
    periods = beat * np.linspace(1 - DRIFT_RANGE, 1 + DRIFT_RANGE, 161)  # 0.125% apart
    half_width = max(LOCAL_BEATS * beat, LOCAL_SECONDS) / 2
    fits = []
    for centre in np.arange(times.min() + half_width, times.max() - half_width + 4 * beat, 4 * beat):
        near = np.abs(times - centre) <= half_width
        if near.sum() < LOCAL_BEATS:
            continue
        t, w = times[near], strong[near]
        sixteenths = np.abs(np.exp(2j * np.pi * t[None, :] * 4 / periods[:, None]).mean(axis=1))
        beats = np.exp(2j * np.pi * t[None, :] / periods[:, None]) @ w / w.sum()
        best = int(np.argmax(sixteenths + np.abs(beats)))
        fits.append((float(centre), float(periods[best]),
                     float((np.angle(beats[best]) / (2 * np.pi) * periods[best]) % periods[best])))
    return fits


def track_beats(times: np.ndarray, strong: np.ndarray, bpm: float) -> np.ndarray | None:
    """The beat times of a performance whose tempo drifts, or None when a steady grid fits it as well.

    Each window of LOCAL_BEATS beats gets its own tempo and phase (`_local_fits`); the beats are then
    walked from the first onset, each one beat of the nearest window's tempo after the last and
    snapped onto that window's beat grid; past the last window's centre the last windows' tempo
    trend goes on to the end, and the last beat length is the tempo the continuation keeps. The map
    is kept only where the steady grid strays from it by more than DRIFT_BEATS somewhere in the
    piece, and the onsets sit on the map's 16th grid at least as tightly: a steady performance
    keeps its steady grid, whose tempo is fitted on all of it.
    """
    fits = _local_fits(times, strong, bpm)
    if len(fits) < 3:
        return None  # too short to tell a drift from timing
    centres = np.array([f[0] for f in fits])
    beat = 60.0 / bpm
    _, period, phase = fits[0]
    first = phase + math.floor((times.min() + period / 4 - phase) / period) * period
    beats = [first]
    # After the last window's centre its steady fit would lag a performance that speeds up or slows
    # down, so the last windows' tempo trend is carried on to the end instead.
    recent = slice(-END_FITS, None)
    trend = float(np.polyfit(centres[recent], [f[1] for f in fits[recent]], 1)[0]) if len(fits) >= END_FITS else 0.0
    last_centre, last_period = fits[-1][0], fits[-1][1]
    while beats[-1] < times.max() + period / 2:
        if beats[-1] > last_centre:
            period = float(np.clip(last_period + trend * (beats[-1] - last_centre),
                                   beat * (1 - DRIFT_RANGE), beat * (1 + DRIFT_RANGE)))
            beats.append(beats[-1] + period)
            continue
        _, period, phase = fits[int(np.argmin(np.abs(centres - beats[-1])))]
        predicted = beats[-1] + period
        snapped = phase + round((predicted - phase) / period) * period
        beats.append(snapped if abs(snapped - predicted) < period / 4 else predicted)
    beat_times = np.array(beats)
    if len(beat_times) < 8 or np.any(np.diff(beat_times) <= 0):
        return None
    position = np.interp(times, beat_times, np.arange(len(beat_times)))  # in beats of the map
    departure = position - times / beat  # where the steady grid's beats fall from the map's
    departure -= np.median(departure)
    mapped = np.abs(np.exp(2j * np.pi * 4 * position).mean())
    steady = np.abs(np.exp(2j * np.pi * 4 * times / beat).mean())
    return beat_times if np.abs(departure).max() > DRIFT_BEATS and mapped >= steady else None


@dataclass(frozen=True)
class Meter:
    """A meter on the tempo estimate's grid: lengths and positions in its beats."""

    beats_per_bar: int  # 2, 3 or 4
    division: int  # the beat's: 2 (a simple meter, x/4) or 3 (compound, x/8)
    beat: float  # the musical beat: a quarter note (x/4) or a dotted quarter (x/8)
    phase: float  # where a beat falls

    @property
    def time_signature(self) -> tuple[int, int]:
        return (self.beats_per_bar, 4) if self.division == 2 else (3 * self.beats_per_bar, 8)

    @property
    def counted_beat(self) -> float:
        """The signature's beat, its denominator's note: the beat, or its third in x/8."""
        return self.beat / (1 if self.division == 2 else 3)


def estimate_meter(notes: Sequence[Any], positions: np.ndarray, seconds: float) -> Meter:
    """The meter of `notes`, whose onsets lie at `positions` (in beats of the tempo estimate, each
    `seconds` long: the onsets' times / `seconds`, or their places on a beat map).

    The metrical levels are built up from the tatum, the estimated beat's half (or its third, where
    the onsets fit the triplet grid clearly better): each level groups the one below in twos or
    threes, whichever multiples of it the accented onsets repeat at more (`_grouping`). The beat is
    the level nearest the commonest tempo, of quarter notes where the level below it goes in twos
    (2/4, 3/4, 4/4) and of dotted quarters where it goes in threes (6/8, 9/8); its next level is the
    bar (or the one after, in 4/4). 12/8 is not told from 6/8 (its bar is taken as two of 6/8).
    Drums keep their conventions: 4/4, 3/4 or 6/8; a fast beat in threes is a swung 4/4; kicks and
    snares alternating on the beat (a backbeat) confirm the beat; the estimated beat is a level.
    Linear in the notes: one histogram of onsets, a few dozen dot products over it."""
    pitches = np.array([n.pitch for n in notes])
    is_drum = np.array([n.is_drum for n in notes])
    lengths = np.clip(np.array([n.end_time - n.start_time for n in notes]) / seconds, 0.02, 4.0)  # beats
    low = np.where(is_drum, np.isin(pitches, list(DOWNBEAT_DRUMS)), pitches < LOW_PITCH).astype(float)
    strong = np.array([_strength(n) for n in notes])
    drums = float(is_drum.mean()) > DRUM_SHARE
    bins, origin = _meter_bins(positions)
    # Long notes and the bass start on strong beats: an onset weighs as its longest note (not as its
    # number of notes, or the chords of an oom-pah-pah would outweigh its bass) and half its low notes'
    # lengths. At the tatum, low notes and kicks mark the beat among its divisions; drum hits, whose
    # lengths mean nothing, weigh so at every level (`_levels`).
    by_length = np.zeros(int(bins.max()) + 1)
    np.maximum.at(by_length, bins, lengths)
    by_length += 0.5 * np.bincount(bins, weights=low * lengths)
    by_accent = np.bincount(bins, weights=(0.3 + np.sqrt(lengths)) * (1.0 + low))
    thirds, halves = _fit(positions * seconds, np.ones(len(positions)), np.array([seconds / 3, seconds / 2]))
    tatum = METER_BINS // (3 if not drums and thirds - halves > TERNARY_TATUM else 2)
    longest = min(LONGEST_LEVEL / seconds * METER_BINS, len(by_length) / 2)
    levels = _levels(by_length, by_accent, tatum, longest, drums)
    kicks, snares = is_drum & np.isin(pitches, list(KICKS)), is_drum & np.isin(pitches, list(SNARES))
    backbeat = (lambda beat: _backbeat(positions, kicks, snares, beat)) if drums else None
    beats_per_bar, division, level = _choose_meter(levels, seconds, backbeat) or (4, 2, METER_BINS)
    return Meter(beats_per_bar, division, level / METER_BINS,
                 _beat_phase(positions, bins, lengths, strong, level, origin, drums))


def _meter_bins(positions: np.ndarray) -> tuple[np.ndarray, float]:
    """(bin of each onset, from 0; the position of bin 0): bins centred on the onsets' 16th or triplet grid."""
    fits = {k: np.sum(np.exp(2j * np.pi * positions * k)) for k in (4, 3)}
    k = max(fits, key=lambda k: abs(fits[k]))
    centre = float(np.angle(fits[k]) / (2 * np.pi) / k) % (1 / k)
    raw = np.round((positions - centre) * METER_BINS).astype(np.int64)
    return raw - raw.min(), centre + int(raw.min()) / METER_BINS


def _grouping(signal: np.ndarray, level: int, least: int = 6) -> float:
    """How the onsets `signal` (weights per bin) group a level of `level` bins: from -1 (they repeat
    at two, four, eight times its length and never at three, six, nine) to 1 (the other way); 0
    when the signal is shorter than `least` levels (two groups of three: no evidence either way)."""
    if least * level >= len(signal):
        return 0.0
    # A neighbouring bin counts half: played timing and a tempo off by a little.
    smooth = signal + 0.5 * (np.roll(signal, 1) + np.roll(signal, -1))
    twos = threes = 0.0
    for two, three in ((2, 3), (4, 6), (8, 9)):
        if three * level < len(signal):
            twos += float(signal[:-two * level] @ smooth[two * level:])
            threes += float(signal[:-three * level] @ smooth[three * level:])
    return (threes - twos) / (threes + twos) if threes + twos > 0 else 0.0


def _levels(by_length: np.ndarray, by_accent: np.ndarray, tatum: int, longest: float, drums: bool) -> list[int]:
    """The metrical levels in bins, from the tatum up to `longest` bins, each two or three of the one
    below: `by_accent` groups the tatum, `by_length` the levels above. Drums: `by_accent` throughout,
    the tatum in twos, and threes only clearly, over four groups of three at least (short fills and
    shuffles in 4/4 lean to threes)."""
    levels, margin, least = [tatum], DRUM_THREES if drums else 0.0, 12 if drums else 6
    while levels[-1] * 2 <= longest:
        first = len(levels) == 1
        signal = by_accent if first or drums else by_length
        threes = not (first and drums) and _grouping(signal, levels[-1], least) > margin
        levels.append(levels[-1] * (3 if threes else 2))
    return levels


def _choose_meter(levels: list[int], seconds: float, backbeat: Callable[[float], float] | None
                  ) -> tuple[int, int, int] | None:
    """(beats per bar, division, beat in bins): the beat level nearest the commonest tempo of its kind
    (log-tempo squared, in octaves), 4/4 preferred to 2/4; None when no level fits (too short a piece).
    `backbeat` (drums; of a beat in estimated beats) confirms a simple beat."""
    best: tuple[float, tuple[int, int, int]] | None = None
    for i in range(1, len(levels) - 1):
        division, beat = levels[i] // levels[i - 1], levels[i] * seconds / METER_BINS
        if backbeat and division == 3 and 60.0 / (beat / 3) > SWING_PER_MINUTE:
            continue
        above = levels[i + 1] // levels[i]
        four = division == 2 and i + 2 < len(levels) and levels[i + 2] == 2 * levels[i + 1]  # no 12/8: see above
        for beats_per_bar in [3] if above == 3 else [2, 4] if four else [2]:
            if backbeat and (beats_per_bar, division) not in ((4, 2), (3, 2), (2, 3)):
                continue
            centre = SIMPLE_BPM if division == 2 else COMPOUND_BPM
            score = -math.log2(60.0 / beat / centre) ** 2 + COMMON_TIME * (beats_per_bar == 4)
            if backbeat and division == 2:
                score += BACKBEAT * backbeat(levels[i] / METER_BINS)
            if best is None or score > best[0]:
                best = (score, (beats_per_bar, division, levels[i]))
    return best[1] if best else None


def _backbeat(positions: np.ndarray, kicks: np.ndarray, snares: np.ndarray, beat: float) -> float:
    """From 1 (kicks and snares a beat apart, alternating) to -1 (together); 0 with fewer than two of either."""
    if kicks.sum() < 2 or snares.sum() < 2:
        return 0.0
    kick = np.mean(np.exp(1j * np.pi * positions[kicks] / beat))
    snare = np.mean(np.exp(1j * np.pi * positions[snares] / beat))
    return float(-np.real(kick * np.conj(snare)))


def _beat_phase(positions: np.ndarray, bins: np.ndarray, lengths: np.ndarray, strong: np.ndarray, level: int,
                origin: float, drums: bool) -> float:
    """Where a beat of `level` bins falls (a position): the bin where long and strong notes (low ones,
    kicks and snares) start; then, as played, the mean phase of the strong onsets within a 32nd of
    its beats or, for drums, of all of them on the beat's circle, as `estimate_tempo` takes it (their
    steady off-beat hits cancel there; a melody's need not)."""
    profile = np.bincount(bins % level, weights=lengths * strong, minlength=level)
    profile = profile + 0.5 * (np.roll(profile, 1) + np.roll(profile, -1))
    beat = level / METER_BINS
    coarse = origin + int(np.argmax(profile)) / METER_BINS
    offsets = (positions - coarse + beat / 2) % beat - beat / 2
    near = np.abs(offsets) < beat / 8
    for chosen in ((np.ones(len(offsets), bool), near) if drums else (near,)):
        turn = np.angle(np.sum(strong[chosen] * np.exp(2j * np.pi * offsets[chosen] / beat))) / (2 * np.pi)
        if chosen.any() and abs(turn) < 1 / 4:
            return float(coarse + turn * beat)
    return float(coarse)


def _downbeat(notes: Sequence[Any], beat_phase: float, beat: float, beats_per_bar: int,
              times: np.ndarray | None = None, ends: np.ndarray | None = None) -> float:
    """The first downbeat at or after 0 (in the unit of `beat_phase` and `beat`: seconds, or beats of
    a map): the beat of the bar where kicks, crashes and low notes fall, the first note and
    the music's end. `times` and `ends` replace the notes' own onsets and ends (on a map's grid)."""
    times = np.array([n.start_time for n in notes]) if times is None else times
    ends = np.array([n.end_time for n in notes]) if ends is None else ends
    # Not by length: a transcribed piano's sustain pedal draws notes out to wherever it was lifted.
    weight = np.array([1.0 if (n.is_drum and n.pitch in DOWNBEAT_DRUMS) or (not n.is_drum and n.pitch < LOW_PITCH)
                       else 0.1 for n in notes])
    bar = beat * beats_per_bar
    candidates = beat_phase + beat * np.arange(beats_per_bar)

    def on(time: Any) -> np.ndarray:  # [candidate] or [candidate, note]: within a 16th of its bar lines
        return np.abs((np.subtract.outer(time, candidates).T + bar / 2) % bar - bar / 2) < beat / 4

    scores = (weight * on(times)).sum(axis=-1)
    # The first note is usually on a downbeat (or a pickup just before one).
    scores = scores + 0.5 * weight.sum() / len(times) * on(min(times))
    # Symmetrically, music is given up to a bar line (its first N bars, the notes sounding there cut
    # at it), and a whole piece's last chord starts a bar: the latest note end, when it falls on a
    # beat, or else the last onset, when it falls on one, is taken for a downbeat. The end is surest
    # where several notes that began at different times end together (sounding notes cut); one
    # note or one chord may end anywhere. It weighs as END_BARS bars' worth of the best phase's own
    # evidence (half that when less sure; at most half the evidence), so that it settles phases the
    # notes leave close, and no more.
    end, last = float(ends.max()), float(times.max())
    together = np.abs(ends - end) < beat / 8
    cut = together.sum() > 1 and np.ptp(times[together]) > beat / 8
    for time, strength in ((end, 1.0 if cut else 0.5), (last, 0.5)):
        if on(time).any():
            bars = max(2 * END_BARS, (last - float(times.min())) / bar)
            scores = scores + END_BARS * strength * scores.max() / bars * on(time)
            break
    best = int(np.argmax(scores))
    return float((beat_phase + best * beat) % bar)


def estimate_key(notes: Sequence[Any]) -> str:
    """Krumhansl-Schmuckler on duration-weighted pitch classes of the pitched notes ('' with none)."""
    pitched = [n for n in notes if not n.is_drum]
    if not pitched:
        return ""
    histogram = np.zeros(12)
    for n in pitched:
        histogram[n.pitch % 12] += max(n.end_time - n.start_time, 0.01)
    best, name = -2.0, ""
    for tonic in range(12):
        for profile, mode in ((_MAJOR, "major"), (_MINOR, "minor")):
            r = np.corrcoef(histogram, np.roll(profile, tonic))[0, 1]
            if r > best:
                best, name = r, f"{_NAMES[tonic]} {mode}"
    return name


def instrument_name(program: int, is_drum: bool = False) -> str:
    """The General MIDI name of a track's instrument ("Drums" for a drum track), as a musician reads it."""
    if is_drum:
        return "Drums"
    from pretty_midi import program_to_instrument_name

    return program_to_instrument_name(program) if 0 <= program < 128 else f"program {program}"


def track_roles(sequence: NoteSequence) -> list[Track]:
    """One `Track` per (instrument, program, drums) with notes, with its role from program and register."""
    groups: dict[tuple[int, int, bool], list[Any]] = {}
    for note in sequence.notes:
        groups.setdefault((note.instrument, note.program, note.is_drum), []).append(note)
    tracks = []
    for (instrument, program, is_drum), notes in sorted(groups.items()):
        pitches = [n.pitch for n in notes]
        median = float(np.median(pitches))
        onsets = np.array(sorted(round(n.start_time, 2) for n in notes))
        chord_share = float(np.mean(np.r_[onsets[1:] == onsets[:-1], False] | np.r_[False, onsets[1:] == onsets[:-1]])) if len(onsets) > 1 else 0.0
        if is_drum:
            role = "drums"
        elif 32 <= program <= 39 or (median < 48 and chord_share < 0.3):
            role = "bass"
        elif chord_share < 0.3 and median >= LOW_PITCH:
            role = "melody"
        else:
            role = "chords"
        tracks.append(Track(role, instrument, program, is_drum, len(notes), median, chord_share))
    return tracks


def analyse(sequence: NoteSequence, *, estimate: bool | None = None) -> Analysis:
    """Tempo, meter, downbeat, key and track roles of a piece (`estimate`: None = only for MT3-style files)."""
    from generation.errors import GenError

    notes = [n for n in sequence.notes if n.end_time > n.start_time or n.is_drum]
    if not notes:
        raise GenError("it has no notes")
    mt3 = is_mt3_style(sequence)
    velocities = {n.velocity for n in notes}
    end_time = max(n.end_time for n in notes)
    first_onset = min(n.start_time for n in notes)
    use_estimate = mt3 if estimate is None else estimate
    beat_map = None
    if use_estimate or not sequence.tempos:
        if len({round(n.start_time, 3) for n in notes}) < 4:
            bpm, source, signature = 120.0, "default (too few onsets to estimate)", (4, 4)
            first_downbeat = _downbeat(notes, first_onset % 0.5, 0.5, 4)
        else:
            bpm, signature, first_downbeat, beat_map = _estimated_grid(notes)
            source = "estimated"
    else:
        tempo = max(sequence.tempos, key=lambda t: t.time)
        bpm, source = float(tempo.qpm), "file"
        last = _meter_in_force(sequence, tempo.qpm, end_time)
        signature = (last.numerator, last.denominator) if last else (4, 4)
        bar = 60.0 / bpm * 4 / signature[1] * signature[0]
        anchor = max(last.time if last else 0.0, tempo.time)  # bar lines counted from the last change
        first_downbeat = anchor % bar
    bpm = round(bpm, 3)  # as `Analysis` keeps it: the continuation starts on a bar line of its grid
    bar = 60.0 / bpm * 4 / signature[1] * signature[0]
    if source != "file" and first_downbeat > bar - 1e-3:  # a downbeat at 0, a hair early: no pickup bar
        first_downbeat = max(0.0, first_downbeat - bar)
    last_onset = max(n.start_time for n in notes)
    bars_to_end = math.ceil((_ends_at(end_time, last_onset, bar, heard=source != "file") - first_downbeat) / bar
                            - 1e-6)
    analysis = Analysis(
        mt3_style=mt3, flat_velocities=len(velocities) == 1, tempo_bpm=round(bpm, 3), tempo_source=source,
        time_signature=signature, first_downbeat=first_downbeat, end_time=end_time,
        continuation_start=first_downbeat + bars_to_end * bar, bars=(end_time - first_onset) / bar,
        key=estimate_key(notes), tracks=track_roles(sequence), end_tempo_bpm=round(bpm, 3),
    )
    if beat_map is not None:
        beat_times, downbeat_index = beat_map
        numerator = signature[0]
        analysis.beat_times = [float(t) for t in beat_times]
        analysis.grid_beat_offset = (numerator - downbeat_index) % numerator
        if analysis.to_grid(first_onset) < 0:  # a pickup before the first tracked beat: one bar earlier
            analysis.grid_beat_offset += numerator
        analysis.first_downbeat = float(beat_times[downbeat_index])
        grid_end = _ends_at(analysis.to_grid(end_time), analysis.to_grid(last_onset), analysis.bar_seconds,
                            heard=True)
        analysis.continuation_start = float(analysis.from_grid(math.ceil(grid_end / analysis.bar_seconds - 1e-6)
                                                               * analysis.bar_seconds))
        # In quarter notes per minute, as tempo_bpm: the last beat is the signature's (an eighth in x/8).
        analysis.end_tempo_bpm = round(60.0 / float(beat_times[-1] - beat_times[-2]) * 4 / signature[1], 3)
        analysis.bars = (analysis.to_grid(end_time) - analysis.to_grid(first_onset)) / analysis.bar_seconds
    return analysis


def _meter_in_force(sequence: NoteSequence, qpm: float, end_time: float) -> Any:
    """The time signature the piece ends in: the last that lasts two of its bars before `end_time`
    and whose bar is at least a quarter note long, else the last; None without any. (A score's
    short last bar can carry a signature of its own, as BWV 66.6's final 3/4 bar after its 4/4,
    and music21 reads some ABC tunes' partial bars as 1/16.)"""
    ordered = sorted(sequence.time_signatures, key=lambda s: s.time)
    for signature in reversed(ordered):
        if signature.denominator <= 0 or signature.numerator * 4 < signature.denominator:
            continue
        bar = 60.0 / qpm * 4 / signature.denominator * signature.numerator
        if end_time - signature.time >= 2 * bar - 1e-6:
            return signature
    return ordered[-1] if ordered else None


def _estimated_grid(notes: Sequence[Any]) -> tuple[float, tuple[int, int], float, tuple[np.ndarray, int] | None]:
    """(tempo in quarter notes per minute, time signature, first downbeat at or after 0 in seconds,
    beat map) of notes whose file grid means nothing: the tempo estimate (`estimate_tempo`), its
    beats tracked where the performance drifts (`track_beats`), the meter on its grid
    (`estimate_meter`) and the downbeat (`_downbeat`). The beat map, for a drifting performance, is
    (the times of the signature's beats, the index of the first downbeat among them), else None."""
    bpm, _ = estimate_tempo(notes)
    seconds = 60.0 / bpm
    times = np.array([n.start_time for n in notes], dtype=np.float64)
    ends = np.array([n.end_time for n in notes], dtype=np.float64)
    tracked = track_beats(times, np.array([_strength(n) for n in notes]), bpm)
    if tracked is None:
        positions, end_positions = times / seconds, ends / seconds
    else:  # in beats of the map, the map's beats numbered from 0
        numbers = np.arange(len(tracked), dtype=np.float64)
        positions = np.asarray(_piecewise_linear(times, tracked, numbers))
        end_positions = np.asarray(_piecewise_linear(ends, tracked, numbers))
    meter = estimate_meter(notes, positions, seconds)
    downbeat = _downbeat(notes, meter.phase, meter.beat, meter.beats_per_bar, times=positions, ends=end_positions)
    signature, qpm = meter.time_signature, 60.0 / (meter.beat * seconds) * (1.5 if meter.division == 3 else 1.0)
    if tracked is None:
        return qpm, signature, downbeat * seconds, None
    # The signature's beats, one every `counted_beat` beats of the map, from its first.
    step = meter.counted_beat
    counted = np.arange(downbeat % step, len(tracked) - 1 + 1e-9, step)
    beat_times = np.interp(counted, np.arange(len(tracked)), tracked)
    downbeat_index = int(round(((downbeat - counted[0]) % (step * signature[0])) / step)) % signature[0]
    if len(beat_times) <= max(1, downbeat_index):
        return qpm, signature, downbeat * seconds, None
    return qpm, signature, downbeat * seconds, (beat_times, downbeat_index)


def _ends_at(end_time: float, last_onset: float, bar: float, *, heard: bool = False) -> float:
    """Where the piece ends for its continuation: a last note ringing up to a 16th past a downbeat,
    with no onset after it, ends on that downbeat (a piece cut at a bar line on an estimated grid
    a few milliseconds off must not wait a whole silent bar); in a transcription (`heard`), up to
    half a bar, as the last notes of a recording ring on after its last bar line."""
    return max(end_time - bar / (2 if heard else 16), last_onset + 1e-3)


def map_times(sequence: NoteSequence, mapping: Callable[[Any], Any]) -> NoteSequence:
    """A copy with the times of its notes, control changes and pitch bends passed through `mapping`
    (an increasing function of seconds that takes numpy arrays)."""
    import copy

    result = copy.deepcopy(sequence)
    events = [*result.control_changes, *result.pitch_bends]
    if result.notes:
        starts = mapping(np.array([n.start_time for n in result.notes]))
        ends = mapping(np.array([n.end_time for n in result.notes]))
        for note, start, end in zip(result.notes, np.atleast_1d(starts), np.atleast_1d(ends)):
            note.start_time, note.end_time = float(start), float(end)
    if events:
        for event, time in zip(events, np.atleast_1d(mapping(np.array([e.time for e in events])))):
            event.time = float(time)
    return result


def on_grid(sequence: NoteSequence, analysis: Analysis) -> NoteSequence:
    """The piece as the quantized models see it: its downbeats on bar lines from 0 (shifted, or for
    a drifting performance every beat on the grid's beat), with the estimated tempo and meter as its
    only tempo and time signature."""
    result = map_times(sequence, analysis.to_grid)
    del result.tempos[:]
    del result.time_signatures[:]
    result.tempos.add(qpm=analysis.tempo_bpm, time=0.0)
    result.time_signatures.add(numerator=analysis.time_signature[0], denominator=analysis.time_signature[1], time=0.0)
    result.total_time = analysis.continuation_grid_start
    return result


# Ticks per quarter of MIDI files whose tempo map is rewritten: at 60 qpm (the slowest tempo the
# estimate gives) a tick lasts 0.52 ms, so every original note keeps its time within 0.26 ms.
OUTPUT_TICKS_PER_QUARTER = 1920


def downbeat_tempos(analysis: Analysis, until: float) -> list[tuple[float, float]]:
    """(time of a downbeat in seconds, quarter notes per minute from there) up to `until`: one entry
    at the first downbeat for a steady piece; for a drifting one, each bar's own tempo."""
    quarters_per_beat = 4 / analysis.time_signature[1]
    if not analysis.drifting:
        return [(analysis.first_downbeat, analysis.tempo_bpm)]
    bar, grid = analysis.bar_seconds, analysis.continuation_grid_start
    downbeats = np.arange(math.ceil(analysis.to_grid(0.0) / bar - 1e-9), grid / bar + 1) * bar
    tempos = []
    for start in (float(t) for t in analysis.from_grid(downbeats) if t >= 0):
        end = float(analysis.from_grid(analysis.to_grid(start) + bar))
        tempos.append((start, round(60.0 * analysis.time_signature[0] * quarters_per_beat / (end - start), 3)))
    if not tempos or tempos[-1][0] < analysis.continuation_start - 1e-6:
        tempos.append((analysis.continuation_start, analysis.end_tempo_bpm))
    return [t for t in tempos if t[0] <= until] or tempos[:1]


def midi_grid(analysis: Analysis, until: float) -> tuple[list[tuple[float, float]], list[tuple[float, int, int]]]:
    """(tempo map: (time in seconds, quarter notes per minute), meter map: (time in seconds,
    numerator, denominator)) for a MIDI file of the piece (and its continuation) up to `until`, from
    time 0. MIDI counts bars from time 0, so the music before the first downbeat (a pickup) gets a
    tempo of its own under which it lasts whole beats, and a bar of those beats: every bar line
    after it falls on one of the music's downbeats."""
    tempos = downbeat_tempos(analysis, until)
    numerator, denominator = analysis.time_signature
    pickup, first_qpm = tempos[0]
    if pickup <= 1e-3:
        return [(0.0, first_qpm)] + tempos[1:], [(0.0, numerator, denominator)]
    beat = 60.0 / first_qpm * 4 / denominator
    if pickup < beat / 2:
        # Too short for a beat of its own (notes a few milliseconds after 0, a transcription's
        # start): the first bar begins at 0 and lasts until the second downbeat, a little slower.
        bar = numerator * beat
        second = pickup + bar
        qpm = round(60.0 * numerator * 4 / denominator / second, 6)
        rest = [t for t in tempos[1:] if t[0] > second + 1e-6]
        return [(0.0, qpm), (second, first_qpm)] + rest, [(0.0, numerator, denominator)]
    beats = int(min(max(1, round(pickup / beat)), numerator))
    pickup_qpm = round(60.0 * beats * 4 / denominator / pickup, 6)
    return [(0.0, pickup_qpm)] + tempos, [(0.0, beats, denominator), (pickup, numerator, denominator)]


def set_grid(sequence: NoteSequence, analysis: Analysis) -> None:
    """Replaces the tempo map and time signatures of `sequence` (a piece, and maybe its continuation
    or variation, up to `sequence.total_time`) by the analysed grid (`midi_grid`), so that a DAW
    shows the music's bars, and writes it at OUTPUT_TICKS_PER_QUARTER. Note, control and
    pitch-bend times, in seconds, stay as they are."""
    tempos, meters = midi_grid(analysis, sequence.total_time)
    del sequence.tempos[:]
    for time, qpm in tempos:
        sequence.tempos.add(qpm=qpm, time=time)
    del sequence.time_signatures[:]
    for time, numerator, denominator in meters:
        sequence.time_signatures.add(numerator=numerator, denominator=denominator, time=time)
    sequence.ticks_per_quarter = max(sequence.ticks_per_quarter, OUTPUT_TICKS_PER_QUARTER)


def mt3_style_midi(sequence: NoteSequence, *, velocity: int | None = 127) -> bytes:
    """MIDI bytes of `sequence` as MT3 writes its output: 220 ticks per quarter, one 120 bpm tempo,
    4/4, one track per program (drums apart), every note at its time; velocities all `velocity`
    (MT3's multi-instrument model) or kept (None: its piano model). For tests and benchmarks."""
    import io

    import pretty_midi

    midi = pretty_midi.PrettyMIDI(resolution=MT3_TICKS_PER_QUARTER, initial_tempo=120.0)
    midi.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    instruments: dict[tuple[int, bool], Any] = {}
    for note in sequence.notes:
        key = (note.program, note.is_drum)
        if key not in instruments:
            instruments[key] = pretty_midi.Instrument(program=note.program, is_drum=note.is_drum)
            midi.instruments.append(instruments[key])
        instruments[key].notes.append(pretty_midi.Note(
            velocity=velocity if velocity is not None else note.velocity, pitch=note.pitch,
            start=note.start_time, end=max(note.end_time, note.start_time + 0.01)))
    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()


def ramped_performance(sequence: NoteSequence, start_bpm: float, end_bpm: float, repeats: int = 3
                       ) -> tuple[NoteSequence, Callable[[Any], Any]]:
    """`sequence` (steady, at its first tempo) played `repeats` times over while the tempo moves
    steadily from `start_bpm` to `end_bpm` (each beat's length changes linearly), for tests and
    benchmarks of drift; and the performance's time (seconds) of any beat position (in beats)."""
    beat = 60.0 / (sequence.tempos[0].qpm if sequence.tempos else 120.0)
    length = max(1, round(sequence.total_time / (4 * beat))) * 4  # beats, whole bars
    total = repeats * length
    first, last = 60.0 / start_bpm, 60.0 / end_bpm

    def time_of(position: Any) -> Any:
        position = np.asarray(position, dtype=float)
        return first * position + (last - first) * position ** 2 / (2 * total)

    played = NoteSequence(ticks_per_quarter=sequence.ticks_per_quarter or 220)
    for repeat in range(repeats):
        for note in sequence.notes:
            start = float(time_of(note.start_time / beat + repeat * length))
            end = float(time_of(note.end_time / beat + repeat * length))
            added = played.notes.add()
            added.CopyFrom(note)
            added.start_time, added.end_time = start, max(end, start + 0.01)
    played.total_time = max((n.end_time for n in played.notes), default=0.0)
    return played, time_of
