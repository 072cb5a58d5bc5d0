"""Progress bars (stderr, real units and totals) for evaluate and dataset recipes, none when off,
and the one-line error of an offline download."""

from __future__ import annotations

import re
import shutil
import socket
import threading
from pathlib import Path

import pytest

from generation import datasets
from generation.errors import DatasetError, DownloadError
from generation.io.tfrecord import read_records
from generation.preprocess import preprocess

from .conftest import FIXTURES, train_tiny_runs
from .test_datasets import tiny_recipe  # noqa: F401  (fixture)


def bar_lines(err: str, desc: str) -> list[str]:
    """The final renderings of the bar called `desc` (tqdm redraws with carriage returns)."""
    return [line for line in re.split(r"[\r\n]", err) if line.startswith(f"{desc}:")]


def final(err: str, desc: str) -> str:
    lines = bar_lines(err, desc)
    assert lines, f"no {desc!r} bar in {err!r}"
    return lines[-1]


@pytest.fixture(scope="module")
def groove_run(tmp_path_factory):
    from generation.music_vae import configs
    from generation.training import TrainOptions, train

    root = tmp_path_factory.mktemp("progress")
    preprocess([FIXTURES / "groove"], root / "groove", jobs=1)
    train(configs.load_config("groovae_tiny"), [root / "groove.tfrecord"], root / "run",
          TrainOptions(num_steps=2, batch_size=2, workers=1, device="cpu"))
    return root / "groove.tfrecord", root / "run"


def test_groovae_evaluate_shows_windows_draws_and_samples(groove_run, capsys) -> None:
    from generation.music_vae import TrainedModel
    from generation.music_vae.evaluate import BOOTSTRAP_DRAWS, evaluate

    examples, run_dir = groove_run
    model = TrainedModel(config=None, batch_size=4, checkpoint_dir_or_path=str(run_dir))
    quiet = evaluate(model, [examples], num_samples=3)
    assert capsys.readouterr().err == ""  # progress off: nothing at all
    result = evaluate(model, [examples], num_samples=3, progress=True)
    err = capsys.readouterr().err
    assert result == quiet
    assert re.search(r"100%.* 4/4 .*piece", final(err, "windowing"))  # the 4 fixture files
    for desc in ("encoding", "decoding"):
        assert re.search(rf"100%.* {result.windows}/{result.windows} .*window", final(err, desc))
    if result.matched_hits:
        assert re.search(rf" {2 * BOOTSTRAP_DRAWS}/{2 * BOOTSTRAP_DRAWS} .*draw", final(err, "bootstrap"))
    assert re.search(r" 3/3 .*sample", final(err, "sampling"))


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory) -> Path:
    return train_tiny_runs(tmp_path_factory.mktemp("lstm_progress"), {"melody": "attention_rnn_tiny"}, steps=2)["melody"]


def test_lstm_evaluate_shows_tracks_steps_and_pieces(lstm_run, capsys) -> None:
    from generation.lstm import LSTMModel
    from generation.lstm.evaluate import evaluate

    music = lstm_run.parent / "music.tfrecord"
    model = LSTMModel(lstm_run)
    quiet = evaluate(model, [music], num_samples=2, sample_steps=16)
    assert capsys.readouterr().err == ""
    result = evaluate(model, [music], num_samples=2, sample_steps=16, progress=True)
    err = capsys.readouterr().err
    assert result == quiet
    pieces = len(list(read_records(music)))
    assert re.search(rf"100%.* {pieces}/{pieces} .*piece", final(err, "extracting"))
    assert re.search(rf" {result.tracks}/{result.tracks} .*track", final(err, "NLL"))
    assert re.search(rf" {2 * result.tracks}/{2 * result.tracks} .*track", final(err, "bigram"))
    assert re.search(r" 16/16 .*step", final(err, "sampling 2"))
    assert re.search(rf" {result.tracks + 2}/{result.tracks + 2} .*piece", final(err, "statistics"))


def test_corpus_recipe_counts_tunes_not_files(tmp_path, capsys) -> None:
    """An ABC tunebook is one file of many tunes: the bar counts the tunes (8 in the fixture)."""
    corpus = tmp_path / "corpus" / "tunes"
    corpus.mkdir(parents=True)
    shutil.copy(FIXTURES / "scores" / "oneills1850_0001-0008.abc", corpus)
    recipe = datasets.Recipe(name="tunes", kind="music21_corpus", title="t", description="d", source="s",
                             license="public domain", credit="c", corpus={"folder": "tunes", "suffixes": [".abc"]})
    datasets.prepare(recipe, source=tmp_path / "corpus", out_dir=tmp_path / "quiet", jobs=1)
    assert capsys.readouterr().err == ""
    result = datasets.prepare(recipe, source=tmp_path / "corpus", out_dir=tmp_path / "out", jobs=1, progress=True)
    assert result.report.total_sequences == 8
    assert re.search(r"100%.* 8/8 .*tune", final(capsys.readouterr().err, "preprocess"))


def test_download_recipe_shows_bytes_of_download_unpack_and_verify(tiny_recipe, tmp_path, capsys) -> None:  # noqa: F811
    from tqdm import tqdm

    from .test_datasets import build_zip

    archive = build_zip(tmp_path / "groove.zip")
    datasets.prepare(tiny_recipe, source=archive, out_dir=tmp_path / "out", jobs=1, progress=True)
    err = capsys.readouterr().err
    listed = sum(entry.bytes for entry in datasets.read_manifest(tiny_recipe))
    assert "100%" in final(err, "unpack") and "B/s" in final(err, "unpack")
    size = tqdm.format_sizeof(listed, divisor=1024)
    assert f"100%|██████████| {size}/{size} " in final(err, "verify") and "B/s" in final(err, "verify")
    assert re.search(r" 4/4 .*file", final(err, "preprocess"))


@pytest.mark.parametrize("server_kind", ["refused", "closed"])
def test_offline_download_names_url_reason_and_source(tiny_recipe, tmp_path, server_kind) -> None:  # noqa: F811
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()
    if server_kind == "refused":
        listener.close()  # nothing listens on the port: connection refused
    else:
        listener.listen(1)

        def close_each() -> None:  # accepts, then hangs up without a word
            listener.settimeout(0.1)
            while not stop.is_set():
                try:
                    connection, _ = listener.accept()
                except OSError:
                    continue
                connection.close()

        threading.Thread(target=close_each, daemon=True).start()
    url = f"http://127.0.0.1:{port}/groove.zip"
    try:
        with pytest.raises(DownloadError) as caught:
            datasets.prepare(tiny_recipe, url=url, out_dir=tmp_path / "out")
    finally:
        stop.set()
        listener.close()
    message = str(caught.value)
    assert isinstance(caught.value, DatasetError) and caught.value.network and "\n" not in message
    reasons = ["Connection refused"] if server_kind == "refused" else ["Remote end closed connection", "Connection reset"]
    assert any(message.startswith(f"could not download {url} ({reason}") for reason in reasons), message
    assert message.endswith("gen data prepare tiny_groove --source PATH (a folder or the zip)")
    assert not list((tmp_path / "out").glob(".*"))
