"""Drums in time after `gen humanize` and `gen vary`: for each piece, the drums' first and last onset
before and after, the end of the last drum bar, and the drum bars that lost their drums.

Runs the commands as a user does (fresh processes, bundled models) on the README's example, the Groove
fixtures and, when present, the real MT3 transcriptions in ../shared/mt3, and prints one row each.

    python benchmarks/drums_in_time.py [FILE.mid ...]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def inputs(argv: list[str]) -> list[Path]:
    if argv:
        return [Path(a) for a in argv]
    found = [ROOT / "examples" / "bantry_lasses.mid", ROOT / "examples" / "drums_mt3.mid"]
    found += sorted(p for p in (ROOT / "tests" / "fixtures" / "groove").rglob("*4-4.mid"))
    mt3 = ROOT.parent / "shared" / "mt3" / "multi_instrument_vivalavida.mid"
    return found + ([mt3] if mt3.is_file() else [])


def main() -> None:
    from generation.io.readers import read_music_file
    from generation.transcription import analyse

    print(f"{'piece':<36} {'command':<9} {'drums in (s)':>15} {'drums out (s)':>15} {'last bar ends':>13} "
          f"{'16th':>6} {'bars in/with drums out':>22}")
    with tempfile.TemporaryDirectory() as folder:
        for path in inputs(sys.argv[1:]):
            original = read_music_file(path).sequences[0]
            analysis = analyse(original)
            step = analysis.bar_seconds / 16

            def bars_of(sequence) -> set[int]:
                return {int(np.floor((analysis.to_grid(n.start_time) + step / 2) / analysis.bar_seconds))
                        for n in sequence.notes if n.is_drum}

            before = sorted(n.start_time for n in original.notes if n.is_drum)
            bars = bars_of(original)
            last_bar_end = float(analysis.from_grid((max(bars) + 1) * analysis.bar_seconds))
            for command in (["humanize", "groove-humanize"], ["vary"]):
                out = Path(folder) / f"{path.stem}-{command[0]}.mid"
                args = [sys.executable, "-m", "cli", *command, str(path), "-o", str(out), "--force"]
                done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
                if done.returncode:
                    print(f"{path.name[:36]:<36} {command[0]:<9} failed: {done.stderr.strip()}")
                    continue
                after = sorted(n.start_time for n in read_music_file(out).sequences[0].notes if n.is_drum)
                kept = len(bars & bars_of(read_music_file(out).sequences[0]))
                print(f"{path.name[:36]:<36} {command[0]:<9} {before[0]:6.2f}-{before[-1]:7.2f} "
                      f"{after[0]:6.2f}-{after[-1]:7.2f} {last_bar_end:13.2f} {step:6.3f} {kept:>11}/{len(bars)}")


if __name__ == "__main__":
    main()
