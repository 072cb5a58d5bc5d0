"""Bundled models by name: packing a run with its card, `gen models`, names wherever a run
directory goes, and `gen continue` with no --model picking the bundled model for each role."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli
from generation import bundled
from generation.io.readers import read_music_file
from generation.transcription import mt3_style_midi

from .conftest import FIXTURES

CARD = {"roles": ["drums"], "description": "A tiny drum model for tests.",
        "summary": "four Groove MIDI Dataset files; CC BY 4.0, Gillick et al.", "data": "four Groove MIDI Dataset files",
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
    song.write_bytes(mt3_style_midi(read_music_file(sorted((FIXTURES / "groove").rglob("*4-4.mid"))[0]).sequences[0]))
    result = run("continue", str(song), "-o", str(tmp_path / "continued.mid"), "--bars", "1")
    assert result.exit_code == 0, result.output
    assert "Models: drums=tiny-drums (bundled)" in result.stderr


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


# The models shipped in generation/models -------------------------------------------------------

SHIPPED = bundled.bundled_models()
REPOSITORY = Path(__file__).resolve().parent.parent
REQUIRED_ROLES = {"drums", "melody", "chords", "groove", "humanize"}


def test_the_shipped_models_cover_every_default_role_and_fit_the_size_budget() -> None:
    assert {role for m in SHIPPED for role in m.roles} >= REQUIRED_ROLES
    assert {m.card["config"] for m in SHIPPED} >= {"groovae_2bar_humanize", "groovae_4bar", "drum_kit_rnn",
                                                   "attention_rnn", "polyphony_rnn"}
    assert sum(m.size_bytes for m in SHIPPED) < 50e6


@pytest.mark.parametrize("model", SHIPPED, ids=[m.name for m in SHIPPED])
def test_a_shipped_model_has_a_complete_card_and_samples_on_the_cpu(model: bundled.BundledModel, tmp_path: Path) -> None:
    card = model.card
    assert not [f for f in bundled.CARD_FIELDS if f not in card], card
    assert card["name"] == model.name and card["command"].startswith("gen train --config " + card["config"])
    assert card["evaluation"] and card["training_seconds"] > 0 and card["steps"] > 0
    if "Groove" in card["data"]:  # CC BY 4.0: the credit travels with the model, and `gen models` shows it
        assert "CC BY 4.0" in card["license"] and "Gillick" in card["credit"]
        assert "CC BY 4.0" in card["summary"] and "Gillick" in card["summary"]
    listed = run("models").stdout.splitlines()
    assert any(line.split()[0] == model.name and card["summary"] in line for line in listed)
    assert run("models", model.name).stdout.startswith(f"# {model.name}")
    assert (model.path / "README.md").read_text().startswith(f"# {model.name}")
    result = run("sample", model.name, "-n", "2", "--bars", "2", "--seed", "3", "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    for path in sorted((tmp_path / "out").glob("*.mid")):
        assert read_music_file(path).sequences[0].notes, f"{model.name}: {path.name} has no notes"


def test_the_example_pieces_are_what_their_script_writes(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_examples", REPOSITORY / "examples" / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path in module.write_examples(tmp_path):
        assert path.read_bytes() == (REPOSITORY / "examples" / path.name).read_bytes(), path.name


@pytest.mark.skipif(not SHIPPED, reason="no bundled models in this checkout")
def test_continue_and_vary_with_no_flags_use_the_shipped_models(tmp_path: Path) -> None:
    example = REPOSITORY / "examples" / "bantry_lasses_mt3.mid"
    result = run("continue", str(example), "-o", str(tmp_path / "continued.mid"), "--bars", "2", "--seed", "1", "--json")
    assert result.exit_code == 0, result.output
    assert "(bundled)" in result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert abs(report["tempo_bpm"] - 112) < 1 and all(t["new_notes"] > 0 for t in report["tracks"]), report
    result = run("vary", str(example), "-o", str(tmp_path / "played.mid"), "--mode", "humanize")
    assert result.exit_code == 0, result.output
    assert "drums=groove-humanize (bundled)" in result.stderr
    played = read_music_file(tmp_path / "played.mid").sequences[0]
    assert len({n.velocity for n in played.notes if n.is_drum}) > 5  # MT3's flat 127s, played
    result = run("humanize", "groove-humanize", str(REPOSITORY / "examples" / "bantry_lasses.mid"),
                 "-o", str(tmp_path / "humanized.mid"))
    assert result.exit_code == 0, result.output
    result = run("vary", str(REPOSITORY / "examples" / "bantry_lasses.mid"), "-o", str(tmp_path / "varied.mid"))
    assert result.exit_code == 0, result.output
    assert "drums=groove-4bar (bundled)" in result.stderr


@pytest.mark.skipif(not SHIPPED, reason="no bundled models in this checkout")
def test_continue_writes_n_continuations_each_with_its_seed(tmp_path: Path) -> None:
    example = REPOSITORY / "examples" / "bantry_lasses.mid"
    result = run("continue", str(example), "-o", str(tmp_path / "c.mid"), "-n", "3", "--bars", "4", "--json",
                 "--plot", str(tmp_path / "roll.png"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.splitlines()[-1])
    paths = [tmp_path / f"c-00{k}.mid" for k in (1, 2, 3)]
    assert report["output"] == [str(p) for p in paths] and [v["seed"] for v in report["variations"]] == [0, 1, 2]
    assert all((tmp_path / f"roll-00{k}.png").exists() for k in (1, 2, 3)) and not (tmp_path / "c.mid").exists()
    notes = [sorted((n.start_time, n.pitch) for n in read_music_file(p).sequences[0].notes) for p in paths]
    assert notes[0] != notes[1] != notes[2]  # each seed draws its own new bars
    result = run("continue", str(example), "-o", str(tmp_path / "d.mid"), "-n", "2", "--novelty", "0")
    assert result.exit_code == 2 and "--novelty 0 writes the same continuation each time" in result.output
    assert not list(tmp_path.glob("d*.mid"))


def test_the_built_wheel_carries_every_shipped_model_file(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "source"  # a copy of what setup.py packs, so the build leaves nothing in the checkout
    source.mkdir()
    for name in ("setup.py", "README.md", "cli.py"):
        shutil.copy(REPOSITORY / name, source / name)
    for name in ("generation", "configs"):
        shutil.copytree(REPOSITORY / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    (source / "train_data").mkdir()  # its recipes only: prepared datasets live in its subfolders
    for recipe in (REPOSITORY / "train_data").iterdir():
        if recipe.is_file():
            shutil.copy(recipe, source / "train_data" / recipe.name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "wheel"), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {str(p.relative_to(REPOSITORY)) for p in (REPOSITORY / "generation" / "models").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert shipped and shipped <= names, sorted(shipped - names)
    assert "generation/configs/groovae_4bar.json" in names and "cli.py" in names


GROOVE_SHIPPED = [m for m in SHIPPED if m.card.get("family") == "groovae"]


@pytest.mark.parametrize("model", GROOVE_SHIPPED, ids=[m.name for m in GROOVE_SHIPPED])
def test_a_shipped_groove_models_samples_sound_like_the_groove_test_split(model: bundled.BundledModel) -> None:
    """64 samples drawn here, on the CPU, against the Groove test split's statistics on the card:
    hits per bar within 25%, velocity mean within 15 units and spread within 40%, offset spread
    within 40%, and every drum's share of the hits within 15 points."""
    from generation.music_vae.evaluate import groove_statistics
    from generation.music_vae.trained_model import TrainedModel

    test = model.card["groove_statistics"]["test"]
    groove = TrainedModel(config=None, batch_size=64, checkpoint_dir_or_path=model.name, given_hits=True)
    z = np.random.default_rng(0).standard_normal((64, groove.config.hparams.z_size)).astype(np.float32)
    length = groove.config.hparams.max_seq_len
    drawn = groove_statistics(groove.decode_to_tensors(z, length, 1.0, seed=0), groove.config.data_converter.steps_per_bar)
    assert drawn.hits_per_bar == pytest.approx(test["hits_per_bar"], rel=0.25)
    assert drawn.velocity_mean == pytest.approx(test["velocity_mean"], abs=15)
    assert drawn.velocity_std == pytest.approx(test["velocity_std"], rel=0.4)
    assert drawn.offset_std == pytest.approx(test["offset_std"], rel=0.4)
    for drum, share in test["class_share"].items():
        assert drawn.class_share[drum] == pytest.approx(share, abs=0.15), drum


@pytest.mark.skipif(not SHIPPED, reason="no bundled models in this checkout")
def test_a_model_that_cannot_play_its_role_is_refused_before_anything_loads(tmp_path: Path) -> None:
    example = str(REPOSITORY / "examples" / "bantry_lasses.mid")
    cases = [(("continue", example, "--model", "drums=folk-melody"), "a melody model cannot play drums"),
             (("continue", example, "--model", "melody=groove-4bar"), "a GrooVAE, not an LSTM note model"),
             (("vary", example, "--groove", "folk-melody"), "an LSTM note model, not a GrooVAE")]
    for args, message in cases:
        result = run(*args, "-o", str(tmp_path / "out.mid"))
        assert result.exit_code == 1 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "out.mid").exists()
