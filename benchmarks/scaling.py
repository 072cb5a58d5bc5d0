"""How the musician's commands grow with the piece: seconds and peak memory on 1, 4, 16 and 64
minutes of one multi-instrument MT3-style transcription.

The piece is `continue_speed.py`'s: the committed multi-track fixture (drums, bass, chords, lead)
repeated to length and written as MT3 writes MIDI. Each command runs as a user runs it, in a fresh
process (interpreter start and imports included), with the bundled models; its peak resident
memory comes from the kernel (`wait4`'s ru_maxrss). Beside each figure is its ratio to the
1-minute run of the same command in the same run: work that grows linearly with the piece gives
about 64x at 64 minutes, less where start-up dominates.

    python benchmarks/scaling.py [--minutes 1,4,16,64] [--commands continue,vary,...] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from continue_speed import long_transcription  # noqa: E402

COMMANDS = {
    "continue": lambda song, out: ["continue", song, "-o", out / "out.mid", "--bars", "8"],
    "vary": lambda song, out: ["vary", song, "-o", out / "out.mid"],
    "humanize": lambda song, out: ["humanize", "groove-humanize", song, "-o", out / "out.mid"],
    "sample --primer": lambda song, out: ["sample", "folk-melody", "--primer", song, "-n", "1", "--seconds", "10",
                                          "-o", out / "samples"],
    "interpolate": lambda song, out: ["interpolate", "groove-4bar", song, song, "-o", out / "out.mid"],
    "tidy": lambda song, out: ["tidy", song, "-o", out / "out.mid"],
    "score": lambda song, out: ["score", song, "-o", out / "out.musicxml"],
    "plot": lambda song, out: ["plot", song, "-o", out / "out.png"],
    "render": lambda song, out: ["render", song, "-o", out / "out.wav"],
}


def run(arguments: list, limit_s: float) -> tuple[float, float, int, str]:
    """(seconds, peak MB, exit status, last stderr line) of `gen ARGUMENTS` in a fresh process."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "cli", *map(str, arguments)], cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True)
        deadline = started + limit_s
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(process.pid, signal.SIGKILL)
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        errors.seek(0)
        lines = [line for line in errors.read().decode(errors="replace").splitlines() if line.strip()]
    process.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss / 1024, process.returncode, lines[-1] if lines else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", default="1,4,16,64")
    parser.add_argument("--commands", default=",".join(COMMANDS))
    parser.add_argument("--repeats", type=int, default=1, help="runs per command and length; the best is shown")
    parser.add_argument("--limit-s", type=float, default=600)
    args = parser.parse_args()
    lengths = [float(m) for m in args.minutes.split(",")]
    commands = [c.strip() for c in args.commands.split(",")]
    unknown = set(commands) - set(COMMANDS)
    if unknown:
        parser.error(f"unknown commands {sorted(unknown)}; known: {', '.join(COMMANDS)}")
    with tempfile.TemporaryDirectory() as folder:
        songs = {}
        for minutes in lengths:
            songs[minutes] = Path(folder) / f"transcription-{minutes:g}min.mid"
            songs[minutes].write_bytes(long_transcription(minutes))
        print(f"{'command':<16}" + "".join(f"{f'{m:g} min':>26}" for m in lengths))
        for command in commands:
            cells, first = [], None
            for minutes in lengths:
                best = None
                for _ in range(args.repeats):
                    out = Path(tempfile.mkdtemp(dir=folder))
                    seconds, mb, status, last = run(COMMANDS[command](songs[minutes], out), args.limit_s)
                    if status:
                        cells.append(f"exit {status}: {last[:60]}")
                        break
                    best = (seconds, mb) if best is None else (min(best[0], seconds), max(best[1], mb))
                if best is None:
                    continue
                first = first or best
                cells.append(f"{best[0]:6.1f} s {best[0] / first[0]:4.1f}x {best[1]:5.0f} MB {best[1] / first[1]:3.1f}x")
            print(f"{command:<16}" + "".join(f"{cell:>26}" for cell in cells), flush=True)


if __name__ == "__main__":
    main()
