"""Meter, bar length and downbeat phase of estimated grids, on MT3-style copies of pieces of known meter.

Each piece is cut at one of its own downbeats well inside it. The prefix (at most the last 32 bars
before the cut, or from the piece's start, pickup included, when it has fewer; notes clipped at
the cut, so that the copy ends exactly there; a note starting less than a 32nd note before the cut
is the next bar's downbeat played early, and is left out) is written as MT3 writes MIDI
(`mt3_style_midi`: 120 bpm, 4/4, 220 ticks per quarter, velocity 127), read back and analysed
(`analyse`). Per group and true meter it prints the share of cuts whose estimated bar is the true
bar (within 3%), its double or its half; whose time signature is the true one (numerator and
denominator); and whose continuation starts within a 16th note of the cut
(`Analysis.continuation_start` against the prefix's end). The reference is the code before meter
estimation (every estimated grid in 4/4): `generation/transcription.py` at REFERENCE_COMMIT, read
with `git show`. About 2 minutes here (--quick: a quarter of the material).

Material:
  chorales  music21's Bach chorales (.mxl): every 8th of those in 4/4, all in 3/4
  essen     Essen folk songs (music21's essenFolksong) in 2/4, 3/4, 4/4, 6/8; repeats expanded
  oneills   O'Neill's 1850 tunes in 2/4, 3/4, 4/4 (written C), 6/8, 9/8; repeats expanded
  quartets  the string quartet movements of `continuation_quality.py`, 2 cuts each
  groove    the Groove MIDI Dataset's test split (all 4/4; files of 3 bars or more are cut at their
            middle downbeat, shorter ones are taken whole, for meter and bar only); groove-other:
            its 3/4 and 6/8 files (train and validation splits)
Chorales and folk tunes have no tempo of their own (music21 plays them at 120 qpm); each is played
at its own tempo instead, 90 to 160 quarter notes per minute (log-uniform, seeded by its name).
Notes come from music21's score directly (ties joined), times from its measure offsets, so that a
pickup bar's downbeats are where the score has them.

    python benchmarks/meter_estimation.py [--quick] [--no-reference] [--groove ../shared/datasets/groove]
                                          [--cache FILE] [--misses]
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import pickle
import re
import subprocess
import sys
import time
import types
import warnings
import zlib
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generation.protos import NoteSequence  # noqa: E402

REFERENCE_COMMIT = "fb7429f"  # the last commit with every estimated grid in 4/4
PREFIX_BARS = 32
QUARTETS = ("beethoven/opus18no1/movement2.mxl", "beethoven/opus18no1/movement4.mxl",
            "haydn/opus1no1/movement1.mxl", "haydn/opus1no1/movement3.mxl",
            "mozart/k155/movement1.mxl", "mozart/k155/movement2.mxl")
FOLK_METERS = {"essen": ("2/4", "3/4", "4/4", "6/8"), "oneills": ("2/4", "3/4", "C", "6/8", "9/8")}
FOLK_PATHS = {"essen": "essenFolksong", "oneills": "oneills1850"}
Note = tuple[float, float, int, int, int, bool]  # start, end (seconds), pitch, program, part, drum


@dataclass
class Case:
    group: str
    piece: str
    meter: tuple[int, int]
    bar: float  # seconds
    copy: bytes  # the MT3-style prefix
    cut: float | None  # the prefix's end (seconds), where the continuation should start; None: whole file
    first_downbeat: float  # a true downbeat in the prefix (seconds)

    @property
    def sixteenth(self) -> float:
        return self.bar / self.meter[0] * self.meter[1] / 16


# ---------------------------------------------------------------- material


def _tempo_factor(name: str) -> float:
    """120 qpm times this: 90 to 160 qpm, log-uniform, the same for a piece in every run."""
    u = zlib.crc32(name.encode()) / 2**32
    return math.exp(math.log(0.75) + u * math.log(160 / 90))


def _score(score: Any, name: str, scaled: bool) -> tuple[list[Note], list[float], list[tuple[int, int]]]:
    """(notes, downbeats in seconds, the meter of the bar from each) of a music21 score. A bar split
    at a phrase end or a repeat still starts on a downbeat; its other part (a pickup) does not. The
    end of the last bar is a downbeat too."""
    marks = list(score.flatten().getElementsByClass("MetronomeMark"))
    qpm = float(marks[0].getQuarterBPM()) if marks and not scaled else 120.0
    seconds = 60.0 / (qpm * (_tempo_factor(name) if scaled else 1.0))
    parts = list(score.parts) or [score]
    notes = []
    for number, part in enumerate(parts):
        instrument = part.getInstrument(returnDefault=True)
        program = instrument.midiProgram if instrument.midiProgram is not None else 0
        for element in part.flatten().notes:
            start, length = float(element.offset), float(element.duration.quarterLength)
            if length <= 0:
                continue  # grace notes
            for pitch in element.pitches:
                notes.append((start * seconds, (start + length) * seconds, int(pitch.midi), program, number, False))
    downbeats, meters, end = [], [], 0.0
    for measure in parts[0].getElementsByClass("Measure"):
        signature = measure.getContextByClass("TimeSignature")
        full = float(measure.barDuration.quarterLength)
        if (signature is None or measure.paddingLeft > 0
                or abs(float(measure.duration.quarterLength) + measure.paddingRight - full) > 1e-6):
            continue
        downbeats.append(float(measure.offset) * seconds)
        meters.append((signature.numerator, signature.denominator))
        end = (float(measure.offset) + full) * seconds
    if downbeats:
        downbeats.append(end)
        meters.append(meters[-1])
    return notes, downbeats, meters


def _prefix(notes: list[Note], start: float, cut: float, early: float) -> bytes:
    """The MT3-style copy of the notes from `start` to `cut` (seconds); a note starting up to `early`
    before the cut is the next bar's downbeat played early (drummers do), not the prefix's."""
    from generation.transcription import mt3_style_midi

    sequence = NoteSequence(ticks_per_quarter=480)
    for s, e, pitch, program, part, drum in notes:
        if start - 1e-6 <= s < cut - early:
            sequence.notes.add(start_time=s - start, end_time=min(e, cut) - start, pitch=pitch, program=program,
                               instrument=part, is_drum=drum, velocity=90)
    sequence.total_time = cut - start
    return mt3_style_midi(sequence)


def _cuts(group: str, piece: str, notes: list[Note], downbeats: list[float], meters: list[tuple[int, int]], *,
          cuts: int, min_bars: int, sustained: bool = True) -> list[Case]:
    """Up to `cuts` cases cut at downbeats spread over the piece (at least `min_bars` bars in, one bar
    left after), each with one steady meter and bar length over its prefix and a note sounding up to
    the cut (`sustained`; drums need not: a rest before the cut moves the continuation a bar early)."""
    d = np.array(downbeats)
    candidates = list(range(min_bars, len(d) - 1))
    chosen: list[int] = []
    targets = np.linspace(candidates[0], candidates[-1], cuts + 2)[1:-1] if candidates else []
    for target in targets:
        for k in sorted(candidates, key=lambda c: abs(c - target)):
            lo = max(0, k - PREFIX_BARS)
            lengths = np.diff(d[lo:k + 2])
            if k in chosen or np.ptp(lengths) > 0.01 * lengths.mean() or len(set(meters[lo:k + 1])) > 1:
                continue
            early = (d[k + 1] - d[k]) / meters[k][0] * meters[k][1] / 32
            if sustained and not any(s < d[k] - early and e >= d[k] - 0.05 for s, e, *_ in notes):
                continue
            chosen.append(k)
            break
    result = []
    for k in sorted(chosen):
        lo = max(0, k - PREFIX_BARS)
        start = 0.0 if lo == 0 else float(d[lo])  # from the piece's start: its pickup too
        bar = float(d[k + 1] - d[k])
        early = bar / meters[k][0] * meters[k][1] / 32  # a 32nd note
        result.append(Case(group, piece, meters[k], bar, _prefix(notes, start, float(d[k]), early),
                           float(d[k]) - start, float(d[lo]) - start))
    return result


def chorales(quick: bool) -> list[Case]:
    from music21 import corpus

    by_meter: dict[str, list[str]] = defaultdict(list)
    for entry in corpus.search("bach", "composer"):
        if str(entry.sourcePath).endswith(".mxl"):
            by_meter[str(entry.metadata.timeSignatureFirst)].append(str(entry.sourcePath))
    paths = sorted(by_meter["4/4"])[::32 if quick else 8] + sorted(by_meter["3/4"])[::4 if quick else 1]
    cases = []
    for path in paths:
        name = "bach/" + Path(path).stem
        notes, downbeats, meters = _score(corpus.parse(path), name, scaled=True)
        if set(meters) <= {(4, 4), (3, 4)} and len(downbeats) > 6:
            cases += _cuts("chorales", name, notes, downbeats, meters, cuts=1, min_bars=4)
    return cases


def _tunes(collection: str) -> dict[str, list[tuple[str, str]]]:
    """(name, abc text) of the tunes of a collection with one meter throughout, by meter."""
    from music21 import corpus

    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for path in sorted(str(p) for p in corpus.getCorePaths() if f"/{FOLK_PATHS[collection]}/" in str(p)):
        text = open(path, encoding="latin-1").read()
        header, *tunes = re.split(r"\n(?=X:)", text)
        for tune in tunes:
            meters = set(re.findall(r"^M:\s*(\S+)", tune, re.M)) | set(re.findall(r"\[M:\s*([^\]]+)\]", tune))
            title = re.search(r"^T:\s*(.*)$", tune, re.M)
            number = re.match(r"X:\s*(\d+)", tune)
            if len(meters) == 1 and number:
                name = f"{FOLK_PATHS[collection]}/{Path(path).stem}/{number.group(1)}"
                found[meters.pop()].append((name + (f" {title.group(1).strip()}" if title else ""), tune))
    return found


def folk(collection: str, quick: bool) -> list[Case]:
    from music21 import converter

    per_meter = 4 if quick else 16
    cases = []
    tunes = _tunes(collection)
    for meter in FOLK_METERS[collection]:
        found = 0
        pool = tunes.get(meter, [])
        for name, text in pool[::max(1, len(pool) // (4 * per_meter))]:
            if found >= per_meter:
                break
            try:
                score = converter.parse(text, format="abc")
                try:
                    score = score.expandRepeats()
                except Exception:  # noqa: BLE001 - a tune whose repeats music21 cannot expand stays as written
                    pass
                notes, downbeats, meters = _score(score, name, scaled=True)
            except Exception:  # noqa: BLE001 - a tune music21 cannot read is skipped
                continue
            if len(downbeats) < 10 or not notes:
                continue
            made = _cuts(collection, name, notes, downbeats, meters, cuts=1, min_bars=8)
            found += len(made)
            cases += made
    return cases


def quartets(quick: bool) -> list[Case]:
    from music21 import corpus

    cases = []
    for path in QUARTETS:
        notes, downbeats, meters = _score(corpus.parse(path), path, scaled=False)
        cases += _cuts("quartets", path.replace(".mxl", ""), notes, downbeats, meters, cuts=1 if quick else 2,
                       min_bars=16)
    return cases


def groove(root: Path, quick: bool) -> tuple[list[Case], str]:
    if not (root / "info.csv").exists():
        return [], f"groove skipped: no Groove dataset at {root}"
    import pretty_midi

    from generation.io.midi import midi_to_note_sequence
    from generation.transcription import mt3_style_midi

    rows = list(csv.DictReader(open(root / "info.csv")))
    chosen = [r for r in rows if r["split"] == "test"][::6 if quick else 1]
    chosen += [r for r in rows if r["time_signature"] in ("3-4", "6-8")]
    cases = []
    for row in chosen:
        data = (root / row["midi_filename"]).read_bytes()
        sequence = midi_to_note_sequence(data, row["midi_filename"])
        midi = pretty_midi.PrettyMIDI(io.BytesIO(data))
        signature = midi.time_signature_changes[0]
        meter = (signature.numerator, signature.denominator)
        end = max(n.end_time for n in sequence.notes)
        downbeats = [float(t) for t in midi.get_downbeats() if t <= end]
        group = "groove" if row["split"] == "test" else "groove-other"
        notes = [(n.start_time, n.end_time, n.pitch, n.program, n.instrument, True) for n in sequence.notes]
        bar = 60.0 / float(row["bpm"]) * 4 / meter[1] * meter[0]
        if len(downbeats) > 1:
            bar = float(downbeats[1] - downbeats[0])
        found = []
        if len(downbeats) >= 4:
            found = _cuts(group, row["midi_filename"], notes, downbeats + [downbeats[-1] + bar],
                          [meter] * (len(downbeats) + 1), cuts=1, min_bars=2, sustained=False)
        cases += found or [Case(group, row["midi_filename"], meter, bar, mt3_style_midi(sequence), None, 0.0)]
    return cases, f"groove: {len(cases)} files"


# ---------------------------------------------------------------- evaluation


def reference_module(commit: str) -> types.ModuleType | None:
    """generation/transcription.py as it was at `commit`, as a module of its own (None without git)."""
    try:
        source = subprocess.run(["git", "show", f"{commit}:generation/transcription.py"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("transcription_reference")
    module.__file__ = f"transcription.py at {commit}"
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


@dataclass
class Outcome:
    ratio: float  # estimated bar / true bar
    meter: tuple[int, int]
    start_error: float | None  # (continuation start - cut) / the true 16th note; None: not cut
    seconds: float


def evaluate(case: Case, analyse: Any) -> Outcome:
    from generation.io.midi import midi_to_note_sequence

    sequence = midi_to_note_sequence(case.copy, case.piece)
    started = time.perf_counter()
    analysis = analyse(sequence)
    seconds = time.perf_counter() - started
    start = None if case.cut is None else (analysis.continuation_start - case.cut) / case.sixteenth
    return Outcome(analysis.bar_seconds / case.bar, tuple(analysis.time_signature), start, seconds)


def _share(flags: list[bool]) -> str:
    return f"{sum(flags):>3}/{len(flags):<3} {np.mean(flags):>4.0%}" if flags else "    -        "


def report(cases: list[Case], outcomes: dict[str, list[Outcome]]) -> None:
    rows: dict[tuple[str, tuple[int, int]], list[int]] = defaultdict(list)
    for i, case in enumerate(cases):
        rows[(case.group, case.meter)].append(i)
    print(f"{'group':<13}{'meter':<6}{'code':<10}{'bar right':<15}{'double':<15}{'half':<15}"
          f"{'meter right':<15}{'start at cut':<15}")
    totals: dict[str, dict[str, list[bool]]] = {code: defaultdict(list) for code in outcomes}
    for (group, meter), indices in sorted(rows.items()):
        for code, results in outcomes.items():
            picked = [results[i] for i in indices]
            flags = {"bar": [abs(o.ratio - 1) < 0.03 for o in picked],
                     "double": [abs(o.ratio / 2 - 1) < 0.03 for o in picked],
                     "half": [abs(o.ratio * 2 - 1) < 0.03 for o in picked],
                     "meter": [o.meter == meter for o in picked],
                     "start": [abs(o.start_error) < 1 for o in picked if o.start_error is not None]}
            for key, value in flags.items():
                totals[code][key] += value
            meter_name = f"{meter[0]}/{meter[1]}"
            print(f"{group:<13}{meter_name:<6}{code:<10}" + "".join(f"{_share(flags[k]):<15}" for k in flags))
    for code, total in totals.items():
        seconds = [o.seconds for o in outcomes[code]]
        print(f"summary {code:<10} bar right {_share(total['bar'])}, double {_share(total['double'])}, "
              f"half {_share(total['half'])}, meter right {_share(total['meter'])}, start at the cut "
              f"{_share(total['start'])}; analyse {np.mean(seconds) * 1e3:.0f} ms per case "
              f"(longest {max(seconds):.2f} s)")


def load(args: argparse.Namespace) -> tuple[list[Case], list[str]]:
    if args.cache and args.cache.exists():
        cached = [Case(**fields) for fields in pickle.loads(args.cache.read_bytes())]
        return cached, [f"{len(cached)} cases read from {args.cache}"]
    notes, cases = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, make in (("chorales", chorales), ("essen", lambda quick: folk("essen", quick)),
                           ("oneills", lambda quick: folk("oneills", quick)), ("quartets", quartets)):
            began = time.perf_counter()
            made = make(args.quick)
            cases += made
            notes.append(f"{name}: {len(made)} cuts in {time.perf_counter() - began:.0f} s")
    found, note = groove(args.groove, args.quick)
    cases += found
    notes.append(note)
    if args.cache:
        args.cache.write_bytes(pickle.dumps([asdict(case) for case in cases]))
    return cases, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the material")
    parser.add_argument("--no-reference", action="store_true", help="skip the code before meter estimation")
    parser.add_argument("--groove", type=Path, default=ROOT.parent / "shared" / "datasets" / "groove")
    parser.add_argument("--cache", type=Path, help="keep the cut copies in this file (and read them from it)")
    parser.add_argument("--misses", action="store_true", help="list every case whose bar or start is wrong")
    args = parser.parse_args()

    from generation.transcription import analyse

    cases, notes = load(args)
    print("\n".join(notes))
    codes: dict[str, Any] = {"now": analyse}
    reference = None if args.no_reference else reference_module(REFERENCE_COMMIT)
    if reference is not None:
        codes["before"] = reference.analyse
    elif not args.no_reference:
        print(f"no reference: git cannot show generation/transcription.py at {REFERENCE_COMMIT}")
    outcomes = {code: [evaluate(case, function) for case in cases] for code, function in codes.items()}
    report(cases, outcomes)
    if args.misses:
        for case, outcome in zip(cases, outcomes["now"]):
            wrong_start = outcome.start_error is not None and abs(outcome.start_error) >= 1
            if abs(outcome.ratio - 1) >= 0.03 or wrong_start or outcome.meter != case.meter:
                start = "" if outcome.start_error is None else f", start {outcome.start_error:+.1f} 16ths"
                print(f"  {case.group} {case.piece} {case.meter[0]}/{case.meter[1]}: estimated "
                      f"{outcome.meter[0]}/{outcome.meter[1]}, bar x{outcome.ratio:.2f}{start}")


if __name__ == "__main__":
    main()
