"""One training loop for every model family (what `gen train` runs).

A family (GrooVAE here; the LSTM note models plug in the same way) supplies a `Family`: how to
build its model from a resolved config, turn NoteSequences into training examples, batch them, and
compute the loss. The loop supplies the rest: device choice (the GPU when there is one, bf16
autocast there), Magenta's learning-rate decay and global-norm clipping, progress, evaluation at
intervals, TensorBoard scalars, atomic checkpoints every N steps or minutes, and exact resumption.

Reproducibility: the examples of epoch e are converted with a random generator seeded by
(seed, e, position of the sequence), in worker processes, and shuffled with one seeded by (seed, e);
so the data order depends on the seed alone, not on the number of workers, and a resumed run
rebuilds epoch e and skips the batches it had already taken.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from generation.checkpoint import (
    latest_checkpoint,
    load_state,
    load_weights,
    read_run_config,
    save_checkpoint,
    write_run_config,
)
from generation.errors import BadConfig, NoExamplesError


class Family(Protocol):
    """What a model family gives the training loop."""

    name: str

    def build_model(self, config: Any) -> Any: ...

    def examples(self, config: Any, serialized_sequence: bytes, *, training: bool, rng: np.random.Generator) -> list[Any]:
        """Training examples from one serialized NoteSequence (numpy arrays, picklable)."""

    def collate(self, examples: Sequence[Any]) -> dict[str, Any]:
        """A batch of torch tensors from examples."""

    def loss(self, model: Any, batch: dict[str, Any], step: int) -> dict[str, Any]:
        """'loss' (a scalar tensor to minimise) and other scalar metrics."""


@dataclass
class TrainOptions:
    num_steps: int
    batch_size: int | None = None  # default: the config's
    seed: int = 0
    checkpoint_every_steps: int = 500
    checkpoint_every_minutes: float = 10.0
    keep_checkpoints: int = 3
    eval_every_steps: int = 500
    eval_batches: int = 10
    workers: int | None = None  # processes converting sequences to examples; default: cores - 1
    device: str | None = None  # default: cuda when available, else cpu
    progress: bool = False
    log_every_steps: int = 10


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    resumed_from: int | None
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    eval_metrics: dict[str, float] = field(default_factory=dict)


def learning_rate(hparams: Any, step: int) -> float:
    """Magenta's decay: (lr0 - min_lr) * decay_rate ** step + min_lr."""
    return (hparams.learning_rate - hparams.min_learning_rate) * hparams.decay_rate**step + hparams.min_learning_rate


def read_sequences(paths: Sequence[str | os.PathLike[str]]) -> list[bytes]:
    """Every serialized NoteSequence of the TFRecord files (bytes, parsed lazily by the workers)."""
    from generation.io.tfrecord import read_records

    return [record for path in paths for record in read_records(path)]


_worker_state: dict[str, Any] = {}


def _worker_examples(task: tuple[int, int, int]) -> list[Any]:
    index, epoch, seed = task
    family, config, sequences, training = (_worker_state[k] for k in ("family", "config", "sequences", "training"))
    rng = np.random.default_rng([seed, epoch, index])
    return family.examples(config, sequences[index], training=training, rng=rng)


class EpochBatches:
    """Batches of epoch `epoch`: sequences converted in worker processes, shuffled by seed and epoch."""

    def __init__(self, family: Family, config: Any, sequences: list[bytes], *, batch_size: int, seed: int,
                 training: bool, workers: int, cache: bool = False) -> None:
        self.family, self.config, self.sequences = family, config, sequences
        self.batch_size, self.seed, self.training, self.workers = batch_size, seed, training, workers
        self._cache: dict[int, list[Any]] | None = {} if cache else None  # evaluation data: converted once

    def examples(self, epoch: int) -> list[Any]:
        if self._cache is not None and epoch in self._cache:
            return self._cache[epoch]
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.sequences))
        tasks = [(int(index), epoch, self.seed) for index in order]
        _worker_state.update(family=self.family, config=self.config, sequences=self.sequences, training=self.training)
        if self.workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            with multiprocessing.get_context("fork").Pool(self.workers) as pool:
                per_sequence = pool.map(_worker_examples, tasks, chunksize=max(1, len(tasks) // (self.workers * 4)))
        else:
            per_sequence = [_worker_examples(task) for task in tasks]
        examples = [example for found in per_sequence for example in found]
        np.random.default_rng([self.seed, epoch, 1]).shuffle(examples)
        if self._cache is not None:
            self._cache[epoch] = examples
        return examples

    def batches(self, epoch: int, skip: int = 0) -> Iterator[dict[str, Any]]:
        examples = self.examples(epoch)
        count = len(examples) // self.batch_size  # the last partial batch is dropped, as Magenta does
        for number in range(skip, count):
            yield self.family.collate(examples[number * self.batch_size : (number + 1) * self.batch_size])


def family_for(name: str) -> Family:
    if name == "groovae":
        from generation.music_vae.family import GrooVAEFamily

        return GrooVAEFamily()
    raise BadConfig(f"unknown model family {name!r}")


def _rng_info() -> dict[str, Any]:
    version, state, gauss = random.getstate()
    return {"python": [version, list(state), gauss]}


def _restore_rng(info: dict[str, Any], tensors: dict[str, Any]) -> None:
    import torch

    version, state, gauss = info["rng"]["python"]
    random.setstate((version, tuple(state), gauss))
    torch.set_rng_state(tensors["rng.torch"])


def _optimizer_state(optimizer: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Optimizer tensors for safetensors, and its scalar param groups for JSON."""
    import torch

    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            tensors[f"optimizer.{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()} for group in state["param_groups"]]
    return tensors, groups


def _restore_optimizer(optimizer: Any, tensors: dict[str, Any], groups: list[dict[str, Any]]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def train(
    config: Any,
    examples: Sequence[str | os.PathLike[str]],
    run_dir: str | os.PathLike[str],
    options: TrainOptions,
    eval_examples: Sequence[str | os.PathLike[str]] = (),
) -> TrainResult:
    """Trains `config` (resolved, with `.model` naming its family) until step `options.num_steps`.

    An existing run directory is resumed from its latest checkpoint: same config (a different one
    is a `BadConfig`), optimizer, step, data position and RNG.
    """
    import torch

    started = time.perf_counter()
    run_dir = Path(run_dir)
    family = family_for(config.model)
    existing = latest_checkpoint(run_dir) if run_dir.is_dir() else None
    if (run_dir / "config.json").is_file():
        stored = read_run_config(run_dir)
        stored.pop("version", None)
        if stored != json.loads(json.dumps(config.to_json())):
            raise BadConfig(f"{run_dir}: holds a run of a different config ({stored.get('name')!r}); "
                            "use a new --run-dir, or the same config and options to resume")
    else:
        write_run_config(run_dir, config.to_json())
    hparams = config.hparams
    batch_size = options.batch_size or hparams.batch_size
    device = torch.device(options.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(options.seed)
    random.seed(options.seed)
    model = family.build_model(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate(hparams, 0))
    step, epoch, batch_in_epoch, resumed_from = 0, 0, 0, None
    if existing is not None:
        model.load_state_dict(load_weights(existing))
        tensors, info = load_state(existing)
        _restore_optimizer(optimizer, tensors, info["optimizer"])
        _restore_rng(info, tensors)
        step, epoch, batch_in_epoch = info["step"], info["data"]["epoch"], info["data"]["batch"]
        if info["data"].get("batch_size") != batch_size or info["data"].get("seed") != options.seed:
            raise BadConfig(f"{run_dir}: was trained with batch size {info['data'].get('batch_size')} and seed "
                            f"{info['data'].get('seed')}; resume with the same")
        resumed_from = step
    sequences = read_sequences(examples)
    if not sequences:
        raise NoExamplesError(f"{', '.join(map(str, examples))}: no NoteSequences")
    workers = options.workers if options.workers is not None else max(1, (os.cpu_count() or 2) - 1)
    data = EpochBatches(family, config, sequences, batch_size=batch_size, seed=options.seed, training=True, workers=workers)
    eval_data = None
    if eval_examples:
        eval_data = EpochBatches(family, config, read_sequences(eval_examples), batch_size=batch_size,
                                 seed=options.seed, training=True, workers=workers, cache=True)

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(run_dir))
    bar = None
    if options.progress:
        from tqdm import tqdm

        bar = tqdm(total=options.num_steps, initial=step, unit="step", desc="train", dynamic_ncols=True)
    metrics: dict[str, float] = {}
    eval_metrics: dict[str, float] = {}
    last_checkpoint_time = time.monotonic()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)

    def checkpoint() -> None:
        tensors, groups = _optimizer_state(optimizer)
        tensors["rng.torch"] = torch.get_rng_state()
        info = {"optimizer": groups, "rng": _rng_info(),
                "data": {"epoch": epoch, "batch": batch_in_epoch, "batch_size": batch_size, "seed": options.seed},
                "metrics": metrics, "eval_metrics": eval_metrics}
        save_checkpoint(run_dir, step, model.state_dict(), tensors, info, keep=options.keep_checkpoints)

    try:
        while step < options.num_steps:
            skipped, produced = batch_in_epoch, False
            for batch in data.batches(epoch, skip=skipped):
                produced = True
                model.train()
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(hparams, step)
                batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
                with autocast:
                    outputs = family.loss(model, batch, step)
                optimizer.zero_grad(set_to_none=True)
                outputs["loss"].backward()
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), hparams.grad_clip)
                # Magenta skips a step whose global norm is beyond grad_norm_clip_to_zero.
                if math.isfinite(float(norm)) and float(norm) <= hparams.grad_norm_clip_to_zero:
                    optimizer.step()
                step += 1
                batch_in_epoch += 1
                metrics = {k: float(v.detach()) for k, v in outputs.items()}
                metrics["grad_norm"] = float(norm)
                metrics["learning_rate"] = learning_rate(hparams, step - 1)
                if step % options.log_every_steps == 0 or step == options.num_steps:
                    for key, value in metrics.items():
                        writer.add_scalar(f"train/{key}", value, step)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{metrics['loss']:.3f}", kl=f"{metrics.get('kl_bits', 0.0):.1f}")
                if eval_data is not None and (step % options.eval_every_steps == 0 or step == options.num_steps):
                    eval_metrics = evaluate_loss(family, model, eval_data, options.eval_batches, device, step)
                    for key, value in eval_metrics.items():
                        writer.add_scalar(f"eval/{key}", value, step)
                due = (step % options.checkpoint_every_steps == 0
                       or time.monotonic() - last_checkpoint_time > options.checkpoint_every_minutes * 60)
                if due or step == options.num_steps:
                    checkpoint()
                    last_checkpoint_time = time.monotonic()
                if step >= options.num_steps:
                    break
            else:
                if not produced and skipped == 0:  # a resumed epoch may simply have been finished
                    raise NoExamplesError(
                        f"{', '.join(map(str, examples))}: no training examples for {config.name} "
                        f"(fewer than {batch_size} windows this epoch)"
                    )
                epoch, batch_in_epoch = epoch + 1, 0
    finally:
        writer.close()
        if bar is not None:
            bar.close()
    return TrainResult(run_dir, step, resumed_from, time.perf_counter() - started, metrics, eval_metrics)


def evaluate_loss(family: Family, model: Any, data: EpochBatches, batches: int, device: Any, step: int) -> dict[str, float]:
    """Mean metrics over the first `batches` batches of the evaluation data (its epoch 0)."""
    import torch

    model.eval()
    totals: dict[str, float] = {}
    count = 0
    with torch.no_grad():
        for batch in data.batches(0):
            batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
            for key, value in family.loss(model, batch, step).items():
                totals[key] = totals.get(key, 0.0) + float(value)
            count += 1
            if count >= batches:
                break
    return {key: value / count for key, value in totals.items()} if count else {}
