"""MIDI -> NoteSequence -> TFRecord throughput: `gen preprocess` against Magenta's path, same files, same run.

    python benchmarks/preprocess_throughput.py [--dataset ../shared/datasets/groove] [--repeats 3]
        [--beam-runners BundleBasedDirectRunner,FnApiRunner]

Magenta's path is what `convert_dir_to_note_sequences` does per file, in one process:
`note_seq.midi_file_to_note_sequence`, Magenta's id/filename/collection, serialize, write a record
(our TFRecordWriter, as TensorFlow is not installed; both sides pay the same framing cost).
`gen preprocess` is timed in process (imports excluded on both sides) with --jobs 1 and --jobs 2,
best of --repeats runs, and once as a whole command (interpreter start and imports included).
Then every file's notes are compared between the two outputs.

With Apache Beam installed (`pip install '.[beam]'`), `gen preprocess --runner beam` is timed the
same way (in process, --repeats runs) on each of --beam-runners, Beam's runners in this process:
BundleBasedDirectRunner is its default here, FnApiRunner what Beam's DirectRunner falls back to for
a batch job when it cannot start Prism. Its output is compared with the local path's, byte for byte.
Each timed row gives the best and the median of its runs, and the spread (slowest / fastest).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_DATASET = REPO.parent / "shared" / "datasets" / "groove"


def magenta_path(files: list[Path], root: Path, output: Path) -> float:
    from note_seq import midi_io

    from generation.io.readers import generate_note_sequence_id
    from generation.io.tfrecord import TFRecordWriter

    started = time.perf_counter()
    with TFRecordWriter(output) as writer:
        for path in files:
            sequence = midi_io.midi_file_to_note_sequence(str(path))
            sequence.collection_name = root.name
            sequence.filename = path.relative_to(root).as_posix()
            sequence.id = generate_note_sequence_id(sequence.filename, sequence.collection_name, "midi")
            writer.write(sequence.SerializeToString())
    return time.perf_counter() - started


def notes_by_file(path: Path) -> dict[str, Counter]:
    from generation.io.tfrecord import read_records
    from generation.protos import NoteSequence

    result = {}
    for record in read_records(path):
        sequence = NoteSequence.FromString(record)
        result[sequence.filename] = Counter(
            (n.instrument, n.program, n.is_drum, n.pitch, n.velocity, n.start_time, n.end_time) for n in sequence.notes
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--beam-runners", default="BundleBasedDirectRunner,FnApiRunner",
                        help="comma-separated Beam runners to time; empty: none")
    args = parser.parse_args()
    if not (args.dataset / "info.csv").exists():
        sys.exit(f"benchmark needs the Groove MIDI Dataset: {args.dataset} has no info.csv")
    warnings.simplefilter("ignore")
    from generation.preprocess import preprocess

    root = args.dataset
    files = sorted(root.rglob("*.mid"))
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        reference_seconds = magenta_path(files, root, scratch / "magenta.tfrecord")
        runs: dict[str, list[float]] = {}
        for jobs in (1, 2):
            runs[f"gen preprocess --jobs {jobs} (in process)"] = seconds = []
            for _ in range(args.repeats):
                report = preprocess([root], scratch / f"gen-j{jobs}" / "groove", jobs=jobs, dedup=False)
                seconds.append(report.seconds)
        notes = report.notes_written
        beam_runners = [name for name in args.beam_runners.split(",") if name]
        beam_identical: dict[str, bool] = {}
        beam_missing = None
        from generation.beam import beam_preprocess, pipeline_options
        from generation.errors import GenError

        try:
            pipeline_options([])  # imports Beam before the clock starts, as the local path's readers are
        except GenError:
            beam_missing, beam_runners = "Apache Beam not installed (pip install '.[beam]'): no Beam rows", []
        for runner in beam_runners:
            runs[f"gen preprocess --runner beam ({runner})"] = seconds = []
            for repeat in range(args.repeats):
                folder = scratch / f"beam-{runner}-{repeat}"
                report = beam_preprocess([root], folder / "groove", dedup=False, pipeline_args=[f"--runner={runner}"])
                seconds.append(report.seconds)
                local = scratch / "gen-j2"
                beam_identical[runner] = beam_identical.get(runner, True) and sorted(os.listdir(folder)) == sorted(
                    os.listdir(local)) and all(filecmp.cmp(folder / name, local / name, shallow=False)
                                               for name in os.listdir(local))
                shutil.rmtree(folder)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, str(REPO / "cli.py"), "preprocess", str(root), "-o", str(scratch / "cmd"), "-j", "2", "-q",
             "--keep-duplicates"], check=True, capture_output=True,
        )
        command_seconds = time.perf_counter() - started
        theirs = notes_by_file(scratch / "magenta.tfrecord")
        ours = notes_by_file(scratch / "gen-j2" / "groove.tfrecord")
        identical = sum(ours.get(name) == counted for name, counted in theirs.items())

    count = len(files)
    print(f"Groove MIDI Dataset: {count} MIDI files, {notes:,} notes; {os.cpu_count()} CPU cores")
    print(f"{'path':<64} {'seconds':>8} {'files/s':>9} {'median':>7} {'spread':>7} {'notes/s':>11} {'vs Magenta':>10}")
    rows = [("Magenta: note_seq + serialize + write, 1 proc", [reference_seconds])]
    rows += list(runs.items())
    rows += [("gen preprocess --jobs 2 (whole command)", [command_seconds])]
    for label, seconds in rows:
        best = min(seconds)
        timed = f"{count / statistics.median(seconds):7,.0f} {max(seconds) / best:6.2f}x" if len(seconds) > 1 else " " * 15
        label += f", best of {len(seconds)}" if len(seconds) > 1 else ""
        print(f"{label:<64} {best:8.2f} {count / best:9,.0f} {timed} {notes / best:11,.0f} "
              f"{reference_seconds / best:9.1f}x")
    print(f"identical notes (pitch, velocity, start, end, instrument, program, drum): {identical} of {len(theirs)} files")
    for runner, same in beam_identical.items():
        print(f"Beam on {runner}: output {'byte-identical to' if same else 'DIFFERENT from'} the local path's, every run")
    if beam_missing:
        print(beam_missing)


if __name__ == "__main__":
    main()
