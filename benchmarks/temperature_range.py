"""How far `gen continue` strays from each track's range as the temperature rises.

For the README's example (and any MIDI files given), continues 8 bars with the bundled models
(`--style models`: every new note from the LSTMs, so the temperature acts on all of them) at
several temperatures and seeds, and prints per temperature: the share of new pitched notes outside
the original track's pitch range widened by a fifth (7 semitones) each side, the widest excursion
(semitones beyond the track's range), and the new notes per bar beside the original's. The README's
"safe temperature range" is read from this table.

    python benchmarks/temperature_range.py [--seeds 4] [FILE.mid ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEMPERATURES = (0.5, 0.8, 1.0, 1.2, 1.5, 2.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", default=[str(ROOT / "examples" / "bantry_lasses.mid")])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--style", choices=("models", "piece"), default="models",
                        help="models (default): every new note from the LSTMs, what the temperature acts on")
    args = parser.parse_args()

    from generation.continuation import choose_models, continue_piece, load_models
    from generation.io.readers import read_music_file

    models = load_models(choose_models({}))
    pieces = [read_music_file(path).sequences[0] for path in args.files]
    print(f"{len(pieces)} piece(s), {args.seeds} seeds, {args.bars} bars of continuation, bundled models")
    print(f"{'temperature':>11} {'outside range+5th':>18} {'widest excursion':>17} {'new notes/bar (orig)':>21}")
    for temperature in TEMPERATURES:
        outside = total = 0
        widest = 0
        density, original_density = [], []
        for piece in pieces:
            for seed in range(args.seeds):
                result = continue_piece(piece, models, bars=args.bars, temperature=temperature, seed=seed,
                                         style=args.style)
                start = result.analysis.continuation_start
                for track in result.analysis.tracks:
                    if track.is_drum:
                        continue
                    key = (track.instrument, track.program)
                    old = [n.pitch for n in piece.notes if (n.instrument, n.program) == key and not n.is_drum]
                    new = [n.pitch for n in result.sequence.notes
                           if (n.instrument, n.program) == key and not n.is_drum and n.start_time >= start - 1e-6]
                    low, high = min(old), max(old)
                    beyond = [max(low - p, p - high, 0) for p in new]
                    outside += sum(b > 7 for b in beyond)
                    total += len(new)
                    widest = max([widest] + beyond)
                    density.append(len(new) / args.bars)
                    original_density.append(len(old) / max(result.analysis.bars, 1))
        print(f"{temperature:>11.1f} {outside / max(total, 1):>17.1%} {widest:>14d} st "
              f"{np.mean(density):>12.1f} ({np.mean(original_density):.1f})")


if __name__ == "__main__":
    main()
