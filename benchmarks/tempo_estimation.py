"""Tempo estimation on the Groove MIDI Dataset, from MT3-style copies of its files.

Each file of the chosen split is rewritten as MT3 writes MIDI (120 bpm, 4/4, 220 ticks per quarter,
every velocity 127) and read back; its tempo is then estimated from the notes and compared with the
tempo in info.csv. A hit is within 4% of the true tempo, its double or its half. Printed for the
estimator in `generation.transcription` and, as the reference, librosa's beat tracker on an onset
envelope built from the same notes (100 frames per second, Gaussian-smoothed), split by file length.

    python benchmarks/tempo_estimation.py [--split test] [--groove ../shared/datasets/groove] [--no-librosa]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np


def hit(estimate: float, truth: float) -> bool:
    return any(abs(estimate - truth * m) / (truth * m) <= 0.04 for m in (0.5, 1.0, 2.0))


def librosa_tempo(notes) -> float:
    import librosa

    frames = 100
    envelope = np.zeros(int(max(n.start_time for n in notes) * frames) + 200)
    for n in notes:
        envelope[int(round(n.start_time * frames))] += 1.0
    envelope = np.convolve(envelope, np.exp(-0.5 * (np.arange(-5, 6) / 2.0) ** 2), mode="same")
    tempo, _ = librosa.beat.beat_track(onset_envelope=envelope, sr=frames, hop_length=1, start_bpm=120)
    return float(np.atleast_1d(tempo)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test")
    parser.add_argument("--groove", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "datasets" / "groove")
    parser.add_argument("--no-librosa", action="store_true")
    args = parser.parse_args()

    from generation.io.midi import midi_to_note_sequence
    from generation.io.readers import read_music_file
    from generation.transcription import analyse, is_mt3_style, mt3_style_midi

    rows = [r for r in csv.DictReader(open(args.groove / "info.csv")) if r["split"] == args.split]
    methods = ["gen"] + ([] if args.no_librosa else ["librosa"])
    results: dict[str, dict[str, list[bool]]] = {m: {"longer than 10 s": [], "10 s or shorter": []} for m in methods}
    seconds = {m: 0.0 for m in methods}
    misses = []
    beat_maps = {group: 0 for group in results["gen"]}
    for row in rows:
        original = read_music_file(args.groove / row["midi_filename"]).sequences[0]
        copy = midi_to_note_sequence(mt3_style_midi(original), row["midi_filename"])
        assert is_mt3_style(copy)
        truth = float(row["bpm"])
        group = "longer than 10 s" if original.total_time > 10 else "10 s or shorter"
        started = time.perf_counter()
        analysis = analyse(copy)
        estimate = analysis.tempo_bpm
        seconds["gen"] += time.perf_counter() - started
        beat_maps[group] += analysis.drifting  # these files are played to a click: no drift to follow
        results["gen"][group].append(hit(estimate, truth))
        if not hit(estimate, truth):
            misses.append(f"{row['midi_filename']} ({original.total_time:.0f} s): {truth:g} bpm, estimated {estimate:.1f}")
        if "librosa" in methods:
            started = time.perf_counter()
            reference = librosa_tempo(copy.notes)
            seconds["librosa"] += time.perf_counter() - started
            results["librosa"][group].append(hit(reference, truth))
    print(f"Groove {args.split} split, MT3-style copies: tempo within 4% of the truth, its double or half")
    for method in methods:
        cells = []
        for group, hits in results[method].items():
            cells.append(f"{group}: {sum(hits)}/{len(hits)} ({np.mean(hits):.0%})")
        total = [h for hits in results[method].values() for h in hits]
        print(f"  {method:<8} all: {sum(total)}/{len(total)} ({np.mean(total):.0%});  " + ";  ".join(cells)
              + f";  {seconds[method] / len(total) * 1e3:.1f} ms per file")
    print("  beat maps made (a drifting tempo found; these performances follow a click): "
          + ";  ".join(f"{group}: {beat_maps[group]}/{len(results['gen'][group])}" for group in beat_maps))
    print("  misses (gen):")
    for line in misses:
        print(f"    {line}")


if __name__ == "__main__":
    main()
