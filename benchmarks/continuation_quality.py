"""Continuation quality against the piece's TRUE continuation (`generation.continuation_metrics`).

Real pieces are cut on a downbeat well inside them; the music before the cut (notes starting
before it, their ends clipped at it; at most the last 32 bars, shifted to start at 0) is the
prefix, the N bars after the cut are the truth. Each continuer is given the prefix and N and its
new N bars (shifted so that the continuation's start is time 0) are compared with the truth
(shifted so the cut is time 0), on the piece's own grid (its tempo and meter at the cut).

Material groups (N = 8 bars unless said):
  a  music21 corpus string quartets, 2 movements each of Beethoven, Haydn and Mozart, 2 cuts each;
     tracks matched by (instrument, program, drums): the parts keep their instruments.
  b  MT3-style copies of the same prefixes (`mt3_style_midi`: 120 bpm, 4/4, 220 ticks, velocity
     127, one track per program), so tempo and meter are estimated; the truth stays in the
     original times; tracks matched by (program, drums), as MT3 merges same-program parts.
  c  Groove test split drums (4/4 beats longer than 30 s, one file per style, 8 styles spread over
     the list), 2 cuts each.
  d  examples/bantry_lasses.mid (8 bars: cut at bar 4, N = 4) and
     tests/fixtures/multitrack/pop_arrangement.mid (4 bars: cut at bar 2, N = 2).
  e  real MT3 transcriptions ../shared/mt3/*.mid: up to 3 cuts per file on downbeats of gen's
     estimated grid, at least 2 bars in from either end (the middle bar of a shorter file), the
     truth = the whole bars after it (N = 1-8).
Continuers: gen (continue_piece's default style), per-track models (style="models", when
continue_piece takes `style`), repeat last bars, random in key (both baselines), and next passage:
the N bars after the truth compared with the truth, a reference level (where the piece has them).
Stochastic continuers get 2 seeds per cut (`--seeds`; averaged per cut).

    python benchmarks/continuation_quality.py [--quick] [--groups a,b,c,d,e] [--seeds 2] [--json FILE] [--novelty 0,0.5,1]
"""

from __future__ import annotations

import argparse
import copy
import csv
import inspect
import io
import json
import math
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generation.continuation_metrics import Grid, Metrics, compare  # noqa: E402
from generation.protos import NoteSequence  # noqa: E402

SHARED = ROOT.parent / "shared"
QUARTETS = ("beethoven/opus18no1/movement2.mxl", "beethoven/opus18no1/movement4.mxl",
            "haydn/opus1no1/movement1.mxl", "haydn/opus1no1/movement3.mxl",
            "mozart/k155/movement1.mxl", "mozart/k155/movement2.mxl")
PREFIX_BARS = 32  # at most this many bars before the cut are given to the continuers
MIN_STEADY_PREFIX = 8  # bars of one length at least before a cut (or the group's least prefix, if fewer)
SEEDS = (1, 2)
COLUMNS = ("distance", "pitch-class sim", "dissonance cont (truth)", "density log-ratio", "register diff",
           "beat sim", "drum sim", "novelty cont (truth)", "start gap", "silent gaps")


@dataclass
class Cut:
    group: str
    piece: str
    cut: float  # seconds in the source piece
    bars: int  # N
    grid: Grid  # the piece's own grid at the cut
    prefix: NoteSequence  # what the continuers see
    truth: list[Any]  # notes, time 0 = the cut
    next_passage: list[Any] | None  # the N bars after the truth, time 0 = their start
    by_instrument: bool
    cut_in_prefix: float = 0.0  # the cut's time in the prefix's own times
    results: dict[str, list[Metrics]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    grid_found: dict[str, float] = field(default_factory=dict)  # gen's analysis of the prefix


# ---------------------------------------------------------------- cutting


def _window(notes: list[Any], start: float, end: float) -> list[Any]:
    """Copies of the notes starting in [start, end), shifted by -start, ends clipped at end."""
    out = []
    for note in notes:
        if start - 1e-6 <= note.start_time < end - 1e-6:
            n = copy.deepcopy(note)
            n.start_time -= start
            n.end_time = min(note.end_time, end) - start
            out.append(n)
    return out


def _sequence(notes: list[Any], qpm: float | None, signature: tuple[int, int] | None) -> NoteSequence:
    result = NoteSequence()
    if qpm is not None:
        result.tempos.add(qpm=qpm, time=0.0)
    if signature is not None:
        result.time_signatures.add(numerator=signature[0], denominator=signature[1], time=0.0)
    result.ticks_per_quarter = 480
    for note in notes:
        result.notes.add().CopyFrom(note)
    result.total_time = max([n.end_time for n in notes] + [0.0])
    return result


def _file_grid(sequence: NoteSequence, midi_bytes: bytes, bar_quarters: list[float] | None = None
               ) -> tuple[np.ndarray, Callable[[float], tuple[float, tuple[int, int]]]]:
    """(downbeat times, time -> (qpm, meter) there) from the file's tempo map and meter, or, with
    `bar_quarters` (the score's bar lines in quarter notes from its start: a pickup bar is short),
    from those bar lines on the file's tempo map."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(io.BytesIO(midi_bytes))
    end = max(n.end_time for n in sequence.notes)
    if bar_quarters is not None:
        downbeats = [float(midi.tick_to_time(int(round(q * midi.resolution)))) for q in bar_quarters]
        downbeats = [t for t in downbeats if t <= end + 1e-6]
    else:
        downbeats = [float(t) for t in midi.get_downbeats() if t <= end + 1e-6]
    if len(downbeats) < 2:
        downbeats = [0.0, midi.get_beats()[4] if len(midi.get_beats()) > 4 else end]
    while downbeats[-1] < end - 1e-3:  # the final bar's end, so that k + N <= len - 1 is N whole bars
        downbeats.append(2 * downbeats[-1] - downbeats[-2])

    def at(t: float) -> tuple[float, tuple[int, int]]:
        tempos = [x for x in sequence.tempos if x.time <= t + 1e-6] or list(sequence.tempos)[:1]
        signatures = [s for s in sequence.time_signatures if s.time <= t + 1e-6] or list(sequence.time_signatures)[:1]
        qpm = max(tempos, key=lambda x: x.time).qpm if tempos else 120.0
        s = max(signatures, key=lambda x: x.time) if signatures else None
        return float(qpm), ((s.numerator, s.denominator) if s else (4, 4))

    return np.array(downbeats), at


def file_cuts(group: str, piece: str, sequence: NoteSequence, midi_bytes: bytes, *, bars: int, cuts: int,
              min_prefix_bars: int, by_instrument: bool, bar_quarters: list[float] | None = None) -> list[Cut]:
    """Up to `cuts` cuts on the file's own downbeats, spread between `min_prefix_bars` and the last
    downbeat leaving N bars of truth; each with bars of one length over the truth and the prefix
    (at least MIN_STEADY_PREFIX bars of it, from after the last bar of another length), the next
    passage where it is steady too, and a note sounding up to the cut."""
    notes = [n for n in sequence.notes if n.end_time > n.start_time or n.is_drum]
    downbeats, at = _file_grid(sequence, midi_bytes, bar_quarters)
    last = len(downbeats) - 1 - bars  # the cut index leaving N whole bars
    candidates = list(range(min_prefix_bars, last + 1))
    if not candidates:
        return []
    lengths = np.diff(downbeats)

    def steady(lo: int, hi: int) -> bool:  # bars lo .. hi - 1 all of one length (1%)
        part = lengths[lo:hi]
        return len(part) > 0 and np.ptp(part) <= 0.01 * part.mean()

    chosen: dict[int, int] = {}  # cut bar -> first bar of its prefix
    for target in np.linspace(candidates[0], candidates[-1], cuts + 2)[1:-1] if cuts > 1 else [np.mean(candidates)]:
        for k in sorted(candidates, key=lambda c: abs(c - target)):
            if k in chosen or not steady(k, k + bars):
                continue
            # The prefix starts after the last bar of another length (a pickup, a first ending): its
            # bar lines then fall where the piece's do.
            least = min(MIN_STEADY_PREFIX, min_prefix_bars)
            lo = next((lo for lo in range(max(0, k - PREFIX_BARS), k - least + 1) if steady(lo, k + bars)), None)
            if lo is None:
                continue
            cut = float(downbeats[k])
            if not any(n.start_time < cut - 1e-6 and n.end_time >= cut - 0.05 for n in notes):
                continue  # a rest before the cut would move gen's continuation start a bar early
            chosen[k] = lo
            break
    result = []
    for k, lo in sorted(chosen.items()):
        cut = float(downbeats[k])
        bar = float(downbeats[k + 1] - downbeats[k])
        qpm, signature = at(cut)
        beat = bar / signature[0]
        start = float(downbeats[lo])
        prefix = _sequence(_window(notes, start, cut), qpm, signature)
        truth = _window(notes, cut, cut + bars * bar)
        has_next = k + 2 * bars <= len(downbeats) - 1 and steady(k, k + 2 * bars)
        following = _window(notes, cut + bars * bar, cut + 2 * bars * bar) if has_next else None
        result.append(Cut(group, piece, cut, bars, Grid(bar, beat, signature), prefix, truth, following, by_instrument,
                          cut_in_prefix=cut - start))
    return result


def mt3_copy(cut: Cut, group: str = "b") -> Cut:
    """The same cut with the prefix as an MT3-style copy (tracks then matched by program)."""
    from generation.io.midi import midi_to_note_sequence
    from generation.transcription import mt3_style_midi

    prefix = midi_to_note_sequence(mt3_style_midi(cut.prefix), cut.piece)
    return Cut(group, cut.piece, cut.cut, cut.bars, cut.grid, prefix, cut.truth, cut.next_passage, False,
               cut_in_prefix=cut.cut_in_prefix)


def _music21_midi(path: str) -> tuple[bytes, list[float]]:
    """(MIDI of a corpus score, its bar lines in quarter notes): music21 writes a pickup bar at time
    0 with the whole bar's meter, so the MIDI's own bar lines would fall a pickup late."""
    from music21 import corpus
    from music21.midi import translate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = corpus.parse(path)
        bar_lines = sorted({float(m.offset) for m in score.parts[0].getElementsByClass("Measure")})
        return translate.streamToMidiFile(score).writestr(), bar_lines


def quartet_cuts(quick: bool) -> tuple[list[Cut], list[str]]:
    from generation.io.midi import midi_to_note_sequence

    cuts, notes = [], []
    for path in QUARTETS[:1] if quick else QUARTETS:
        began = time.perf_counter()
        data, bar_lines = _music21_midi(path)
        sequence = midi_to_note_sequence(data, path)
        found = file_cuts("a", path.replace(".mxl", ""), sequence, data, bars=8, cuts=1 if quick else 2,
                          min_prefix_bars=16, by_instrument=True, bar_quarters=bar_lines)
        notes.append(f"{path}: {len(found)} cuts, parsed in {time.perf_counter() - began:.1f} s")
        cuts += found
    return cuts, notes


def groove_cuts(quick: bool) -> tuple[list[Cut], str]:
    root = SHARED / "datasets" / "groove"
    if not (root / "info.csv").exists():
        return [], f"group c skipped: no Groove dataset at {root}"
    from generation.io.midi import midi_to_note_sequence

    rows = sorted((r for r in csv.DictReader(open(root / "info.csv")) if r["split"] == "test"
                   and r["beat_type"] == "beat" and r["time_signature"] == "4-4" and float(r["duration"]) > 30),
                  key=lambda r: r["midi_filename"])
    distinct: dict[str, dict[str, str]] = {}  # one file per style (the eval sessions repeat grooves)
    for row in rows:
        distinct.setdefault(row["style"], row)
    rows = list(distinct.values())
    rows = rows[::max(1, len(rows) // 8)][:1 if quick else 8]
    cuts = []
    for row in rows:
        data = (root / row["midi_filename"]).read_bytes()
        sequence = midi_to_note_sequence(data, row["midi_filename"])
        cuts += file_cuts("c", row["midi_filename"].replace(".mid", ""), sequence, data, bars=8,
                          cuts=1 if quick else 2, min_prefix_bars=4, by_instrument=False)
    return cuts, f"group c: {len(rows)} Groove test files"


def multitrack_cuts() -> list[Cut]:
    from generation.io.midi import midi_to_note_sequence

    cuts = []
    for path, cut_bar, bars in ((ROOT / "examples" / "bantry_lasses.mid", 4, 4),
                                (ROOT / "tests" / "fixtures" / "multitrack" / "pop_arrangement.mid", 2, 2)):
        if not path.exists():
            continue
        data = path.read_bytes()
        sequence = midi_to_note_sequence(data, str(path))
        downbeats, at = _file_grid(sequence, data)
        if len(downbeats) < cut_bar + bars:
            continue
        notes = [n for n in sequence.notes if n.end_time > n.start_time or n.is_drum]
        cut = float(downbeats[cut_bar])
        bar = float(downbeats[1] - downbeats[0])
        qpm, signature = at(cut)
        cuts.append(Cut("d", path.stem, cut, bars, Grid(bar, bar / signature[0], signature),
                        _sequence(_window(notes, 0.0, cut), qpm, signature), _window(notes, cut, cut + bars * bar),
                        None, False, cut_in_prefix=cut))
    return cuts


def mt3_cuts(quick: bool) -> tuple[list[Cut], str]:
    files = sorted((SHARED / "mt3").glob("*.mid"))
    if not files:
        return [], f"group e skipped: no MT3 transcriptions in {SHARED / 'mt3'}"
    from generation.io.midi import midi_to_note_sequence
    from generation.transcription import analyse, mt3_style_midi

    cuts = []
    for path in files[:1] if quick else files:
        sequence = midi_to_note_sequence(path.read_bytes(), str(path))
        notes = [n for n in sequence.notes if n.end_time > n.start_time or n.is_drum]
        analysis = analyse(sequence)
        bar = analysis.bar_seconds
        end = analysis.end_time
        first = analysis.first_downbeat
        whole = int(math.floor((end - first) / bar + 1e-6))
        if whole < 2:
            continue
        for cut_bar in mt3_cut_bars(whole, 1 if quick else 3):
            bars = min(8, whole - cut_bar)
            cut = first + cut_bar * bar
            prefix_notes = [n for n in _window(notes, 0.0, cut)]  # times unchanged (window from 0)
            prefix = midi_to_note_sequence(mt3_style_midi(_sequence(prefix_notes, None, None), velocity=None),
                                           str(path))
            grid = Grid(bar, analysis.beat_seconds, analysis.time_signature)
            cuts.append(Cut("e", f"{path.stem} (cut at bar {cut_bar}, N={bars})", cut, bars, grid, prefix,
                            _window(notes, cut, cut + bars * bar), None, False, cut_in_prefix=cut))
    return cuts, f"group e: {len(cuts)} cuts of {len(files)} MT3 transcriptions (estimated grid)"


def mt3_cut_bars(whole: int, most: int) -> list[int]:
    """Up to `most` cut bars spread over a piece of `whole` bars, each leaving at least 2 bars before
    it and 2 after (the middle bar alone for a piece too short for that)."""
    if whole < 4:
        return [whole // 2]
    spread = np.linspace(2, whole - 2, most + 2)[1:-1] if most > 1 else [whole / 2]
    return sorted({int(round(b)) for b in spread})


# ---------------------------------------------------------------- continuers


def _new_part(notes: list[Any], start: float, length: float) -> list[Any]:
    """Notes starting at/after `start`, shifted so `start` is 0, kept up to `length` seconds (ends clipped)."""
    return _window([n for n in notes if n.start_time >= start - 1e-6], start, start + length)


class Continuers:
    def __init__(self) -> None:
        from generation.continuation import choose_models, continue_piece, load_models

        self.continue_piece = continue_piece
        self.models = load_models(choose_models({}))
        self.has_style = "style" in inspect.signature(continue_piece).parameters

    def gen(self, cut: Cut, seed: int, style: str | None = None, novelty: float | None = None) -> list[Any]:
        kwargs: dict[str, Any] = {"style": style} if style is not None else {}
        if novelty is not None:
            kwargs["novelty"] = novelty
        result = self.continue_piece(cut.prefix, self.models, bars=cut.bars, seed=seed, only_continuation=True,
                                     name=cut.piece, **kwargs)
        start = result.analysis.continuation_start
        if not cut.grid_found:
            cut.grid_found = {"continuation_start_minus_cut": start - cut.cut_in_prefix,
                              "bar_seconds": result.analysis.bar_seconds, "tempo_bpm": result.analysis.tempo_bpm,
                              "key": result.analysis.key}  # type: ignore[dict-item]
        return _new_part(list(result.sequence.notes), start, cut.bars * cut.grid.bar_seconds)


def _tracks(notes: list[Any]) -> dict[tuple[int, int, bool], list[Any]]:
    groups: dict[tuple[int, int, bool], list[Any]] = {}
    for n in notes:
        groups.setdefault((n.instrument, n.program, n.is_drum), []).append(n)
    return groups


def repeat_last_bars(cut: Cut, seed: int = 0) -> list[Any]:
    """Each track's last 4 bars (on the analysed grid of the prefix) repeated to fill N bars."""
    from generation.transcription import analyse, on_grid

    analysis = analyse(cut.prefix)
    grid = on_grid(cut.prefix, analysis)
    bar = analysis.bar_seconds
    start = analysis.continuation_grid_start
    span = min(4, max(1, int(round(start / bar)))) * bar
    out = []
    for note in grid.notes:
        if not start - span - 1e-6 <= note.start_time < start - 1e-6:
            continue
        t = note.start_time + span
        while t < start + cut.bars * bar - 1e-6:
            n = copy.deepcopy(note)
            n.start_time, n.end_time = t, t + (note.end_time - note.start_time)
            out.append(n)
            t += span
    for n in out:
        n.start_time = float(analysis.from_grid(n.start_time))
        n.end_time = float(analysis.from_grid(n.end_time))
    return _new_part(out, analysis.continuation_start, cut.bars * cut.grid.bar_seconds)


_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def scale_of(key: str) -> set[int]:
    """Pitch classes of a key name such as 'G major' or 'E minor' (natural minor); all 12 if unknown."""
    try:
        tonic, mode = key.split()
        root = _NAMES.index(tonic)
    except ValueError:
        return set(range(12))
    steps = (0, 2, 4, 5, 7, 9, 11) if mode == "major" else (0, 2, 3, 5, 7, 8, 10)
    return {(root + s) % 12 for s in steps}


def random_in_key(cut: Cut, seed: int) -> list[Any]:
    """Per track: notes at its density in the prefix's last 8 bars, onsets on random 16ths of the
    analysed grid; pitched tracks: pitches uniform over the key's scale within the track's range
    there, the track's median duration; drums: hits drawn from the track's own pitches (by frequency)."""
    from generation.protos import NoteSequence as _NS
    from generation.transcription import analyse, on_grid

    rng = np.random.default_rng(seed)
    analysis = analyse(cut.prefix)
    grid = on_grid(cut.prefix, analysis)
    bar = analysis.bar_seconds
    start = analysis.continuation_grid_start
    window_bars = min(8, max(1, int(round(start / bar))))
    steps = max(1, int(round(analysis.time_signature[0] * 16 / analysis.time_signature[1])))
    step = bar / steps
    scale = scale_of(analysis.key)
    out = []
    for key, notes in _tracks([n for n in grid.notes if start - window_bars * bar - 1e-6 <= n.start_time < start]).items():
        count = int(round(len(notes) / window_bars * cut.bars))
        onsets = np.sort(rng.integers(0, steps * cut.bars, size=count)) * step + start
        velocity = int(np.median([n.velocity for n in notes]))
        if key[2]:
            pitches, weights = np.unique([n.pitch for n in notes], return_counts=True)
            chosen = rng.choice(pitches, size=count, p=weights / weights.sum())
            durations = np.full(count, float(np.median([n.end_time - n.start_time for n in notes])))
        else:
            low, high = min(n.pitch for n in notes), max(n.pitch for n in notes)
            pool = [p for p in range(low, high + 1) if p % 12 in scale] or list(range(low, high + 1))
            chosen = rng.choice(pool, size=count)
            durations = np.full(count, float(np.median([n.end_time - n.start_time for n in notes])))
        holder = _NS()
        for onset, pitch, duration in zip(onsets, chosen, durations):
            holder.notes.add(pitch=int(pitch), velocity=velocity, start_time=float(analysis.from_grid(onset)),
                             end_time=float(analysis.from_grid(onset + duration)), instrument=key[0],
                             program=key[1], is_drum=key[2])
        out += list(holder.notes)
    return _new_part(out, analysis.continuation_start, cut.bars * cut.grid.bar_seconds)


# ---------------------------------------------------------------- running and printing


def run_cut(cut: Cut, continuers: Continuers, seeds: tuple[int, ...]) -> None:
    jobs: list[tuple[str, Callable[[int], list[Any]], tuple[int, ...]]] = [
        ("gen", lambda s: continuers.gen(cut, s), seeds)]
    if continuers.has_style:
        jobs.append(("per-track models", lambda s: continuers.gen(cut, s, "models"), seeds))
    for novelty in NOVELTIES:  # --novelty: the default continuation at other amounts of newness
        jobs.append((f"gen, novelty {novelty:g}", lambda s, v=novelty: continuers.gen(cut, s, novelty=v), seeds))
    jobs += [("repeat last bars", lambda s: repeat_last_bars(cut, s), (0,)),
             ("random in key", lambda s: random_in_key(cut, s), seeds)]
    for name, make, its_seeds in jobs:
        for seed in its_seeds:
            try:
                notes = make(seed)
            except Exception as error:  # a failing continuer is reported, not fatal
                cut.errors[name] = f"{type(error).__name__}: {error}"
                traceback.print_exc(limit=2, file=sys.stderr)
                break
            cut.results.setdefault(name, []).append(
                compare(notes, cut.truth, cut.prefix, cut.grid, bars=cut.bars, by_instrument=cut.by_instrument))
    if not continuers.has_style:
        cut.results["per-track models"] = cut.results.get("gen", [])
    if cut.next_passage is not None:
        cut.results["next passage"] = [compare(cut.next_passage, cut.truth, cut.prefix, cut.grid, bars=cut.bars,
                                               by_instrument=cut.by_instrument)]


CONTINUERS = ["gen", "per-track models", "repeat last bars", "random in key", "next passage"]
NOVELTIES: list[float] = []
FIELDS = {"distance": "distance", "pitch-class sim": "pitch_class_similarity", "density log-ratio": "density_log_ratio",
          "register diff": "register_difference", "beat sim": "beat_similarity", "drum sim": "drum_similarity",
          "start gap": "start_gap", "silent gaps": "silent_gaps"}


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def per_cut(cut: Cut, continuer: str, attribute: str) -> float | None:
    return _mean([getattr(m, attribute) for m in cut.results.get(continuer, [])])


def group_figure(cuts: list[Cut], continuer: str, attribute: str) -> float | None:
    return _mean([per_cut(c, continuer, attribute) for c in cuts if continuer in c.results])


def _cell(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(title: str, cuts: list[Cut]) -> list[str]:
    lines = [f"### {title}", "", "| continuer | cuts | " + " | ".join(COLUMNS) + " |",
             "| --- | ---: | " + " | ".join("---:" for _ in COLUMNS) + " |"]
    for continuer in CONTINUERS:
        having = [c for c in cuts if c.results.get(continuer)]
        if not having:
            continue
        cells = []
        for column in COLUMNS:
            if column == "dissonance cont (truth)":
                cells.append(f"{_cell(group_figure(having, continuer, 'dissonance'))} "
                             f"({_cell(group_figure(having, continuer, 'dissonance_truth'))})")
            elif column == "novelty cont (truth)":
                cells.append(f"{_cell(group_figure(having, continuer, 'novelty'))} "
                             f"({_cell(group_figure(having, continuer, 'novelty_truth'))})")
            else:
                digits = 2 if column in ("register diff", "start gap") else 3
                cells.append(_cell(group_figure(having, continuer, FIELDS[column]), digits))
        lines.append(f"| {continuer} | {len(having)} | " + " | ".join(cells) + " |")
    return lines


GROUP_TITLES = {"a": "a. music21 string quartets (N = 8, tracks by instrument)",
                "b": "b. MT3-style copies of the quartet prefixes (N = 8, tracks by program)",
                "c": "c. Groove test drums (N = 8)",
                "d": "d. multi-track examples (bantry_lasses N = 4, pop_arrangement N = 2)",
                "e": "e. real MT3 transcriptions (up to 3 cuts per file; N = whole bars after the cut, at most 8)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one piece and cut per group, one seed")
    parser.add_argument("--groups", default="a,b,c,d,e")
    parser.add_argument("--json", type=Path, help="write every per-cut figure here")
    parser.add_argument("--seeds", type=int, default=len(SEEDS),
                        help=f"seeds per stochastic continuer and cut (1, 2, ...; default {len(SEEDS)})")
    parser.add_argument("--novelty", default="", metavar="V,V,...",
                        help="also run gen's default continuation at these --novelty values (rows 'gen, novelty V')")
    args = parser.parse_args()
    NOVELTIES.extend(float(v) for v in args.novelty.split(",") if v.strip())
    CONTINUERS[1:1] = [f"gen, novelty {v:g}" for v in NOVELTIES]
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    seeds = (1,) if args.quick else tuple(range(1, max(1, args.seeds) + 1))
    began = time.perf_counter()

    cuts: dict[str, list[Cut]] = {}
    if "a" in groups or "b" in groups:
        quartets, notes = quartet_cuts(args.quick)
        for line in notes:
            print(line, file=sys.stderr)
        if "a" in groups:
            cuts["a"] = quartets
        if "b" in groups:
            cuts["b"] = [mt3_copy(c) for c in quartets]
    if "c" in groups:
        cuts["c"], note = groove_cuts(args.quick)
        print(note)
    if "d" in groups:
        cuts["d"] = multitrack_cuts()
    if "e" in groups:
        cuts["e"], note = mt3_cuts(args.quick)
        print(note)
    prepared = time.perf_counter() - began

    continuers = Continuers()
    for group, group_cuts in cuts.items():
        for index, cut in enumerate(group_cuts):
            started = time.perf_counter()
            run_cut(cut, continuers, seeds)
            print(f"[{group} {index + 1}/{len(group_cuts)}] {cut.piece} cut at {cut.cut:.1f} s: "
                  f"{time.perf_counter() - started:.1f} s", file=sys.stderr)

    print(f"continue_piece takes style: {continuers.has_style}; seeds per stochastic continuer and cut: {len(seeds)}")
    for group, group_cuts in cuts.items():
        if not group_cuts:
            print(f"\n(group {group}: no cuts)")
            continue
        print()
        print("\n".join(table(GROUP_TITLES[group], group_cuts)))
        found = [c for c in group_cuts if c.grid_found]
        if found:
            late = [c.grid_found["continuation_start_minus_cut"] / c.grid.bar_seconds for c in found]
            ratio = [c.grid_found["bar_seconds"] / c.grid.bar_seconds for c in found]
            print(f"\ngen's grid on the prefixes: continuation start - cut, in true bars: median {np.median(late):+.2f}, "
                  f"{sum(abs(x) > 1 / 16 for x in late)} of {len(found)} more than a 16th off; its bar / the true bar: "
                  + ", ".join(f"{r:.2f}" for r in sorted(ratio)))
        errors = {f"{c.piece}: {k}: {v}" for c in group_cuts for k, v in c.errors.items()}
        for error in sorted(errors):
            print(f"  error: {error}")
    print("\n### all groups (mean of the group means; mean over all cuts in brackets)\n")
    everything = [c for group_cuts in cuts.values() for c in group_cuts]
    for continuer in CONTINUERS:
        group_means = [group_figure(g, continuer, "distance") for g in cuts.values() if any(c.results.get(continuer) for c in g)]
        group_means = [m for m in group_means if m is not None]
        if not group_means:
            continue
        having = [c for c in everything if c.results.get(continuer)]
        pcs = group_figure(having, continuer, "pitch_class_similarity")
        beat = group_figure(having, continuer, "beat_similarity")
        print(f"{continuer:<17} distance {np.mean(group_means):.3f} ({group_figure(having, continuer, 'distance'):.3f} "
              f"over {len(having)} cuts, {len(group_means)} groups); pitch-class sim {_cell(pcs)}; beat sim {_cell(beat)}")
    total = time.perf_counter() - began
    print(f"\nrun time {total:.0f} s (reading and cutting {prepared:.0f} s); {len(everything)} cuts")

    if args.json:
        data = [{"group": c.group, "piece": c.piece, "cut_seconds": c.cut, "bars": c.bars,
                 "bar_seconds": c.grid.bar_seconds, "time_signature": list(c.grid.time_signature),
                 "truth_notes": len(c.truth), "errors": c.errors, "gen_grid": c.grid_found,
                 "results": {k: [m.to_json() for m in v] for k, v in c.results.items()}} for c in everything]
        args.json.write_text(json.dumps(data, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
