"""The LSTM note models through `gen`: train one epoch of each tiny config on real fixtures, then
sample, continue a primer (kept note for note), search beams, score and evaluate, on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from generation.io.readers import read_music_file

from .conftest import FIXTURES, train_tiny_runs

GROOVE_FILE = sorted((FIXTURES / "groove").rglob("*.mid"))[0]
CHORALE = FIXTURES / "scores" / "bwv66.6.mxl"
TUNES = FIXTURES / "scores" / "oneills1850_0001-0008.abc"
ARRANGEMENT = FIXTURES / "multitrack" / "pop_arrangement.mid"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One tiny run per encoding, trained 12 steps on the fixtures (groove, scores, multitrack)."""
    configs = ("attention_rnn_tiny", "drum_kit_rnn_tiny", "polyphony_rnn_tiny", "performance_tiny")
    return train_tiny_runs(tmp_path_factory.mktemp("lstm"), {c: c for c in configs}, steps=12)


def notes_of(path: Path) -> list[tuple]:
    sequence = read_music_file(path).sequences[0]
    return sorted((round(n.start_time, 3), n.pitch, n.velocity, n.program, n.is_drum) for n in sequence.notes)


@pytest.mark.parametrize("config, primer", [("attention_rnn_tiny", TUNES), ("polyphony_rnn_tiny", CHORALE),
                                            ("drum_kit_rnn_tiny", GROOVE_FILE)])
def test_a_continuation_keeps_the_primer_and_its_tempo(runs, tmp_path: Path, config: str, primer: Path) -> None:
    out = tmp_path / "out"
    result = run("sample", str(runs[config]), "-n", "2", "--bars", "2", "--seed", "7", "--primer", str(primer),
                 "-o", str(out))
    assert result.exit_code == 0, result.output
    original = read_music_file(primer).sequences[0]
    qpm = original.tempos[-1].qpm
    step = 60 / qpm / 4
    primer_end = round(original.total_time / step) * step
    for path in sorted(out.iterdir()):
        written = read_music_file(path).sequences[0]
        assert written.tempos[0].qpm == pytest.approx(qpm, rel=1e-3)
        kept = notes_of(path)
        for note in notes_of_sequence(original):
            assert note in kept  # every primer note at its time, pitch, velocity and program
        new = [n for n in written.notes if n.start_time >= primer_end - 1e-3]
        assert len(written.notes) - len(new) == len(original.notes)
        # The continuation lies on the primer's 16th-note grid, within the two bars asked for.
        for note in new:
            assert abs(note.start_time / step - round(note.start_time / step)) < 0.02
            assert note.start_time < primer_end + 2 * 16 * step
    first, second = sorted(out.iterdir())
    again = tmp_path / "again"
    assert run("sample", str(runs[config]), "-n", "2", "--bars", "2", "--seed", "7", "--primer", str(primer),
               "-o", str(again)).exit_code == 0
    assert notes_of(again / "sample-001.mid") == notes_of(first)  # same seed, same music


def notes_of_sequence(sequence) -> list[tuple]:
    return sorted((round(n.start_time, 3), n.pitch, n.velocity, n.program, n.is_drum) for n in sequence.notes)


def test_unprimed_samples_beam_search_and_seconds(runs, tmp_path: Path) -> None:
    result = run("sample", str(runs["polyphony_rnn_tiny"]), "-n", "1", "--bars", "2", "--beam-size", "2",
                 "--branch-factor", "2", "--steps-per-iteration", "4", "--seed", "1", "-o", str(tmp_path / "beam"))
    assert result.exit_code == 0, result.output
    result = run("sample", str(runs["performance_tiny"]), "-n", "2", "--seconds", "1.5", "--top-p", "0.9",
                 "--seed", "1", "-o", str(tmp_path / "perf"))
    assert result.exit_code == 0, result.output
    for path in (tmp_path / "perf").iterdir():
        sequence = read_music_file(path).sequences[0]
        assert all(n.start_time < 1.5 for n in sequence.notes)
    result = run("sample", str(runs["performance_tiny"]), "-n", "1", "--bars", "2", "-o", str(tmp_path / "x"))
    assert result.exit_code == 1 and "use seconds" in result.stderr


def test_primer_errors_name_the_file(runs, tmp_path: Path) -> None:
    result = run("sample", str(runs["attention_rnn_tiny"]), "--primer", str(GROOVE_FILE), "-o", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {GROOVE_FILE}: the primer has no pitched notes for a melody model"
    assert not (tmp_path / "o").exists()


def test_evaluate_reports_nll_beside_a_bigram_and_sample_statistics(runs, tmp_path: Path) -> None:
    music = runs["polyphony_rnn_tiny"].parent / "music.tfrecord"
    result = run("evaluate", str(runs["polyphony_rnn_tiny"]), "--examples", str(music), "-n", "3",
                 "--sample-steps", "32", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["events"] > 1000 and 0 < report["nll_per_event"] < 10 and 0 < report["bigram_nll_per_event"] < 10
    assert report["sample_statistics"]["pieces"] == 3 and report["test_statistics"]["pieces"] == report["tracks"]
    text = run("evaluate", str(runs["polyphony_rnn_tiny"]), "--examples", str(music), "-n", "2",
               "--baseline-examples", str(music))
    assert "NLL per event" in text.stdout and "bigram baseline" in text.stdout and "fitted on" in text.stdout


def test_log_likelihood_scores_every_event(runs) -> None:
    from generation.lstm import LSTMModel

    model = LSTMModel(runs["attention_rnn_tiny"])
    tune = read_music_file(TUNES).sequences[0]
    scores = model.log_likelihood(tune)
    primed = model.encoding.prime(tune)
    assert scores.shape == (len(primed.tokens),) and (scores < 0).all()
    piece = model.generate(None, num_steps=16, seed=3)
    assert piece == model.generate(None, num_steps=16, seed=3)


def test_hop_bars_is_for_groovae_only(tmp_path: Path) -> None:
    result = run("train", "--config", "attention_rnn_tiny", "--examples", str(FIXTURES / "groove" / "info.csv"),
                 "--run-dir", str(tmp_path / "run"), "--hop-bars", "1")
    assert result.exit_code == 2 and "--hop-bars slides GrooVAE windows" in result.stderr


@pytest.mark.parametrize("name, text, message", [
    ("melody_x", '{"base": "lstm", "hparams": {"rnn_layers": [8]}, "encoding": {"type": "melody"}}',
     "unknown hparams rnn_layers; known: "),
    ("melody_x", '{"base": "lstm", "encoding": {"type": "melody", "min_pitch": 40}}',
     "unknown melody encoding arguments min_pitch; known: min_note, "),
    ("melody_x", '{"base": "lstm", "encoding": {"type": "tabla"}}', "encoding type 'tabla' is not one of melody, "),
    ("melody_x", '{"base": "lstm", "colour": "red", "encoding": {"type": "melody"}}', "unknown keys colour; known: "),
    ("groove_x", '{"base": "groovae", "hparams": {"z_dim": 3}}', "unknown hparams z_dim; known: "),
])
def test_unknown_config_keys_fail_loudly(monkeypatch, tmp_path: Path, name: str, text: str, message: str) -> None:
    import shutil

    from generation import config_files

    for base in ("lstm.base.json", "groovae.base.json"):
        shutil.copy(config_files.configs_dir() / base, tmp_path / base)
    (tmp_path / f"{name}.json").write_text(text)
    monkeypatch.setattr(config_files, "configs_dir", lambda: tmp_path)
    result = run("train", "--config", name, "--examples", str(FIXTURES / "groove" / "info.csv"),
                 "--run-dir", str(tmp_path / "run"))
    assert result.exit_code == 1 and result.stderr.startswith(f"Error: {tmp_path / (name + '.json')}: {message}")
    assert not (tmp_path / "run").exists()
