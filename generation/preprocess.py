"""Folders of music files -> TFRecord files of NoteSequences (what `gen preprocess` runs).

Files are read in worker processes and written by this process in sorted path order, so the output
does not depend on the number of jobs. A bad file is skipped with its reason; the run fails only if
nothing could be converted or an output cannot be written. Every output is written under a
temporary name and renamed when the whole run has succeeded.

Splits: with `metadata` (a CSV in the Groove MIDI Dataset's `info.csv` form) each listed file goes
to the split its `split` column names, and its other columns are kept in the sequence (see
`generation.metadata`); with `split_fractions` each sequence goes to a split chosen by a hash of its
id, stable when files are added; otherwise all go to one file.

Duplicates: a sequence whose musical content (everything but id, filename and collection) equals
an earlier one is written once. With metadata, two rows of the CSV are two entries of the dataset
even when their files are identical; they are both kept and reported.

`generation.beam` runs the same steps as an Apache Beam pipeline: it shares the planning
(`start_run`), the conversion (`convert_file`), the duplicate rule (`DuplicateRule`), the split and
shard of each sequence (`destination`) and the report's shape, so both write the same records.
"""

from __future__ import annotations

import csv
import hashlib
import multiprocessing
import os
import re
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from generation.errors import BadInputFile, GenError, NoExamplesError, OutputError
from generation.io.readers import MUSIC_SUFFIXES, count_abc_tunes, read_music_file
from generation.io.tfrecord import TFRecordWriter
from generation.metadata import set_metadata
from generation.protos import NoteSequence

FILENAME_COLUMNS = ("midi_filename", "filename")
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")

Metadata = tuple[tuple[str, str], ...]  # a metadata row's (column, value) pairs, in the CSV's order


@dataclass(frozen=True)
class Task:
    """One input file and what its sequences are called and carry."""

    path: Path
    filename: str  # relative to the collection's root, as recorded in the sequence
    collection_name: str
    metadata: Metadata = ()
    split: str | None = None
    units: int = 1  # units of work, for progress: the tunes of an ABC tunebook, else 1


class Record(NamedTuple):
    serialized: bytes  # a NoteSequence
    content_hash: str  # sha1 of the sequence without id, filename and collection
    sequence_id: str
    notes: int


@dataclass
class FileResult:
    path: Path
    records: list[Record]
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class PreprocessReport:
    """What a run did. `skipped` and `warnings` hold (file, reason) pairs; counts are per output file."""

    files_seen: int = 0
    files_converted: int = 0
    sequences_written: dict[str, int] = field(default_factory=dict)
    notes_written: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    duplicates_dropped: list[tuple[str, str]] = field(default_factory=list)  # (file, file it repeats)
    duplicates_kept: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total_sequences(self) -> int:
        return sum(self.sequences_written.values())


def output_paths(output: str | os.PathLike[str], splits: Iterable[str | None]) -> dict[str | None, Path]:
    """`data/groove` -> data/groove.tfrecord, or data/groove-<split>.tfrecord per split."""
    output = Path(output)
    prefix = output.with_suffix("") if output.suffix == ".tfrecord" else output
    return {
        split: prefix.with_name(f"{prefix.name}.tfrecord" if split is None else f"{prefix.name}-{split}.tfrecord")
        for split in splits
    }


def shard_paths(output: str | os.PathLike[str], split: str | None, shards: int) -> list[Path]:
    """The `shards` files of one split, in Magenta's and tf.data's naming:
    data/groove-train-00000-of-00004.tfrecord ... (one file, `output_paths`'s, for 1 shard)."""
    single = output_paths(output, [split])[split]
    if shards == 1:
        return [single]
    stem = single.name[: -len(".tfrecord")]
    return [single.with_name(f"{stem}-{k:05d}-of-{shards:05d}.tfrecord") for k in range(shards)]


def shard_of(sequence_id: str, shards: int) -> int:
    """The shard a sequence goes to: by a hash of its id, stable across runs and machines."""
    return zlib.crc32(sequence_id.encode("utf-8")) % shards


def destination(
    listed_split: str | None, sequence_id: str, split_fractions: dict[str, float] | None, shards: int
) -> tuple[str | None, int]:
    """(split, shard) of one sequence: the split its metadata row names, else one drawn by its id
    from `split_fractions`, else None (a single output); the shard by `shard_of`."""
    split = listed_split
    if split is None and split_fractions:
        split = split_by_hash(sequence_id, split_fractions)
    return split, shard_of(sequence_id, shards) if shards > 1 else 0


@dataclass
class DuplicateRule:
    """Which sequences are written. Fed in plan order (file by file, each file's sequences in
    order), the first sequence with given music and metadata is written and later ones are dropped,
    unless `dedup` is off; a written sequence whose music repeats an earlier one's is reported.

    Both maps are keyed by the content hash, so feeding each hash's sequences on their own, in the
    same order, decides exactly as one pass over all of them does: the Beam runner relies on it."""

    dedup: bool = True
    first_seen: dict[tuple[str, Metadata], str] = field(default_factory=dict)
    content_seen: dict[str, str] = field(default_factory=dict)

    def admit(self, path: str, metadata: Metadata, digest: str) -> tuple[bool, str | None]:
        """(write it?, the earlier file with the same music, or None when it is the first)."""
        key = (digest, metadata)
        if self.dedup and key in self.first_seen:
            return False, self.first_seen[key]
        self.first_seen.setdefault(key, path)
        earlier = self.content_seen.get(digest)
        if earlier is None:
            self.content_seen[digest] = path
        return True, earlier


def find_music_files(inputs: Sequence[str | os.PathLike[str]]) -> list[tuple[str, str]]:
    """(file, root) pairs: every music file under each input directory, recursively, plus input files.

    Hidden files and folders (names starting with '.') are passed over in directories; a file named
    directly is taken whatever its suffix, so that a wrong one is reported rather than ignored.
    """
    found: set[tuple[str, str]] = set()
    for given in map(os.fspath, inputs):
        if os.path.isdir(given):
            for directory, subdirectories, files in os.walk(given):
                subdirectories[:] = [d for d in subdirectories if not d.startswith(".")]
                for name in files:
                    if not name.startswith(".") and os.path.splitext(name)[1].lower() in MUSIC_SUFFIXES:
                        found.add((os.path.join(directory, name), given))
        else:
            found.add((given, os.path.dirname(given)))
    return sorted(found)


def load_metadata(metadata_path: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """Rows of an info.csv-style file keyed by the absolute path of the file each row names."""
    metadata_path = Path(metadata_path)
    try:
        with open(metadata_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            filename_column = next((c for c in FILENAME_COLUMNS if c in columns), None)
            if filename_column is None:
                raise BadInputFile(
                    metadata_path,
                    f"no {' or '.join(repr(c) for c in FILENAME_COLUMNS)} column to locate files "
                    f"(columns: {', '.join(columns) or 'none'})",
                )
            rows: dict[str, dict[str, str]] = {}
            for line_number, row in enumerate(reader, start=2):
                name = (row.get(filename_column) or "").strip()
                if not name:
                    raise BadInputFile(metadata_path, f"line {line_number}: empty {filename_column!r}")
                split = (row.get("split") or "").strip()
                if split and not _SPLIT_NAME.match(split):
                    raise BadInputFile(metadata_path, f"line {line_number}: split {split!r} is not a plain name")
                rows[os.path.abspath(metadata_path.parent / name)] = {k: (v or "").strip() for k, v in row.items() if k}
    except FileNotFoundError:
        raise BadInputFile(metadata_path, "no such file") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise BadInputFile(metadata_path, f"not a readable CSV file: {error}") from None
    return rows


def parse_split_fractions(text: str) -> dict[str, float]:
    """'train=0.8,validation=0.1,test=0.1' -> {'train': 0.8, ...}; fractions must sum to 1."""
    fractions: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        name = name.strip()
        try:
            fraction = float(value)
        except ValueError:
            raise GenError(f"--split: {part.strip()!r} is not NAME=FRACTION (e.g. train=0.8)") from None
        if not _SPLIT_NAME.match(name) or not 0 < fraction <= 1:
            raise GenError(f"--split: {part.strip()!r} needs a plain name and a fraction in (0, 1]")
        fractions[name] = fraction
    if abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise GenError(f"--split: fractions sum to {sum(fractions.values()):g}, not 1")
    return fractions


def split_by_hash(sequence_id: str, fractions: dict[str, float]) -> str:
    """A split for `sequence_id` drawn by its hash: stable across runs and when files are added."""
    return split_at(int(hashlib.sha1(sequence_id.encode("utf-8")).hexdigest()[:12], 16) / 16**12, fractions)


def split_at(position: float, fractions: dict[str, float]) -> str:
    """The split whose share of [0, 1), the fractions laid end to end in their order, holds `position`."""
    cumulative = 0.0
    for name, fraction in fractions.items():
        cumulative += fraction
        if position < cumulative:
            return name
    return next(reversed(fractions))


def available_cores() -> int:
    """Cores this process may run on (a container or taskset may allow fewer than the machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def content_hash(serialized_without_names: bytes) -> str:
    return hashlib.sha1(serialized_without_names).hexdigest()


_done_units: Any = None  # a shared counter of units of work done (progress), set in each process that converts


def _start_worker(counter: Any) -> None:
    global _done_units
    _done_units = counter


def _count(units: int) -> None:
    if _done_units is not None and units > 0:
        with _done_units.get_lock():
            _done_units.value += units


def convert_file(task: Task) -> FileResult:
    """Reads one file (in a worker process) into serialized sequences with their content hashes.

    While progress is shown, each ABC tune is counted as it is read, and the rest of the task's
    units when the file is done."""
    counted = 0

    def tune_done() -> None:
        nonlocal counted
        if counted < task.units:
            counted += 1
            _count(1)

    try:
        contents = read_music_file(task.path, collection_name=task.collection_name, filename=task.filename,
                                   on_tune=tune_done if _done_units is not None else None)
    except BadInputFile as error:
        return FileResult(task.path, [], error=error.reason)
    except Exception as error:  # a reader bug must cost one file, not the whole run
        return FileResult(task.path, [], error=f"unexpected {type(error).__name__}: {error}")
    finally:
        _count(task.units - counted)
    records = []
    for sequence in contents.sequences:
        names = NoteSequence(id=sequence.id, filename=sequence.filename, collection_name=sequence.collection_name)
        if task.metadata:
            set_metadata(names, dict(task.metadata))
        sequence.id = sequence.filename = sequence.collection_name = ""
        music = sequence.SerializeToString(deterministic=True)
        # Serialized protobufs concatenate as a merge: the record is the music plus its names and
        # metadata, and the content hash covers exactly the music.
        records.append(Record(music + names.SerializeToString(deterministic=True), content_hash(music), names.id, len(sequence.notes)))
    return FileResult(task.path, records, warnings=contents.warnings)


def _results(tasks: list[Task], jobs: int, counter: Any = None) -> Iterator[FileResult]:
    """Each task's result, in task order. `counter`: a shared value the conversions count their units in."""
    if jobs <= 1 or len(tasks) <= 1:
        _start_worker(counter)
        try:
            yield from map(convert_file, tasks)
        finally:
            _start_worker(None)
        return
    methods = multiprocessing.get_all_start_methods()
    # fork shares the already imported readers (note_seq alone takes over a second to import).
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    chunksize = max(1, min(32, len(tasks) // (jobs * 8)))
    done = 0
    # An executor, not multiprocessing.Pool: a worker killed by a crash in a C parser breaks the
    # executor, where a Pool would wait for the lost task forever.
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_start_worker,
                             initargs=(counter,)) as executor:
        try:
            for result in executor.map(convert_file, tasks, chunksize=chunksize):
                done += 1
                yield result
        except BrokenProcessPool:
            raise GenError(
                f"a worker process died while reading {tasks[done].path} or one of the "
                f"{min(chunksize * jobs, len(tasks) - done) - 1} files after it; rerun those with --jobs 1 to find it"
            ) from None


def _with_units(tasks: list[Task]) -> list[Task]:
    """The tasks with their units of work: each ABC tunebook counts its tunes (O'Neill's 1850 tunes
    are 33 files of up to 100 tunes, some of which take music21 tens of seconds), other files 1."""
    counted = []
    for task in tasks:
        units = 1
        if task.path.suffix.lower() == ".abc":
            try:
                units = max(1, count_abc_tunes(task.path.read_bytes()))
            except OSError:
                pass  # the conversion reports it
        counted.append(replace(task, units=units))
    return counted


@contextmanager
def _follow(counter: Any, tasks: list[Task]) -> Iterator[None]:
    """A bar on standard error of the units the conversions count in `counter` (a thread follows it:
    the workers count each tune as they read it, so the bar moves within a long tunebook)."""
    from generation.progress import bar

    abc = sum(task.path.suffix.lower() == ".abc" for task in tasks)
    unit = "tune" if abc == len(tasks) else "file" if abc == 0 else "piece"  # piece: a file, or a tune of a tunebook
    shown = bar(True, total=sum(task.units for task in tasks), unit=unit, desc="preprocess")
    stop = threading.Event()

    def refresh() -> None:
        while not stop.wait(0.2):
            shown.update(counter.value - shown.n)

    thread = threading.Thread(target=refresh, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        shown.update(counter.value - shown.n)
        shown.close()


def plan_tasks(
    inputs: Sequence[str | os.PathLike[str]], metadata: str | os.PathLike[str] | None, report: PreprocessReport
) -> list[Task]:
    """One task per music file; with metadata, only the files it lists, each with its row."""
    rows = load_metadata(metadata) if metadata is not None else None
    metadata_name = os.path.basename(metadata) if metadata is not None else ""
    metadata_dir = os.path.dirname(os.path.abspath(metadata)) if metadata is not None else ""
    tasks = []
    for path, root in find_music_files(inputs):
        if not os.path.isfile(path):
            report.skipped.append((path, "no such file" if not os.path.exists(path) else "not a file"))
            continue
        collection = os.path.basename(os.path.abspath(root))
        filename = os.path.relpath(path, root) if root else path
        if rows is None:
            tasks.append(Task(Path(path), filename.replace(os.sep, "/"), collection))
            continue
        absolute = os.path.abspath(path)
        row = rows.pop(absolute, None)
        if row is None:
            report.skipped.append((path, f"not listed in {metadata_name}"))
            continue
        # Named as the metadata names it, in the collection the metadata describes (Groove: 'groove').
        if absolute.startswith(metadata_dir + os.sep):
            filename = os.path.relpath(absolute, metadata_dir)
        tasks.append(
            Task(Path(path), filename.replace(os.sep, "/"), os.path.basename(metadata_dir), tuple(row.items()),
                 row.get("split") or None)
        )
    for listed in sorted(rows or ()):
        if not os.path.exists(listed):
            report.skipped.append((listed, f"listed in {metadata_name} but missing"))
    return tasks


def start_run(
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    metadata: str | os.PathLike[str] | None,
    shards: int,
) -> tuple[PreprocessReport, list[Task]]:
    """What every runner does first: the output folder made, the files planned (`plan_tasks`)."""
    if shards < 1:
        raise GenError(f"shards must be at least 1; got {shards}")
    output_dir = Path(output).parent
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{output}: cannot create directory {output_dir}: {error.strerror or error}") from None
    report = PreprocessReport()
    tasks = plan_tasks(inputs, metadata, report)
    report.files_seen = len(tasks) + len(report.skipped)
    return report, tasks


def nothing_converted(report: PreprocessReport) -> NoExamplesError:
    """The error of a run that converted nothing, naming the first file skipped and why."""
    reasons = f"; first: {report.skipped[0][0]}: {report.skipped[0][1]}" if report.skipped else ""
    return NoExamplesError(f"no music converted from {report.files_seen} file(s){reasons}")


def written_splits(counts: dict[tuple[str | None, int], int]) -> list[str | None]:
    """The splits that got a sequence, in output order: each has all its shards, empty or not."""
    return sorted({split for split, _ in counts}, key=str)


def sequences_written(
    output: str | os.PathLike[str], counts: dict[tuple[str | None, int], int], shards: int
) -> dict[str, int]:
    """The report's {output file: sequences} from {(split, shard): sequences}."""
    return {str(path): counts.get((split, shard), 0)
            for split in written_splits(counts)
            for shard, path in enumerate(shard_paths(output, split, shards))}


def preprocess(
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    metadata: str | os.PathLike[str] | None = None,
    split_fractions: dict[str, float] | None = None,
    jobs: int | None = None,
    dedup: bool = True,
    progress: bool = False,
    shards: int = 1,
) -> PreprocessReport:
    """Converts every music file under `inputs` to NoteSequences in TFRecord file(s) named after `output`.

    `shards` > 1 writes each split as that many files (`shard_paths`), every sequence in the one
    its id hashes to (`shard_of`); each file is written under a temporary name, then renamed.

    Returns the report; raises `NoExamplesError` (and writes nothing) when no sequence was
    converted, `OutputError` when an output cannot be written, `BadInputFile` for a bad metadata file.
    """
    started = time.perf_counter()
    report, tasks = start_run(inputs, output, metadata, shards)
    jobs = jobs or available_cores()
    rule = DuplicateRule(dedup)
    counts: dict[tuple[str | None, int], int] = {}

    with ExitStack() as stack:
        writers: dict[str | None, list[TFRecordWriter]] = {}

        def writer_for(split: str | None, shard: int) -> TFRecordWriter:
            if split not in writers:  # every shard of a split exists, empty or not, as readers expect
                writers[split] = [stack.enter_context(TFRecordWriter(path)) for path in shard_paths(output, split, shards)]
            return writers[split][shard]

        counter = None
        if progress:
            tasks = _with_units(tasks)
            counter = multiprocessing.get_context().Value("q", 0)
            stack.enter_context(_follow(counter, tasks))
        results = _results(tasks, jobs, counter)
        for task, result in zip(tasks, results):
            if result.error is not None:
                report.skipped.append((str(task.path), result.error))
                continue
            report.files_converted += 1
            report.warnings.extend((str(task.path), warning) for warning in result.warnings)
            for record in result.records:
                written, earlier = rule.admit(str(task.path), task.metadata, record.content_hash)
                if not written:
                    report.duplicates_dropped.append((str(task.path), earlier))
                    continue
                if earlier is not None:
                    report.duplicates_kept.append((str(task.path), earlier))
                split, shard = destination(task.split, record.sequence_id, split_fractions, shards)
                writer_for(split, shard).write(record.serialized)
                counts[split, shard] = counts.get((split, shard), 0) + 1
                report.notes_written += record.notes
        if not counts:  # no writer was opened, so nothing was written
            raise nothing_converted(report)
    report.sequences_written = sequences_written(output, counts, shards)
    report.seconds = time.perf_counter() - started
    return report
