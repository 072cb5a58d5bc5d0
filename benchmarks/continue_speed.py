"""`gen continue` end to end on a 4-minute multi-instrument MT3-style transcription.

Builds the piece from the committed multi-track fixture (drums, bass, chords, lead; repeated to 4
minutes and written as MT3 writes MIDI: 120 bpm, 4/4, 220 ticks per quarter, velocity 127), then
times the whole command in a fresh process (interpreter start and imports included), as a user
runs it, and prints the seconds (best and spread over --repeats runs) beside the track-by-track
continuation (--style models) timed in the same run, and the command's own report. With no --model it uses the bundled
default models, as `gen continue song.mid` does.

    python benchmarks/continue_speed.py [--model drums=runs/drums ...] [--minutes 4] [--bars 8]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def long_transcription(minutes: float) -> bytes:
    sys.path.insert(0, str(ROOT))
    from generation.io.readers import read_music_file
    from generation.protos import NoteSequence
    from generation.transcription import mt3_style_midi

    part = read_music_file(ROOT / "tests" / "fixtures" / "multitrack" / "pop_arrangement.mid").sequences[0]
    length = 4 * 60 / part.tempos[0].qpm * round(part.total_time / (4 * 60 / part.tempos[0].qpm))
    piece = NoteSequence()
    repeats = int(minutes * 60 // length)
    for k in range(repeats):
        for note in part.notes:
            added = piece.notes.add()
            added.CopyFrom(note)
            added.start_time += k * length
            added.end_time += k * length
    return mt3_style_midi(piece)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], metavar="ROLE=RUN_DIR")
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        song = Path(folder) / "transcription.mid"
        song.write_bytes(long_transcription(args.minutes))
        base = [sys.executable, "-m", "cli", "continue", str(song), "-o", str(Path(folder) / "out.mid"), "--force",
                "--bars", str(args.bars), "--seed", "1"] + [a for m in args.model for a in ("--model", m)]
        times: dict[str, list[float]] = {"piece": [], "models": []}
        output = ""
        for _ in range(args.repeats):
            for style in times:  # interleaved, so that the machine's drift touches both alike
                started = time.perf_counter()
                done = subprocess.run(base + ["--style", style], capture_output=True, text=True, cwd=ROOT)
                times[style].append(time.perf_counter() - started)
                if done.returncode:
                    sys.exit(done.stderr)
                if style == "piece":
                    output = done.stdout
    piece, models = times["piece"], times["models"]
    print(f"gen continue on a {args.minutes:g}-minute MT3-style transcription, {args.bars} bars, {args.repeats} runs each:")
    print(f"  default (--style piece): best {min(piece):.2f} s, spread {min(piece):.2f}-{max(piece):.2f} s")
    print(f"  reference (--style models, track by track): best {min(models):.2f} s, spread {min(models):.2f}-{max(models):.2f} s")
    print(f"  ratio default / reference (best of each): {min(piece) / min(models):.2f}")
    print(output.rstrip())


if __name__ == "__main__":
    main()
