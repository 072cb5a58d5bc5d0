"""Following a performance whose tempo drifts, on ramped MT3-style copies of Groove MIDI Dataset files.

Each 4/4 beat file of the chosen split that is longer than 10 s is played three times over while
its tempo moves steadily by a given share (`ramped_performance`), written as MT3 writes MIDI
(120 bpm, 220 ticks per quarter, velocity 127) and analysed. For the first two bars of the
continuation, each beat of the grid `gen continue` would write on is compared with the
performance's own beats (its last beat length going on after it): the worst distance, in beats.
Printed beside the same figure for one steady tempo fitted on the whole piece (what `gen continue`
did before beat maps), measured in the same run, and for the files at a steady tempo (no ramp),
where no beat map should be made.

    python benchmarks/tempo_drift.py [--split test] [--groove ../shared/datasets/groove] [--limit 30]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from unittest import mock

import numpy as np

RAMPS = (0.0, 0.05, 0.10, -0.05, -0.10)  # the tempo's change from start to end, as a share of the file's


def worst_beat_error(analysis, time_of, end_bpm: float) -> tuple[float, float]:
    """(worst distance in beats over the first two bars of the continuation, tempo factor of the beat)."""
    ratio = max(0.5, round(analysis.end_tempo_bpm / end_bpm * 2) / 2)
    beat = 60.0 / end_bpm / ratio
    positions = np.arange(0, 2000 * ratio) / ratio
    beats = time_of(positions)
    beats = beats[beats <= analysis.end_time]
    beats = np.concatenate([beats, beats[-1] + beat * np.arange(1, 64)])
    grid = analysis.continuation_grid_start + np.arange(9) * analysis.beat_seconds
    performance = np.asarray(analysis.from_grid(grid))
    return float(np.abs(performance[:, None] - beats[None, :]).min(axis=1).max() / beat), ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test")
    parser.add_argument("--groove", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "datasets" / "groove")
    parser.add_argument("--limit", type=int, default=30, help="At most this many files.")
    args = parser.parse_args()

    from generation import transcription
    from generation.io.midi import midi_to_note_sequence
    from generation.io.readers import read_music_file
    from generation.transcription import analyse, mt3_style_midi, ramped_performance

    rows = [r for r in csv.DictReader(open(args.groove / "info.csv"))
            if r["split"] == args.split and r["beat_type"] == "beat" and r["time_signature"] == "4-4"
            and float(r["duration"]) > 10][: args.limit]
    started = time.perf_counter()
    print(f"{len(rows)} beat files of the {args.split} split, each played three times over with a tempo ramp")
    print(f"{'ramp':>6}  {'beat maps':>9}  {'within a 16th: map / steady':>28}  {'median worst error, beats':>26}"
          f"  {'end tempo within 2%':>19}")
    for ramp in RAMPS:
        mapped_errors, steady_errors, maps, end_hits = [], [], 0, 0
        for row in rows:
            original = read_music_file(args.groove / row["midi_filename"]).sequences[0]
            bpm = original.tempos[0].qpm
            played, time_of = ramped_performance(original, bpm * (1 - ramp / 2), bpm * (1 + ramp / 2))
            copy = midi_to_note_sequence(mt3_style_midi(played), row["midi_filename"])
            analysis = analyse(copy)
            with mock.patch.object(transcription, "track_beats", lambda *_: None):
                steady = analyse(copy)  # one steady tempo for the whole piece, as before beat maps
            end_bpm = bpm * (1 + ramp / 2)
            error, ratio = worst_beat_error(analysis, time_of, end_bpm)
            steady_error, _ = worst_beat_error(steady, time_of, end_bpm)
            mapped_errors.append(error)
            steady_errors.append(steady_error)
            maps += analysis.drifting
            end_hits += abs(analysis.end_tempo_bpm / (end_bpm * ratio) - 1) <= 0.02
        mapped, steady = np.array(mapped_errors), np.array(steady_errors)
        print(f"{ramp:+6.0%}  {maps:>4} / {len(rows):<3}  {(mapped < 0.25).sum():>12} / {(steady < 0.25).sum():<3} of {len(rows):<6}"
              f"  {np.median(mapped):>12.3f} / {np.median(steady):<11.3f}  {end_hits:>9} / {len(rows)}")
    print(f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
