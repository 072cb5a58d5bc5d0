"""Inference time of the bundled models at torch.set_num_threads(1) against 2, idle and under load.

For each bundled model (LSTMs `folk-melody` 2x128, `chorale-polyphony` 3x256, `groove-drums` 2x256;
GrooVAEs `groove-4bar` and `groove-humanize`) times one generation call at 1 and at 2 torch
threads, alternating, `--repeats` times each, in one process:
- idle: nothing else started by this script (other processes on the machine are not controlled;
  the load average is printed with each phase),
- loaded: with `--spinners` background processes each spinning a core (`while True: pass`), killed
  at the end of the phase (they also die on their own after `--spin-seconds`); 0 skips this phase.
Prints min-max seconds per thread count and the ratio of 1-thread to 2-thread time (median of the
pairs measured back to back; < 1 means one thread is faster). With `--continue`, also times
`gen continue` end to end (benchmarks/continue_speed.py's 4-minute piece) with OMP_NUM_THREADS=1
and 2, idle and loaded.

    python benchmarks/inference_threads.py [--repeats 3] [--steps 32] [--spinners 1] [--continue | --only-continue]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPIN = "import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass\n"


def workloads(steps: int) -> list[tuple[str, Callable[[], object]]]:
    """(label, call) for each bundled model: what `gen sample` / `gen continue` / `gen vary` run."""
    import torch  # noqa: F401

    from generation.io.readers import read_music_file
    from generation.lstm import LSTMModel
    from generation.music_vae import tasks
    from generation.music_vae.trained_model import TrainedModel

    funk = read_music_file(ROOT / "tests" / "fixtures" / "groove" / "drummer1" / "eval_session"
                           / "1_funk-groove1_138_beat_4-4.mid").sequences[0]
    jobs: list[tuple[str, Callable[[], object]]] = []
    for name in ("folk-melody", "chorale-polyphony", "groove-drums"):
        model = LSTMModel(name)
        jobs.append((f"{name} sample n=1, {steps} steps", lambda m=model: m.sample(1, num_steps=steps, seed=1)))
        jobs.append((f"{name} sample n=16, {steps} steps", lambda m=model: m.sample(16, num_steps=steps, seed=1)))
    groove = TrainedModel(config=None, batch_size=64, checkpoint_dir_or_path="groove-4bar")
    jobs.append(("groove-4bar sample n=1", lambda: groove.sample(n=1, length=64, seed=1)))
    jobs.append(("groove-4bar sample n=64", lambda: groove.sample(n=64, length=64, seed=1)))
    jobs.append(("groove-4bar regroove funk (30 s)", lambda: tasks.regroove(groove, funk, seed=1)))
    human = TrainedModel(config=None, batch_size=64, checkpoint_dir_or_path="groove-humanize", given_hits=True)
    jobs.append(("groove-humanize humanize funk (30 s)", lambda: tasks.humanize(human, funk, seed=1)))
    return jobs


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def start_spinners(count: int, seconds: float) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=seconds)]) for _ in range(count)]


def stop(spinners: list[subprocess.Popen]) -> None:
    for process in spinners:
        process.kill()
        process.wait()


def measure(jobs, repeats: int) -> dict[str, dict[int, list[float]]]:
    import torch

    times: dict[str, dict[int, list[float]]] = {}
    for label, call in jobs:
        times[label] = {1: [], 2: []}
        for threads in (1, 2):  # warm up both (first calls allocate and pick kernels)
            torch.set_num_threads(threads)
            call()
        for _ in range(repeats):
            for threads in (1, 2):
                torch.set_num_threads(threads)
                started = time.perf_counter()
                call()
                times[label][threads].append(time.perf_counter() - started)
    return times


def report(phase: str, times: dict[str, dict[int, list[float]]]) -> None:
    print(f"\n{phase}")
    print(f"  {'workload':40s} {'1 thread (s)':>16s} {'2 threads (s)':>16s} {'1t/2t':>6s}")
    for label, by in times.items():
        ratio = statistics.median(a / b for a, b in zip(by[1], by[2]))
        spread = {k: f"{min(v):.3f}-{max(v):.3f}" for k, v in by.items()}
        print(f"  {label:40s} {spread[1]:>16s} {spread[2]:>16s} {ratio:6.2f}")


def continue_end_to_end(repeats: int) -> dict[str, list[float]]:
    from benchmarks.continue_speed import long_transcription

    results: dict[str, list[float]] = {"1": [], "2": [], "unset": []}
    with tempfile.TemporaryDirectory() as folder:
        song = Path(folder) / "transcription.mid"
        song.write_bytes(long_transcription(4.0))
        for repeat in range(repeats):
            for threads in results:  # "unset": neither OMP_NUM_THREADS nor GEN_THREADS (generation/threads.py's choice)
                out = Path(folder) / f"out-{repeat}-{threads}.mid"  # a new file each run (gen refuses to overwrite)
                command = [sys.executable, "-m", "cli", "continue", str(song), "-o", str(out), "--bars", "8",
                           "--seed", "1"]
                env = {k: v for k, v in os.environ.items() if k not in ("GEN_THREADS", "OMP_NUM_THREADS")}
                env |= {} if threads == "unset" else {"OMP_NUM_THREADS": threads}
                started = time.perf_counter()
                done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
                results[threads].append(time.perf_counter() - started)
                if done.returncode:
                    sys.exit(done.stderr)
    return results


def report_continue(phase: str, results: dict[str, list[float]]) -> None:
    ratio = statistics.median(a / b for a, b in zip(results["1"], results["2"]))
    spread = {k: f"{min(v):.2f}-{max(v):.2f} s" for k, v in results.items()}
    print(f"  gen continue, 4-minute piece, 8 bars ({phase}): OMP_NUM_THREADS=1 {spread['1']}, =2 {spread['2']}, "
          f"unset {spread['unset']}; 1t/2t {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=32, help="LSTM steps per sample (16 per 4/4 bar)")
    parser.add_argument("--spinners", type=int, default=1, help="background processes spinning a core each")
    parser.add_argument("--spin-seconds", type=float, default=600.0, help="upper bound on a spinner's life")
    parser.add_argument("--continue", dest="end_to_end", action="store_true", help="also time gen continue")
    parser.add_argument("--only-continue", action="store_true", help="time gen continue only")
    parser.add_argument("--continue-repeats", type=int, default=1)
    args = parser.parse_args()
    os.environ.pop("GEN_THREADS", None)
    import torch

    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, torch default threads {torch.get_num_threads()}")
    print(f"load average before (1, 5, 15 min): {load_average()}")
    if not args.only_continue:
        jobs = workloads(args.steps)
        idle = measure(jobs, args.repeats)
        report(f"idle (no spinner; load average after: {load_average()})", idle)
        if args.spinners:
            spinners = start_spinners(args.spinners, args.spin_seconds)
            try:
                time.sleep(1.0)
                loaded = measure(jobs, args.repeats)
                report(f"loaded ({args.spinners} spinner(s); load average after: {load_average()})", loaded)
            finally:
                stop(spinners)
    if args.end_to_end or args.only_continue:
        print()
        report_continue(f"idle; load average after: {load_average()}", continue_end_to_end(args.continue_repeats))
        if args.spinners:
            spinners = start_spinners(args.spinners, args.spin_seconds)
            try:
                results = continue_end_to_end(args.continue_repeats)
                report_continue(f"{args.spinners} spinner(s); load average after: {load_average()}", results)
            finally:
                stop(spinners)


if __name__ == "__main__":
    main()
