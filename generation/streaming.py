"""Training data read as a stream, in memory that does not grow with the corpus (`gen train --stream`).

Each epoch reads the TFRecord shards in an order drawn from (seed, epoch), CYCLE of them at a time,
one record from each in turn (tf.data's interleave), so that neighbouring records come from
different shards; the records pass through a shuffle buffer of RECORD_BUFFER, are converted into
examples in worker processes (at most IN_FLIGHT chunks of CHUNK records waiting), and the examples
through a second shuffle buffer of EXAMPLE_BUFFER_BATCHES batches. What is held at any moment is
those buffers, whatever the corpus size.

Every draw comes from (seed, epoch), and each record's conversion from (seed, epoch, its index in
the stream), as in the in-memory path: the same seed gives the same batches, and a run resumed at
(epoch, batch) replays that epoch's stream up to the batch (converting, not training) and goes on
exactly as the uninterrupted run. Under DistributedDataParallel rank r of `world` converts the
records whose stream index is r modulo `world` (disjoint records), and every rank stops the epoch
when any rank runs out of batches, so they all take the same steps.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

CYCLE = 4  # shards read at once, round robin
RECORD_BUFFER = 256  # serialized NoteSequences held for shuffling
EXAMPLE_BUFFER_BATCHES = 16  # converted examples held for shuffling, in batches
CHUNK = 8  # records per conversion task
IN_FLIGHT = 4  # conversion tasks waiting per worker


def interleaved(paths: Sequence[str | os.PathLike[str]], cycle: int = CYCLE) -> Iterator[bytes]:
    """The records of `paths`, `cycle` files at a time, one record from each in turn; a finished
    file's place goes to the next file."""
    from generation.io.tfrecord import read_records

    pending = iter(paths)
    slots = [read_records(path) for _, path in zip(range(cycle), pending)]
    while slots:
        position = 0
        while position < len(slots):
            record = next(slots[position], None)
            while record is None:  # this file is done: the next one takes its place
                following = next(pending, None)
                if following is None:
                    del slots[position]
                    break
                slots[position] = read_records(following)
                record = next(slots[position], None)
            if record is not None:
                yield record
                position += 1


def shuffled(items: Iterable[Any], size: int, rng: np.random.Generator) -> Iterator[Any]:
    """`items` through a buffer of `size`: each new item takes the place of a random one, which goes
    out; the rest leave in random order at the end."""
    buffer: list[Any] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        slot = int(rng.integers(size))
        yield buffer[slot]
        buffer[slot] = item
    for slot in rng.permutation(len(buffer)):
        yield buffer[int(slot)]


_worker_state: tuple[Any, Any, bool] | None = None  # (family, config, training), set in each worker


def _start_worker(*state: Any) -> None:
    global _worker_state
    _worker_state = state  # type: ignore[assignment]


def _convert_chunk(chunk: list[tuple[int, bytes]], seed: int, epoch: int,
                   state: tuple[Any, Any, bool] | None = None) -> list[Any]:
    family, config, training = state or _worker_state  # type: ignore[misc]
    examples = []
    for index, record in chunk:
        rng = np.random.default_rng([seed, epoch, index])
        examples += family.examples(config, record, training=training, rng=rng)
    return examples


class StreamBatches:
    """Batches of an epoch read from TFRecord shards as a stream (module docstring); the interface
    of `training.EpochBatches`."""

    def __init__(self, family: Any, config: Any, paths: Sequence[str | os.PathLike[str]], *, batch_size: int,
                 seed: int, training: bool, workers: int) -> None:
        self.family, self.config, self.paths = family, config, list(paths)
        self.batch_size, self.seed, self.training, self.workers = batch_size, seed, training, workers
        self._pool: Any = None

    def start(self) -> None:
        if self.workers > 1 and self._pool is None and "fork" in multiprocessing.get_all_start_methods():
            self._pool = multiprocessing.get_context("fork").Pool(
                self.workers, initializer=_start_worker, initargs=(self.family, self.config, self.training))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None

    def _records(self, epoch: int, rank: int, world: int) -> Iterator[tuple[int, bytes]]:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.paths))
        stream = interleaved([self.paths[int(i)] for i in order])
        mine = ((index, record) for index, record in enumerate(stream) if index % world == rank)
        return shuffled(mine, RECORD_BUFFER, np.random.default_rng([self.seed, epoch, 2]))

    def _examples(self, epoch: int, rank: int, world: int) -> Iterator[Any]:
        """Converted examples in stream order, at most IN_FLIGHT * workers chunks converting."""
        records = self._records(epoch, rank, world)
        chunks = iter(lambda: [r for _, r in zip(range(CHUNK), records)], [])
        if self._pool is None:
            state = (self.family, self.config, self.training)
            for chunk in chunks:
                yield from _convert_chunk(chunk, self.seed, epoch, state)
            return
        waiting: list[Any] = []
        for chunk in chunks:
            waiting.append(self._pool.apply_async(_convert_chunk, (chunk, self.seed, epoch)))
            if len(waiting) >= IN_FLIGHT * self.workers:
                yield from waiting.pop(0).get()
        for result in waiting:
            yield from result.get()

    def batches(self, epoch: int, skip: int = 0, rank: int = 0, world: int = 1) -> Iterator[dict[str, Any]]:
        """Batch `skip` onwards of epoch `epoch` for `rank` of `world` (a last partial batch is
        dropped, as Magenta does)."""
        examples = shuffled(self._examples(epoch, rank, world), EXAMPLE_BUFFER_BATCHES * self.batch_size,
                            np.random.default_rng([self.seed, epoch, 3]))
        number = 0
        while True:
            batch = [e for _, e in zip(range(self.batch_size), examples)]
            complete = len(batch) == self.batch_size
            if not (_every_rank_has(complete) if world > 1 else complete):
                return
            if number >= skip:
                yield self.family.collate(batch)
            number += 1


def _every_rank_has(complete: bool) -> bool:
    """True when every rank of the process group (if one is running) has a whole batch for this step."""
    import torch
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        return complete

    flag = torch.tensor([1 if complete else 0])
    if dist.get_backend() == "nccl":  # NCCL reduces only tensors on the GPU
        flag = flag.cuda()
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())
