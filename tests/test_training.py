"""`gen train`'s loop on the CPU with the tiny config: checkpoints, exact resumption, seeds, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from generation.checkpoint import latest_checkpoint, list_checkpoints, load_weights
from generation.errors import BadConfig, DamagedCheckpoint
from generation.music_vae.configs import load_config
from generation.preprocess import preprocess
from generation.training import TrainOptions, train

from .conftest import FIXTURES


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> Path:
    """The 4 Groove fixtures in one file: 8 two-bar windows (the 4/4 funk beat; the rest are too short or not 4/4)."""
    out = tmp_path_factory.mktemp("data") / "groove"
    preprocess([FIXTURES / "groove"], out, jobs=1)
    return out.with_suffix(".tfrecord")


def options(steps: int, **changes) -> TrainOptions:
    values = dict(num_steps=steps, batch_size=2, seed=3, checkpoint_every_steps=3, eval_every_steps=3, workers=1,
                  device="cpu", log_every_steps=1)
    return TrainOptions(**{**values, **changes})


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    checkpoint = latest_checkpoint(run_dir)
    assert checkpoint is not None
    return load_weights(checkpoint)


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resumed_run_equals_uninterrupted_run(examples: Path, tmp_path: Path) -> None:
    config = load_config("groovae_tiny")
    whole = train(config, [examples], tmp_path / "whole", options(7))
    assert whole.step == 7 and whole.resumed_from is None
    first = train(config, [examples], tmp_path / "split", options(3))
    assert first.step == 3
    second = train(config, [examples], tmp_path / "split", options(7))
    assert second.resumed_from == 3 and second.step == 7
    assert_same_weights(final_weights(tmp_path / "whole"), final_weights(tmp_path / "split"))
    assert second.metrics["loss"] == pytest.approx(whole.metrics["loss"], abs=0)


def test_same_seed_same_run_whatever_the_workers(examples: Path, tmp_path: Path) -> None:
    config = load_config("groovae_tiny")
    train(config, [examples], tmp_path / "one", options(4, workers=1))
    train(config, [examples], tmp_path / "two", options(4, workers=2))
    assert_same_weights(final_weights(tmp_path / "one"), final_weights(tmp_path / "two"))
    train(config, [examples], tmp_path / "other_seed", options(4, seed=4))
    assert not torch.equal(final_weights(tmp_path / "one")["output_projection.weight"],
                           final_weights(tmp_path / "other_seed")["output_projection.weight"])


def test_loss_falls_and_logs_and_eval_are_written(examples: Path, tmp_path: Path) -> None:
    config = load_config("groovae_tiny")
    early = train(config, [examples], tmp_path / "run", options(2), eval_examples=[examples])
    late = train(config, [examples], tmp_path / "run", options(60, checkpoint_every_steps=100), eval_examples=[examples])
    assert late.metrics["r_loss"] < 0.8 * early.metrics["r_loss"]
    assert late.eval_metrics and "r_loss" in late.eval_metrics
    assert list((tmp_path / "run").glob("events.out.tfevents.*"))
    assert (tmp_path / "run" / "config.json").is_file()


def test_another_config_in_the_same_run_directory_is_refused(examples: Path, tmp_path: Path) -> None:
    train(load_config("groovae_tiny"), [examples], tmp_path / "run", options(1))
    with pytest.raises(BadConfig, match="holds a run of a different config"):
        train(load_config("groovae_2bar_humanize"), [examples], tmp_path / "run", options(2))
    with pytest.raises(BadConfig, match="batch size 2, seed 3 and 1 process"):
        train(load_config("groovae_tiny"), [examples], tmp_path / "run", options(2, batch_size=4))


def test_damaged_checkpoint_stops_resumption_with_one_line(examples: Path, tmp_path: Path) -> None:
    train(load_config("groovae_tiny"), [examples], tmp_path / "run", options(3))
    checkpoint = latest_checkpoint(tmp_path / "run")
    checkpoint.state.write_bytes(checkpoint.state.read_bytes()[:100])
    with pytest.raises(DamagedCheckpoint, match=r"step-3\.state\.safetensors: damaged"):
        train(load_config("groovae_tiny"), [examples], tmp_path / "run", options(5))


def test_two_process_data_parallel_training_on_the_cpu(examples: Path, tmp_path: Path) -> None:
    """torchrun with 2 gloo processes: rank 0 alone writes; the run resumes under the same world size."""
    repo = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(repo / "cli.py"), "train", "--config", "groovae_tiny", "--examples", str(examples),
               "--run-dir", str(tmp_path / "run"), "--batch-size", "2", "--workers", "1", "--device", "cpu", "-q",
               "--checkpoint-every", "2"]
    first = subprocess.run([*command, "--num-steps", "4"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.count("Trained groovae_tiny to step 4") == 1  # the first rank reports and writes
    assert [c.step for c in list_checkpoints(tmp_path / "run")] == [2, 4]
    assert len(list((tmp_path / "run").glob("events.out.tfevents.*"))) == 1
    second = subprocess.run([*command, "--num-steps", "8"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "to step 8 (resumed at step 4)" in second.stdout


class Identity:
    """A family whose example of sequence b"7" is 7, and whose batch is the list of examples."""

    def examples(self, config, serialized, *, training, rng):
        return [int(serialized)]

    def collate(self, examples):
        return list(examples)


def test_ranks_take_disjoint_batches() -> None:
    from generation.training import EpochBatches

    data = EpochBatches(Identity(), None, [str(i).encode() for i in range(20)], batch_size=3, seed=0,
                        training=True, workers=1)
    single = [b for batch in data.batches(0, world=1) for b in batch]
    ranks = [[b for batch in data.batches(0, rank=r, world=2) for b in batch] for r in (0, 1)]
    assert not set(ranks[0]) & set(ranks[1])
    assert sorted(ranks[0] + ranks[1]) == sorted(single[:18])  # 3 steps of 2 x 3 examples
    assert list(data.batches(0, skip=2, rank=1, world=2)) == [data.examples(0)[15:18]]  # step 2, rank 1


def test_next_epoch_is_converted_while_this_one_trains() -> None:
    from generation.training import EpochBatches

    data = EpochBatches(Identity(), None, [str(i).encode() for i in range(12)], batch_size=4, seed=1,
                        training=True, workers=1)
    next(data.batches(0))
    assert data._next is not None and data._next[0] == 1  # started before epoch 0's first batch was used
    fresh = EpochBatches(Identity(), None, [str(i).encode() for i in range(12)], batch_size=4, seed=1,
                         training=True, workers=1)
    assert data.examples(1) == fresh.examples(1) != data.examples(0)


def test_a_killed_run_resumes_from_its_last_checkpoint_and_a_second_run_is_refused(examples: Path, tmp_path: Path) -> None:
    import signal
    import time

    repo = Path(__file__).resolve().parents[1]
    command = [sys.executable, str(repo / "cli.py"), "train", "--config", "groovae_tiny", "--examples", str(examples),
               "--run-dir", str(tmp_path / "run"), "--batch-size", "2", "--workers", "1", "--device", "cpu", "-q",
               "--checkpoint-every", "2"]
    process = subprocess.Popen([*command, "--num-steps", "100000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list_checkpoints(tmp_path / "run")) < 2:
        time.sleep(0.05)
    second = subprocess.run([*command, "--num-steps", "100000"], capture_output=True, text=True, timeout=120)
    checkpoints_while_running = latest_checkpoint(tmp_path / "run")
    process.send_signal(signal.SIGKILL)  # no chance to clean up, as a crash or a pulled plug
    process.wait()
    # A second `gen train` on the directory refuses in one line and leaves the first run's files alone.
    assert second.returncode != 0
    assert second.stderr.strip().splitlines() == [
        f"Error: {tmp_path / 'run'}: is being trained by process {process.pid}; wait for it to finish, "
        "or give this run another --run-dir"]
    assert checkpoints_while_running is not None
    (tmp_path / "run" / "checkpoints" / ".step-9.safetensors.abc.tmp").write_bytes(b"half a file")  # as if mid-write
    killed_at = latest_checkpoint(tmp_path / "run")
    assert killed_at is not None and killed_at.step >= 4
    load_weights(killed_at)  # the newest checkpoint is complete and verifies
    resumed = subprocess.run([*command, "--num-steps", str(killed_at.step + 3)], capture_output=True, text=True,
                             timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"(resumed at step {killed_at.step})" in resumed.stdout
    assert not list((tmp_path / "run" / "checkpoints").glob(".*.tmp"))  # no debris counted as a checkpoint


def test_clip_modes(examples: Path, tmp_path: Path) -> None:
    config = load_config("groovae_tiny")
    config.hparams.clip_mode = "value"
    assert train(config, [examples], tmp_path / "value", options(2)).step == 2
    config.hparams.clip_mode = "bogus"
    with pytest.raises(BadConfig, match="clip_mode 'bogus'"):
        train(config, [examples], tmp_path / "bogus", options(2))
