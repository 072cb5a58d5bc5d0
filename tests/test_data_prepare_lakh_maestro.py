"""The Lakh MIDI Dataset and MAESTRO recipes, and the download machinery under them: streaming to a
`.part` file, resuming with HTTP Range, verifying archives (zip and tar.gz) before unpacking.

Everything is served by a local HTTP server on 127.0.0.1 (a free port, in a thread) from small
archives of the real layouts built here; nothing is downloaded from the internet."""

from __future__ import annotations

import csv
import dataclasses
import email.utils
import hashlib
import http.server
import io
import random
import re
import tarfile
import threading
import tracemalloc
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from generation import datasets
from generation.datasets import get_recipe, prepare, split_by_md5_name
from generation.errors import DatasetError, DownloadError
from generation.io.tfrecord import read_records
from generation.metadata import get_metadata
from generation.protos import NoteSequence

FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}


# Tiny MIDI files and archives of the real layouts -----------------------------------------------


def tiny_midi(pitch: int, length_ticks: int = 240) -> bytes:
    """A format-0 MIDI file with one note: distinct pitches and lengths make distinct music."""
    delta = bytes([0x80 | (length_ticks >> 7), length_ticks & 0x7F]) if length_ticks > 127 else bytes([length_ticks])
    events = b"\x00\x90" + bytes([pitch, 90]) + delta + b"\x80" + bytes([pitch, 0]) + b"\x00\xff\x2f\x00"
    return b"MThd" + (6).to_bytes(4, "big") + b"\x00\x00\x00\x01\x00\xf0" + b"MTrk" + len(events).to_bytes(4, "big") + events


def md5_name(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def lakh_full_files(count: int = 14) -> dict[str, bytes]:
    """lmd_full/<first hex digit>/<md5>.mid, as in lmd_full.tar.gz."""
    files = {}
    for index in range(count):
        data = tiny_midi(40 + index, 200 + index)
        name = md5_name(data)
        files[f"lmd_full/{name[0]}/{name}.mid"] = data
    return files


def lakh_matched_files() -> dict[str, bytes]:
    """lmd_matched/<3rd>/<4th>/<5th letter of the MSD id>/<MSD id>/<md5>.mid; one file under two tracks."""
    tracks = ["TRRRUFD12903CD7092", "TRAABBC128F4264AEB", "TRWMHMP128EF34293F", "TRWOLRE128F427D710"]
    files = {}
    for index, track in enumerate(tracks):
        for take in range(2):
            data = tiny_midi(50 + 2 * index + take, 300 + take)
            files[f"lmd_matched/{track[2]}/{track[3]}/{track[4]}/{track}/{md5_name(data)}.mid"] = data
    shared = tiny_midi(70, 333)  # matched to two tracks, as many LMD files are
    for track in tracks[:2]:
        files[f"lmd_matched/{track[2]}/{track[3]}/{track[4]}/{track}/{md5_name(shared)}.mid"] = shared
    return files


def build_tar_gz(path: Path, files: dict[str, bytes], *, extra: list[tarfile.TarInfo] | None = None) -> Path:
    """A gzipped tar with a folder entry before each folder's files, as `tar czf` writes them."""
    with tarfile.open(path, "w:gz") as bundle:
        folders: set[str] = set()
        for name in sorted(files):
            parts = name.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                folder = "/".join(parts[:depth])
                if folder not in folders:
                    folders.add(folder)
                    info = tarfile.TarInfo(folder)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    bundle.addfile(info)
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            bundle.addfile(info, io.BytesIO(files[name]))
        for info in extra or []:
            bundle.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return path


MAESTRO_COLUMNS = ["canonical_composer", "canonical_title", "split", "year", "midi_filename", "audio_filename", "duration"]


def maestro_rows() -> list[dict[str, str]]:
    rows = []
    plan = [("train", "2004"), ("train", "2006"), ("train", "2018"), ("validation", "2008"), ("validation", "2011"),
            ("test", "2017"), ("test", "2009")]
    for index, (split, year) in enumerate(plan):
        stem = f"{year}/MIDI-Unprocessed_{index:02d}_R1_{year}_01-04_ORIG_MID--AUDIO_{index:02d}_R1_{year}_wav--1"
        rows.append({"canonical_composer": ["Alban Berg", "Frédéric Chopin", "Franz Liszt"][index % 3],
                     "canonical_title": f"Piece {index}", "split": split, "year": year,
                     "midi_filename": f"{stem}.midi", "audio_filename": f"{stem}.wav", "duration": f"{100 + index}.5"})
    return rows


def build_maestro_zip(path: Path, rows: list[dict[str, str]] | None = None, *, leave_out: str | None = None) -> Path:
    """maestro-v3.0.0/ with its CSV, JSON, LICENSE, README and <year>/<name>.midi, as in the MIDI-only zip."""
    rows = rows if rows is not None else maestro_rows()
    table = io.StringIO()
    writer = csv.DictWriter(table, MAESTRO_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("maestro-v3.0.0/maestro-v3.0.0.csv", table.getvalue())
        bundle.writestr("maestro-v3.0.0/maestro-v3.0.0.json", "{}")
        bundle.writestr("maestro-v3.0.0/LICENSE", "CC BY-NC-SA 4.0")
        bundle.writestr("maestro-v3.0.0/README", "test archive")
        for index, row in enumerate(rows):
            if row["midi_filename"] != leave_out:
                bundle.writestr(f"maestro-v3.0.0/{row['midi_filename']}", tiny_midi(60 + index, 400 + index))
    return path


# A local HTTP server with byte ranges ------------------------------------------------------------


class RangeServer:
    """Serves files of `folder` on 127.0.0.1 at a free port, in a thread, with `Range: bytes=N-`,
    `If-Range` (by ETag) and `Last-Modified`, streaming from disk in 64 KiB chunks.

    `drop_after[path] = [n, ...]`: the next requests of `path` stop after n body bytes each and
    close the connection. `ranges = False`: ranges are ignored (always 200). `requests` records
    (path, Range header, If-Range header) of every request."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.drop_after: dict[str, list[int]] = {}
        self.ranges = True
        self.requests: list[tuple[str, str | None, str | None]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests.append((self.path, self.headers.get("Range"), self.headers.get("If-Range")))
                file = owner.folder / self.path.lstrip("/")
                if not file.is_file():
                    self.send_error(404)
                    return
                data_size = file.stat().st_size
                etag = f'"{file.stat().st_mtime_ns:x}-{data_size:x}"'
                start = 0
                wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if_range = self.headers.get("If-Range")
                if wanted and owner.ranges and (if_range is None or if_range == etag):
                    start = int(wanted.group(1))
                    if start >= data_size:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{data_size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{data_size - 1}/{data_size}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(data_size - start))
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", email.utils.formatdate(file.stat().st_mtime, usegmt=True))
                self.send_header("Accept-Ranges", "bytes" if owner.ranges else "none")
                self.end_headers()
                drops = owner.drop_after.get(self.path)
                budget = drops.pop(0) if drops else None
                with open(file, "rb") as handle:
                    handle.seek(start)
                    while chunk := handle.read(1 << 16):
                        if budget is not None:
                            chunk = chunk[:budget]
                            budget -= len(chunk)
                        self.wfile.write(chunk)
                        if budget == 0:
                            self.wfile.flush()
                            self.close_connection = True  # the connection breaks mid-answer
                            return

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def ranged_requests(self, path: str) -> list[str]:
        return [given for requested, given, _ in self.requests if requested == path and given]


@pytest.fixture
def server(tmp_path, monkeypatch):
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(datasets, "DOWNLOAD_RETRY_DELAY_S", 0.0)
    served = tmp_path / "www"
    served.mkdir()
    running = RangeServer(served)
    running.thread.start()
    try:
        yield running
    finally:
        running.httpd.shutdown()
        running.httpd.server_close()


def sequences(path: Path) -> list[NoteSequence]:
    return [NoteSequence.FromString(record) for record in read_records(path)]


def hidden(directory: Path) -> list[str]:
    """Temporary files or folders (downloads, staging, unpacking) left in `directory`."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".")) if directory.is_dir() else []


def expected_lakh_splits(files: dict[str, bytes]) -> Counter:
    return Counter(split_by_md5_name(Path(name).stem, FRACTIONS) for name in files)


def run_cli(*arguments: str):
    return CliRunner().invoke(cli, ["data", "prepare", *arguments, "-j", "1", "-q"])


# The split rule ----------------------------------------------------------------------------------


def test_md5_split_rule_boundaries():
    # The first 8 hex digits as a fraction of 16**8: below 0.8 train, below 0.9 validation, else test.
    assert split_by_md5_name("0" * 32, FRACTIONS) == "train"
    assert split_by_md5_name("cccccccc" + "f" * 24, FRACTIONS) == "train"  # 0.79999999977
    assert split_by_md5_name("cccccccd" + "0" * 24, FRACTIONS) == "validation"  # 0.80000000000
    assert split_by_md5_name("e6666666" + "f" * 24, FRACTIONS) == "validation"  # 0.89999999991
    assert split_by_md5_name("e6666667" + "0" * 24, FRACTIONS) == "test"
    assert split_by_md5_name("F" * 32, FRACTIONS) == "test"  # case does not matter
    with pytest.raises(DatasetError, match="not an MD5 name"):
        split_by_md5_name("TRRRUFD12903CD7092", FRACTIONS)


def test_md5_split_rule_fractions_and_stability():
    generator = random.Random(15)
    names = [hashlib.md5(generator.randbytes(16)).hexdigest() for _ in range(20000)]
    counts = Counter(split_by_md5_name(name, FRACTIONS) for name in names)
    assert abs(counts["train"] / 20000 - 0.8) < 0.01
    assert abs(counts["validation"] / 20000 - 0.1) < 0.01 and abs(counts["test"] / 20000 - 0.1) < 0.01
    # Other fractions are honoured the same way, in the order given.
    assert Counter(split_by_md5_name(n, {"a": 0.5, "b": 0.5}) for n in names)["a"] == pytest.approx(10000, abs=300)
    assert split_by_md5_name("8" + "0" * 31, {"a": 0.5, "b": 0.5}) == "b"  # exactly 0.5 starts the second


# Lakh --------------------------------------------------------------------------------------------


def test_lakh_full_through_the_command(server, tmp_path):
    files = lakh_full_files()
    archive = build_tar_gz(server.folder / "lmd_full.tar.gz", files)
    out = tmp_path / "out"
    result = run_cli("lakh", "--url", f"{server.url}/lmd_full.tar.gz", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "license CC BY 4.0" in result.output and "Raffel" in result.output and "2016" in result.output
    assert f"Archive sha256: {datasets.sha256_of(archive)}" in result.output
    assert "NON-COMMERCIAL" not in result.output

    expected = expected_lakh_splits(files)
    assert len(expected) == 3  # the 14 files reach every split, so each split file is checked
    found: dict[str, str] = {}
    for split, count in expected.items():
        written = sequences(out / f"lakh-{split}.tfrecord")
        assert len(written) == count
        for sequence in written:
            assert sequence.collection_name == "lmd_full" and sequence.id.startswith("/id/midi/lmd_full/")
            assert get_metadata(sequence)["split"] == split
            found[sequence.filename] = split
    assert found == {name.removeprefix("lmd_full/"): split_by_md5_name(Path(name).stem, FRACTIONS) for name in files}
    for name, data in files.items():  # unpacked byte for byte
        assert (out / "raw" / name).read_bytes() == data
    assert hidden(out) == [] and hidden(out / "raw") == []
    assert (out / "raw" / "lmd_full" / datasets.SPLIT_LIST).is_file()


def test_lakh_matched_keeps_copies_of_a_file_in_one_split(server, tmp_path):
    files = lakh_matched_files()
    build_tar_gz(server.folder / "lmd_matched.tar.gz", files)
    result = prepare("lakh_matched", url=f"{server.url}/lmd_matched.tar.gz", out_dir=tmp_path, jobs=1)
    assert result.downloaded and result.splits == dict(expected_lakh_splits(files))
    seen: dict[str, set[str]] = {}
    for path in result.paths:
        for sequence in sequences(path):
            columns = get_metadata(sequence)
            assert sequence.collection_name == "lmd_matched"
            assert columns["msd_track_id"] == sequence.filename.split("/")[-2]
            seen.setdefault(Path(sequence.filename).stem, set()).add(columns["split"])
    shared = md5_name(tiny_midi(70, 333))
    assert len(seen) == 9 and all(len(splits) == 1 for splits in seen.values())
    assert len(result.report.duplicates_kept) == 1  # the same MIDI under two tracks, both kept and reported
    assert sum(shared in s.filename for p in result.paths for s in sequences(p)) == 2


def test_lakh_file_whose_md5_differs_from_its_name_is_left_out_with_a_warning(tmp_path):
    files = lakh_full_files(6)
    victim = sorted(files)[0]
    files[victim] = files[victim][:-1] + b"\x01"  # still a MIDI file, but not the one its name promises
    archive = build_tar_gz(tmp_path / "lmd_full.tar.gz", files)
    result = prepare("lakh", source=archive, out_dir=tmp_path / "out", jobs=1)
    assert sum(result.splits.values()) == 5
    assert len(result.warnings) == 1 and "MD5 differs from their name" in result.warnings[0]
    assert Path(victim).name in result.warnings[0]


def test_lakh_file_not_named_by_md5_is_refused(tmp_path):
    files = lakh_full_files(3)
    files["lmd_full/a/song.mid"] = tiny_midi(80)
    archive = build_tar_gz(tmp_path / "lmd_full.tar.gz", files)
    with pytest.raises(DatasetError, match=r"song\.mid: not named by its MD5"):
        prepare("lakh", source=archive, out_dir=tmp_path / "out", jobs=1)
    assert not list((tmp_path / "out").glob("*.tfrecord"))


def test_lakh_from_an_unpacked_folder(tmp_path):
    files = lakh_full_files(8)
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    result = prepare("lakh", source=tmp_path / "lmd_full", out_dir=tmp_path / "out", jobs=1)
    assert result.data_dir == tmp_path / "lmd_full" and not result.downloaded and result.archive_sha256 is None
    assert result.splits == dict(expected_lakh_splits(files))
    with open(tmp_path / "lmd_full" / datasets.SPLIT_LIST, newline="") as handle:
        listed = {row["midi_filename"]: row["split"] for row in csv.DictReader(handle)}
    assert listed == {name.removeprefix("lmd_full/"): split_by_md5_name(Path(name).stem, FRACTIONS) for name in files}
    assert not (tmp_path / "out" / "raw").exists()


def test_lakh_rerun_reuses_the_unpacked_files(server, tmp_path):
    build_tar_gz(server.folder / "lmd_full.tar.gz", lakh_full_files(5))
    first = prepare("lakh", url=f"{server.url}/lmd_full.tar.gz", out_dir=tmp_path, jobs=1)
    requests = len(server.requests)
    again = prepare("lakh", url=f"{server.url}/lmd_full.tar.gz", out_dir=tmp_path, jobs=1)
    assert len(server.requests) == requests and not again.downloaded and again.archive_sha256 is None
    assert again.splits == first.splits


# Resuming ---------------------------------------------------------------------------------------


def test_interrupted_download_resumes_on_the_next_call(server, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "DOWNLOAD_RETRIES", 0)  # no resumption within the call: the next call resumes
    files = lakh_full_files()
    archive = build_tar_gz(server.folder / "lmd_full.tar.gz", files)
    cut = archive.stat().st_size // 3
    server.drop_after["/lmd_full.tar.gz"] = [cut]
    url = f"{server.url}/lmd_full.tar.gz"
    out = tmp_path / "out"

    broken = run_cli("lakh", "--url", url, "--out", str(out))
    assert broken.exit_code == 1
    message = broken.output.strip().splitlines()[-1]
    assert message.startswith("Error: could not download " + url) and "run again to resume" in message
    parts = [p for p in out.iterdir() if p.name.endswith(".part")]
    assert len(parts) == 1 and parts[0].stat().st_size == cut
    assert not list(out.glob("*.tfrecord")) and not (out / "raw").exists()

    resumed = run_cli("lakh", "--url", url, "--out", str(out))
    assert resumed.exit_code == 0, resumed.output
    assert server.ranged_requests("/lmd_full.tar.gz") == [f"bytes={cut}-"]
    assert server.requests[-1][2] is not None  # If-Range guards the resumption
    assert f"Archive sha256: {datasets.sha256_of(archive)}" in resumed.output  # complete and identical
    for name, data in files.items():
        assert (out / "raw" / name).read_bytes() == data
    assert hidden(out) == [] and sum(len(sequences(p)) for p in out.glob("*.tfrecord")) == len(files)


def test_broken_connection_resumes_within_the_call(server, tmp_path):
    archive = build_maestro_zip(server.folder / "maestro-v3.0.0-midi.zip")
    size = archive.stat().st_size
    server.drop_after["/maestro-v3.0.0-midi.zip"] = [size // 4, size // 4]  # breaks twice, then gets through
    destination = datasets.download(f"{server.url}/maestro-v3.0.0-midi.zip", tmp_path / "got" / "maestro.zip", retries=2)
    assert destination.read_bytes() == archive.read_bytes()
    assert server.ranged_requests("/maestro-v3.0.0-midi.zip") == [f"bytes={size // 4}-", f"bytes={2 * (size // 4)}-"]
    assert sorted(p.name for p in (tmp_path / "got").iterdir()) == ["maestro.zip"]  # no .part or .part.json left


def test_server_without_ranges_restarts_cleanly(server, tmp_path):
    archive = build_tar_gz(server.folder / "lmd_full.tar.gz", lakh_full_files())
    url, cut = f"{server.url}/lmd_full.tar.gz", archive.stat().st_size // 2
    server.drop_after["/lmd_full.tar.gz"] = [cut]
    with pytest.raises(DownloadError, match="run again to resume"):
        datasets.download(url, tmp_path / "lmd.tar.gz", retries=0)
    server.ranges = False
    datasets.download(url, tmp_path / "lmd.tar.gz", retries=0)
    assert server.ranged_requests("/lmd_full.tar.gz") == [f"bytes={cut}-"]  # asked, answered 200 with everything
    assert (tmp_path / "lmd.tar.gz").read_bytes() == archive.read_bytes()


def test_file_changed_on_the_server_is_fetched_afresh(server, tmp_path):
    url = f"{server.url}/lmd_full.tar.gz"
    cut = build_tar_gz(server.folder / "lmd_full.tar.gz", lakh_full_files(10)).stat().st_size // 2
    server.drop_after["/lmd_full.tar.gz"] = [cut]
    with pytest.raises(DownloadError):
        datasets.download(url, tmp_path / "lmd.tar.gz", retries=0)
    newer = build_tar_gz(server.folder / "lmd_full.tar.gz", lakh_full_files(12))  # replaced: another ETag
    datasets.download(url, tmp_path / "lmd.tar.gz", retries=0)
    assert server.requests[-1][1] == f"bytes={cut}-" and server.requests[-1][2] is not None
    assert (tmp_path / "lmd.tar.gz").read_bytes() == newer.read_bytes()


def test_part_of_another_address_is_not_continued(server, tmp_path):
    archive = build_maestro_zip(server.folder / "a.zip")
    datasets.partial_path(tmp_path / "x.zip").write_bytes(b"bytes of some other download")
    datasets.download(f"{server.url}/a.zip", tmp_path / "x.zip")
    assert server.ranged_requests("/a.zip") == [] and (tmp_path / "x.zip").read_bytes() == archive.read_bytes()


def test_download_is_renamed_only_after_verification(server, tmp_path):
    archive = build_maestro_zip(server.folder / "a.zip")
    destination = tmp_path / "got" / "a.zip"
    seen = []
    datasets.download(f"{server.url}/a.zip", destination,
                      verify=lambda part: seen.append((part.name, part.read_bytes() == archive.read_bytes(),
                                                       destination.exists())))
    assert seen == [("a.zip.part", True, False)] and destination.read_bytes() == archive.read_bytes()

    def refuse(part: Path) -> None:
        raise DatasetError(f"{part}: refused")

    with pytest.raises(DatasetError, match="refused"):
        datasets.download(f"{server.url}/a.zip", tmp_path / "got" / "b.zip", verify=refuse)
    assert sorted(p.name for p in (tmp_path / "got").iterdir()) == ["a.zip"]  # no b.zip, no b.zip.part


def test_download_streams_to_disk(server, tmp_path):
    payload = server.folder / "big.bin"
    with open(payload, "wb") as handle:
        for _ in range(48):
            handle.write(random.Random(1).randbytes(1 << 20))
    tracemalloc.start()
    try:
        datasets.download(f"{server.url}/big.bin", tmp_path / "big.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert datasets.sha256_of(tmp_path / "big.bin") == datasets.sha256_of(payload)
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MiB for a 48 MiB download"


# MAESTRO ----------------------------------------------------------------------------------------


def test_maestro_through_the_command(server, tmp_path):
    archive = build_maestro_zip(server.folder / "maestro-v3.0.0-midi.zip")
    out = tmp_path / "out"
    result = run_cli("maestro", "--url", f"{server.url}/maestro-v3.0.0-midi.zip", "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "MAESTRO v3.0.0 (MIDI only): license CC BY-NC-SA 4.0."
    assert "Hawthorne" in lines[1] and "ICLR" in lines[1]
    assert lines[2].startswith("NON-COMMERCIAL USE ONLY: maestro is licensed CC BY-NC-SA 4.0")
    assert lines[-1] == "Reminder: maestro is licensed CC BY-NC-SA 4.0: non-commercial use only."
    assert f"Archive sha256: {datasets.sha256_of(archive)}" in result.output
    # The recipe's split sizes are the published archive's; this small copy only warns.
    assert "Warning: maestro: split sizes test=2, train=3, validation=2 differ from the recipe's" in result.output

    by_file = {row["midi_filename"]: row for row in maestro_rows()}
    for split in ("train", "validation", "test"):
        written = sequences(out / f"maestro-{split}.tfrecord")
        assert len(written) == sum(row["split"] == split for row in by_file.values())
        for sequence in written:
            row = by_file[sequence.filename]
            assert row["split"] == split and sequence.collection_name == "maestro-v3.0.0"
            columns = get_metadata(sequence)
            assert columns["canonical_composer"] == row["canonical_composer"] and columns["year"] == row["year"]
    assert hidden(out) == [] and (out / "raw" / "maestro-v3.0.0" / "maestro-v3.0.0.csv").is_file()


def test_maestro_interrupted_download_resumes(server, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "DOWNLOAD_RETRIES", 0)
    archive = build_maestro_zip(server.folder / "maestro-v3.0.0-midi.zip")
    server.drop_after["/maestro-v3.0.0-midi.zip"] = [archive.stat().st_size // 2]
    url, out = f"{server.url}/maestro-v3.0.0-midi.zip", tmp_path / "out"
    assert run_cli("maestro", "--url", url, "--out", str(out)).exit_code == 1
    resumed = run_cli("maestro", "--url", url, "--out", str(out))
    assert resumed.exit_code == 0, resumed.output
    assert server.ranged_requests("/maestro-v3.0.0-midi.zip") == [f"bytes={archive.stat().st_size // 2}-"]
    assert f"Archive sha256: {datasets.sha256_of(archive)}" in resumed.output and hidden(out) == []


def test_maestro_split_sizes_are_checked_for_the_published_archive(tmp_path):
    # A --source archive claims to be the published one, so the recipe's 962/137/177 must hold.
    archive = build_maestro_zip(tmp_path / "maestro-v3.0.0-midi.zip")
    with pytest.raises(DatasetError, match=r"split sizes test=2, train=3, validation=2 differ from the recipe's "
                                           r"test=177, train=962, validation=137"):
        prepare("maestro", source=archive, out_dir=tmp_path / "out", jobs=1)
    assert not list((tmp_path / "out").glob("*.tfrecord"))


def test_maestro_file_listed_but_missing(server, tmp_path):
    missing = maestro_rows()[3]["midi_filename"]
    build_maestro_zip(server.folder / "maestro.zip", leave_out=missing)
    out = tmp_path / "out"
    with pytest.raises(DatasetError) as caught:
        prepare("maestro", url=f"{server.url}/maestro.zip", out_dir=out, jobs=1)
    assert missing in str(caught.value) and "maestro-v3.0.0.csv lists it" in str(caught.value)
    assert not list(out.glob("*.tfrecord"))


# Bad archives -----------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["html", "truncated", "flipped"])
def test_bad_tar_gz_is_one_line_and_leaves_nothing(server, tmp_path, damage):
    good = build_tar_gz(tmp_path / "good.tar.gz", lakh_full_files()).read_bytes()
    served = {"html": b"<html>moved</html>", "truncated": good[: len(good) // 2],
              "flipped": good[:-12] + bytes([good[-12] ^ 0xFF]) + good[-11:]}[damage]
    (server.folder / "lmd_full.tar.gz").write_bytes(served)  # a complete answer of damaged bytes
    out = tmp_path / "out"
    url = f"{server.url}/lmd_full.tar.gz"
    result = run_cli("lakh", "--url", url, "--out", str(out))
    assert result.exit_code == 1
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and error == [result.output.strip().splitlines()[-1]]
    assert error[0].startswith(f"Error: {url}: not a readable tar.gz file")
    assert "Traceback" not in result.output
    assert not (out / "raw").exists() and hidden(out) == [] and not list(out.glob("*.tfrecord"))


def test_bad_zip_crc_is_caught_before_unpacking(server, tmp_path):
    archive = build_maestro_zip(tmp_path / "good.zip")
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as bundle:
        member = bundle.getinfo(f"maestro-v3.0.0/{maestro_rows()[0]['midi_filename']}")
        offset = member.header_offset + 30 + len(member.filename.encode()) + len(member.extra)
    data[offset + member.compress_size // 2] ^= 0xFF  # inside its deflated data: a CRC or deflate error
    (server.folder / "maestro.zip").write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"not a readable zip file") as caught:
        prepare("maestro", url=f"{server.url}/maestro.zip", out_dir=tmp_path / "out", jobs=1)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "out" / "raw").exists() and hidden(tmp_path / "out") == []


def _link(name: str, kind: bytes, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 5
    return info


@pytest.mark.parametrize("member, reason", [
    (_file("lmd_full/../../evil.mid"), "path leaves the destination"),
    (_file("/tmp/evil.mid"), "absolute path"),
    (_link("lmd_full/0/link.mid", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
    (_link("lmd_full/0/hard.mid", tarfile.LNKTYPE, "/etc/passwd"), "hard link"),
])
def test_tar_member_outside_the_destination_is_refused(tmp_path, member, reason):
    archive = build_tar_gz(tmp_path / "lmd_full.tar.gz", lakh_full_files(3), extra=[member])
    out = tmp_path / "deep" / "out"
    with pytest.raises(DatasetError, match="refusing to unpack member") as caught:
        prepare("lakh", source=archive, out_dir=out, jobs=1)
    assert reason in str(caught.value) and member.name in str(caught.value)
    assert not (tmp_path / "evil.mid").exists() and not (tmp_path / "deep" / "evil.mid").exists()
    assert not (out / "raw").exists()


def test_published_checksum_is_enforced_for_the_published_archive_only(server, tmp_path):
    archive = build_tar_gz(server.folder / "lmd_full.tar.gz", lakh_full_files(4))
    wrong = dataclasses.replace(get_recipe("lakh"), archive_sha256="0" * 64)
    with pytest.raises(DatasetError, match=r"sha256 [0-9a-f]{64} differs from the published archive's 0{64}"):
        prepare(wrong, source=archive, out_dir=tmp_path / "a", jobs=1)
    assert not (tmp_path / "a" / "raw").exists()
    mirrored = prepare(wrong, url=f"{server.url}/lmd_full.tar.gz", out_dir=tmp_path / "b", jobs=1)
    assert any("differs from the published archive's" in warning for warning in mirrored.warnings)
    right = dataclasses.replace(wrong, archive_sha256=datasets.sha256_of(archive))
    assert prepare(right, source=archive, out_dir=tmp_path / "c", jobs=1).warnings == []


# The shipped recipes ----------------------------------------------------------------------------


def test_shipped_lakh_and_maestro_recipes():
    lakh, matched, maestro = get_recipe("lakh"), get_recipe("lakh_matched"), get_recipe("maestro")
    assert lakh.url == "http://hog.ee.columbia.edu/craffel/lmd/lmd_full.tar.gz"
    assert matched.url == "http://hog.ee.columbia.edu/craffel/lmd/lmd_matched.tar.gz"
    for recipe in (lakh, matched):
        assert recipe.license == "CC BY 4.0" and recipe.homepage == "https://colinraffel.com/projects/lmd/"
        assert "Learning-Based Methods for Comparing Sequences" in recipe.credit and "2016" in recipe.credit
        assert recipe.archive_kind() == "tar.gz" and recipe.split_rule == "md5_name"
        assert recipe.split_fractions == FRACTIONS and recipe.archive_sha256 is None
        assert "publishes no checksum" in recipe.checksum_note
        assert not datasets.is_non_commercial(recipe)
    assert (lakh.archive_root, matched.archive_root) == ("lmd_full", "lmd_matched")
    assert maestro.url == "https://storage.googleapis.com/magentadata/datasets/maestro/v3.0.0/maestro-v3.0.0-midi.zip"
    assert maestro.license == "CC BY-NC-SA 4.0" and datasets.is_non_commercial(maestro)
    assert "NON-COMMERCIAL" in maestro.license_note and "ICLR" in maestro.credit and len(maestro.authors) == 9
    assert maestro.metadata == "maestro-v3.0.0.csv" and maestro.archive_root == "maestro-v3.0.0"
    assert maestro.expected_splits == {"train": 962, "validation": 137, "test": 177}
    assert "publishes no checksum" in maestro.checksum_note and maestro.archive_sha256 is None


def test_data_list_shows_the_new_recipes():
    result = CliRunner().invoke(cli, ["data", "list"])
    assert result.exit_code == 0
    rows = {line.split()[0]: line for line in result.output.splitlines()}
    assert "CC BY-NC-SA 4.0" in rows["maestro"] and "LMD-full" in rows["lakh"] and "LMD-matched" in rows["lakh_matched"]


def test_bad_split_rule_in_a_recipe(tmp_path):
    recipe = (Path(datasets.__file__).resolve().parents[1] / "train_data" / "lakh.json").read_text()
    (tmp_path / "odd.json").write_text(recipe.replace('"md5_name"', '"by_moon"'))
    with pytest.raises(DatasetError, match=r"odd\.json: not a readable recipe: split_rule 'by_moon'"):
        datasets.load_recipe(tmp_path / "odd.json")
