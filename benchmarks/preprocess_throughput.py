"""MIDI -> NoteSequence -> TFRecord throughput: `gen preprocess` against Magenta's path, same files, same run.

    python benchmarks/preprocess_throughput.py [--dataset ../shared/datasets/groove] [--repeats 3]

Magenta's path is what `convert_dir_to_note_sequences` does per file, in one process:
`note_seq.midi_file_to_note_sequence`, Magenta's id/filename/collection, serialize, write a record
(our TFRecordWriter, as TensorFlow is not installed; both sides pay the same framing cost).
`gen preprocess` is timed in process (imports excluded on both sides) with --jobs 1 and --jobs 2,
best of --repeats runs, and once as a whole command (interpreter start and imports included).
Then every file's notes are compared between the two outputs.
"""

from __future__ import annotations

import argparse
import os
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
        timings = {}
        for jobs in (1, 2):
            best = float("inf")
            for _ in range(args.repeats):
                report = preprocess([root], scratch / f"gen-j{jobs}", jobs=jobs, dedup=False)
                best = min(best, report.seconds)
            timings[jobs] = best
        notes = report.notes_written
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, str(REPO / "cli.py"), "preprocess", str(root), "-o", str(scratch / "cmd"), "-j", "2", "-q",
             "--keep-duplicates"], check=True, capture_output=True,
        )
        command_seconds = time.perf_counter() - started
        theirs = notes_by_file(scratch / "magenta.tfrecord")
        ours = notes_by_file(scratch / "gen-j2.tfrecord")
        identical = sum(ours.get(name) == counted for name, counted in theirs.items())

    count = len(files)
    print(f"Groove MIDI Dataset: {count} MIDI files, {notes:,} notes; {os.cpu_count()} CPU cores")
    print(f"{'path':<44} {'seconds':>8} {'files/s':>9} {'notes/s':>11} {'vs Magenta':>10}")
    rows = [("Magenta: note_seq + serialize + write, 1 proc", reference_seconds)]
    rows += [(f"gen preprocess --jobs {jobs} (in process, best of {args.repeats})", timings[jobs]) for jobs in (1, 2)]
    rows += [("gen preprocess --jobs 2 (whole command)", command_seconds)]
    for label, seconds in rows:
        print(f"{label:<44} {seconds:8.2f} {count / seconds:9,.0f} {notes / seconds:11,.0f} {reference_seconds / seconds:9.1f}x")
    print(f"identical notes (pitch, velocity, start, end, instrument, program, drum): {identical} of {len(theirs)} files")


if __name__ == "__main__":
    main()
