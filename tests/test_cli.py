"""The `gen` command through Click's CliRunner: output a user reads, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from generation.io.tfrecord import TFRecordWriter

from .conftest import FIXTURES


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_help_imports_nothing_heavy() -> None:
    code = "import sys, cli; cli.cli(['--help'], standalone_mode=False); " \
           "print(sorted(m for m in ('torch', 'note_seq', 'music21', 'symusic', 'numpy') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).parents[1])
    assert "preprocess" in result.stdout and result.stdout.strip().endswith("[]")


def test_preprocess_mixed_folder_names_every_skipped_file(mixed_folder: Path, tmp_path: Path) -> None:
    (mixed_folder / "scores" / "book.abc").write_text("X:1\nT:A\nK:G\nGABc|\n\nX:2\nT:Silent\nK:G\n")
    result = run("preprocess", str(mixed_folder), "-o", str(tmp_path / "out" / "mixed"), "--jobs", "2", "-q")
    assert result.exit_code == 0, result.output
    assert "Read 18 files" in result.stdout and "10 converted, 8 skipped" in result.stdout
    assert "Wrote 17 sequences" in result.stdout
    for broken in (FIXTURES / "broken").iterdir():
        line = next(line for line in result.stdout.splitlines() if line.strip().startswith(str(mixed_folder / "broken" / broken.name)))
        assert line.split(": ", 1)[1]  # the reason
    assert "warning: " in result.stderr and "book.abc: tune 2: no notes" in result.stderr


def test_preprocess_with_metadata_and_inspect(tmp_path: Path) -> None:
    groove = FIXTURES / "groove"
    result = run("preprocess", str(groove), "--metadata", str(groove / "info.csv"), "-o", str(tmp_path / "g"), "-q",
                 "--report", str(tmp_path / "report.json"))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "report.json").read_text())["files_converted"] == 4
    files = sorted(str(p) for p in tmp_path.glob("g-*.tfrecord"))
    assert [Path(f).name for f in files] == ["g-test.tfrecord", "g-train.tfrecord", "g-validation.tfrecord"]
    text = run("inspect", *files)
    assert text.exit_code == 0
    assert "sequences        4" in text.stdout and "(100.0% drums)" in text.stdout
    assert "3/4 (1)" in text.stdout and "6/8 (1)" in text.stdout
    stats = json.loads(run("inspect", "--json", *files).stdout)
    assert stats["sequences"] == 4 and stats["drum_share"] == 1.0 and stats["damaged_records"] == 0
    assert stats["metadata"]["split"] == {"train": 2, "test": 1, "validation": 1}


def test_inspect_counts_damaged_records(tmp_path: Path) -> None:
    groove = FIXTURES / "groove"
    run("preprocess", str(groove), "-o", str(tmp_path / "all"), "-q", "--jobs", "1")
    data = bytearray((tmp_path / "all.tfrecord").read_bytes())
    data[40] ^= 0xFF  # inside the first record's data
    (tmp_path / "damaged.tfrecord").write_bytes(bytes(data))
    stats = json.loads(run("inspect", "--json", str(tmp_path / "damaged.tfrecord")).stdout)
    assert stats["damaged_records"] == 1 and stats["sequences"] == 3
    assert "byte 0: data checksum mismatch" in stats["damage"][0]
    with TFRecordWriter(tmp_path / "not_music.tfrecord") as writer:
        writer.write(b"\xff\xff\xff not a NoteSequence")
    stats = json.loads(run("inspect", "--json", str(tmp_path / "not_music.tfrecord")).stdout)
    assert stats["damaged_records"] == 1 and "not a NoteSequence" in stats["damage"][0]


def test_errors_are_one_line_with_exit_status_1(tmp_path: Path) -> None:
    result = run("preprocess", str(FIXTURES / "broken"), "-o", str(tmp_path / "x"), "-q", "--jobs", "1")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no music converted from 8 file(s)")
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
    result = run("preprocess", str(FIXTURES / "groove"), "--split", "train=0.9", "-o", str(tmp_path / "x"))
    assert result.exit_code == 1 and "fractions sum to 0.9, not 1" in result.stderr
    result = run("preprocess", str(FIXTURES / "groove"), "--metadata", str(FIXTURES / "groove" / "LICENSE"),
                 "-o", str(tmp_path / "x"))
    assert result.exit_code == 1 and "LICENSE: no 'midi_filename' or 'filename' column" in result.stderr


def test_missing_input_is_a_usage_error(tmp_path: Path) -> None:
    result = run("preprocess", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x"))
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_data_list_and_prepare_a_corpus_recipe(tmp_path: Path) -> None:
    listing = run("data", "list")
    assert listing.exit_code == 0
    names = [line.split()[0] for line in listing.stdout.splitlines()]
    assert {"groove", "bach_chorales", "essen_folk", "oneill_folk"} <= set(names)
    assert "CC BY 4.0" in next(line for line in listing.stdout.splitlines() if line.startswith("groove"))
    result = run("data", "prepare", "bach_chorales", "--limit", "6", "--out", str(tmp_path), "-q", "-j", "1")
    assert result.exit_code == 0, result.output
    assert "Wrote 6 sequences" in result.stdout
    result = run("data", "prepare", "no_such_data", "--out", str(tmp_path))
    assert result.exit_code == 1 and "unknown dataset 'no_such_data'; known: " in result.stderr


def test_preprocess_train_resume_sample_on_the_cpu(tmp_path: Path) -> None:
    assert run("preprocess", str(FIXTURES / "groove"), "-o", str(tmp_path / "groove"), "-q", "-j", "1").exit_code == 0
    common = ["train", "--config", "groovae_tiny", "--examples", str(tmp_path / "groove.tfrecord"),
              "--run-dir", str(tmp_path / "run"), "--batch-size", "2", "--workers", "1", "-q"]
    first = run(*common, "--num-steps", "3")
    assert first.exit_code == 0, first.output
    assert "Trained groovae_tiny to step 3 in" in first.stdout
    resumed = run(*common, "--num-steps", "5")
    assert resumed.exit_code == 0 and "to step 5 (resumed at step 3)" in resumed.stdout
    sampled = run("sample", str(tmp_path / "run"), "-n", "2", "--seed", "1", "-o", str(tmp_path / "out"))
    assert sampled.exit_code == 0, sampled.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sample-001.mid", "sample-002.mid"]
    listing = run("configs")
    names = [line.split()[0] for line in listing.stdout.splitlines()]
    assert names == sorted(names) and {"groovae_4bar", "groovae_tiny", "attention_rnn", "performance"} <= set(names)


def test_train_reads_sharded_examples_by_a_quoted_pattern(tmp_path: Path) -> None:
    assert run("preprocess", str(FIXTURES / "groove"), "-o", str(tmp_path / "groove"), "-q", "-j", "1",
               "--shards", "2").exit_code == 0
    assert sorted(p.name for p in tmp_path.glob("groove*")) == ["groove-00000-of-00002.tfrecord",
                                                                "groove-00001-of-00002.tfrecord"]
    common = ["train", "--config", "groovae_tiny", "--run-dir", str(tmp_path / "run"), "--batch-size", "2",
              "--workers", "1", "-q", "--num-steps", "2"]
    result = run(*common, "--examples", str(tmp_path / "groove-*-of-00002.tfrecord"))
    assert result.exit_code == 0, result.output
    result = run(*common, "--examples", str(tmp_path / "lmd-*.tfrecord"))
    assert result.exit_code == 2 and "matches no file" in result.output
    result = run(*common, "--examples", str(tmp_path / "missing.tfrecord"))
    assert result.exit_code == 2 and "no such file" in result.output


def test_train_errors_are_one_line(tmp_path: Path) -> None:
    result = run("train", "--config", "groovae_nope", "--examples", str(FIXTURES / "groove" / "info.csv"),
                 "--run-dir", str(tmp_path / "run"))
    assert result.exit_code == 1 and result.stderr.startswith("Error: unknown config 'groovae_nope'; known: ")
    result = run("sample", str(tmp_path), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1 and "not a run directory" in result.stderr


def test_train_hparams_replace_the_configs_and_are_stored_in_the_run(tmp_path: Path) -> None:
    from generation.config_files import load_any_config, parse_hparams, with_hparams
    from generation.errors import BadConfig

    assert parse_hparams("dec_rnn_size=[8,8], z_size=4,clip_mode=value,use_cudnn=True") == {
        "dec_rnn_size": [8, 8], "z_size": 4, "clip_mode": "value", "use_cudnn": True}
    config = with_hparams(load_any_config("groovae_tiny"), {"dec_rnn_size": [8, 8], "dropout_keep_prob": 1})
    assert config.hparams.dec_rnn_size == [8, 8] and config.hparams.dropout_keep_prob == 1.0
    for text, message in (("z_dim=3", "unknown hparam 'z_dim'; known: "),
                          ("z_size=2.5", "z_size must be an integer like "),
                          ("dec_rnn_size=8", "dec_rnn_size must be a list like "),
                          ("z_size", "'z_size' is not NAME=VALUE")):
        with pytest.raises(BadConfig, match=message):
            with_hparams(load_any_config("groovae_tiny"), parse_hparams(text))

    assert run("preprocess", str(FIXTURES / "groove"), "-o", str(tmp_path / "groove"), "-q", "-j", "1").exit_code == 0
    common = ["train", "--config", "drum_kit_rnn_tiny", "--examples", str(tmp_path / "groove.tfrecord"),
              "--run-dir", str(tmp_path / "run"), "--batch-size", "2", "--workers", "1", "-q", "--num-steps", "2"]
    result = run(*common, "--hparams", "rnn_layer_sizes=[12,10]")
    assert result.exit_code == 0, result.output
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert stored["name"] == "drum_kit_rnn_tiny" and stored["hparams"]["rnn_layer_sizes"] == [12, 10]
    result = run(*common)  # resuming needs the same hyperparameters
    assert result.exit_code == 1 and "holds a run of a different config" in result.stderr
    result = run(*common, "--hparams", "rnn_layers=[3]")
    assert result.exit_code == 1 and result.stderr.startswith("Error: --hparams: unknown hparam 'rnn_layers'")


def test_note_seq_loads_without_its_notebook_and_audio_helpers_until_used() -> None:
    code = ("import sys, generation.protos, note_seq; "
            "print(sorted(m for m in ('bokeh', 'IPython', 'pandas', 'librosa') if m in sys.modules)); "
            "assert callable(note_seq.audio_io.wav_data_to_samples); print('librosa' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).parents[1])
    assert result.stdout.split() == ["[]", "True"]


def test_every_option_of_every_command_has_help_text() -> None:
    import click

    def commands(group, prefix=()):
        for name, command in group.commands.items():
            yield prefix + (name,), command
            if isinstance(command, click.Group):
                yield from commands(command, prefix + (name,))

    missing = [f"gen {' '.join(path)} {param.opts[0]}" for path, command in commands(cli)
               for param in command.params if isinstance(param, click.Option) and not (param.help or "").strip()]
    assert not missing, f"options without help: {', '.join(missing)}"


def test_every_seed_defaults_to_zero() -> None:
    import click

    seeds = {name: next((p.default for p in command.params if p.name == "seed"), None)
             for name, command in cli.commands.items() if isinstance(command, click.Command)}
    assert {name: seed for name, seed in seeds.items() if seed is not None} == \
        {name: 0 for name, seed in seeds.items() if seed is not None}
    assert {"sample", "continue", "vary", "humanize", "interpolate", "train", "evaluate"} <= \
        {name for name, seed in seeds.items() if seed is not None}


def test_preprocess_does_not_overwrite_earlier_output_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "groove"
    assert run("preprocess", str(FIXTURES / "groove"), "-o", str(out), "-q", "-j", "1").exit_code == 0
    again = run("preprocess", str(FIXTURES / "groove"), "-o", str(out), "-q", "-j", "1")
    assert again.exit_code == 1 and "exists already; give --force" in again.stderr
    assert run("preprocess", str(FIXTURES / "groove"), "-o", str(out), "-q", "-j", "1", "--force").exit_code == 0
