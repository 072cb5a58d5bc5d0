"""Bundled models by name: packing a run with its card, `gen models`, names wherever a run
directory goes, and `gen continue` with no --model picking the bundled model for each role."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from generation import bundled
from generation.transcription import mt3_style_midi

from .conftest import FIXTURES

CARD = {"roles": ["drums"], "description": "A tiny drum model for tests.", "data": "four Groove MIDI Dataset files",
        "license": "CC BY 4.0", "credit": "Gillick et al., Groove MIDI Dataset", "command": "gen train ...",
        "hardware": "2-core CPU", "training_seconds": 1.0, "evaluation": {"nll_per_event": 3.2}}


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def models_folder(tmp_path: Path, monkeypatch) -> Path:
    assert run("preprocess", str(FIXTURES / "groove"), "-o", str(tmp_path / "groove"), "-q", "-j", "1").exit_code == 0
    trained = run("train", "--config", "drum_kit_rnn_tiny", "--examples", str(tmp_path / "groove.tfrecord"),
                  "--run-dir", str(tmp_path / "run"), "--num-steps", "3", "--workers", "1", "-q")
    assert trained.exit_code == 0, trained.output
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setattr(bundled, "models_dir", lambda: folder)
    bundled.bundle(tmp_path / "run", "tiny-drums", CARD, half=True)
    return folder


def test_a_bundled_model_is_listed_and_used_by_name(models_folder: Path, tmp_path: Path) -> None:
    packed = models_folder / "tiny-drums"
    assert sorted(p.name for p in packed.iterdir()) == ["README.md", "card.json", "checkpoints", "config.json"]
    assert not list(packed.rglob("*.state.safetensors"))  # no optimizer state shipped
    listing = run("models")
    line = listing.stdout.splitlines()[0]
    assert line.split()[0] == "tiny-drums" and "CC BY 4.0" in line and "Gillick" in line and "MB" in line
    result = run("sample", "tiny-drums", "-n", "1", "--bars", "1", "--seed", "1", "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    song = tmp_path / "drums.mid"
    from generation.io.readers import read_music_file

    song.write_bytes(mt3_style_midi(read_music_file(sorted((FIXTURES / "groove").rglob("*4-4.mid"))[0]).sequences[0]))
    result = run("continue", str(song), "-o", str(tmp_path / "continued.mid"), "--bars", "1")
    assert result.exit_code == 0, result.output
    assert "Using bundled models: drums=tiny-drums" in result.stderr


def test_an_unknown_name_lists_the_bundled_ones(models_folder: Path, tmp_path: Path) -> None:
    result = run("sample", "no-such-model", "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: no-such-model: no such run directory, and no bundled model of that name " \
                                    "(bundled: tiny-drums)"


def test_without_bundled_models_continue_asks_for_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(bundled, "models_dir", lambda: tmp_path / "none")
    song = tmp_path / "song.mid"
    song.write_bytes((FIXTURES / "multitrack" / "pop_arrangement.mid").read_bytes())
    result = run("continue", str(song), "-o", str(tmp_path / "out.mid"))
    assert result.exit_code == 2 and "no bundled models are installed; give --model ROLE=RUN_DIR" in result.stderr
    assert "No bundled models are installed" in run("models").stdout
