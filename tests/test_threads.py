"""Inference's torch thread count (generation/threads.py): the user's choice first, else 1."""

from __future__ import annotations

import pytest
import torch

from generation import threads


@pytest.fixture
def torch_threads():
    """Restores torch's thread count after the test."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def no_choice(monkeypatch):
    monkeypatch.delenv("GEN_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    return monkeypatch


def test_one_thread_unless_the_user_chose(no_choice, torch_threads) -> None:
    assert threads.inference_threads() == 1
    torch.set_num_threads(2)
    threads.use_inference_threads()
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("env, expected", [
    ({"OMP_NUM_THREADS": "2"}, 2),
    ({"GEN_THREADS": "3"}, 3),
    ({"GEN_THREADS": "2", "OMP_NUM_THREADS": "1"}, 2),  # GEN_THREADS wins
    ({"OMP_NUM_THREADS": "2,1"}, 2),  # OpenMP's list per nesting level: the first
    ({"GEN_THREADS": "lots", "OMP_NUM_THREADS": "2"}, 2),  # not a number: as if unset
    ({"GEN_THREADS": "0"}, 1),
])
def test_the_users_choice_is_respected(no_choice, torch_threads, env, expected) -> None:
    for name, value in env.items():
        no_choice.setenv(name, value)
    assert threads.inference_threads() == expected
    threads.use_inference_threads()
    assert torch.get_num_threads() == expected


def test_loading_a_model_for_the_cpu_applies_the_policy(no_choice, torch_threads) -> None:
    from generation.lstm import LSTMModel
    from generation.music_vae.trained_model import TrainedModel

    torch.set_num_threads(2)
    LSTMModel("folk-melody")
    assert torch.get_num_threads() == 1
    torch.set_num_threads(2)
    TrainedModel(config=None, batch_size=1, checkpoint_dir_or_path="groove-4bar")
    assert torch.get_num_threads() == 1
