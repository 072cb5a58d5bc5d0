"""`gen train --stream`: shards interleaved, shuffled through bounded buffers, exact seeds and resumption."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from generation import streaming
from generation.checkpoint import list_checkpoints
from generation.io.tfrecord import encode_record, read_records
from generation.music_vae.configs import load_config
from generation.preprocess import preprocess
from generation.streaming import StreamBatches, interleaved, shuffled
from generation.training import train

from .conftest import FIXTURES
from .test_training import Identity, assert_same_weights, final_weights, options


def write_records(path: Path, data: list[bytes]) -> Path:
    path.write_bytes(b"".join(encode_record(d) for d in data))
    return path


def records(path: Path, values: list[int]) -> Path:
    return write_records(path, [str(v).encode() for v in values])


def test_shards_are_read_a_few_at_a_time_in_turn(tmp_path: Path) -> None:
    a = records(tmp_path / "a.tfrecord", [0, 1, 2])
    b = records(tmp_path / "b.tfrecord", [10, 11, 12, 13])
    c = records(tmp_path / "c.tfrecord", [20])
    assert [int(r) for r in interleaved([a, b, c], cycle=2)] == [0, 10, 1, 11, 2, 12, 20, 13]


def test_the_shuffle_buffer_keeps_every_item_once_and_holds_only_its_size() -> None:
    import numpy as np

    pulled = []

    def source():
        for item in range(1000):
            pulled.append(item)
            yield item

    out = shuffled(source(), 10, np.random.default_rng(0))
    first = next(out)
    assert len(pulled) == 11 and first < 11  # an item leaves once the buffer is full
    rest = list(out)
    assert sorted([first] + rest) == list(range(1000)) and [first] + rest != list(range(1000))


def test_the_stream_reads_ahead_only_its_buffers(tmp_path: Path, monkeypatch) -> None:
    """10,000 records: the first batch comes after reading about the buffers' worth, not the corpus."""
    shards = [records(tmp_path / f"s-{k}.tfrecord", list(range(k * 2500, (k + 1) * 2500))) for k in range(4)]
    read = []
    real = streaming.interleaved

    def counting(paths, cycle=streaming.CYCLE):
        for record in real(paths, cycle):
            read.append(record)
            yield record

    monkeypatch.setattr(streaming, "interleaved", counting)
    data = StreamBatches(Identity(), None, shards, batch_size=4, seed=0, training=True, workers=1)
    next(data.batches(0))
    held = streaming.RECORD_BUFFER + streaming.CHUNK + (streaming.EXAMPLE_BUFFER_BATCHES + 1) * 4
    assert len(read) <= held < 10_000
    epoch = [x for batch in data.batches(0) for x in batch]
    assert sorted(epoch) == list(range(10_000))  # each record once per epoch
    assert epoch != [x for batch in data.batches(1) for x in batch]  # a new order each epoch


def test_ranks_convert_disjoint_records(tmp_path: Path) -> None:
    shards = [records(tmp_path / f"s-{k}.tfrecord", list(range(k * 10, k * 10 + 10))) for k in range(3)]
    data = StreamBatches(Identity(), None, shards, batch_size=3, seed=1, training=True, workers=1)
    ranks = [[x for batch in data.batches(0, rank=r, world=2) for x in batch] for r in (0, 1)]
    assert not set(ranks[0]) & set(ranks[1])
    assert len(ranks[0]) == len(ranks[1]) == 15  # 5 whole batches each of the 15 records each converts
    assert list(data.batches(0, skip=3)) == list(data.batches(0))[3:]


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> list[Path]:
    """2 shards, each of the 4 Groove fixtures (only the funk beat gives windows: each of 2 ranks,
    reading every other record, gets it)."""
    out = tmp_path_factory.mktemp("data") / "groove"
    preprocess([FIXTURES / "groove"], out, jobs=1)
    whole = list(read_records(out.with_suffix(".tfrecord")))
    return [write_records(out.parent / f"groove-0000{k}-of-00002.tfrecord", whole) for k in range(2)]


def test_a_streamed_run_resumes_exactly_and_its_seed_decides(shards: list[Path], tmp_path: Path) -> None:
    config = load_config("groovae_tiny")
    whole = train(config, shards, tmp_path / "whole", options(7, stream=True))
    assert whole.step == 7
    train(config, shards, tmp_path / "split", options(3, stream=True))
    resumed = train(config, shards, tmp_path / "split", options(7, stream=True))
    assert resumed.resumed_from == 3
    assert_same_weights(final_weights(tmp_path / "whole"), final_weights(tmp_path / "split"))
    train(config, shards, tmp_path / "two_workers", options(7, stream=True, workers=2))
    assert_same_weights(final_weights(tmp_path / "whole"), final_weights(tmp_path / "two_workers"))


def test_two_process_data_parallel_training_on_a_stream(shards: list[Path], tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(repo / "cli.py"), "train", "--config", "groovae_tiny", "--examples", str(shards[0]),
               "--examples", str(shards[1]), "--stream", "--run-dir", str(tmp_path / "run"), "--batch-size", "2",
               "--workers", "1", "--device", "cpu", "-q", "--checkpoint-every", "2", "--num-steps", "4"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("Trained groovae_tiny to step 4") == 1
    assert [c.step for c in list_checkpoints(tmp_path / "run")] == [2, 4]
