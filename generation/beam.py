"""`gen preprocess` as an Apache Beam pipeline (`pip install '.[beam]'`), for Dataflow, Flink or Spark.

    gen preprocess DIR... -o OUTPUT --runner beam [-- BEAM PIPELINE OPTIONS]
    python -m generation.beam DIR... -o OUTPUT [gen's options] [BEAM PIPELINE OPTIONS]

It writes the same records as the local path (`generation.preprocess.preprocess`), shard for shard
and in the same order, and the same report. The launching process plans the files as the local path
does and writes the plan to a hidden file. The pipeline converts each file (`convert_file`), groups
the sequences by content hash to apply the local path's `DuplicateRule` to each group in plan
order, sends each written sequence to its split and shard (`destination`), sorts every shard back
into plan order and writes it under a hidden temporary name, with a summary of what each step did.
When the pipeline has finished, the launching process reads the summary, builds the report and
renames the shards onto their names; a failed run leaves no file behind.

Inputs and the output folder are plain paths: every worker must see them at the same path (on one
machine with the direct runner; on a cluster, a file system every worker mounts).

Without `--runner` among the pipeline options the pipeline runs on Beam's classic
BundleBasedDirectRunner in this process: Beam's `DirectRunner` would first try to start its Prism
runner, which downloads a binary (and falls back when it cannot), so which runner ran would depend
on the network.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from generation.errors import GenError
from generation.io.files import atomic_output, cannot_write
from generation.io.tfrecord import TFRecordWriter
from generation.preprocess import (
    DuplicateRule,
    PreprocessReport,
    Task,
    convert_file,
    destination,
    nothing_converted,
    sequences_written,
    shard_paths,
    start_run,
    written_splits,
)

DEFAULT_RUNNER = "BundleBasedDirectRunner"
INSTALL_HINT = "the Beam runner needs Apache Beam: pip install 'gen-music[beam]' (or pip install -e '.[beam]')"

# What travels between the steps after the plan, as plain tuples:
#   a sequence:  (file index, sequence index in its file, file path, metadata, listed split,
#                 serialized NoteSequence, sequence id, notes)
#   a summary line, one of
#     ("file", file index, error or None, [warnings])
#     ("dropped" | "kept", file index, sequence index, file path, earlier file path)
#     ("shard", split, shard, sequences, notes)


def _beam() -> Any:
    # Without apache-beam[gcp], importing Beam logs that BigQuery's client is missing: nothing here uses it.
    logging.disable(logging.WARNING)
    try:
        import apache_beam
    except ImportError:
        raise GenError(INSTALL_HINT) from None
    finally:
        logging.disable(logging.NOTSET)
    return apache_beam


@contextmanager
def _quiet_if_local(options: Any) -> Iterator[None]:
    """On a runner in this process, Beam's own log (each failed try of a step, with its traceback)
    is held back: a failure still ends the run with its message and the step it happened in. On a
    cluster the log is the job's progress and stays."""
    from apache_beam.options.pipeline_options import StandardOptions

    runner = options.view_as(StandardOptions).runner
    if runner not in StandardOptions.LOCAL_RUNNERS:
        yield
        return
    log = logging.getLogger("apache_beam")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def staged_path(final: str | os.PathLike[str], run_id: str) -> Path:
    """The hidden name a shard is written under by run `run_id` until the run has succeeded."""
    final = Path(final)
    return final.with_name(f".{final.name}.beam-{run_id}")


def summary_path(output: str | os.PathLike[str], run_id: str) -> Path:
    output = Path(output)
    return output.with_name(f".{output.name}.beam-{run_id}.summary.json")


def plan_path(output: str | os.PathLike[str], run_id: str) -> Path:
    output = Path(output)
    return output.with_name(f".{output.name}.beam-{run_id}.plan.jsonl")


def write_plan(tasks: list[Task], path: str | os.PathLike[str]) -> None:
    """The tasks, one JSON line each with its index: the pipeline reads them from this file rather
    than carrying them in its own description (which Dataflow caps at a few megabytes)."""
    with atomic_output(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        for index, task in enumerate(tasks):
            handle.write(json.dumps([index, str(task.path), task.filename, task.collection_name,
                                     task.metadata, task.split]) + "\n")


def read_plan(path: str) -> Iterator[tuple[int, Task]]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            index, name, filename, collection_name, metadata, split = json.loads(line)
            yield index, Task(Path(name), filename, collection_name, tuple(map(tuple, metadata)), split)


def convert_task(indexed: tuple[int, Task]) -> Iterator[tuple[str, Any]]:
    """One file -> ("summary", its outcome) and ("sequence", (content hash, sequence)) per sequence."""
    index, task = indexed
    result = convert_file(task)
    yield "summary", ("file", index, result.error, list(result.warnings))
    for position, record in enumerate(result.records):
        yield "sequence", (record.content_hash, (index, position, str(task.path), task.metadata, task.split,
                                                 record.serialized, record.sequence_id, record.notes))


def apply_duplicate_rule(
    group: tuple[str, Iterable[tuple]], dedup: bool, split_fractions: dict[str, float] | None, shards: int
) -> Iterator[tuple[str, Any]]:
    """The sequences of one content hash, in plan order, through the local path's rule:
    ("summary", a duplicate) for each one reported, ("written", ((split, shard), (order, bytes, notes)))
    for each one written."""
    digest, sequences = group
    rule = DuplicateRule(dedup)
    for index, position, path, metadata, split, serialized, sequence_id, notes in sorted(sequences, key=lambda s: s[:2]):
        written, earlier = rule.admit(path, tuple(map(tuple, metadata)), digest)
        if earlier is not None:
            yield "summary", ("kept" if written else "dropped", index, position, path, earlier)
        if written:
            yield "written", (destination(split, sequence_id, split_fractions, shards), (index, position, serialized, notes))


def write_shard(
    group: tuple[tuple[str | None, int], Iterable[tuple]], output: str, shards: int, run_id: str
) -> tuple[str, str | None, int, int, int]:
    """One shard's sequences, sorted into plan order, written to its staged name: its summary line."""
    (split, shard), sequences = group
    ordered = sorted(sequences, key=lambda s: s[:2])
    final = shard_paths(output, split, shards)[shard]
    with TFRecordWriter(staged_path(final, run_id)) as writer:
        for _, _, serialized, _ in ordered:
            writer.write(serialized)
    return "shard", split, shard, len(ordered), sum(notes for *_, notes in ordered)


def write_summary(lines: list[Sequence[Any]], path: str) -> None:
    with atomic_output(path) as temporary:
        temporary.write_text(json.dumps([list(line) for line in lines]), encoding="utf-8")


def pipeline_options(pipeline_args: Sequence[str]) -> Any:
    """Beam's options from its command-line arguments, on `DEFAULT_RUNNER` unless they name one.
    An argument Beam does not know is an error here (Beam itself would drop it with a warning, so a
    mistyped `--runer=DataflowRunner` would run on this machine)."""
    beam = _beam()
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    options = PipelineOptions(list(pipeline_args))
    known = set(options.get_all_options(retain_unknown_options=False))
    unknown = [name for name in options.get_all_options(retain_unknown_options=True) if name not in known]
    if unknown:
        raise GenError(f"unknown Beam pipeline option(s): {', '.join('--' + name for name in unknown)} "
                       f"(apache-beam {beam.__version__})")
    standard = options.view_as(StandardOptions)
    if standard.runner is None:
        standard.runner = DEFAULT_RUNNER
    return options


def build_pipeline(
    pipeline: Any, output: str, *, dedup: bool, split_fractions: dict[str, float] | None,
    shards: int, run_id: str,
) -> None:
    """Adds the steps to `pipeline`: read the plan (`write_plan`), convert, deduplicate, split and
    shard, write, summarize."""
    beam = _beam()
    tagged = beam.pvalue.TaggedOutput

    def tag(items: Iterable[tuple[str, Any]], main: str) -> Iterator[Any]:
        for name, item in items:
            yield item if name == main else tagged(name, item)

    converted = (
        pipeline
        | "Plan" >> beam.Create([str(plan_path(output, run_id))])
        | "Read plan" >> beam.FlatMap(read_plan)
        | "Spread files" >> beam.Reshuffle()  # the plan is read in one place; the conversions spread over the workers
        | "Convert" >> beam.FlatMap(lambda indexed: tag(convert_task(indexed), "sequence")).with_outputs(
            "summary", main="sequence")
    )
    deduplicated = (
        converted.sequence
        | "Group by content" >> beam.GroupByKey()
        | "Drop duplicates" >> beam.FlatMap(
            lambda group: tag(apply_duplicate_rule(group, dedup, split_fractions, shards), "written")).with_outputs(
            "summary", main="written")
    )
    shards_written = (
        deduplicated.written
        | "Group by shard" >> beam.GroupByKey()
        | "Write shards" >> beam.Map(write_shard, output, shards, run_id)
    )
    (
        (converted.summary, deduplicated.summary, shards_written)
        | "Summary lines" >> beam.Flatten()
        | "Gather" >> beam.combiners.ToList()
        | "Write summary" >> beam.Map(write_summary, str(summary_path(output, run_id)))
    )


def _discard(output: str, run_id: str) -> None:
    for leftover in Path(output).parent.glob(f".*.beam-{run_id}*"):  # staged shards, the summary, their temporaries
        leftover.unlink(missing_ok=True)


def _report_from_summary(report: PreprocessReport, tasks: list[Task], lines: list[list[Any]]) -> dict:
    """Fills `report` as the local path would have, in plan order; returns {(split, shard): sequences}."""
    files = sorted(line[1:] for line in lines if line[0] == "file")
    for index, error, warnings in files:
        path = str(tasks[index].path)
        if error is not None:
            report.skipped.append((path, error))
            continue
        report.files_converted += 1
        report.warnings.extend((path, warning) for warning in warnings)
    for kind, _, _, path, earlier in sorted((line for line in lines if line[0] in ("dropped", "kept")),
                                            key=lambda line: line[1:3]):
        (report.duplicates_dropped if kind == "dropped" else report.duplicates_kept).append((path, earlier))
    counts = {}
    for _, split, shard, sequences, notes in (line for line in lines if line[0] == "shard"):
        counts[split, shard] = sequences
        report.notes_written += notes
    if len(files) != len(tasks):
        raise GenError(f"the Beam pipeline reported {len(files)} of {len(tasks)} files; its summary is incomplete")
    return counts


def beam_preprocess(
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    metadata: str | os.PathLike[str] | None = None,
    split_fractions: dict[str, float] | None = None,
    dedup: bool = True,
    shards: int = 1,
    pipeline_args: Sequence[str] = (),
) -> PreprocessReport:
    """`generation.preprocess.preprocess` run as a Beam pipeline: the same files, records and report.

    `pipeline_args`: Beam's own options (`--runner=DataflowRunner --project=...`); without a
    `--runner`, the BundleBasedDirectRunner in this process. Raises `GenError` when Beam is not
    installed, an option is unknown or the pipeline fails; `NoExamplesError` and `OutputError` as
    the local path does. Nothing appears under the output names unless the whole run succeeded.
    """
    started = time.perf_counter()
    beam = _beam()
    options = pipeline_options(pipeline_args)
    try:
        pipeline = beam.Pipeline(options=options)
    except ValueError as error:  # an unknown runner name
        raise GenError(f"Beam: {error}") from None
    output = os.fspath(output)
    report, tasks = start_run(inputs, output, metadata, shards)
    if not tasks:
        raise nothing_converted(report)
    run_id = secrets.token_hex(6)
    try:
        write_plan(tasks, plan_path(output, run_id))
        build_pipeline(pipeline, output, dedup=dedup, split_fractions=split_fractions, shards=shards, run_id=run_id)
        with _quiet_if_local(options):
            state = pipeline.run().wait_until_finish()
        if state not in (None, "DONE"):
            raise GenError(f"the Beam pipeline ended {state}, not DONE")
        try:
            lines = json.loads(summary_path(output, run_id).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise GenError(f"the Beam pipeline finished without its summary {summary_path(output, run_id)}; "
                           f"the output folder must be one that every worker writes to") from None
        counts = _report_from_summary(report, tasks, lines)
        if not counts:
            raise nothing_converted(report)
        for split in written_splits(counts):
            for shard, final in enumerate(shard_paths(output, split, shards)):
                if (split, shard) in counts:
                    try:
                        os.replace(staged_path(final, run_id), final)
                    except OSError as error:
                        raise cannot_write(final, error) from None
                else:  # every shard of a split exists, empty or not, as readers expect
                    TFRecordWriter(final).close()
    finally:
        _discard(output, run_id)
    report.sequences_written = sequences_written(output, counts, shards)
    report.seconds = time.perf_counter() - started
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m generation.beam`: gen's preprocess options; every other argument goes to Beam."""
    import argparse

    from generation.preprocess import parse_split_fractions

    parser = argparse.ArgumentParser(
        prog="python -m generation.beam", description="gen preprocess as an Apache Beam pipeline; "
        "arguments not listed here are Beam's pipeline options (--runner, --project, ...).")
    parser.add_argument("inputs", nargs="+", help="music files and folders (searched recursively)")
    parser.add_argument("-o", "--output", required=True, help="OUTPUT.tfrecord, or OUTPUT-<split>.tfrecord per split")
    parser.add_argument("--metadata", help="info.csv-style CSV: 'midi_filename' and 'split' columns")
    parser.add_argument("--split", dest="split_text", metavar="NAME=FRACTION,...", help="split by a hash of the id")
    parser.add_argument("--keep-duplicates", action="store_true")
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--report", dest="report_path", help="also write the full report as JSON")
    args, pipeline_args = parser.parse_known_args(argv)
    try:
        if args.metadata and args.split_text:
            raise GenError("--metadata already assigns splits; use one of --metadata and --split")
        fractions = parse_split_fractions(args.split_text) if args.split_text else None
        report = beam_preprocess(args.inputs, args.output, metadata=args.metadata, split_fractions=fractions,
                                 dedup=not args.keep_duplicates, shards=args.shards, pipeline_args=pipeline_args)
        if args.report_path:
            from dataclasses import asdict

            with atomic_output(args.report_path) as temporary:
                temporary.write_text(json.dumps(asdict(report), indent=2))
    except GenError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    print(f"Read {report.files_seen:,} files in {report.seconds:.1f} s: {report.files_converted:,} converted, "
          f"{len(report.skipped):,} skipped, {len(report.duplicates_dropped):,} duplicates dropped.")
    for path, count in report.sequences_written.items():
        print(f"  {path}  {count:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
