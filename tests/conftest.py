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
