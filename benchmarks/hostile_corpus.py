"""Every musician's command over a corpus of hostile, damaged and extreme MIDI files: how each run ends.

Writes the seeded corpus of tests/hostile_corpus.py (truncated and byte-flipped fixtures, tempo 0
and 1 microsecond per quarter, notes past tick 2^28, 500,000 notes, a dense hour, 200 instruments,
broken headers and events, files that are not MIDI, MT3-style transcriptions of 1 to 64 minutes
...) into a temporary folder and runs each command over each file as a user does: `gen` in a
fresh process, its output in a fresh folder (also its working directory), killed with its process
group after --limit-s seconds or once its resident memory passes --limit-mb. Each run ends as one of

    ok             exit 0 and the output written
    refused        a nonzero exit and stderr ends with its one "Error: ..." line (before it only the
                   command's own progress lines: "Models: ...", tqdm bars)
    traceback      "Traceback" on stderr
    timeout        killed at --limit-s
    memory         peak resident memory (wait4's ru_maxrss, polled from /proc too) past --limit-mb
    leftover       a failed run left a file or folder in its output folder (a successful one:
                   anything besides its output)
    multi-line     a nonzero exit whose stderr shows a second Error: line, a Python warning, click's
                   usage text, or no Error: line last
    no-output      exit 0 without the output
    refused-valid  a nonzero exit over a file every command must accept (the MT3-style
                   transcriptions with drums), other than a stated limit's ("raise the limit with
                   GEN_MAX_...": `score` and `render` refuse the 64-minute one)

and the script prints the counts per command, every run that is none of ok and refused with the
command that reproduces it, and per command the slowest runs and the largest peak memories. Its
exit status is 1 when any run failed. Inference runs on one thread (GEN_THREADS unset), so --jobs
above 1 measures less faithfully on a small machine.

    python benchmarks/hostile_corpus.py [--commands continue,vary,humanize,sample,interpolate,tidy,score,plot,render]
        [--size full|sample] [--seed 0] [--limit-s 60] [--limit-mb 2048] [--jobs 1] [--keep DIR] [--only GLOB]
        [--record runs.jsonl]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hostile_corpus import COMMANDS, FAILURES, OUTCOMES, Run, plan, run_one, write_corpus  # noqa: E402


def raised_at(stderr: str) -> str:
    """Where a traceback's exception was raised: its last frame in this repository and its
    innermost frame (when that is in a library), paths shortened."""
    frames = [line.strip() for line in stderr.splitlines() if line.strip().startswith('File "')]

    def short(frame: str) -> str:
        for marker in ("site-packages/", str(ROOT) + "/"):
            if marker in frame:
                return 'File "' + frame[frame.index(marker) + len(marker):]
        return frame

    ours = [f for f in frames if str(ROOT) + "/" in f and "/.venv/" not in f]
    shown = [short(ours[-1])] if ours else []
    if frames and (not ours or frames[-1] != ours[-1]):
        shown.append(short(frames[-1]))
    return " -> ".join(shown)


def table(runs: list[Run], commands: list[str], seconds: dict[str, float]) -> str:
    shown = [o for o in OUTCOMES if any(r.outcome == o for r in runs)] or ["ok"]
    width = max(len(c) for c in commands + ["command"])
    lines = [f"{'command':<{width}}  " + "  ".join(f"{o:>{max(len(o), 5)}}" for o in shown) + "  total  seconds"]
    for command in commands:
        mine = [r for r in runs if r.command == command]
        counts = [sum(r.outcome == o for r in mine) for o in shown]
        lines.append(f"{command:<{width}}  " + "  ".join(f"{n:>{max(len(o), 5)}}" for n, o in zip(counts, shown))
                     + f"  {len(mine):>5}  {seconds.get(command, 0):>7.0f}")
    return "\n".join(lines)


def describe(run: Run) -> str:
    text = (f"{run.outcome:<13} {run.command:<11} {run.file.name}  {run.seconds:.1f} s  {run.peak_mb:.0f} MB  "
            f"exit {run.returncode}\n    last line: {run.last_line[:300]}")
    if run.outcome == "traceback":
        text += f"\n    raised at: {raised_at(run.stderr)}"
    if run.leftovers:
        text += f"\n    left: {', '.join(run.leftovers[:5])}"
    if run.outcome == "multi-line":
        text += "\n    stderr: " + " | ".join(line[:120] for line in run.stderr.strip().splitlines()[:4])
    return text + f"\n    reproduce: {run.reproduce()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", default=",".join(COMMANDS), help="comma-separated, of: " + ", ".join(COMMANDS))
    parser.add_argument("--size", choices=("full", "sample"), default="full")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-s", type=float, default=60.0)
    parser.add_argument("--limit-mb", type=float, default=2048.0)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="write the corpus here and keep it (else a temporary folder)")
    parser.add_argument("--only", help="only the files whose name matches this glob, e.g. 'tempo-*'")
    parser.add_argument("--record", type=Path, help="also write every run as a JSON line here")
    args = parser.parse_args()
    commands = [c.strip() for c in args.commands.split(",") if c.strip()]
    unknown = [c for c in commands if c not in COMMANDS]
    if unknown:
        parser.error(f"unknown command(s) {', '.join(unknown)}; choose from {', '.join(COMMANDS)}")

    with tempfile.TemporaryDirectory(prefix="hostile-") as scratch:
        folder = args.keep or Path(scratch) / "corpus"
        started = time.perf_counter()
        files = write_corpus(folder, seed=args.seed, size=args.size)
        written = time.perf_counter() - started
        must_accept = {e.name for e in plan(args.size, args.seed) if e.must_accept}
        if args.only:
            files = [f for f in files if fnmatch.fnmatch(f.name, args.only)]
        megabytes = sum(f.stat().st_size for f in files) / 1e6
        print(f"{len(files)} files ({args.size} corpus, seed {args.seed}, {megabytes:.1f} MB, "
              f"written in {written:.1f} s to {folder}); limits {args.limit_s:g} s and {args.limit_mb:g} MB; "
              f"{args.jobs} job(s)", flush=True)
        work = Path(scratch) / "runs"
        work.mkdir()
        runs: list[Run] = []
        seconds: dict[str, float] = {}
        record = args.record.open("w") if args.record else None
        for command in commands:
            began = time.perf_counter()

            def one(file: Path) -> Run:
                return run_one(command, file, work, args.limit_s, args.limit_mb, file.name in must_accept)

            with ThreadPoolExecutor(max(1, args.jobs)) as pool:
                for k, run in enumerate(pool.map(one, files), 1):
                    runs.append(run)
                    if run.outcome in FAILURES:
                        print(f"  [{command} {k}/{len(files)}] {run.outcome}: {run.file.name} ({run.seconds:.1f} s, "
                              f"{run.peak_mb:.0f} MB): {run.last_line[:160]}", flush=True)
                    if record:
                        record.write(json.dumps({"command": command, "file": run.file.name, "outcome": run.outcome,
                                                 "seconds": round(run.seconds, 3), "peak_mb": round(run.peak_mb, 1),
                                                 "returncode": run.returncode, "stderr": run.stderr[-4000:],
                                                 "leftovers": run.leftovers, "argv": run.reproduce()}) + "\n")
                        record.flush()
            seconds[command] = time.perf_counter() - began
            print(f"{command}: {len(files)} runs in {seconds[command]:.0f} s", flush=True)
        if record:
            record.close()

        print("\nOutcomes per command\n" + table(runs, commands, seconds))
        failed = [r for r in runs if r.outcome in FAILURES]
        kept = "" if args.keep else " (the corpus is deleted on exit: --keep DIR keeps the files named below)"
        print(f"\nFailed runs: {len(failed)}{kept}")
        for run in sorted(failed, key=lambda r: (FAILURES.index(r.outcome), r.command, r.file.name)):
            print(describe(run))
        for command in commands:
            mine = [r for r in runs if r.command == command]
            print(f"\n{command}: slowest runs")
            for run in sorted(mine, key=lambda r: -r.seconds)[:5]:
                print(f"  {run.seconds:7.1f} s  {run.outcome:<10} {run.file.name}")
            print(f"{command}: largest peak memory")
            for run in sorted(mine, key=lambda r: -r.peak_mb)[:5]:
                print(f"  {run.peak_mb:7.0f} MB {run.outcome:<10} {run.file.name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
