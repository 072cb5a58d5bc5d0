"""`gen train` in memory and `gen train --stream` on growing corpora: peak memory and time.

The corpus is the committed Groove fixtures' NoteSequences repeated to --records records, as 8
shards. Each run is `gen train --config groovae_tiny --num-steps N` in a fresh process (peak
resident memory from the kernel, wait4's ru_maxrss; seconds to the end, which for the in-memory
path includes converting a whole epoch before the first step). Ratios are against the smallest
corpus of the same path in the same run: the streaming path's memory should stay flat.

    python benchmarks/training_memory.py [--records 500,2000,8000] [--steps 20] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def corpus(folder: Path, records: int, shards: int = 8) -> list[Path]:
    from generation.io.tfrecord import encode_record, read_records
    from generation.preprocess import preprocess

    preprocess([ROOT / "tests" / "fixtures" / "groove"], folder / "fixtures", jobs=1)
    fixtures = list(read_records(folder / "fixtures.tfrecord"))
    paths = [folder / f"corpus-{records}-{k:05d}-of-{shards:05d}.tfrecord" for k in range(shards)]
    for k, path in enumerate(paths):
        with open(path, "wb") as out:
            for index in range(k, records, shards):
                out.write(encode_record(fixtures[index % len(fixtures)]))
    return paths


def run(arguments: list[str]) -> tuple[float, float]:
    """(seconds, peak MB) of `gen ARGUMENTS` in a fresh process."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), *arguments], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        sys.exit(process.stderr.read().decode()[-2000:])
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", default="500,2000,8000")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(n) for n in args.records.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        results: dict[str, list[tuple[float, float]]] = {"in memory": [], "--stream": []}
        for records in sizes:
            paths = corpus(folder, records)
            for path_name in results:
                best = None
                for repeat in range(args.repeats):
                    run_dir = folder / f"run-{records}-{path_name.strip('-')}-{repeat}"
                    command = ["train", "--config", "groovae_tiny", "--run-dir", str(run_dir), "--num-steps",
                               str(args.steps), "--batch-size", "8", "--workers", "1", "--device", "cpu", "-q",
                               "--checkpoint-every", str(args.steps)]
                    command += [a for p in paths for a in ("--examples", str(p))]
                    if path_name == "--stream":
                        command.append("--stream")
                    seconds, mb = run(command)
                    best = (seconds, mb) if best is None else (min(best[0], seconds), min(best[1], mb))
                results[path_name].append(best)
        print(f"gen train --config groovae_tiny, {args.steps} steps of batch 8, 1 worker; best of {args.repeats}")
        print(f"{'records':>8} " + "".join(f"{name:>34}" for name in results))
        for k, records in enumerate(sizes):
            cells = []
            for name, rows in results.items():
                seconds, mb = rows[k]
                cells.append(f"{seconds:6.1f} s {seconds / rows[0][0]:5.1f}x {mb:6.0f} MB {mb / rows[0][1]:4.2f}x")
            print(f"{records:>8} " + "".join(f"{cell:>34}" for cell in cells))


if __name__ == "__main__":
    main()
