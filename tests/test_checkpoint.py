"""Run directories: atomic checkpoints, latest pointer, keep-K, and damage found before loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from generation.checkpoint import (
    CONFIG_FILE,
    latest_checkpoint,
    list_checkpoints,
    load_state,
    load_weights,
    read_run_config,
    resolve_checkpoint,
    remove_unfinished,
    save_checkpoint,
    write_run_config,
)
from generation.errors import BadConfig, DamagedCheckpoint


def weights(seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {"layer.weight": torch.randn(4, 3, generator=generator), "layer.bias": torch.randn(4, generator=generator)}


def save(run_dir: Path, step: int, keep: int = 3):
    return save_checkpoint(run_dir, step, weights(step), {"rng.torch": torch.get_rng_state()}, {"metrics": {"loss": 1.0 / step}}, keep=keep)


def test_round_trip_and_latest(tmp_path: Path) -> None:
    write_run_config(tmp_path, {"name": "tiny", "family": "groovae"})
    assert read_run_config(tmp_path)["name"] == "tiny" and "version" in read_run_config(tmp_path)
    save(tmp_path, 10)
    save(tmp_path, 20)
    latest = latest_checkpoint(tmp_path)
    assert latest is not None and latest.step == 20
    loaded = load_weights(latest)
    assert all(torch.equal(loaded[k], v) for k, v in weights(20).items())
    tensors, info = load_state(latest)
    assert info["step"] == 20 and info["metrics"] == {"loss": 0.05} and "rng.torch" in tensors
    assert resolve_checkpoint(tmp_path)[1].step == 20
    assert resolve_checkpoint(tmp_path / "checkpoints" / "step-10.safetensors") == (tmp_path, list_checkpoints(tmp_path)[0])


def test_only_the_newest_are_kept(tmp_path: Path) -> None:
    for step in (1, 2, 3, 4, 5):
        save(tmp_path, step, keep=2)
    assert [c.step for c in list_checkpoints(tmp_path)] == [4, 5]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "latest", "step-4.json", "step-4.safetensors", "step-4.state.safetensors",
        "step-5.json", "step-5.safetensors", "step-5.state.safetensors",
    ]


@pytest.mark.parametrize("killed_after", [1, 2])
def test_a_run_killed_while_pruning_lists_only_checkpoints_that_are_there(tmp_path: Path, monkeypatch,
                                                                         killed_after: int) -> None:
    """Issue 16's fault trial: a kill during pruning once left a listed checkpoint whose weights were
    gone. The .json goes first now, and the tensors left behind are removed on resume."""
    for step in (1, 2):
        save(tmp_path, step, keep=2)
    removed = []
    real_unlink = Path.unlink

    def killed(path: Path, missing_ok: bool = False) -> None:
        if len(removed) == killed_after:
            raise KeyboardInterrupt  # the run is killed here
        removed.append(path.name)
        real_unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", killed)
    with pytest.raises(KeyboardInterrupt):
        save(tmp_path, 3, keep=2)
    monkeypatch.setattr(Path, "unlink", real_unlink)
    assert removed[0] == "step-1.json"
    for checkpoint in list_checkpoints(tmp_path):
        assert checkpoint.weights.exists() and checkpoint.state.exists(), checkpoint.name
    remove_unfinished(tmp_path)
    assert [c.step for c in list_checkpoints(tmp_path)] == [2, 3]
    assert not list((tmp_path / "checkpoints").glob("step-1*"))


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damaged_weights_are_a_clear_error(tmp_path: Path, damage: str) -> None:
    checkpoint = save(tmp_path, 7)
    data = bytearray(checkpoint.weights.read_bytes())
    if damage == "flip":
        data[-3] ^= 0x55
        checkpoint.weights.write_bytes(bytes(data))
    elif damage == "truncate":
        checkpoint.weights.write_bytes(bytes(data[: len(data) // 2]))
    else:
        checkpoint.weights.unlink()
    with pytest.raises(DamagedCheckpoint) as caught:
        load_weights(checkpoint)
    assert str(caught.value).startswith(str(checkpoint.weights)) and "\n" not in str(caught.value)


def test_damaged_record_and_pointer(tmp_path: Path) -> None:
    checkpoint = save(tmp_path, 3)
    checkpoint.info.write_text("{not json")
    with pytest.raises(DamagedCheckpoint, match="step-3.json: not a readable checkpoint record"):
        load_weights(checkpoint)
    (tmp_path / "checkpoints" / "latest").write_text("garbage")
    with pytest.raises(DamagedCheckpoint, match="names 'garbage'"):
        latest_checkpoint(tmp_path)


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(BadConfig, match="not a run directory"):
        read_run_config(tmp_path)
    with pytest.raises(BadConfig, match="not a run directory"):
        resolve_checkpoint(tmp_path)
    write_run_config(tmp_path, {"name": "tiny"})
    with pytest.raises(DamagedCheckpoint, match="no checkpoint yet"):
        resolve_checkpoint(tmp_path)
    (tmp_path / CONFIG_FILE).write_text("[1, 2]")
    with pytest.raises(DamagedCheckpoint, match="expected a JSON object"):
        read_run_config(tmp_path)


def test_checkpoint_files_hold_no_pickles(tmp_path: Path) -> None:
    checkpoint = save(tmp_path, 1)
    for path in (checkpoint.weights, checkpoint.state):
        header_length = int.from_bytes(path.read_bytes()[:8], "little")
        json.loads(path.read_bytes()[8 : 8 + header_length])  # safetensors: a JSON header, then raw tensor bytes
    json.loads(checkpoint.info.read_text())
