"""Magenta's TrainedModel API over a tiny run trained here on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from note_seq import sequences_lib

from generation.errors import DamagedCheckpoint
from generation.io.readers import read_music_file
from generation.music_vae import TrainedModel, configs
from generation.music_vae.trained_model import MultipleExtractedExamplesError, NoExtractedExamplesError
from generation.preprocess import preprocess
from generation.training import TrainOptions, train

from .conftest import FIXTURES

FUNK = FIXTURES / "groove" / "drummer1" / "eval_session" / "1_funk-groove1_138_beat_4-4.mid"
TWO_BARS = 2 * 4 * 60 / 138  # seconds of two 4/4 bars at 138 qpm


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tm")
    preprocess([FIXTURES / "groove"], root / "groove", jobs=1)
    options = TrainOptions(num_steps=6, batch_size=2, workers=1, device="cpu", checkpoint_every_steps=3)
    train(configs.load_config("groovae_tiny"), [root / "groove.tfrecord"], root / "run", options)
    return root / "run"


@pytest.fixture(scope="module")
def windows() -> tuple:
    funk = read_music_file(FUNK).sequences[0]
    return (sequences_lib.extract_subsequence(funk, 0.0, TWO_BARS),
            sequences_lib.extract_subsequence(funk, TWO_BARS, 2 * TWO_BARS), funk)


def test_magentas_call_runs_unchanged(run_dir: Path) -> None:
    model = TrainedModel(config=configs.CONFIG_MAP["groovae_tiny"], batch_size=1, checkpoint_dir_or_path=str(run_dir))
    (sequence,) = model.sample(n=1, length=16 * 2, temperature=0.5)
    assert sequence.notes and all(note.is_drum for note in sequence.notes)
    assert max(note.start_time for note in sequence.notes) < 4.0  # two bars at Magenta's 120 qpm


def test_sample_is_repeatable_with_a_seed(run_dir: Path) -> None:
    model = TrainedModel(None, batch_size=4, checkpoint_dir_or_path=run_dir)
    first = model.sample(n=3, length=32, temperature=0.8, seed=11)
    again = model.sample(n=3, length=32, temperature=0.8, seed=11)
    other = model.sample(n=3, length=32, temperature=0.8, seed=12)
    assert [s.SerializeToString() for s in first] == [s.SerializeToString() for s in again]
    assert [s.SerializeToString() for s in first] != [s.SerializeToString() for s in other]



def spy_on_z(model: TrainedModel, monkeypatch) -> list[np.ndarray]:
    """The latent vectors each call decodes."""
    seen: list[np.ndarray] = []
    decode = model.decode_to_tensors

    def spy(z, *args, **kwargs):
        seen.append(np.array(z))
        return decode(z, *args, **kwargs)

    monkeypatch.setattr(model, "decode_to_tensors", spy)
    return seen


def test_same_z_uses_one_latent_vector(run_dir: Path, monkeypatch) -> None:
    model = TrainedModel(None, batch_size=4, checkpoint_dir_or_path=run_dir)
    seen = spy_on_z(model, monkeypatch)
    model.sample(n=3, length=32, same_z=True, seed=5)
    model.sample(n=3, length=32, seed=5)
    assert seen[0].shape == (3, 8) and (seen[0] == seen[0][0]).all()
    assert not np.allclose(seen[1][0], seen[1][1])


def test_encode_decode_and_interpolate(run_dir: Path, windows, monkeypatch) -> None:
    start, end, whole = windows
    model = TrainedModel(None, batch_size=2, checkpoint_dir_or_path=run_dir)
    z, mu, sigma = model.encode([start, end], seed=0)
    assert z.shape == mu.shape == sigma.shape == (2, 8) and (sigma > 0).all()
    assert not np.allclose(mu[0], mu[1])
    assert len(model.decode(z, length=32, seed=1)) == 2
    seen = spy_on_z(model, monkeypatch)
    path = model.interpolate(start, end, num_steps=5, length=32, seed=0)
    assert len(path) == 5 and all(isinstance(s.total_time, float) for s in path)
    (decoded,) = seen
    np.testing.assert_allclose(decoded[0], mu[0], rtol=1e-5)  # both ends included: the mus themselves
    np.testing.assert_allclose(decoded[-1], mu[1], rtol=1e-5)
    # Spherical, not straight: at t = 1/2 slerp gives (p0 + p1) / (2 cos(omega / 2)).
    omega = np.arccos(np.dot(mu[0], mu[1]) / np.linalg.norm(mu[0]) / np.linalg.norm(mu[1]))
    np.testing.assert_allclose(decoded[2], (mu[0] + mu[1]) / (2 * np.cos(omega / 2)), rtol=1e-4, atol=1e-7)
    with pytest.raises(MultipleExtractedExamplesError, match="Multiple \\(8\\) examples"):
        model.encode([whole])


def test_no_extracted_examples(run_dir: Path) -> None:
    waltz = read_music_file(FIXTURES / "groove" / "drummer1" / "session2" / "1_latin-chacarera_157_beat_3-4.mid").sequences[0]
    with pytest.raises(NoExtractedExamplesError):
        TrainedModel(None, batch_size=1, checkpoint_dir_or_path=run_dir).encode([waltz])


def test_weights_of_another_config_are_refused(run_dir: Path) -> None:
    with pytest.raises(DamagedCheckpoint, match="does not match config 'groovae_2bar_humanize'"):
        TrainedModel(configs.CONFIG_MAP["groovae_2bar_humanize"], batch_size=1, checkpoint_dir_or_path=run_dir)


def test_slerp_follows_the_sphere() -> None:
    from generation.music_vae.trained_model import _slerp

    np.testing.assert_allclose(_slerp(np.array([1.0, 0.0]), np.array([0.0, 1.0]), 0.5), [0.5**0.5, 0.5**0.5])
    np.testing.assert_allclose(_slerp(np.array([2.0, 0.0]), np.array([0.0, 2.0]), 1 / 3), [3**0.5, 1.0])
    np.testing.assert_allclose(_slerp(np.array([1.0, 1.0]), np.array([2.0, 2.0]), 0.5), [1.5, 1.5])  # parallel: a line
