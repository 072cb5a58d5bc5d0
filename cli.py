"""The `gen` command: thin Click commands over the `generation` library.

Heavy imports (note_seq, music21, torch) happen inside the commands, so `gen --help` is instant.
Every `GenError` becomes one line on standard error and exit status 1.
"""

from __future__ import annotations

import json
import os
import sys

import click

from generation import __version__
from generation.errors import GenError


class _GenGroup(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except GenError as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=_GenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gen")
def cli() -> None:
    """gen: Magenta-style music generation. NoteSequence TFRecords in, new music out."""


force_option = click.option("--force", is_flag=True, help="Replace output files that exist already.")


class _PipelineArgsCommand(click.Command):
    """Keeps what follows a bare `--` out of Click's parsing, in ctx.meta['pipeline_args'] (Beam's options)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            args, ctx.meta["pipeline_args"] = args[:cut], args[cut + 1:]
        return super().parse_args(ctx, args)


@cli.command(cls=_PipelineArgsCommand)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output name: OUTPUT.tfrecord, or OUTPUT-<split>.tfrecord per split.")
@click.option("--metadata", type=click.Path(exists=True, dir_okay=False),
              help="CSV in the Groove MIDI Dataset's info.csv form: 'midi_filename' locates each file, "
                   "'split' picks its output, other columns are kept in the sequence.")
@click.option("--split", "split_text", metavar="NAME=FRACTION,...",
              help="Split by a hash of each sequence id, e.g. train=0.8,validation=0.1,test=0.1.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Parallel worker processes (default: all cores).")
@click.option("--keep-duplicates", is_flag=True, help="Write sequences whose content repeats an earlier one.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Also write the full report (every skipped file and warning) as JSON.")
@click.option("--shards", type=click.IntRange(min=1), default=1, show_default=True,
              help="Files per split: OUTPUT-<split>-00000-of-0000N.tfrecord ..., each sequence in the one its id "
                   "hashes to (Magenta's and tf.data's naming).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--runner", type=click.Choice(["local", "beam"]), default="local", show_default=True,
              help="beam: the same conversion as an Apache Beam pipeline (pip install '.[beam]'); Beam's options "
                   "follow a bare --, e.g. -- --runner=DataflowRunner (default: Beam's direct runner, here).")
@force_option
def preprocess(inputs, output, metadata, split_text, jobs, keep_duplicates, report_path, shards, quiet, runner,
               force) -> None:
    """Convert MIDI, MusicXML, ABC and kern files to TFRecord files of NoteSequences.

    Directories are searched recursively. Bad files are skipped with their reason.

    \b
    Example:
      gen preprocess ../shared/datasets/groove --metadata ../shared/datasets/groove/info.csv -o data/groove
      gen preprocess ../shared/datasets/groove -o data/groove --runner beam -- --runner=FlinkRunner --flink_master=HOST:8081
    """
    from generation.preprocess import parse_split_fractions
    from generation.preprocess import preprocess as run_preprocess

    pipeline_args = click.get_current_context().meta.get("pipeline_args")
    if metadata and split_text:
        raise click.UsageError("--metadata already assigns splits; use one of --metadata and --split.")
    if runner == "local" and pipeline_args is not None:
        raise click.UsageError("options after -- are Beam's; give them with --runner beam.")
    if runner == "beam" and jobs is not None:
        raise click.UsageError("--jobs is the local runner's; Beam's workers are set by its own options after --.")
    fractions = parse_split_fractions(split_text) if split_text else None
    from pathlib import Path

    from generation.errors import OutputError

    target = Path(output)
    earlier = sorted(target.parent.glob(f"{target.name}.tfrecord")) + sorted(target.parent.glob(f"{target.name}-*.tfrecord"))
    if earlier and not force:
        raise OutputError(f"{earlier[0]}: exists already; give --force to replace it"
                          + (f" (and {len(earlier) - 1} more)" if len(earlier) > 1 else ""))
    if runner == "beam":
        from generation.beam import beam_preprocess

        report = beam_preprocess(inputs, output, metadata=metadata, split_fractions=fractions,
                                 dedup=not keep_duplicates, shards=shards, pipeline_args=pipeline_args or ())
    else:
        report = run_preprocess(
            inputs, output, metadata=metadata, split_fractions=fractions, jobs=jobs,
            dedup=not keep_duplicates, progress=not quiet, shards=shards,
        )
    for stale in earlier:  # --force: files of the earlier run this one did not write (other shard counts)
        if str(stale) not in report.sequences_written:
            stale.unlink(missing_ok=True)
    _print_preprocess_report(report, metadata)
    if report_path:
        from dataclasses import asdict

        from generation.io.files import atomic_output

        with atomic_output(report_path) as temporary:
            temporary.write_text(json.dumps(asdict(report), indent=2))


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count:,} {singular if count == 1 else (plural or singular + 's')}"


def _print_preprocess_report(report, metadata) -> None:
    rate = report.files_seen / report.seconds if report.seconds else 0.0
    speed = (f"{rate:,.{1 if rate < 10 else 0}f} files/s" if rate >= 0.05
             else f"{report.seconds / max(report.files_seen, 1):,.1f} s per file")
    click.echo(
        f"Read {report.files_seen:,} files in {report.seconds:.1f} s ({speed}): "
        f"{report.files_converted:,} converted, {len(report.skipped):,} skipped."
    )
    click.echo(f"Wrote {report.total_sequences:,} sequences ({report.notes_written:,} notes):")
    width = max(len(path) for path in report.sequences_written)
    for path, count in report.sequences_written.items():
        click.echo(f"  {path:<{width}}  {count:,}")
    if report.duplicates_dropped:
        click.echo(f"Dropped {_plural(len(report.duplicates_dropped), 'duplicate sequence')} (same music as an earlier file):")
        for path, original in report.duplicates_dropped:
            click.echo(f"  {path} (same as {original})")
    if report.duplicates_kept:
        rows = "a separate row" if len(report.duplicates_kept) == 1 else "separate rows"
        listed = f" listed as {rows} of {os.path.basename(metadata)}" if metadata else ""
        click.echo(f"Kept {_plural(len(report.duplicates_kept), 'sequence')} with repeated music{listed}:")
        for path, original in report.duplicates_kept:
            click.echo(f"  {path} (same as {original})")
    warnings_by_file: dict[str, list[str]] = {}
    for path, warning in report.warnings:
        warnings_by_file.setdefault(path, []).append(warning)
    for path, warnings in warnings_by_file.items():
        more = f" (and {len(warnings) - 1} more)" if len(warnings) > 1 else ""
        click.echo(f"warning: {path}: {warnings[0]}{more}", err=True)
    if report.skipped:
        click.echo(f"Skipped {_plural(len(report.skipped), 'file')}:")
        for path, reason in report.skipped:
            click.echo(f"  {path}: {reason}")


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def inspect(files, as_json) -> None:
    """Summarise TFRecord files of NoteSequences: sequences, duration, notes, instruments, tempi, damage."""
    from generation.stats import inspect_tfrecords

    stats = inspect_tfrecords(list(files))
    if as_json:
        click.echo(json.dumps(stats.to_json()))
        return
    _print_stats(stats)


def _print_stats(stats) -> None:
    def row(label: str, value: str) -> None:
        click.echo(f"  {label:<16} {value}")

    click.echo(", ".join(stats.files))
    row("sequences", f"{stats.sequences:,}" + (f" ({stats.damaged_records:,} damaged records)" if stats.damaged_records else ""))
    average = stats.total_seconds / stats.sequences if stats.sequences else 0.0
    row("duration", f"{stats.total_seconds / 3600:,.2f} h (mean {average:,.1f} s per sequence)")
    row("notes", f"{stats.notes:,} ({stats.drum_share:.1%} drums)")
    per_sequence = stats.instruments / stats.sequences if stats.sequences else 0.0
    row("instruments", f"{per_sequence:.2f} per sequence")
    programs = list(stats.programs.items())
    shown = ", ".join(f"{program} ({count:,} notes)" for program, count in programs[:8])
    row("programs", shown + (f", and {len(programs) - 8} more" if len(programs) > 8 else "") if programs else "none")
    if stats.tempo_min is not None:
        row("tempo", f"{stats.tempo_min:.1f} - {stats.tempo_max:.1f} qpm")
    signatures = ", ".join(f"{name} ({count:,})" for name, count in stats.time_signatures.items())
    row("time signatures", signatures or "none")
    for column, counts in stats.metadata.items():
        values = list(counts.items())
        shown = ", ".join(f"{value} ({count:,})" for value, count in values[:6])
        row(column, shown + (f", and {len(values) - 6} more" if len(values) > 6 else ""))
    for line in stats.damage:
        click.echo(f"damaged: {line}", err=True)


@cli.command()
def configs() -> None:
    """List the named model configs, one per line, name first."""
    from generation.config_files import describe_all_configs

    for name, family, description in describe_all_configs():
        click.echo(f"{name:<46} {family:<8} {description}")


raw_dynamics_option = click.option(
    "--raw-dynamics", is_flag=True,
    help="GrooVAE: Magenta's raw velocity and offset outputs, instead of those expected given each hit "
         "(which an unsure model otherwise plays too softly and too close to the grid).")




def seed_option(what: str = "result"):
    # One policy for every command: the same command gives the same result; another seed, another take.
    return click.option("--seed", type=int, default=0, show_default=True,
                        help=f"Random seed: the same seed gives the same {what}, another seed another one.")


def lstm_temperature_option(default: float = 1.0):
    return click.option(
        "--temperature", type=click.FloatRange(min=1e-3), default=default, show_default=True,
        help="LSTM sampling temperature: below 1 plays the likeliest notes, above 1 wanders. 0.5-1.0 is the "
             "safe range; at 1.2 and above, notes leave the tracks' ranges by octaves (README, measured).")


def tempo_from_option():
    return click.option(
        "--tempo-from", type=click.Choice(["auto", "notes", "file"]), default="auto", show_default=True,
        help="The grid: auto estimates tempo and downbeat from the notes for MT3-style transcriptions and trusts "
             "any other file's tempo and meter; notes always estimates; file always trusts the file.")


TEMPO_FROM = {"auto": None, "notes": True, "file": False}


def _groove_model(run_dir: str, batch_size: int, raw_dynamics: bool = False):
    from generation.music_vae.trained_model import TrainedModel

    return TrainedModel(config=None, batch_size=batch_size, checkpoint_dir_or_path=run_dir,
                        given_hits=not raw_dynamics)


@cli.command()
@click.option("--config", "config_name", required=True, help="A named config (see `gen configs`).")
@click.option("--examples", required=True, multiple=True,
              help="TFRecord file(s) of NoteSequences to train on; repeatable, and a quoted pattern such as "
                   "'data/lmd-train-*.tfrecord' takes every shard it matches.")
@click.option("--eval-examples", multiple=True,
              help="TFRecord file(s) or patterns for the evaluation loss at intervals.")
@click.option("--run-dir", required=True, type=click.Path(file_okay=False),
              help="Where checkpoints, config and TensorBoard logs go; an existing one is resumed.")
@click.option("--num-steps", type=click.IntRange(min=1), default=50_000, show_default=True,
              help="Train up to this global step (a resumed run counts its earlier steps).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Default: the config's.")
@click.option("--hparams", "hparams_text", metavar="NAME=VALUE,...",
              help="Replace the config's hyperparameters, as Magenta's flag: 'dec_rnn_size=[128,128],z_size=64'.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same data and CPU run.")
@click.option("--hop-bars", type=click.IntRange(min=1),
              help="Slide training windows by this many bars (Magenta's Groove training used 1).")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=500, show_default=True, help="Steps.")
@click.option("--checkpoint-minutes", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Also write a checkpoint when this many minutes have passed since the last one.")
@click.option("--keep-checkpoints", type=click.IntRange(min=1), default=3, show_default=True,
              help="How many of the latest checkpoints to keep; older ones are removed.")
@click.option("--eval-every", type=click.IntRange(min=1), default=500, show_default=True, help="Steps.")
@click.option("--workers", type=click.IntRange(min=1), help="Processes converting sequences (default: cores - 1).")
@click.option("--device", help="cpu, cuda, cuda:1 ... (default: cuda when there is one).")
@click.option("--stream", is_flag=True,
              help="Read the examples as a stream (shards interleaved, shuffled through bounded buffers), in "
                   "memory that does not grow with the corpus; for data larger than memory.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def train(config_name, examples, eval_examples, run_dir, num_steps, batch_size, hparams_text, seed, hop_bars,
          checkpoint_every, checkpoint_minutes, keep_checkpoints, eval_every, workers, stream, device, quiet) -> None:
    """Train a model named by a config; resume an existing --run-dir where it stopped."""
    from generation.config_files import load_any_config, parse_hparams, with_hparams
    from generation.training import TrainOptions
    from generation.training import train as run_training

    config = load_any_config(config_name)
    if hparams_text:
        config = with_hparams(config, parse_hparams(hparams_text))
    if hop_bars:
        if config.model != "groovae":
            raise click.UsageError(f"--hop-bars slides GrooVAE windows; {config_name} is an {config.model} config")
        from generation.music_vae.configs import with_hop_bars

        config = with_hop_bars(config, hop_bars)
    options = TrainOptions(
        num_steps=num_steps, batch_size=batch_size, seed=seed, checkpoint_every_steps=checkpoint_every,
        checkpoint_every_minutes=checkpoint_minutes, keep_checkpoints=keep_checkpoints, eval_every_steps=eval_every,
        workers=workers, device=device, progress=not quiet, stream=stream,
    )
    result = run_training(config, _example_files(examples, "--examples"), run_dir, options,
                          eval_examples=_example_files(eval_examples, "--eval-examples"))
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun, the first process reports for all
    resumed = f" (resumed at step {result.resumed_from:,})" if result.resumed_from is not None else ""
    click.echo(f"Trained {config_name} to step {result.step:,}{resumed} in {result.seconds:.1f} s; run: {run_dir}")
    for label, metrics in (("train", result.metrics), ("eval", result.eval_metrics)):
        if metrics:
            click.echo(f"  {label}: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items())))


@cli.command("import-magenta")
@click.argument("checkpoint")
@click.option("--config", "config_name", required=True, help="The named config the checkpoint was trained with.")
@click.option("--hparams", "hparams_text", metavar="NAME=VALUE,...",
              help="The hyperparameters it was trained with, where they differ from the config's (Magenta's flag).")
@click.option("-o", "--output", "run_dir", required=True, type=click.Path(file_okay=False),
              help="The run directory to write (for gen sample, gen train ...).")
@force_option
def import_magenta(checkpoint, config_name, hparams_text, run_dir, force) -> None:
    """Turn a Magenta MusicVAE checkpoint into a run directory, without TensorFlow.

    CHECKPOINT: a TensorFlow checkpoint (model.ckpt-N prefix, its .index, its folder, or the .tar
    Magenta publishes) or a magenta.js checkpoint folder (weights_manifest.json, shards, config.json).

    \b
    Example:
      gen import-magenta downloads/groovae_2bar_humanize --config groovae_2bar_humanize -o runs/humanize
    """
    from generation.config_files import load_any_config, parse_hparams, with_hparams
    from generation.music_vae.import_magenta import import_checkpoint

    config = load_any_config(config_name)
    if hparams_text:
        config = with_hparams(config, parse_hparams(hparams_text))
    imported = import_checkpoint(checkpoint, config, run_dir, force=force)
    skipped = f"; left out {imported.skipped} training-state variables (global_step, Adam's)" if imported.skipped else ""
    click.echo(f"Imported {imported.variables} variables ({imported.source_format}, step {imported.step:,}) as "
               f"{config_name}{skipped}; run: {run_dir}")


@cli.command()
@click.argument("run_dir")
@click.option("-n", "--num", "num_samples", type=click.IntRange(min=1), default=4, show_default=True,
              help="How many pieces to draw.")
@click.option("--length", type=click.IntRange(min=1),
              help="Model steps (a 16th note; 10 ms for performance models). GrooVAE default: its max_seq_len.")
@click.option("--bars", type=click.FloatRange(min=0, min_open=True), help="Length in bars (quantized models).")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), help="Length in seconds (LSTM models).")
@click.option("--temperature", type=click.FloatRange(min=1e-3), default=1.0, show_default=True,
              help="Sampling temperature: below 1 plays the likeliest notes and hits, above 1 wanders. "
                   "0.5-1.0 is the safe range for LSTMs (README, measured).")
@click.option("--top-k", type=click.IntRange(min=0), default=0, show_default=True, help="LSTM: sample from the k likeliest (0: all).")
@click.option("--top-p", type=click.FloatRange(min=0, max=1, min_open=True), default=1.0, show_default=True,
              help="LSTM: sample from the smallest set of events holding this probability.")
@click.option("--beam-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="LSTM: Magenta's beam search: keep this many partial pieces, the likeliest first.")
@click.option("--branch-factor", type=click.IntRange(min=1), default=1, show_default=True,
              help="LSTM beam search: candidates drawn from each kept piece at every iteration.")
@click.option("--steps-per-iteration", type=click.IntRange(min=1), default=1, show_default=True,
              help="LSTM beam search: events each candidate grows by before the beam is pruned again.")
@click.option("--primer", type=click.Path(exists=True, dir_okay=False),
              help="LSTM: a MIDI (or MusicXML, ABC, kern) file to continue; it is kept unchanged in each output.")
@seed_option("samples")
@raw_dynamics_option
@force_option
@click.option("-o", "--output-dir", required=True, type=click.Path(file_okay=False),
              help="Where the MIDI files go (sample-001.mid, ...); a folder holding earlier samples needs --force.")
def sample(run_dir, num_samples, length, bars, seconds, temperature, top_k, top_p, beam_size, branch_factor,
           steps_per_iteration, primer, seed, raw_dynamics, force, output_dir) -> None:
    """Draw new pieces from a trained model (a run directory, checkpoint file or bundled name) as MIDI files.

    \b
    Examples:
      gen sample groove-4bar -n 8 --temperature 0.5 -o samples/
      gen sample folk-melody -n 4 --bars 16 --seed 7 --primer examples/bantry_lasses.mid -o continued/
    """
    from generation.config_files import run_family
    from generation.io.files import make_sample_folder, sample_paths
    from generation.io.writers import write_midi

    if sum(v is not None for v in (length, bars, seconds)) > 1:
        raise click.UsageError("give one of --length, --bars and --seconds")
    family = run_family(run_dir)
    if family == "groovae" and (primer or seconds or top_k or top_p < 1 or beam_size > 1 or branch_factor > 1):
        raise click.UsageError("--primer, --seconds, --top-k, --top-p and beam search are for LSTM models; "
                               f"{run_dir} holds a MusicVAE")
    primer_sequence = _read_one(primer) if primer else None
    paths = sample_paths(output_dir, num_samples, force=force)
    if family == "groovae":
        model = _groove_model(run_dir, min(num_samples, 64), raw_dynamics)
        steps = round(bars * model.config.data_converter.steps_per_bar) if bars else length
        sequences = model.sample(n=num_samples, length=steps or model.config.hparams.max_seq_len,
                                 temperature=temperature, seed=seed)
    else:
        from generation.errors import BadInputFile
        from generation.lstm import LSTMModel
        from generation.lstm.encodings import NoPrimerEvents

        model = LSTMModel(run_dir)
        if length is None and bars is None and seconds is None:
            bars, seconds = (None, 10.0) if not model.encoding.metric else (8.0, None)
        try:
            sequences = model.sample(num_samples, primer_sequence, num_steps=length, bars=bars, seconds=seconds,
                                     temperature=temperature, top_k=top_k, top_p=top_p, beam_size=beam_size,
                                     branch_factor=branch_factor, steps_per_iteration=steps_per_iteration, seed=seed)
        except NoPrimerEvents as error:
            raise BadInputFile(primer, str(error)) from None
    make_sample_folder(output_dir)
    for path, sequence in zip(paths, sequences):
        write_midi(sequence, path)
        click.echo(f"{path}  {len(sequence.notes)} notes, {sequence.total_time:.1f} s")


def _example_files(values: tuple[str, ...], option: str) -> list[str]:
    """The files `values` name: each a file, or a pattern (*, ?, [...]) standing for the sorted files
    it matches (a sharded dataset); a missing file or a pattern matching nothing is a usage error."""
    import glob

    files: list[str] = []
    for value in values:
        if glob.has_magic(value):
            matched = sorted(p for p in glob.glob(value) if os.path.isfile(p))
            if not matched:
                raise click.BadParameter(f"{value!r} matches no file", param_hint=option)
            files += matched
        elif os.path.isfile(value):
            files.append(value)
        else:
            raise click.BadParameter(f"{value!r}: no such file", param_hint=option)
    return files


def _analysed(sequence, path: str, tempo_from: str):
    """`analyse` on the grid `--tempo-from` chooses; a piece it cannot analyse is one line naming `path`."""
    from generation.transcription import analyse

    try:
        return analyse(sequence, estimate=TEMPO_FROM[tempo_from])
    except GenError as error:
        raise GenError(f"{path}: {error}") from None


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3")


def _read_one(path: str):
    """The first piece of a music file, or the notes heard in a recording (`gen transcribe`'s, as
    MT3 would write them), within `generation.limits` (one-line errors otherwise)."""
    from pathlib import Path

    from generation.limits import check_piece

    if Path(path).suffix.lower() in AUDIO_SUFFIXES:
        from generation.audio_transcription import transcribe

        sequence = transcribe(path)
        if not sequence.notes:
            raise GenError(f"{path}: no notes were heard")
    else:
        from generation.io.readers import read_music_file

        sequence = read_music_file(path).sequences[0]
        if not sequence.notes:  # before any model loads or any analysis
            raise GenError(f"{path}: it has no notes")
    check_piece(sequence, path)
    return sequence


@cli.command()
@click.argument("run_dir")
@click.option("--examples", required=True, multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="TFRecord file(s) of held-out NoteSequences.")
@click.option("--baseline-examples", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="LSTM, melody and drum-pattern models: TFRecord file(s) to fit the bigram baseline on (the "
                   "training data); default: the other test tracks, one left out at a time.")
@click.option("-n", "--num-samples", type=click.IntRange(min=0), default=None,
              help="Samples whose statistics are printed beside the data's (default: 64 GrooVAE, 16 LSTM).")
@click.option("--sample-steps", type=click.IntRange(min=1), help="LSTM: steps per sample (default: 16 bars, or 20 s).")
@seed_option("samples and bootstrap intervals")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@raw_dynamics_option
def evaluate(run_dir, examples, baseline_examples, num_samples, sample_steps, seed, as_json, quiet, raw_dynamics) -> None:
    """Score a trained model on held-out data, beside simple baselines.

    GrooVAE: reconstruction (hit F1, velocity and timing error) beside per-class and on-grid baselines.
    LSTM: negative log-likelihood per event beside a bigram's, and sample statistics beside the data's.
    """
    from generation.config_files import run_family

    if run_family(run_dir) == "lstm":
        _evaluate_lstm(run_dir, examples, baseline_examples, 16 if num_samples is None else num_samples,
                       sample_steps, seed, as_json, quiet)
        return
    if num_samples is None:
        num_samples = 64
    from generation.music_vae.evaluate import evaluate as run_evaluation

    model = _groove_model(run_dir, 256, raw_dynamics)
    if model.categorical:  # a melody or drum-pattern MusicVAE: NLL bounds beside a bigram
        from generation.music_vae.evaluate_categorical import evaluate as run_categorical

        result = run_categorical(model, list(examples), baseline_examples=list(baseline_examples),
                                 num_samples=num_samples, seed=seed, progress=not quiet)
        click.echo(json.dumps(result.to_json()) if as_json else "\n".join(result.describe(examples)))
        return
    result = run_evaluation(model, list(examples), num_samples=num_samples, seed=seed, progress=not quiet)
    if as_json:
        click.echo(json.dumps(result.to_json()))
        return
    decoding = "Magenta's raw velocity and offset outputs" if raw_dynamics else "velocities and offsets given hits"
    click.echo(f"{model.config.name} on {result.windows:,} windows of {', '.join(examples)} ({decoding})")
    click.echo(f"  hits          precision {result.hit_precision:.3f}  recall {result.hit_recall:.3f}  F1 {result.hit_f1:.3f}"
               + (f"  (baseline, the drums most often hit at each tapped step's place in the bar: F1 "
                  f"{result.extra['hit_f1_position_baseline']:.3f})" if "hit_f1_position_baseline" in result.extra else ""))
    click.echo(f"  velocity MAE  {result.velocity_mae:6.2f}  (baseline, each class's mean velocity: "
               f"{result.velocity_mae_class_mean_baseline:.2f})  MIDI units, over {result.matched_hits:,} matched hits"
               + _gain_words(result.velocity_mae, result.velocity_mae_class_mean_baseline,
                             result.extra.get("velocity_gain_interval")))
    click.echo(f"  offset MAE    {result.offset_mae:6.3f}  (baseline, every hit on the grid: "
               f"{result.offset_mae_zero_baseline:.3f})  steps, over the same hits"
               + _gain_words(result.offset_mae, result.offset_mae_zero_baseline, result.extra.get("offset_gain_interval")))
    rows = [("test data", result.test_statistics)]
    if result.sample_statistics is not None:
        rows.append((f"{num_samples} samples", result.sample_statistics))
    for label, stats in rows:
        shares = ", ".join(f"{name} {share:.0%}" for name, share in stats.class_share.items() if share >= 0.005)
        click.echo(f"  {label:<11} hits/bar {stats.hits_per_bar:5.1f}  velocity {stats.velocity_mean:5.1f} "
                   f"± {stats.velocity_std:4.1f}  offset spread {stats.offset_std:.3f} steps  ({shares})")


def _gain_words(error: float, baseline: float, interval) -> str:
    if not interval:
        return ""
    return (f"; {1 - error / baseline:.1%} below the baseline "
            f"(95% interval {interval[0]:.1%} to {interval[1]:.1%}, resampling test pieces)")


def _evaluate_lstm(run_dir, examples, baseline_examples, num_samples, sample_steps, seed, as_json, quiet) -> None:
    from generation.lstm import LSTMModel
    from generation.lstm.evaluate import evaluate as run_evaluation

    model = LSTMModel(run_dir)
    result = run_evaluation(model, list(examples), baseline_examples=list(baseline_examples), num_samples=num_samples,
                            sample_steps=sample_steps, seed=seed, progress=not quiet)
    if as_json:
        click.echo(json.dumps(result.to_json()))
        return
    click.echo(f"{model.config.name} on {result.tracks:,} tracks ({result.events:,} events) of {', '.join(examples)}")
    click.echo(f"  NLL per event  {result.nll_per_event:.3f} nats  (bigram baseline: {result.bigram_nll_per_event:.3f}, "
               f"fitted on {result.bigram_fitted_on})")
    click.echo(f"  accuracy       {result.accuracy:.3f}  (next event, teacher-forced)")
    rows = [("test data", result.test_statistics)]
    if result.sample_statistics is not None:
        rows.append((f"{result.sample_statistics.pieces} samples", result.sample_statistics))
    click.echo(f"  over {result.sample_steps} steps per piece:  mean (lowest - highest piece)")
    for label, stats in rows:
        click.echo(f"  {label:<11} pitch range {stats.pitch_range_mean:5.1f} ({stats.pitch_range_low:.0f}-{stats.pitch_range_high:.0f})"
                   f"  distinct 4-grams {stats.distinct_4gram_mean:.2f} ({stats.distinct_4gram_low:.2f}-{stats.distinct_4gram_high:.2f})"
                   f"  longest repeated run {stats.longest_run_mean:5.1f} ({stats.longest_run_low:.0f}-{stats.longest_run_high:.0f})")


@cli.command()
@click.argument("run_dir")
@click.argument("midi_file", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The MIDI file to write.")
@click.option("--temperature", type=click.FloatRange(min=1e-6), default=1e-3, show_default=True,
              help="For the hits, with --new-hits; near 0 keeps the hits the model is sure of.")
@click.option("--new-hits", is_flag=True,
              help="Let the model choose the hits too (Magenta's decoding); by default it plays exactly the "
                   "original's hits and chooses only their timing and dynamics.")
@seed_option()
@tempo_from_option()
@raw_dynamics_option
@force_option
def humanize(run_dir, midi_file, output, temperature, new_hits, seed, tempo_from, raw_dynamics, force) -> None:
    """Re-play a drum part with a humanize model: played timing and dynamics, window by window on the
    piece's own bars (MT3 transcriptions on their estimated tempo); other instruments unchanged."""
    from generation.io.files import check_output
    from generation.io.writers import write_midi
    from generation.music_vae.tasks import humanize as run_humanize

    sequence = _read_one(midi_file)
    check_output(output, force=force)
    model = _groove_model(run_dir, 64, raw_dynamics)
    result = run_humanize(model, sequence, temperature=temperature, seed=seed, keep_hits=not new_hits,
                          estimate_tempo=TEMPO_FROM[tempo_from], name=midi_file)
    write_midi(result.sequence, output)
    from generation.bundled import display_name

    click.echo(f"{midi_file}: {_tempo_words(result.analysis)}; drums "
               + result.describe("humanized", display_name(run_dir)))
    click.echo(f"Wrote {output}: {result.sequence.total_time:.1f} s")


@cli.command()
@click.argument("piece", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The MIDI file to write.")
@click.option("--model", "run_dir", default="groove-tap2drum", show_default=True,
              help="A tap-to-drums GrooVAE: a run directory or bundled model name.")
@click.option("--parts", help="The instruments whose rhythm the drums follow, comma-separated General MIDI names "
                              "as `gen plot` shows them (default: every pitched instrument; the drums for a drum "
                              "part alone).")
@click.option("--temperature", type=click.FloatRange(min=1e-6), default=0.5, show_default=True,
              help="For the drum hits: near 0 plays only those the model is sure of, 1 and above more.")
@click.option("--drums-only", is_flag=True, help="Write only the new drum part, not the piece with it.")
@seed_option()
@tempo_from_option()
@raw_dynamics_option
@force_option
def drumify(piece, output, run_dir, parts, temperature, drums_only, seed, tempo_from, raw_dynamics, force) -> None:
    """A drum part to the rhythm of PIECE (Magenta Studio's Drumify): a tapped rhythm, a bass line,
    any instrument's notes; window by window on the piece's own bars. Existing drums are replaced."""
    from generation.io.files import check_output
    from generation.io.writers import write_midi
    from generation.music_vae.tasks import drumify as run_drumify

    sequence = _read_one(piece)
    check_output(output, force=force)
    model = _groove_model(run_dir, 64, raw_dynamics)
    result = run_drumify(model, sequence, parts=parts.split(",") if parts else None, temperature=temperature,
                         seed=seed, estimate_tempo=TEMPO_FROM[tempo_from], drums_only=drums_only, name=piece)
    write_midi(result.sequence, output)
    from generation.bundled import display_name

    click.echo(f"{piece}: {_tempo_words(result.analysis)}; drums "
               + result.describe("played", display_name(run_dir), notes_in="notes of rhythm"))
    click.echo(f"Wrote {output}: {result.sequence.total_time:.1f} s")


@cli.command()
@click.argument("run_dir")
@click.argument("start", type=click.Path(exists=True, dir_okay=False))
@click.argument("end", type=click.Path(exists=True, dir_okay=False))
@click.option("--steps", type=click.IntRange(min=2), default=5, show_default=True,
              help="Grooves (melodies, drum patterns), both ends included.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The MIDI file to write.")
@click.option("--temperature", type=click.FloatRange(min=1e-6), default=1e-3, show_default=True,
              help="For the hits (the events of a melody or drum-pattern model); near 0 keeps those the model is "
                   "sure of.")
@seed_option()
@raw_dynamics_option
@force_option
def interpolate(run_dir, start, end, steps, output, temperature, seed, raw_dynamics, force) -> None:
    """Morph from the first groove (melody, drum pattern) window of START to that of END, in one MIDI file."""
    from generation.io.files import check_output
    from generation.io.writers import write_midi
    from generation.music_vae.tasks import interpolate_pieces

    first, last = _read_one(start), _read_one(end)
    check_output(output, force=force)
    model = _groove_model(run_dir, 64, raw_dynamics)
    distances: list = []
    result = interpolate_pieces(model, first, last, steps, temperature=temperature, seed=seed,
                                names=(start, end), distances=distances)
    write_midi(result, output)
    click.echo(f"{output}  {steps} {model.windows_word}, {len(result.notes)} notes, {result.total_time:.1f} s")
    if distances:  # melody and drum-pattern models: how far each point is from either end
        def row(column: int) -> str:
            return " ".join(f"{d[column]:.2f}" for d in distances)

        click.echo(f"  per point, share of grid steps unlike START's window: {row(0)}; unlike END's: {row(1)}")
        click.echo(f"  per point, NLL per event of START's window: {row(2)}; of END's: {row(3)} (nats, given the point)")


def _model_pairs(pairs: tuple[str, ...], roles: tuple[str, ...]) -> dict[str, str]:
    named = {}
    for pair in pairs:
        role, _, run_dir = pair.partition("=")
        if role not in roles or not run_dir:
            raise click.BadParameter(f"{pair!r} is not ROLE=RUN_DIR with ROLE one of {', '.join(roles)}",
                                     param_hint="--model")
        named[role] = run_dir
    return named


def _echo_progress(line: str) -> None:
    click.echo(line, err=True)


@cli.command("continue")
@click.argument("song", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The MIDI file to write; with -n above 1, OUTPUT-001.mid, OUTPUT-002.mid ...")
@click.option("-n", "--num", "count", type=click.IntRange(min=1), default=1, show_default=True,
              help="Continuations, each with its own seed (--seed, --seed + 1, ...).")
@click.option("--bars", type=click.IntRange(min=1), default=8, show_default=True, help="Bars of continuation.")
@click.option("--model", "model_pairs", multiple=True, metavar="ROLE=RUN_DIR",
              help="The model continuing tracks of a role (drums, bass, melody, chords), in place of that role's "
                   "bundled model (see `gen models`); repeatable. Roles not named keep their bundled model.")
@click.option("--no-bundled", is_flag=True, help="Use only the --model runs: roles without one are not continued.")
@click.option("--novelty", type=click.FloatRange(0, 1), default=None,
              help="Share of each pitched track's new bars made new: written by its model where a candidate fits "
                   "the bar's harmony and texture, else the piece's bar with its notes moved within the harmony; "
                   "the rest are the piece's own bars as its structure goes on (0: only the piece's bars; "
                   "default: 0.5, the closest to real continuations, README).")
@click.option("--style", type=click.Choice(["piece", "models"]), default="piece", show_default=True,
              help="piece: go on as the piece goes (its structure, every track's texture, one harmony); models: "
                   "each track continued on its own by its role's model (before version 0.2).")
@lstm_temperature_option()
@seed_option("continuation")
@click.option("--only-continuation", is_flag=True, help="Write only the new part (at its time after the piece).")
@tempo_from_option()
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line describing the piece and the output.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Also draw a piano roll (PNG) of the piece's last bars and the continuation.")
@force_option
def continue_command(song, output, count, bars, model_pairs, no_bundled, novelty, style, temperature, seed,
                     only_continuation, tempo_from, as_json, plot_path, force) -> None:
    """Continue a piece (MT3 transcriptions included) by --bars bars, in its tempo, meter and instruments.

    \b
    Examples:
      gen continue examples/bantry_lasses.mid -o continued.mid
      gen continue examples/bantry_lasses.mid -o continued.mid -n 4 --bars 16
      gen continue examples/bantry_lasses_mt3.mid -o continued.mid --model melody=folk-melody --bars 4
    """
    from generation.continuation import DEFAULT_NOVELTY, choose_models, continue_piece, load_models, variation_paths
    from generation.io.files import check_output
    from generation.io.writers import write_midi
    from generation.transcription import ROLES

    if novelty is not None and style == "models":
        raise click.UsageError("--novelty sets how much of the piece's own music is rewritten: give it with --style piece")
    if count > 1 and style == "piece" and novelty == 0:
        raise click.UsageError("-n above 1 with --novelty 0 writes the same continuation each time: "
                               "nothing new is drawn; give --novelty above 0")
    choice = choose_models(_model_pairs(model_pairs, ROLES), bundled=not no_bundled)
    if not choice.runs:
        raise click.UsageError("no bundled models are installed; give --model ROLE=RUN_DIR")
    sequence = _read_one(song)
    paths = variation_paths(output, count)
    plots = variation_paths(plot_path, count) if plot_path else []
    for path in paths + plots:
        check_output(path, force=force)
    click.echo(f"Models: {choice.describe()}", err=True)
    models = load_models(choice)
    results = []
    for number, path in enumerate(paths):
        if count > 1:
            _echo_progress(f"continuation {number + 1}/{count} (seed {seed + number}):")
        result = continue_piece(sequence, models, bars=bars, temperature=temperature, seed=seed + number,
                                only_continuation=only_continuation, estimate_tempo=TEMPO_FROM[tempo_from],
                                style=style, novelty=DEFAULT_NOVELTY if novelty is None else novelty,
                                progress=_echo_progress, name=song)
        write_midi(result.sequence, path)
        if plots:
            from generation.plot import new_notes, piano_roll

            piano_roll(result.sequence, plots[number], result.analysis, new=new_notes(result.sequence, sequence),
                       title=f"{song} and {bars} bars of continuation")
            click.echo(f"Wrote {plots[number]}", err=True)
        results.append(result)
    _print_continuations(results, song, paths, seed, as_json)


def _tempo_words(a) -> str:
    drift = f", drifting: {a.end_tempo_bpm:.1f} bpm at the end" if a.drifting else ""
    return f"{a.tempo_bpm:.1f} bpm ({a.tempo_source}{drift})"


def _piece_json(a) -> dict:
    """What `--json` says of the piece itself, for `gen continue` and `gen vary` alike."""
    return {"tempo_bpm": a.tempo_bpm, "tempo_source": a.tempo_source, "end_tempo_bpm": a.end_tempo_bpm,
            "tempo_drifts": a.drifting, "time_signature": f"{a.time_signature[0]}/{a.time_signature[1]}",
            "key": a.key, "bars": round(a.bars, 3), "mt3_style": a.mt3_style}


def _print_continuations(results, song, paths, seed, as_json) -> None:
    a = results[0].analysis
    style = "MT3-style transcription" if a.mt3_style else "MIDI"
    click.echo(f"{song}: {style}, {_tempo_words(a)}, {a.time_signature[0]}/{a.time_signature[1]}, "
               f"{a.key or 'no key'}, {a.bars:.1f} bars, first downbeat at {a.first_downbeat:.3f} s")
    if results[0].chords_found:
        shown = results[0].chords_found[-8:]
        click.echo(f"  chords of the last {len(shown)} bars: {' '.join(shown)}")
    described = []
    for number, (result, output) in enumerate(zip(results, paths)):
        if len(results) > 1:
            click.echo(f"continuation {number + 1} (seed {seed + number}):")
        for item in result.tracks:
            t = item.track
            what = (f"+{item.new_notes} notes from {item.model}" if item.model and not item.skipped
                    else f"kept ({item.skipped})")
            click.echo(f"  {t.role:<7} {t.instrument_name:<28} {t.notes:>6} notes  {what}")
        if result.chords_planned:
            click.echo(f"  planned chords: {' '.join(result.chords_planned)} (bars {', '.join(map(str, result.plan))})")
        click.echo(f"Wrote {output}: {result.bars} bars from {a.continuation_start:.3f} s")
        described.append({
            "tracks": [{"role": i.track.role, "program": i.track.program, "instrument_name": i.track.instrument_name,
                        "is_drum": i.track.is_drum,
                        "notes": i.track.notes, "new_notes": i.new_notes, "model": i.model, "skipped": i.skipped}
                       for i in result.tracks],
            "plan": result.plan, "period": result.period, "chords_found": result.chords_found,
            "chords_planned": result.chords_planned, "output": str(output), "seed": seed + number,
        })
    if as_json:
        extra = {"variations": described, "output": [str(p) for p in paths]} if len(results) > 1 else described[0]
        click.echo(json.dumps({**_piece_json(a), "continuation_start": a.continuation_start, **extra}))


@cli.command()
@click.argument("song", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The MIDI file to write; with -n above 1, OUTPUT-001.mid, OUTPUT-002.mid ...")
@click.option("-n", "--num", "count", type=click.IntRange(min=1), default=1, show_default=True,
              help="Variations, each with its own seed (--seed, --seed + 1, ...).")
@click.option("--groove", "groove_run",
              help="A GrooVAE run directory or bundled model name for the drums, in place of the bundled one "
                   "(groove-4bar; groove-humanize with --mode humanize).")
@click.option("--mode", type=click.Choice(["vary", "humanize"]), default="vary", show_default=True,
              help="humanize: only restore played timing and dynamics to the drums (a humanize GrooVAE).")
@click.option("--model", "model_pairs", multiple=True, metavar="ROLE=RUN_DIR",
              help="The LSTM re-sampling bars of a role's tracks (bass, melody, chords), in place of that role's "
                   "bundled model; repeatable. Roles not named keep their bundled model.")
@click.option("--no-bundled", is_flag=True, help="Use only --groove and the --model runs.")
@click.option("--amount", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of each pitched track's bars that is re-sampled.")
@click.option("--tracks", "roles", help="Only these roles, comma-separated (default: every role with a model).")
@click.option("--temperature", type=click.FloatRange(min=1e-3), default=1.0, show_default=True,
              help="How far from the original: GrooVAE draws near each window's encoding (0 reconstructs, 1 samples "
                   "its posterior); LSTMs sample at it (0.5-1.0 is their safe range).")
@seed_option("variations")
@tempo_from_option()
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line describing the piece and the outputs.")
@raw_dynamics_option
@force_option
def vary(song, output, count, groove_run, mode, model_pairs, no_bundled, amount, roles, temperature, seed, tempo_from,
         as_json, raw_dynamics, force) -> None:
    """Variations of a piece: drums re-grooved by GrooVAE, bars of pitched tracks re-sampled by LSTMs.

    \b
    Examples:
      gen vary examples/bantry_lasses.mid -o varied.mid -n 3
      gen vary examples/bantry_lasses_mt3.mid -o played.mid --mode humanize
    """
    from generation.continuation import check_groove_model, choose_models, load_models, vary_piece, variation_paths
    from generation.io.files import check_output
    from generation.io.writers import write_midi
    from generation.transcription import ROLES

    chosen = tuple(r.strip() for r in roles.split(",")) if roles else None
    if chosen and not set(chosen) <= set(ROLES):
        raise click.BadParameter(f"{roles!r}: roles are {', '.join(ROLES)}", param_hint="--tracks")
    pitched = tuple(role for role in ROLES if role != "drums")  # GrooVAE varies the drums
    choice = choose_models(_model_pairs(model_pairs, pitched), pitched if mode == "vary" else (),
                           bundled=not no_bundled)
    groove_words = f"drums={groove_run}" if groove_run else ""
    if groove_run is None and not no_bundled:
        from generation.bundled import defaults_by_role

        bundled_groove = defaults_by_role().get("humanize" if mode == "humanize" else "groove")
        groove_run = bundled_groove.name if bundled_groove else None
        groove_words = f"drums={groove_run} (bundled)" if groove_run else ""
    if groove_run:
        check_groove_model(groove_run)
    if not groove_run and not choice.runs:
        raise click.UsageError("give --groove RUN_DIR and/or --model ROLE=RUN_DIR" if no_bundled else
                               "no bundled models are installed; give --groove RUN_DIR and/or --model ROLE=RUN_DIR")
    if mode == "humanize" and not groove_run:
        raise click.UsageError("--mode humanize needs --groove with a humanize-trained GrooVAE run")
    sequence = _read_one(song)
    paths = variation_paths(output, count)
    for path in paths:
        check_output(path, force=force)
    click.echo(f"Models: {', '.join(filter(None, [groove_words, choice.describe()]))}", err=True)
    groove = _groove_model(groove_run, 64, raw_dynamics) if groove_run else None
    models = load_models(choice)
    results = []
    for number, path in enumerate(paths):
        _echo_progress(f"variation {number + 1}/{count} (seed {seed + number}):")
        result = vary_piece(sequence, models, groove_model=groove, mode=mode, amount=amount, temperature=temperature,
                            seed=seed + number, roles=chosen, estimate_tempo=TEMPO_FROM[tempo_from],
                            progress=_echo_progress, name=song)
        write_midi(result.sequence, path)
        results.append(result)
    a = results[0].analysis
    click.echo(f"{song}: {'MT3-style transcription' if a.mt3_style else 'MIDI'}, {_tempo_words(a)}, "
               f"{a.time_signature[0]}/{a.time_signature[1]}, {a.key or 'no key'}, {a.bars:.1f} bars")
    for number, (path, result) in enumerate(zip(paths, results)):
        click.echo(f"Wrote {path} (seed {seed + number}):")
        for label, what in result.changed.items():
            click.echo(f"  {label}: {what}")
        for warning in result.warnings:
            click.echo(f"  warning: {warning}")
    if as_json:
        click.echo(json.dumps({
            **_piece_json(a),
            "tracks": [{"role": t.role, "program": t.program, "instrument_name": t.instrument_name,
                        "is_drum": t.is_drum, "notes": t.notes} for t in a.tracks],
            "changed": results[0].changed, "warnings": results[0].warnings,
            "output": [str(p) for p in paths] if count > 1 else str(paths[0]),
            "variations": [{"output": str(p), "seed": seed + k, "changed": r.changed}
                           for k, (p, r) in enumerate(zip(paths, results))],
        }))


@cli.command()
@click.argument("piece", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The PNG file to write.")
@click.option("--original", type=click.Path(exists=True, dir_okay=False),
              help="The piece PIECE continues or varies: its notes are drawn blue, the rest orange, and its bar "
                   "lines are drawn.")
@click.option("--bars-before", type=click.IntRange(min=1), default=8, show_default=True,
              help="Bars of the original shown before the first new note.")
@tempo_from_option()
@force_option
def plot(piece, output, original, bars_before, tempo_from, force) -> None:
    """Draw a piano roll of PIECE, one panel per track, with bar lines on the music's downbeats.

    \b
    Example:
      gen continue examples/bantry_lasses.mid -o continued.mid
      gen plot continued.mid --original examples/bantry_lasses.mid -o roll.png
    """
    from generation.io.files import check_output
    from generation.plot import new_notes, piano_roll

    drawn = _read_one(piece)
    reference = _read_one(original) if original else drawn
    check_output(output, force=force)
    analysis = _analysed(reference, original or piece, tempo_from)
    flags = new_notes(drawn, reference) if original else None
    piano_roll(drawn, output, analysis, new=flags, bars_before=bars_before, title=f"{piece}")
    click.echo(f"Wrote {output}")


@cli.command()
@click.argument("piece", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The score to write: .musicxml (or .xml), .mxl, or .svg (first page; needs the score extra).")
@click.option("--parts", help="Instruments to print, by General MIDI name, comma-separated (default: all).")
@click.option("--from-bar", type=click.IntRange(min=1), default=1, show_default=True,
              help="The first bar printed (1 = the bar of the first note).")
@click.option("--bars", type=click.IntRange(min=1), help="How many bars to print (default: to the end).")
@click.option("--title", help="The score's title (default: the file's name).")
@tempo_from_option()
@force_option
def score(piece, output, parts, from_bar, bars, title, tempo_from, force) -> None:
    """Write a readable score of PIECE: notes quantized on its analysed grid (tempo, meter, downbeat,
    key), piano on a grand staff, drums on a percussion staff.

    \b
    Examples:
      gen score examples/bantry_lasses.mid -o bantry.musicxml
      gen continue song.mid -o continued.mid --bars 8
      gen score continued.mid -o new-bars.mxl --from-bar 9     # just the continuation of an 8-bar song
    """
    from pathlib import Path

    from generation.io.files import check_output
    from generation.score import FORMATS, to_score, write_score

    if Path(output).suffix.lower() not in FORMATS:
        raise click.BadParameter(f"{output}: a score is written as {', '.join(FORMATS)}", param_hint="--output")
    sequence = _read_one(piece)
    check_output(output, force=force)
    analysis = _analysed(sequence, piece, tempo_from)
    try:
        made = to_score(sequence, analysis, title=title or Path(piece).stem,
                        parts=parts.split(",") if parts else None, from_bar=from_bar, bars=bars)
    except GenError as error:
        raise GenError(f"{piece}: {error}") from None
    write_score(made, output)
    measures = max(len(p.getElementsByClass("Measure")) for p in made.parts)
    click.echo(f"Wrote {output}: {len(made.parts)} staves, {measures} bars in "
               f"{analysis.time_signature[0]}/{analysis.time_signature[1]}, {analysis.key or 'no key'}, "
               f"{round(analysis.tempo_bpm)} bpm")


@cli.command()
@click.argument("transcription", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The MIDI file to write.")
@click.option("--quantize", "snap", is_flag=True, help="Also move every note onto the grid's 16th notes.")
@click.option("--humanize", "humanize_drums", is_flag=True,
              help="Also re-play the drums with played timing and dynamics (the bundled groove-humanize, or --groove).")
@click.option("--groove", "groove_run", help="A humanize GrooVAE run directory or bundled name for --humanize.")
@seed_option("humanized drums")
@tempo_from_option()
@force_option
def tidy(transcription, output, snap, humanize_drums, groove_run, seed, tempo_from, force) -> None:
    """Make a transcription (MT3's above all) usable in a DAW or notation software: the estimated tempo
    map and meter written in, notes kept in time, one named track per instrument (program jumps of one
    instrument merged), drum hits given a playable length.

    \b
    Example:
      gen tidy examples/bantry_lasses_mt3.mid -o clean.mid
    """
    from generation.io.files import check_output
    from generation.io.writers import write_midi
    from generation.tidy import MERGE_RULE, tidy as tidy_piece
    from generation.transcription import instrument_name

    if groove_run and not humanize_drums:
        raise click.UsageError("--groove chooses the model for --humanize: give both")
    sequence = _read_one(transcription)
    check_output(output, force=force)
    analysis = _analysed(sequence, transcription, tempo_from)
    result = tidy_piece(sequence, analysis, snap=snap)
    tidied = result.sequence
    if humanize_drums:
        from generation.continuation import check_groove_model
        from generation.music_vae.tasks import humanize

        if groove_run is None:
            from generation.bundled import defaults_by_role

            bundled = defaults_by_role().get("humanize")
            if bundled is None:
                raise click.UsageError("no bundled humanize model is installed; give --groove RUN_DIR")
            groove_run = bundled.name
        check_groove_model(groove_run)
        tidied = humanize(_groove_model(groove_run, 64), tidied, seed=seed, analysis=analysis,
                          name=transcription).sequence
    write_midi(tidied, output)
    click.echo(f"{transcription}: {_tempo_words(analysis)}, {analysis.time_signature[0]}/{analysis.time_signature[1]}, "
               f"first downbeat at {analysis.first_downbeat:.3f} s")
    for program, into, notes in result.merged:
        click.echo(f"  merged {instrument_name(program)} into {instrument_name(into)} ({notes} notes; rule: {MERGE_RULE})")
    if result.drum_notes_lengthened:
        click.echo(f"  {result.drum_notes_lengthened} drum hits given a 16th note's length")
    if snap:
        click.echo(f"  {result.notes_quantized} notes moved onto the 16th-note grid")
    tracks = sorted({(n.instrument, n.program, n.is_drum) for n in tidied.notes})
    click.echo(f"Wrote {output}: {len(tracks)} tracks ("
               + ", ".join(instrument_name(p, d) for _, p, d in tracks) + ")")


@cli.command()
@click.argument("audio", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The MIDI file to write.")
@click.option("--raw", is_flag=True, help="The notes as heard, at MT3's 120 bpm grid: no tempo, meter or bar lines "
                                          "estimated (what `gen tidy` then takes).")
@force_option
def transcribe(audio, output, raw, force) -> None:
    """Transcribe a recording (WAV, FLAC, OGG, MP3; any rate, mono or stereo) to MIDI, offline, with
    the bundled Basic Pitch model: pitched notes on one piano track (no instrument separation, no
    drums), written with the estimated tempo and meter as `gen tidy` writes them. Needs the
    transcribe extra: pip install 'gen-music[transcribe]'.

    \b
    Example:
      gen render examples/bantry_lasses.mid -o bantry.wav
      gen transcribe bantry.wav -o bantry-heard.mid
    """
    from pathlib import Path

    from generation.io.files import check_output
    from generation.io.writers import write_midi

    if Path(audio).suffix.lower() not in AUDIO_SUFFIXES:
        raise click.BadParameter(f"{audio}: a recording is one of {', '.join(AUDIO_SUFFIXES)}", param_hint="AUDIO")
    check_output(output, force=force)
    sequence = _read_one(audio)
    words = f"{len(sequence.notes)} notes in {sequence.total_time:.1f} s"
    if not raw:
        from generation.tidy import tidy as tidy_piece

        analysis = _analysed(sequence, audio, "notes")
        sequence = tidy_piece(sequence, analysis).sequence
        words += f"; {_tempo_words(analysis)}"
    write_midi(sequence, output)
    click.echo(f"{audio}: {words}")
    click.echo(f"Wrote {output}")


@cli.command()
@click.argument("piece", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The audio file to write: .wav or .flac (16-bit, the synthesizer's rate).")
@click.option("--soundfont", type=click.Path(exists=True, dir_okay=False),
              help="A General MIDI SoundFont (.sf2) to play it on, e.g. FluidR3_GM.sf2 or MuseScore_General.sf2 "
                   "(default: TimGM6mb.sf2, which pretty_midi installs).")
@force_option
def render(piece, output, soundfont, force) -> None:
    """Play PIECE (MIDI, or anything `gen preprocess` reads) on a General MIDI SoundFont, offline.

    The audio is brought to one loudness without clipping. Needs the audio extra:
    pip install 'gen-music[audio]'.

    \b
    Example:
      gen continue examples/bantry_lasses.mid -o continued.mid
      gen render continued.mid -o continued.wav
    """
    from pathlib import Path

    from generation.io.files import check_output
    from generation.limits import check_render_length
    from generation.render import FORMATS, render_file

    if Path(output).suffix.lower() not in FORMATS:
        raise click.BadParameter(f"{output}: audio is written as {' or '.join(FORMATS)}", param_hint="--output")
    check_output(output, force=force)
    sequence = _read_one(piece)  # broken, empty or extreme: one line here, not in the synthesizer
    check_render_length(sequence, piece)
    written = Path(piece).read_bytes() if Path(piece).suffix.lower() in (".mid", ".midi") else None
    seconds, rate, gain = render_file(written, output, Path(soundfont) if soundfont else None, name=piece,
                                      sequence=sequence)
    click.echo(f"Wrote {output}: {seconds:.1f} s at {rate} Hz, {gain:+.1f} dB to the loudness target")


@cli.command()
@click.argument("name", required=False)
def models(name) -> None:
    """List the bundled models, one per line, name first: roles, config, size, then data, license and
    test figures in short. With NAME, print that model's whole card."""
    from generation.bundled import bundled_models, resolve_run

    if name:
        click.echo((resolve_run(name) / "README.md").read_text().rstrip())
        return
    found = bundled_models()
    if not found:
        click.echo("No bundled models are installed; train one with `gen train` and pass its run directory.")
    for model in found:
        card = model.card
        click.echo(f"{model.name:<18} {','.join(model.roles) or '-':<9} {card.get('config', ''):<22} "
                   f"{model.size_bytes / 1e6:4.1f} MB  {card.get('summary', '')}")


@cli.group()
def data() -> None:
    """Named datasets: where they come from, their licenses, and preparing them."""


@data.command("list")
def data_list() -> None:
    """List the dataset recipes, one per line, name first."""
    from generation.datasets import list_recipes

    for recipe in list_recipes():
        click.echo(f"{recipe.name:<14} {recipe.license:<16} {recipe.title}")


@data.command("prepare")
@click.argument("name")
@click.option("--source", type=click.Path(exists=True),
              help="A local copy (folder, or the zip or tar.gz archive) instead of downloading.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Where the dataset goes (default: train_data/NAME, or $GEN_DATA_HOME/NAME).")
@click.option("--url", help="Download from this address instead of the recipe's (a mirror, or an archive of the "
                            "same layout: checks of the published archive then only warn).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, help="Parallel worker processes.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N files of a corpus recipe (a quick trial).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def data_prepare(name, source, out_dir, url, jobs, limit, quiet) -> None:
    """Fetch (or take from --source), verify and preprocess the dataset NAME.

    A broken download resumes where it stopped when the command is run again."""
    from generation.datasets import get_recipe, is_non_commercial, license_notice, prepare

    for line in license_notice(get_recipe(name)):
        click.echo(line)
    result = prepare(name, out_dir=out_dir, source=source, url=url, jobs=jobs, progress=not quiet, limit=limit)
    if result.archive_sha256:
        click.echo(f"Archive sha256: {result.archive_sha256}")
    for warning in result.warnings:
        click.echo(f"Warning: {warning}")
    _print_preprocess_report(result.report, None)
    click.echo(f"Prepared {name} in {result.output_dir}")
    if is_non_commercial(result.recipe):
        click.echo(f"Reminder: {name} is licensed {result.recipe.license}: non-commercial use only.")


# Commands that run small models one step at a time: one thread unless the user chose (generation.threads).
INFERENCE_COMMANDS = {"sample", "continue", "vary", "humanize", "drumify", "transcribe", "interpolate", "evaluate", "plot", "tidy"}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in INFERENCE_COMMANDS and "numpy" not in sys.modules:
        from generation.threads import inference_threads

        # Set before numpy and torch load, so that their OpenMP and BLAS pools start at that size too
        # (torch.set_num_threads alone leaves them at one per core).
        os.environ.setdefault("OMP_NUM_THREADS", str(inference_threads()))
    cli(prog_name="gen")


if __name__ == "__main__":
    sys.exit(main())
