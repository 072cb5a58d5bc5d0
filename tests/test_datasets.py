"""Dataset recipes: download (from a local HTTP server only), safe unpacking, manifest checks,
conversion with split checks, the shipped recipes, and the real Groove MIDI Dataset when present."""

from __future__ import annotations

import csv
import dataclasses
import functools
import http.server
import json
import shutil
import socket
import threading
import zipfile
from pathlib import Path

import pytest

from generation import datasets
from generation.datasets import Recipe, get_recipe, list_recipes, prepare
from generation.errors import DatasetError, GenError
from generation.io.readers import generate_note_sequence_id
from generation.io.tfrecord import read_records
from generation.preprocess import split_by_hash
from generation.protos import NoteSequence

HERE = Path(__file__).resolve().parent
FIXTURE_GROOVE = HERE / "fixtures" / "groove"


# Helpers ---------------------------------------------------------------------------------------


def fixture_splits() -> dict[str, int]:
    counts: dict[str, int] = {}
    with open(FIXTURE_GROOVE / "info.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            counts[row["split"]] = counts.get(row["split"], 0) + 1
    return counts


@pytest.fixture
def tiny_recipe(tmp_path) -> Recipe:
    """A Groove-shaped recipe over the 4 Groove files committed under tests/fixtures/groove."""
    folder = tmp_path / "recipes"
    folder.mkdir()
    datasets.write_manifest(FIXTURE_GROOVE, folder / "tiny_manifest.csv")
    recipe = {
        "name": "tiny_groove",
        "kind": "download",
        "title": "Four Groove files",
        "description": "test",
        "source": "tests/fixtures/groove",
        "license": "CC BY 4.0",
        "credit": "Gillick et al. 2019",
        "url": "http://127.0.0.1:9/never-used.zip",
        "archive_root": "groove",
        "metadata": "info.csv",
        "manifest": "tiny_manifest.csv",
        "expected_splits": fixture_splits(),
    }
    (folder / "tiny_groove.json").write_text(json.dumps(recipe))
    return datasets.load_recipe(folder / "tiny_groove.json")


def build_zip(path: Path, *, tamper: str | None = None, extra: dict[str, bytes] | None = None) -> Path:
    """The fixture files under a top folder groove/, one of them altered if `tamper` names it."""
    with zipfile.ZipFile(path, "w") as bundle:
        for file in sorted(FIXTURE_GROOVE.rglob("*")):
            if file.is_file():
                name = file.relative_to(FIXTURE_GROOVE).as_posix()
                data = file.read_bytes()
                if name == tamper:
                    data = data[:-1] + bytes([data[-1] ^ 0xFF])
                bundle.writestr(f"groove/{name}", data)
        for name, data in (extra or {}).items():
            bundle.writestr(zipfile.ZipInfo(name), data)
    return path


@pytest.fixture
def server(tmp_path, monkeypatch):
    """(folder served, base URL) of an HTTP server on 127.0.0.1; never the internet."""
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    served = tmp_path / "www"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def sequences(path: Path) -> list[NoteSequence]:
    return [NoteSequence.FromString(record) for record in read_records(path)]


def leftovers(directory: Path) -> list[str]:
    """Temporary files or folders (downloads, staging, unpacking) left in `directory`."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# Download path ---------------------------------------------------------------------------------


def test_download_verify_and_preprocess(tiny_recipe, server, tmp_path):
    served, base = server
    build_zip(served / "groove.zip")
    out = tmp_path / "out"
    result = prepare(tiny_recipe, url=f"{base}/groove.zip", out_dir=out, jobs=1)

    assert result.downloaded
    assert result.splits == fixture_splits()
    assert sorted(p.name for p in result.paths) == sorted(f"tiny_groove-{s}.tfrecord" for s in fixture_splits())
    assert result.data_dir == out / "raw" / "groove"
    assert (out / "raw" / "groove" / "info.csv").is_file()
    assert leftovers(out) == [] and leftovers(out / "raw") == []
    for path in result.paths:
        split = path.name.removeprefix("tiny_groove-").removesuffix(".tfrecord")
        found = sequences(path)
        assert len(found) == fixture_splits()[split]
        for sequence in found:
            assert sequence.collection_name == "groove"
            assert sequence.id.startswith("/id/midi/groove/")
            assert sequence.notes and all(note.is_drum for note in sequence.notes)

    # A rerun reuses the verified raw files: the URL is not fetched again (here it would 404).
    again = prepare(tiny_recipe, url=f"{base}/gone.zip", out_dir=out, jobs=1)
    assert not again.downloaded and again.splits == fixture_splits()


def test_tampered_file_is_named(tiny_recipe, server, tmp_path):
    served, base = server
    victim = "drummer1/eval_session/1_funk-groove1_138_beat_4-4.mid"
    build_zip(served / "groove.zip", tamper=victim)
    expected = next(e for e in datasets.read_manifest(tiny_recipe) if e.path == victim).sha256
    with pytest.raises(DatasetError) as caught:
        prepare(tiny_recipe, url=f"{base}/groove.zip", out_dir=tmp_path / "out", jobs=1)
    message = str(caught.value)
    assert victim in message and expected in message and "\n" not in message
    actual = datasets.sha256_of(tmp_path / "out" / "raw" / "groove" / victim)
    assert actual in message and actual != expected
    assert not list((tmp_path / "out").glob("*.tfrecord"))


def test_http_404_names_url_and_status(tiny_recipe, server, tmp_path):
    _, base = server
    url = f"{base}/missing.zip"
    with pytest.raises(DatasetError) as caught:
        prepare(tiny_recipe, url=url, out_dir=tmp_path / "out")
    assert url in str(caught.value) and "404" in str(caught.value)
    assert leftovers(tmp_path / "out") == [] and not (tmp_path / "out" / "raw").exists()


def test_silent_server_times_out(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # connections are accepted by the kernel; nothing ever answers
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/groove.zip"
    try:
        with pytest.raises(DatasetError, match="no answer within 0.3 s") as caught:
            datasets.download(url, tmp_path / "groove.zip", timeout=0.3)
    finally:
        listener.close()
    assert url in str(caught.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("member", ["groove/../../evil.txt", "/tmp/evil.txt", "../evil.txt"])
def test_zip_slip_member_is_refused(tiny_recipe, server, tmp_path, member):
    served, base = server
    build_zip(served / "groove.zip", extra={member: b"owned"})
    out = tmp_path / "out"
    with pytest.raises(DatasetError, match="refusing to unpack member") as caught:
        prepare(tiny_recipe, url=f"{base}/groove.zip", out_dir=out)
    assert member in str(caught.value)
    assert not (tmp_path / "evil.txt").exists() and not (out / "evil.txt").exists()
    assert not (out / "raw" / "groove").exists() and leftovers(out) == []


def test_not_a_zip(tiny_recipe, server, tmp_path):
    served, base = server
    (served / "groove.zip").write_bytes(b"<html>not found</html>")
    with pytest.raises(DatasetError, match="not a readable zip file"):
        prepare(tiny_recipe, url=f"{base}/groove.zip", out_dir=tmp_path / "out")


# Local copies ----------------------------------------------------------------------------------


def test_source_directory_is_used_in_place(tiny_recipe, tmp_path):
    out = tmp_path / "out"
    result = prepare(tiny_recipe, source=FIXTURE_GROOVE, out_dir=out, jobs=1)
    assert result.data_dir == FIXTURE_GROOVE and not result.downloaded
    assert result.splits == fixture_splits()
    assert not (out / "raw").exists()
    assert {s.collection_name for p in result.paths for s in sequences(p)} == {"groove"}


def test_source_zip(tiny_recipe, tmp_path):
    archive = build_zip(tmp_path / "local.zip")
    result = prepare(tiny_recipe, source=archive, out_dir=tmp_path / "out", jobs=1)
    assert result.data_dir == tmp_path / "out" / "raw" / "groove"
    assert result.splits == fixture_splits()


def test_missing_file_in_source_directory(tiny_recipe, tmp_path):
    copy = shutil.copytree(FIXTURE_GROOVE, tmp_path / "groove")
    (copy / "drummer6" / "session1" / "3_rock_80_beat_6-8.mid").unlink()
    with pytest.raises(DatasetError, match=r"3_rock_80_beat_6-8\.mid: missing"):
        prepare(tiny_recipe, source=copy, out_dir=tmp_path / "out")


def test_extra_files_are_ignored(tiny_recipe, tmp_path):
    copy = shutil.copytree(FIXTURE_GROOVE, tmp_path / "groove")
    (copy / "notes.txt").write_text("not part of the dataset")
    assert prepare(tiny_recipe, source=copy, out_dir=tmp_path / "out", jobs=1).splits == fixture_splits()


def test_split_mismatch_writes_nothing(tiny_recipe, tmp_path):
    wrong = dataclasses.replace(tiny_recipe, expected_splits={"train": 99})
    with pytest.raises(DatasetError, match=r"split sizes .* differ from the recipe's train=99"):
        prepare(wrong, source=FIXTURE_GROOVE, out_dir=tmp_path / "out", jobs=1)
    assert list((tmp_path / "out").iterdir()) == []


# Shipped recipes -------------------------------------------------------------------------------


def test_shipped_recipes_load():
    recipes = {recipe.name: recipe for recipe in list_recipes()}
    assert {"groove", "bach_chorales", "essen_folk", "oneill_folk"} <= set(recipes)
    groove = recipes["groove"]
    assert groove.url == "https://storage.googleapis.com/magentadata/datasets/groove/groove-v1.0.0-midionly.zip"
    assert groove.license == "CC BY 4.0" and groove.version == "1.0.0"
    assert groove.expected_splits == {"train": 897, "validation": 124, "test": 129}
    assert "Gillick" in groove.credit and "ICML 2019" in groove.credit and len(groove.authors) == 5
    entries = datasets.read_manifest(groove)
    assert len(entries) == 1151 and sum(e.path.endswith(".mid") for e in entries) == 1150
    assert "info.csv" in {e.path for e in entries}
    for name in ("bach_chorales", "essen_folk", "oneill_folk"):
        recipe = recipes[name]
        assert recipe.kind == "music21_corpus" and recipe.license and recipe.license_note and recipe.credit
        assert len(recipe.license) <= 16  # fits `gen data list`'s column
        assert sum(recipe.split_fractions.values()) == pytest.approx(1.0)


def test_unknown_recipe_lists_known_names():
    with pytest.raises(DatasetError) as caught:
        get_recipe("grooove")
    assert "'grooove'" in str(caught.value) and "groove" in str(caught.value) and "bach_chorales" in str(caught.value)


def test_bad_recipe_file(tmp_path):
    (tmp_path / "broken.json").write_text('{"name": "broken", "kind": "download"}')
    with pytest.raises(DatasetError, match=r"broken\.json: not a readable recipe: missing key"):
        datasets.load_recipe(tmp_path / "broken.json")


def test_data_home(monkeypatch, tmp_path):
    monkeypatch.delenv("GEN_DATA_HOME", raising=False)
    assert datasets.data_home() == Path("train_data")
    monkeypatch.setenv("GEN_DATA_HOME", str(tmp_path))
    assert datasets.data_home() == tmp_path


def test_corpus_selections():
    essen = datasets.corpus_files(get_recipe("essen_folk"))
    assert essen and all(p.parent.name == "essenFolksong" and p.suffix == ".abc" for p in essen)
    assert not any(p.name.startswith("test") for p in essen)
    oneill = datasets.corpus_files(get_recipe("oneill_folk"))
    assert all(p.parent.name == "oneills1850" for p in oneill) and not any(p.name == "1710-1750.abc" for p in oneill)
    chorales = datasets.corpus_files(get_recipe("bach_chorales"))
    assert len(chorales) >= 340 and len(set(chorales)) == len(chorales)
    assert all(p.parent.name == "bach" and p.suffix in (".mxl", ".xml") for p in chorales)
    assert "bwv846.mxl" not in {p.name for p in chorales}  # a prelude, not a chorale
    assert datasets.corpus_files(get_recipe("bach_chorales"), limit=3) == chorales[:3]


def test_music21_recipe_on_a_few_chorales(tmp_path):
    recipe = get_recipe("bach_chorales")
    chosen: dict[str, list[str]] = {split: [] for split in recipe.split_fractions}
    for path in datasets.corpus_files(recipe):
        split = split_by_hash(generate_note_sequence_id(path.name, "bach", "musicxml"), recipe.split_fractions)
        if len(chosen[split]) < 2:
            chosen[split].append(f"bach/{path.name}")
        if all(len(names) == 2 for names in chosen.values()):
            break
    subset = dataclasses.replace(recipe, corpus={"files": [name for names in chosen.values() for name in names]})
    result = prepare(subset, out_dir=tmp_path, jobs=1)
    assert result.splits == {"train": 2, "validation": 2, "test": 2}
    for path in result.paths:
        for sequence in sequences(path):
            assert sequence.collection_name == "bach" and sequence.filename.endswith((".mxl", ".xml"))
            assert len(sequence.notes) > 50 and len({note.part for note in sequence.notes}) == 4  # SATB


def test_corpus_recipe_refuses_a_url(tmp_path):
    with pytest.raises(DatasetError, match="nothing to download"):
        prepare("bach_chorales", url="http://127.0.0.1:9/x.zip", out_dir=tmp_path)


# The real Groove MIDI Dataset ------------------------------------------------------------------

def test_real_groove_manifest_verifies(groove_dir):
    groove = get_recipe("groove")
    assert datasets.manifest_problems(groove_dir, datasets.read_manifest(groove)) == []


def test_real_groove_prepares_official_splits(groove_dir, tmp_path):
    result = prepare("groove", source=groove_dir, out_dir=tmp_path, jobs=2)
    assert result.splits == {"train": 897, "validation": 124, "test": 129}
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["groove-test.tfrecord", "groove-train.tfrecord", "groove-validation.tfrecord"]
    assert isinstance(result.report.total_sequences, int) and result.report.total_sequences == 1150


def test_errors_are_gen_errors():
    assert issubclass(DatasetError, GenError)
