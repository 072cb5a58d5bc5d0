"""Shared paths and fixtures. Tests over the whole Groove MIDI Dataset skip when it is absent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
# The Groove MIDI Dataset lives beside the repository in the team's checkout (../shared/datasets/groove).
GROOVE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "groove"


@pytest.fixture(scope="session")
def groove_dir() -> Path:
    if not (GROOVE_DIR / "info.csv").is_file():
        pytest.skip("Groove MIDI Dataset not found at ../shared/datasets/groove (a fresh clone has no ../shared)")
    return GROOVE_DIR


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """Real drums, multi-track MIDI, MusicXML, ABC, kern and broken files, in nested folders."""
    folder = tmp_path / "mixed"
    for part in ("groove", "multitrack", "scores", "broken"):
        shutil.copytree(FIXTURES / part, folder / part)
    return folder


def train_tiny_runs(root: Path, configs: dict[str, str], steps: int = 8) -> dict[str, Path]:
    """Preprocesses the groove, score and multi-track fixtures into root/music.tfrecord and trains
    each named config `steps` steps on it on the CPU: {key: run directory}."""
    from click.testing import CliRunner

    from cli import cli

    def run(*args: str):
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    inputs = [str(FIXTURES / part) for part in ("groove", "scores", "multitrack")]
    assert run("preprocess", *inputs, "-o", str(root / "music"), "-q", "-j", "1").exit_code == 0
    runs = {}
    for key, config in configs.items():
        trained = run("train", "--config", config, "--examples", str(root / "music.tfrecord"), "--run-dir",
                      str(root / config), "--num-steps", str(steps), "--workers", "1", "-q")
        assert trained.exit_code == 0, trained.output
        runs[key] = root / config
    return runs
