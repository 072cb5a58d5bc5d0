"""One training loop for every model family (what `gen train` runs).

A family (GrooVAE, the LSTM note models) supplies a `Family`: how to
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
    hold_run_dir,
    latest_checkpoint,
    load_state,
    load_weights,
    read_run_config,
    remove_unfinished,
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
    stream: bool = False  # read the examples as a stream in bounded memory (`generation.streaming`)


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


def _convert_sequence(state: tuple[Any, Any, list[bytes], bool], task: tuple[int, int, int]) -> list[Any]:
    family, config, sequences, training = state
    index, epoch, seed = task
    rng = np.random.default_rng([seed, epoch, index])
    return family.examples(config, sequences[index], training=training, rng=rng)


_worker_state: tuple[Any, Any, list[bytes], bool] | None = None  # set in each worker by the pool initializer


def _start_worker(*state: Any) -> None:
    global _worker_state
    _worker_state = state  # type: ignore[assignment]


def _worker_examples(task: tuple[int, int, int]) -> list[Any]:
    assert _worker_state is not None
    return _convert_sequence(_worker_state, task)


class EpochBatches:
    """Batches of epoch `epoch`: sequences converted in worker processes, shuffled by seed and epoch."""

    def __init__(self, family: Family, config: Any, sequences: list[bytes], *, batch_size: int, seed: int,
                 training: bool, workers: int, cache: bool = False) -> None:
        self.family, self.config, self.sequences = family, config, sequences
        self.batch_size, self.seed, self.training, self.workers = batch_size, seed, training, workers
        self._cache: dict[int, list[Any]] | None = {} if cache else None  # evaluation data: converted once
        self._next: tuple[int, Any] | None = None  # (epoch, future): the epoch after the current one
        self._pool: Any = None  # multiprocessing.Pool, started by start()

    def examples(self, epoch: int) -> list[Any]:
        if self._cache is not None and epoch in self._cache:
            return self._cache[epoch]
        if self._next is not None and self._next[0] == epoch:
            return self._next[1].result()
        return self._convert(epoch)

    def prefetch(self, epoch: int) -> None:
        """Starts converting `epoch` in the background, so the device need not wait at the epoch's start."""
        if self._next is None or self._next[0] != epoch:
            from concurrent.futures import ThreadPoolExecutor

            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gen-data")
            self._next = (epoch, executor.submit(self._convert, epoch))
            executor.shutdown(wait=False)

    def start(self) -> None:
        """Starts the worker processes (from the main thread, before any prefetching thread exists)."""
        if self.workers > 1 and self._pool is None and "fork" in multiprocessing.get_all_start_methods():
            state = (self.family, self.config, self.sequences, self.training)
            self._pool = multiprocessing.get_context("fork").Pool(self.workers, initializer=_start_worker, initargs=state)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None

    def _convert(self, epoch: int) -> list[Any]:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.sequences))
        tasks = [(int(index), epoch, self.seed) for index in order]
        if self._pool is not None:
            per_sequence = self._pool.map(_worker_examples, tasks, chunksize=max(1, len(tasks) // (self.workers * 4)))
        else:
            state = (self.family, self.config, self.sequences, self.training)
            per_sequence = [_convert_sequence(state, task) for task in tasks]
        examples = [example for found in per_sequence for example in found]
        np.random.default_rng([self.seed, epoch, 1]).shuffle(examples)
        if self._cache is not None:
            self._cache[epoch] = examples
        return examples

    def batches(self, epoch: int, skip: int = 0, rank: int = 0, world: int = 1) -> Iterator[dict[str, Any]]:
        """Step `skip` onwards of the epoch; under DistributedDataParallel, rank r of `world` takes
        every world-th batch, so one step covers world * batch_size examples, each seen once."""
        examples = self.examples(epoch)
        if self._cache is None:
            self.prefetch(epoch + 1)
        steps = len(examples) // (self.batch_size * world)  # a last partial step is dropped, as Magenta does
        for number in range(skip, steps):
            start = (number * world + rank) * self.batch_size
            yield self.family.collate(examples[start : start + self.batch_size])


def family_for(name: str) -> Family:
    if name == "groovae":
        from generation.music_vae.family import GrooVAEFamily

        return GrooVAEFamily()
    if name == "lstm":
        from generation.lstm.family import LSTMFamily

        return LSTMFamily()
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
    is a `BadConfig`), optimizer, step, data position and RNG. A directory another process is
    training is a `RunDirInUse`.
    """
    if _Distributed.rank_from_environment() != 0:
        return _train(config, examples, run_dir, options, eval_examples)
    with hold_run_dir(run_dir):
        return _train(config, examples, run_dir, options, eval_examples)


def _train(
    config: Any,
    examples: Sequence[str | os.PathLike[str]],
    run_dir: str | os.PathLike[str],
    options: TrainOptions,
    eval_examples: Sequence[str | os.PathLike[str]],
) -> TrainResult:
    import torch

    started = time.perf_counter()
    run_dir = Path(run_dir)
    family = family_for(config.model)
    distributed = _Distributed.from_environment(options.device)
    existing = latest_checkpoint(run_dir) if run_dir.is_dir() else None
    if (run_dir / "config.json").is_file():
        stored = read_run_config(run_dir)
        stored.pop("version", None)
        if stored != json.loads(json.dumps(config.to_json())):
            raise BadConfig(f"{run_dir}: holds a run of a different config ({stored.get('name')!r}); "
                            "use a new --run-dir, or the same config and options to resume")
    elif distributed.is_main:
        write_run_config(run_dir, config.to_json())
    if distributed.is_main:
        remove_unfinished(run_dir)
    hparams = config.hparams
    if hparams.clip_mode not in ("global_norm", "value"):
        raise BadConfig(f"{config.name}: clip_mode {hparams.clip_mode!r} is not 'global_norm' or 'value'")
    batch_size = options.batch_size or hparams.batch_size
    device = distributed.device
    torch.manual_seed(options.seed + distributed.rank)  # ranks draw different dropout and z noise
    random.seed(options.seed)
    model = family.build_model(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate(hparams, 0))
    step, epoch, batch_in_epoch, resumed_from = 0, 0, 0, None
    if existing is not None:
        model.load_state_dict(load_weights(existing))
        tensors, info = load_state(existing)
        _restore_optimizer(optimizer, tensors, info["optimizer"])
        step, epoch, batch_in_epoch = info["step"], info["data"]["epoch"], info["data"]["batch"]
        if distributed.world == 1:
            _restore_rng(info, tensors)
        else:  # the checkpoint holds rank 0's generator; every rank reseeds from (seed, rank, step)
            torch.manual_seed(hash((options.seed, distributed.rank, step)) % 2**63)
        trained_with = (info["data"].get("batch_size"), info["data"].get("seed"), info["data"].get("world", 1))
        if trained_with != (batch_size, options.seed, distributed.world):
            raise BadConfig(f"{run_dir}: was trained with batch size {trained_with[0]}, seed {trained_with[1]} "
                            f"and {trained_with[2]} process(es); resume with the same")
        resumed_from = step
    model = distributed.wrap(model)
    workers = options.workers if options.workers is not None else max(1, (os.cpu_count() or 2) - 1)
    data: Any
    eval_data: Any = None
    if options.stream:
        from generation.streaming import StreamBatches

        data = StreamBatches(family, config, examples, batch_size=batch_size, seed=options.seed, training=True,
                             workers=workers)
        if eval_examples:
            eval_data = StreamBatches(family, config, eval_examples, batch_size=batch_size, seed=options.seed,
                                      training=True, workers=1)
    else:
        sequences = read_sequences(examples)
        if not sequences:
            raise NoExamplesError(f"{', '.join(map(str, examples))}: no NoteSequences")
        data = EpochBatches(family, config, sequences, batch_size=batch_size, seed=options.seed, training=True,
                            workers=workers)
        if eval_examples:
            eval_data = EpochBatches(family, config, read_sequences(eval_examples), batch_size=batch_size,
                                     seed=options.seed, training=True, workers=workers, cache=True)

    data.start()
    if eval_data is not None:
        eval_data.start()

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(run_dir)) if distributed.is_main else None
    bar = None
    if options.progress and distributed.is_main:
        from tqdm import tqdm

        bar = tqdm(total=options.num_steps, initial=step, unit="step", desc="train", dynamic_ncols=True)
    metrics: dict[str, float] = {}
    eval_metrics: dict[str, float] = {}
    last_checkpoint_time = time.monotonic()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)

    def checkpoint() -> None:
        if not distributed.is_main:
            return
        tensors, groups = _optimizer_state(optimizer)
        tensors["rng.torch"] = torch.get_rng_state()
        info = {"optimizer": groups, "rng": _rng_info(),
                "data": {"epoch": epoch, "batch": batch_in_epoch, "batch_size": batch_size, "seed": options.seed,
                         "world": distributed.world},
                "metrics": metrics, "eval_metrics": eval_metrics}
        save_checkpoint(run_dir, step, distributed.unwrap(model).state_dict(), tensors, info,
                        keep=options.keep_checkpoints)

    try:
        while step < options.num_steps:
            skipped, produced = batch_in_epoch, False
            for batch in data.batches(epoch, skip=skipped, rank=distributed.rank, world=distributed.world):
                produced = True
                model.train()
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(hparams, step)
                batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
                with autocast:
                    outputs = family.loss(model, batch, step)  # DDP averages gradients across ranks
                optimizer.zero_grad(set_to_none=True)
                outputs["loss"].backward()
                if hparams.clip_mode == "value":
                    norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None])
                    torch.nn.utils.clip_grad_value_(model.parameters(), hparams.grad_clip)
                else:
                    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), hparams.grad_clip)
                # Magenta skips a step whose global norm is beyond grad_norm_clip_to_zero.
                if math.isfinite(float(norm)) and float(norm) <= hparams.grad_norm_clip_to_zero:
                    optimizer.step()
                step += 1
                batch_in_epoch += 1
                metrics = {k: float(v.detach()) for k, v in outputs.items()}
                metrics["grad_norm"] = float(norm)
                metrics["learning_rate"] = learning_rate(hparams, step - 1)
                if writer is not None and (step % options.log_every_steps == 0 or step == options.num_steps):
                    for key, value in metrics.items():
                        writer.add_scalar(f"train/{key}", value, step)
                if bar is not None:
                    bar.update(1)
                    shown = {"loss": f"{metrics['loss']:.3f}"}
                    if "kl_bits" in metrics:
                        shown["kl"] = f"{metrics['kl_bits']:.1f}"
                    elif "accuracy" in metrics:
                        shown["acc"] = f"{metrics['accuracy']:.3f}"
                    bar.set_postfix(shown)
                if eval_data is not None and distributed.is_main and (
                        step % options.eval_every_steps == 0 or step == options.num_steps):
                    eval_metrics = evaluate_loss(family, distributed.unwrap(model), eval_data, options.eval_batches,
                                                 device, step)
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
        if writer is not None:
            writer.close()
        if bar is not None:
            bar.close()
        data.close()
        if eval_data is not None:
            eval_data.close()
        distributed.close()
    return TrainResult(run_dir, step, resumed_from, time.perf_counter() - started, metrics, eval_metrics)


@dataclass
class _Distributed:
    """This process's place in a `torchrun` job (WORLD_SIZE > 1), or a single process."""

    rank: int
    world: int
    device: Any

    @staticmethod
    def rank_from_environment() -> int:
        return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0

    @classmethod
    def from_environment(cls, requested_device: str | None) -> _Distributed:
        import torch

        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = torch.cuda.is_available() and (requested_device or "cuda").startswith("cuda")
        if world > 1:
            import torch.distributed as dist

            dist.init_process_group(backend="nccl" if cuda else "gloo")
            device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
            if cuda:
                torch.cuda.set_device(device)
        else:
            device = torch.device(requested_device or ("cuda" if cuda else "cpu"))
        return cls(rank=rank, world=world, device=device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: Any) -> Any:
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        # Parameters are broadcast from rank 0 here, so every rank starts from the same weights.
        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    @staticmethod
    def unwrap(model: Any) -> Any:
        return getattr(model, "module", model)

    def close(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def evaluate_loss(family: Family, model: Any, data: Any, batches: int, device: Any, step: int) -> dict[str, float]:
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
