"""Dataset recipes: named datasets turned into TFRecord files of NoteSequences (`gen data prepare`).

A recipe is a JSON file in `train_data/` (installed as the package `generation.train_data`):

- kind "download": an archive (zip or tar.gz) fetched from `url` (or a local copy), verified whole
  before anything is unpacked (the published sha256 where the source gives one; always every
  member's integrity and that no member leaves the archive's top folder), unpacked under
  `<out_dir>/raw/`, then converted. Splits come from the dataset's own CSV (`metadata`: Groove's
  info.csv, MAESTRO's maestro-v3.0.0.csv) or from a rule on the file names (`split_rule`
  "md5_name": the Lakh MIDI Dataset, whose files are named by their MD5). Groove's files are also
  checked one by one against a manifest (path, sha256, bytes);
- kind "music21_corpus": files chosen from the corpus installed with music21 (a folder, or Bach's
  chorales in Riemenschneider order), split by `preprocess`'s stable hash of each sequence id.

Downloads stream to `<archive>.part` in 1 MiB chunks, so a 1.7 GB archive never sits in memory,
and resume where they broke off (HTTP Range, guarded by If-Range) when the server allows it.

Prepared data lands in `data_home()/<name>` unless an output directory is given: TFRecords at
`<out_dir>/<name>-<split>.tfrecord`, downloaded files under `<out_dir>/raw/`. TFRecords are written
under temporary names and renamed only when every check has passed.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import http.client
import importlib.resources
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import MISSING, dataclass, field, fields
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from generation.errors import DatasetError, DownloadError, OutputError
from generation.io.files import atomic_output, read_json_object
from generation.preprocess import PreprocessReport, output_paths, preprocess, split_at
from generation.progress import bar

DATA_HOME_VARIABLE = "GEN_DATA_HOME"
KINDS = ("download", "music21_corpus")
ARCHIVE_FORMATS = ("zip", "tar.gz")
SPLIT_RULES = ("md5_name",)
DOWNLOAD_TIMEOUT_S = 60.0
DOWNLOAD_RETRIES = 3  # resumptions within one call after the connection broke mid-transfer
DOWNLOAD_RETRY_DELAY_S = 2.0
SPLIT_LIST = ".gen-splits.csv"  # split_rule recipes: the split of every file, written in the dataset folder
_CHUNK = 1 << 20
_NAME = re.compile(r"^[a-z0-9_]+$")
_SCORE_SUFFIXES = (".mxl", ".xml", ".musicxml")
_MD5_NAME = re.compile(r"^[0-9a-f]{32}$")
_MSD_TRACK_ID = re.compile(r"^TR[A-Z0-9]{16}$")  # Million Song Dataset track ids, LMD-matched's folders
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Recipe:
    """One dataset recipe, as its JSON file describes it (see train_data/README.md)."""

    name: str
    kind: str  # "download" or "music21_corpus"
    title: str
    description: str
    source: str  # where the files come from, in words
    license: str  # short: "CC BY 4.0", "public domain" ...
    credit: str
    license_note: str = ""  # what the source says about the license, in full
    version: str = ""
    url: str | None = None  # download: the zip to fetch
    homepage: str | None = None
    authors: tuple[str, ...] = ()
    archive_root: str | None = None  # download: the archive's top folder (also the collection name)
    archive_format: str | None = None  # download: "zip" or "tar.gz"; default from the url's ending
    archive_sha256: str | None = None  # download: the archive's sha256, only where the source publishes one
    checksum_note: str = ""  # download: what the source publishes to check the archive, and what is checked
    metadata: str | None = None  # download: CSV with a split column, relative to the dataset root
    manifest: str | None = None  # download: CSV of path,sha256,bytes beside the recipe file
    expected_splits: dict[str, int] = field(default_factory=dict)  # of the published archive
    split_fractions: dict[str, float] | None = None
    split_rule: str | None = None  # "md5_name": split by each file's MD5 name with split_fractions (Lakh)
    corpus: dict[str, Any] | None = None  # music21_corpus: which files (see `corpus_files`)
    location: Path | Traversable | None = field(default=None, compare=False, repr=False)  # folder of the JSON

    def manifest_path(self) -> Path | Traversable:
        """Where the manifest lives: beside the recipe file, or as given when absolute."""
        if self.manifest is None:
            raise DatasetError(f"recipe {self.name!r} has no manifest")
        if os.path.isabs(self.manifest) or self.location is None:
            return Path(self.manifest)
        return self.location / self.manifest

    def archive_kind(self) -> str:
        """"zip" or "tar.gz": as the recipe says, else as its url ends (.tar.gz, .tgz), else zip."""
        if self.archive_format:
            return self.archive_format
        return "tar.gz" if (self.url or "").lower().endswith((".tar.gz", ".tgz")) else "zip"


@dataclass(frozen=True)
class ManifestEntry:
    """One file a dataset must contain: its path relative to the dataset root, sha256 and size."""

    path: str
    sha256: str
    bytes: int


@dataclass
class PrepareResult:
    """What `prepare` produced."""

    recipe: Recipe
    output_dir: Path
    report: PreprocessReport
    paths: list[Path]  # the TFRecord files written, one per split
    seconds: float
    data_dir: Path | None = None  # download recipes: the verified dataset files that were converted
    downloaded: bool = False
    archive_sha256: str | None = None  # the archive unpacked in this run (downloaded or --source), hex
    warnings: list[str] = field(default_factory=list)  # checks of the published archive that a --url copy failed

    @property
    def splits(self) -> dict[str, int]:
        """Sequences per split ('' for a run without splits)."""
        return {_split_of(self.recipe.name, Path(path)): count for path, count in self.report.sequences_written.items()}


# Recipes ----------------------------------------------------------------------------------------


def recipes_dir() -> Path | Traversable:
    """The folder of recipe files: the installed `generation.train_data`, else the source tree's train_data/."""
    try:
        return importlib.resources.files("generation.train_data")
    except ModuleNotFoundError:  # running from a source checkout that is not installed
        return Path(__file__).resolve().parents[1] / "train_data"


def load_recipe(path: str | os.PathLike[str] | Traversable, *, location: Path | Traversable | None = None) -> Recipe:
    """Reads one recipe JSON file; a malformed one is a `DatasetError` naming it.

    `location` is the folder its manifest is found in (default: the file's own folder).
    """
    if isinstance(path, (str, os.PathLike)):
        path = Path(path)
    if location is None:
        location = path.parent if isinstance(path, Path) else getattr(path, "parent", None)
    data = read_json_object(path, error=DatasetError, what="recipe")
    known = {f.name for f in fields(Recipe)} - {"location"}
    unknown = sorted(set(data) - known)
    missing = sorted(f.name for f in fields(Recipe)
                     if f.name in known and f.name not in data and f.default is MISSING and f.default_factory is MISSING)
    if unknown or missing:
        problem = f"unknown key(s) {', '.join(unknown)}" if unknown else f"missing key(s) {', '.join(missing)}"
        raise DatasetError(f"{path}: not a readable recipe: {problem}")
    if data.get("kind") not in KINDS:
        raise DatasetError(f"{path}: not a readable recipe: kind {data.get('kind')!r} is not one of {', '.join(KINDS)}")
    if not isinstance(data["name"], str) or not _NAME.match(data["name"]):
        raise DatasetError(f"{path}: not a readable recipe: name {data['name']!r} is not lower_case_with_underscores")
    if data.get("archive_format") not in (None, *ARCHIVE_FORMATS):
        raise DatasetError(f"{path}: not a readable recipe: archive_format {data['archive_format']!r} is not one of "
                           f"{', '.join(ARCHIVE_FORMATS)}")
    if data.get("archive_sha256") is not None and not _SHA256.match(str(data["archive_sha256"])):
        raise DatasetError(f"{path}: not a readable recipe: archive_sha256 is not 64 lower-case hex digits")
    if data.get("split_rule") is not None:
        if data["split_rule"] not in SPLIT_RULES:
            raise DatasetError(f"{path}: not a readable recipe: split_rule {data['split_rule']!r} is not one of "
                               f"{', '.join(SPLIT_RULES)}")
        if not data.get("split_fractions"):
            raise DatasetError(f"{path}: not a readable recipe: split_rule needs split_fractions")
    data["authors"] = tuple(data.get("authors", ()))
    return Recipe(**data, location=location)


def list_recipes() -> list[Recipe]:
    """Every recipe shipped in train_data/, sorted by name."""
    directory = recipes_dir()
    found = [
        load_recipe(entry, location=directory)
        for entry in directory.iterdir()
        if entry.name.endswith(".json") and entry.is_file()
    ]
    return sorted(found, key=lambda recipe: recipe.name)


def get_recipe(name: str) -> Recipe:
    """The recipe called `name`; an unknown name is a `DatasetError` listing the known ones."""
    recipes = list_recipes()
    for recipe in recipes:
        if recipe.name == name:
            return recipe
    raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(r.name for r in recipes) or 'none'}")


def data_home() -> Path:
    """Where prepared datasets go: `$GEN_DATA_HOME` if set, else train_data/ in the current directory."""
    configured = os.environ.get(DATA_HOME_VARIABLE)
    return Path(configured) if configured else Path("train_data")


# Manifests --------------------------------------------------------------------------------------


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's contents, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_files(directory: str | os.PathLike[str], suffixes: Sequence[str] = (".mid", ".midi", ".csv")) -> list[str]:
    """Paths (relative, '/'-separated, sorted) of the files under `directory` whose suffix is listed."""
    root = Path(directory)
    wanted = {suffix.lower() for suffix in suffixes}
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and path.suffix.lower() in wanted and not any(p.startswith(".") for p in path.relative_to(root).parts)
    )


def write_manifest(
    directory: str | os.PathLike[str],
    manifest_path: str | os.PathLike[str],
    suffixes: Sequence[str] = (".mid", ".midi", ".csv"),
) -> list[ManifestEntry]:
    """Writes `path,sha256,bytes` for every matching file under `directory` (Groove: each .mid and info.csv).

    Regenerate the shipped manifest with
    `python -c "from generation.datasets import write_manifest; write_manifest('<groove dir>', 'train_data/groove_manifest.csv')"`.
    """
    root = Path(directory)
    entries = [ManifestEntry(name, sha256_of(root / name), (root / name).stat().st_size) for name in manifest_files(root, suffixes)]
    with open(manifest_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "sha256", "bytes"])
        writer.writerows((entry.path, entry.sha256, entry.bytes) for entry in entries)
    return entries


def read_manifest(recipe: Recipe) -> list[ManifestEntry]:
    """The recipe's manifest entries; a missing or malformed manifest is a `DatasetError` naming it."""
    path = recipe.manifest_path()
    try:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
        entries = [ManifestEntry(row["path"], row["sha256"].lower(), int(row["bytes"])) for row in rows]
    except FileNotFoundError:
        raise DatasetError(f"{path}: manifest not found") from None
    except (OSError, UnicodeDecodeError, KeyError, TypeError, ValueError) as error:
        raise DatasetError(f"{path}: not a manifest of path,sha256,bytes rows: {type(error).__name__} {error}") from None
    if not entries:
        raise DatasetError(f"{path}: manifest lists no files")
    return entries


def manifest_problems(root: str | os.PathLike[str], entries: Sequence[ManifestEntry], *,
                      progress: bool = False) -> list[str]:
    """One line per manifest entry that is missing under `root` or whose size or sha256 differs.

    `progress`: a bar of the bytes the manifest lists (each file counts its listed size once checked)."""
    problems = []
    with bar(progress, total=sum(entry.bytes for entry in entries), unit="B", desc="verify", unit_scale=True,
             unit_divisor=1024) as shown:
        for entry in entries:
            path = Path(root) / entry.path
            shown.update(entry.bytes)
            if not path.is_file():
                problems.append(f"{path}: missing (expected sha256 {entry.sha256}, {entry.bytes} bytes)")
                continue
            size = path.stat().st_size
            actual = sha256_of(path)
            if size != entry.bytes or actual != entry.sha256:
                problems.append(f"{path}: sha256 {actual} ({size} bytes), expected {entry.sha256} ({entry.bytes} bytes)")
    return problems


def verify_manifest(root: str | os.PathLike[str], entries: Sequence[ManifestEntry], manifest_name: str = "manifest",
                    *, progress: bool = False) -> None:
    """Raises a one-line `DatasetError` naming the first missing or altered file (and how many more)."""
    problems = manifest_problems(root, entries, progress=progress)
    if problems:
        more = f" (and {len(problems) - 1} more file(s) missing or altered)" if len(problems) > 1 else ""
        raise DatasetError(f"{problems[0]}; checked against {manifest_name}{more}")


# Download ---------------------------------------------------------------------------------------


def partial_path(destination: str | os.PathLike[str]) -> Path:
    """Where `download` keeps the bytes received so far: `<destination>.part`."""
    destination = Path(destination)
    return destination.with_name(f"{destination.name}.part")


def download(
    url: str,
    destination: str | os.PathLike[str],
    *,
    progress: bool = False,
    timeout: float = DOWNLOAD_TIMEOUT_S,
    retries: int | None = None,
    retry_delay: float | None = None,
    verify: Callable[[Path], object] | None = None,
) -> Path:
    """Streams `url` to `<destination>.part` in 1 MiB chunks; renames it onto `destination` once it
    is complete and `verify(part)` (when given) has returned.

    Resuming: a `.part` left by an earlier call for the same URL is continued with `Range:
    bytes=N-` (and `If-Range`, so a file changed on the server is fetched afresh). A 206 answer is
    appended to the part; a 200 answer (the server ignores ranges, or the file changed) restarts
    it from byte 0. When the connection breaks after data flowed, the transfer resumes up to
    `retries` times (default `DOWNLOAD_RETRIES`) after `retry_delay` seconds; after that the part
    stays for the next call. A `verify` that raises `DatasetError` removes the part: its bytes are
    complete but wrong, and resuming cannot mend them.

    Every failure (HTTP status, unreachable host, timeout, short read) is a one-line `DownloadError`
    (a `DatasetError`) naming the URL and the reason. `progress`: a bar of bytes received.
    """
    destination = Path(destination)
    retries = DOWNLOAD_RETRIES if retries is None else retries
    retry_delay = DOWNLOAD_RETRY_DELAY_S if retry_delay is None else retry_delay
    part = partial_path(destination)
    state_file = part.with_name(f"{part.name}.json")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DownloadError(url, f"cannot create {destination.parent}: {_reason(error)}") from None
    state = _read_part_state(state_file)
    if part.exists() and (state is None or state.get("url") != url):
        part.unlink()  # bytes of another address, or of unknown origin
    with bar(progress, total=None, unit="B", desc="download", unit_scale=True, unit_divisor=1024) as shown:
        while True:
            before = _size(part)
            try:
                _transfer(url, part, state_file, timeout, shown)
                break
            except DownloadError as error:
                kept = _size(part)
                if error.network and kept > before and retries > 0:
                    retries -= 1
                    time.sleep(retry_delay)
                    continue
                if kept == 0:
                    part.unlink(missing_ok=True)
                    state_file.unlink(missing_ok=True)
                    raise
                if error.network:
                    raise DownloadError(url, f"{error.reason}; the {kept} bytes received are kept in {part}: "
                                             "run again to resume", network=True) from None
                raise
    if verify is not None:
        try:
            verify(part)
        except DatasetError:
            part.unlink(missing_ok=True)
            state_file.unlink(missing_ok=True)
            raise
    os.replace(part, destination)
    state_file.unlink(missing_ok=True)
    return destination


def _transfer(url: str, part: Path, state_file: Path, timeout: float, shown: Any) -> None:
    """One request: the rest of `url` (all of it when `part` is empty) appended to `part`."""
    state = _read_part_state(state_file) or {}
    have = _size(part)
    total = state.get("total")
    if have and isinstance(total, int) and have == total:
        return  # complete already: an earlier call stopped before verifying it
    request = urllib.request.Request(url, headers={"Accept-Encoding": "identity"})
    if have:
        request.add_header("Range", f"bytes={have}-")
        validator = state.get("etag") or state.get("last_modified")
        if validator:
            request.add_header("If-Range", validator)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if response.status == 206:
                try:
                    start, total = _content_range(response.headers.get("Content-Range"))
                except ValueError as error:
                    part.unlink(missing_ok=True)
                    raise DownloadError(url, f"{error}; run again to start afresh") from None
                if start != have:
                    part.unlink(missing_ok=True)
                    raise DownloadError(url, f"asked for the bytes from {have} on, got a range from {start}; run again")
                mode = "ab"
            else:  # the whole file: the server ignores ranges, or the file changed since the part began
                have, mode = 0, "wb"
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
            _write_part_state(state_file, {"url": url, "etag": response.headers.get("ETag"),
                                           "last_modified": response.headers.get("Last-Modified"), "total": total})
            shown.total, shown.n = total, have
            shown.refresh()
            with open(part, mode) as output:
                while chunk := response.read(_CHUNK):
                    output.write(chunk)
                    shown.update(len(chunk))
        received = _size(part)
        if total is not None and received != total:
            raise DownloadError(url, f"got {received} of {total} bytes", network=True)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # the part does not fit the file on the server: start again
            part.unlink(missing_ok=True)
            state_file.unlink(missing_ok=True)
            _transfer(url, part, state_file, timeout, shown)
            return
        raise DownloadError(url, f"HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:  # DNS failure, connection refused, unreachable network ...
        if isinstance(error.reason, TimeoutError):
            raise DownloadError(url, f"no answer within {timeout:g} s", network=True) from None
        network = isinstance(error.reason, OSError)
        raise DownloadError(url, _reason(error.reason), network=network) from None
    except TimeoutError:
        raise DownloadError(url, f"no answer within {timeout:g} s", network=True) from None
    except (http.client.HTTPException, ConnectionError) as error:  # connection closed or reset mid-answer
        raise DownloadError(url, _reason(error) or "connection closed", network=True) from None
    except (OSError, ValueError) as error:  # unknown URL type, disk full ...
        raise DownloadError(url, _reason(error)) from None


def _content_range(header: str | None) -> tuple[int, int | None]:
    """'bytes 100-999/1000' -> (100, 1000); a total of '*' -> None."""
    found = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", header or "")
    if not found:
        raise ValueError(f"answer 206 with an unreadable Content-Range {header!r}")
    return int(found.group(1)), None if found.group(3) == "*" else int(found.group(3))


def _read_part_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return state if isinstance(state, dict) else None


def _write_part_state(path: Path, state: dict[str, Any]) -> None:
    path.write_text(json.dumps(state), encoding="utf-8")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


# Archives ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveSummary:
    """What a verified archive holds: its regular files and their unpacked bytes."""

    files: int
    bytes: int


def unsafe_member(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member must not be unpacked (absolute path, '..', a link), or None when it is safe."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in name.split("/"):
        return "path leaves the destination ('..')"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    return None


def unsafe_tar_member(info: tarfile.TarInfo) -> str | None:
    """Why a tar member must not be unpacked (absolute path, '..', a link, a device ...), or None."""
    name = info.name
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in name.split("/"):
        return "path leaves the destination ('..')"
    if info.issym():
        return "symbolic link"
    if info.islnk():
        return "hard link"
    if not (info.isfile() or info.isdir()):
        return "neither a file nor a folder"
    return None


def verify_archive(archive: str | os.PathLike[str], archive_format: str = "zip", *, root: str | None = None,
                   label: str | None = None, progress: bool = False) -> ArchiveSummary:
    """Reads the whole archive without writing anything: every member must be safe to unpack
    (see `unsafe_member`, `unsafe_tar_member`) and read back intact (zip: each member's CRC-32;
    tar.gz: the gzip stream's CRC-32 and length, checked at its end); with `root`, some files must
    lie under `root/` (members outside it are not unpacked, as `unpack` keeps only that folder).
    Returns the files (under `root/` when given) and their unpacked bytes.

    A failure is a one-line `DatasetError` naming `label` (default: the archive's path).
    `progress`: a bar of the archive's bytes read.
    """
    archive = Path(archive)
    label = label or str(archive)
    if archive_format not in ARCHIVE_FORMATS:
        raise DatasetError(f"{label}: unknown archive format {archive_format!r}")
    files = size = 0
    try:
        with bar(progress, total=archive.stat().st_size, unit="B", desc="verify", unit_scale=True,
                 unit_divisor=1024) as shown:
            if archive_format == "zip":
                with zipfile.ZipFile(archive) as bundle:
                    members = _safe_zip_members(bundle, label)
                    for info in members:
                        if info.is_dir():
                            continue
                        with bundle.open(info) as member:  # raises BadZipFile at the end on a CRC mismatch
                            while member.read(_CHUNK):
                                pass
                        if not root or _under(info.filename, root):
                            files, size = files + 1, size + info.file_size
                        shown.update(info.compress_size)
            else:
                with open(archive, "rb") as raw, gzip.GzipFile(fileobj=raw) as stream:
                    with tarfile.open(fileobj=stream, mode="r|") as bundle:
                        for info in bundle:  # stream mode: each member's data is read through, not sought past
                            reason = unsafe_tar_member(info)
                            if reason:
                                raise DatasetError(f"{label}: refusing to unpack member {info.name!r}: {reason}")
                            if info.isfile() and (not root or _under(info.name, root)):
                                files, size = files + 1, size + info.size
                            shown.update(raw.tell() - shown.n)
                    while stream.read(_CHUNK):  # to the gzip trailer, where CRC-32 and length are checked
                        pass
                    shown.update(raw.tell() - shown.n)
    except FileNotFoundError:
        raise DatasetError(f"{label}: no such file") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error,
            UnicodeDecodeError) as error:
        raise DatasetError(f"{label}: not a readable {archive_format} file: {_reason(error)}") from None
    except OSError as error:
        raise DatasetError(f"{label}: cannot read: {_reason(error)}") from None
    if root and files == 0:
        raise DatasetError(f"{label}: no files under a top folder {root + '/'!r} in the archive")
    return ArchiveSummary(files, size)


def unpack(archive: str | os.PathLike[str], destination: str | os.PathLike[str], root: str | None = None, *,
           archive_format: str = "zip", progress: bool = False) -> Path:
    """Unpacks `archive` ("zip" or "tar.gz") into a temporary folder beside `destination`, then
    renames its `root` folder (or all of it) onto `destination`, replacing what was there.

    A zip member with an absolute path, '..' or a link is refused before anything is written; tar
    members are checked the same way (links and devices refused) as each comes. Unverified
    archives should go through `verify_archive` first. `progress`: a bar of the unpacked bytes.
    """
    archive, destination = Path(archive), Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=".unpack-"))
    try:
        try:
            if archive_format == "zip":
                _unpack_zip(archive, staging, progress)
            elif archive_format == "tar.gz":
                _unpack_tar_gz(archive, staging, progress)
            else:
                raise DatasetError(f"{archive}: unknown archive format {archive_format!r}")
        except (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error,
                UnicodeDecodeError) as error:
            raise DatasetError(f"{archive}: not a readable {archive_format} file: {_reason(error)}") from None
        except FileNotFoundError as error:
            if error.filename is None or Path(error.filename) == archive:
                raise DatasetError(f"{archive}: no such file") from None
            raise OutputError(f"{destination}: cannot unpack: {_reason(error)}") from None
        except OSError as error:  # disk full, no permission ...
            raise OutputError(f"{destination}: cannot unpack: {_reason(error)}") from None
        unpacked = staging / root if root else staging
        if not unpacked.is_dir():
            raise DatasetError(f"{archive}: no top folder {root + '/'!r} in the archive")
        if destination.exists():
            shutil.rmtree(destination)
        os.replace(unpacked, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


def _safe_zip_members(bundle: zipfile.ZipFile, label: str) -> list[zipfile.ZipInfo]:
    """The archive's members, refused whole if one would land outside the folder or is no plain file."""
    members = bundle.infolist()
    for info in members:
        reason = unsafe_member(info)
        if reason:
            raise DatasetError(f"{label}: refusing to unpack member {info.filename!r}: {reason}")
    return members


def _unpack_zip(archive: Path, staging: Path, progress: bool) -> None:
    with zipfile.ZipFile(archive) as bundle:
        members = _safe_zip_members(bundle, str(archive))
        with bar(progress, total=sum(info.file_size for info in members), unit="B", desc="unpack",
                 unit_scale=True, unit_divisor=1024) as shown:
            for info in members:  # what extractall does, one member at a time
                bundle.extract(info, staging)
                shown.update(info.file_size)


def _unpack_tar_gz(archive: Path, staging: Path, progress: bool) -> None:
    with open(archive, "rb") as raw, gzip.GzipFile(fileobj=raw) as stream, \
            tarfile.open(fileobj=stream, mode="r|") as bundle, \
            bar(progress, total=archive.stat().st_size, unit="B", desc="unpack", unit_scale=True,
                unit_divisor=1024) as shown:
        for info in bundle:
            reason = unsafe_tar_member(info)
            if reason:
                raise DatasetError(f"{archive}: refusing to unpack member {info.name!r}: {reason}")
            parts = [part for part in info.name.split("/") if part not in ("", ".")]
            if not parts:
                continue
            target = staging.joinpath(*parts)
            if info.isdir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                source = bundle.extractfile(info)
                assert source is not None  # a regular file, checked above
                with source, open(target, "wb") as output:
                    shutil.copyfileobj(source, output, _CHUNK)
            shown.update(raw.tell() - shown.n)


def _under(name: str, root: str) -> bool:
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    return bool(parts) and parts[0] == root


# Preparing --------------------------------------------------------------------------------------


def prepare(
    name: str | Recipe,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    source: str | os.PathLike[str] | None = None,
    url: str | None = None,
    jobs: int | None = None,
    progress: bool = False,
    limit: int | None = None,
) -> PrepareResult:
    """Prepares the dataset `name` (or a recipe object, e.g. a custom one) into `out_dir`
    (default `data_home()/<name>`).

    `source`: a local copy to use instead of downloading (download recipes: the unpacked folder or
    the archive; corpus recipes: a music21 corpus folder). `url` overrides the recipe's download
    URL: the copy there is checked for integrity like any other, but the checks that identify the
    published archive (its sha256, the recipe's split sizes) only warn (`PrepareResult.warnings`),
    so that a mirror or a small archive of the same layout can be used.
    `limit` keeps the first N files of a corpus recipe (for quick trials).
    """
    recipe = name if isinstance(name, Recipe) else get_recipe(name)
    started = time.perf_counter()
    output_dir = Path(out_dir) if out_dir is not None else data_home() / recipe.name
    if recipe.kind == "download":
        if limit is not None:
            raise DatasetError(f"{recipe.name}: limit applies to corpus recipes only; this dataset is checked whole")
        fetched = fetch(recipe, output_dir, source=source, url=url, progress=progress)
        data_dir, warnings = fetched.data_dir, fetched.warnings
        metadata = data_dir / recipe.metadata if recipe.metadata else None
        if recipe.split_rule == "md5_name":
            metadata = write_split_list(recipe, data_dir, warnings=warnings, progress=progress)
        elsewhere = url is not None and url != recipe.url
        report, paths = _convert(recipe, [data_dir], output_dir, metadata=metadata, jobs=jobs, progress=progress,
                                 warnings=warnings if elsewhere else None)
        return PrepareResult(recipe, output_dir, report, paths, time.perf_counter() - started, data_dir,
                             fetched.downloaded, fetched.archive_sha256, warnings)
    if url is not None:
        raise DatasetError(f"{recipe.name}: is built from the music21 corpus; there is nothing to download")
    files = corpus_files(recipe, root=source, limit=limit)
    report, paths = _convert(recipe, files, output_dir, split_fractions=recipe.split_fractions, jobs=jobs, progress=progress)
    return PrepareResult(recipe, output_dir, report, paths, time.perf_counter() - started)


@dataclass
class Fetched:
    """The verified dataset folder `fetch` found or made."""

    data_dir: Path
    downloaded: bool  # just now
    archive_sha256: str | None = None  # of the archive unpacked just now (downloaded or a --source archive)
    warnings: list[str] = field(default_factory=list)


def fetch(
    recipe: Recipe,
    output_dir: Path,
    *,
    source: str | os.PathLike[str] | None = None,
    url: str | None = None,
    progress: bool = False,
) -> Fetched:
    """The verified dataset folder of a download recipe.

    With `source` a folder, it is verified and converted in place (its folder name becomes the
    collection name in sequence ids; Magenta's Groove ids need `groove`). With `source` an archive,
    it is verified whole, then unpacked under `<output_dir>/raw/`. Without `source`, files already
    under raw/ that verify are reused; else the archive is downloaded into `output_dir` (as a
    hidden `.part` file while incomplete, resumed by the next call if the transfer breaks),
    verified, unpacked, and removed.
    """
    entries = read_manifest(recipe) if recipe.manifest else None
    raw = output_dir / "raw" / (recipe.archive_root or recipe.name)
    kind = recipe.archive_kind()
    if source is not None:
        source = Path(source)
        if source.is_dir():
            verify_dataset_folder(recipe, source, entries, progress=progress)
            return Fetched(source, False)
        if not source.is_file():
            raise DatasetError(f"{source}: no such file or folder (expected the unpacked dataset or its {kind} archive)")
        fetched = Fetched(raw, False)
        fetched.archive_sha256 = _check_archive(recipe, source, label=str(source), published=True,
                                                warnings=fetched.warnings, progress=progress)
        unpack(source, raw, recipe.archive_root, archive_format=kind, progress=progress)
        verify_dataset_folder(recipe, raw, entries, progress=progress)
        return fetched
    if raw.is_dir() and not dataset_folder_problems(recipe, raw, entries, progress=progress):
        return Fetched(raw, False)
    address = url or recipe.url
    if not address:
        raise DatasetError(f"{recipe.name}: recipe has no url; pass a local copy as source")
    _make_dir(output_dir)
    # Named after the address, so that a rerun finds (and resumes) the same partial download.
    archive = output_dir / f".{recipe.name}-{hashlib.sha1(address.encode('utf-8')).hexdigest()[:12]}.{kind}"
    fetched = Fetched(raw, True)

    def check(path: Path) -> None:
        fetched.archive_sha256 = _check_archive(recipe, path, label=address, published=url is None or url == recipe.url,
                                                warnings=fetched.warnings, progress=progress)

    if archive.is_file():  # downloaded and verified by an earlier call that did not finish unpacking
        try:
            check(archive)
        except DatasetError:
            archive.unlink()
            raise
    else:
        try:
            download(address, archive, progress=progress, verify=check)
        except DownloadError as error:
            raise DownloadError(error.url, error.reason, network=error.network, hint=local_copy_hint(recipe)) from None
    try:
        unpack(archive, raw, recipe.archive_root, archive_format=kind, progress=progress)
    except DatasetError:
        archive.unlink(missing_ok=True)
        raise
    archive.unlink(missing_ok=True)
    verify_dataset_folder(recipe, raw, entries, progress=progress)
    return fetched


def _check_archive(recipe: Recipe, archive: Path, *, label: str, published: bool, warnings: list[str],
                   progress: bool) -> str:
    """Verifies `archive` before unpacking (`verify_archive`, and the recipe's published sha256:
    an error when `published`, i.e. the archive should be the source's own, else a warning).
    Returns its sha256."""
    digest = sha256_of(archive)
    if recipe.archive_sha256 and digest != recipe.archive_sha256:
        message = f"{label}: sha256 {digest} differs from the published archive's {recipe.archive_sha256}"
        if published:
            raise DatasetError(message)
        warnings.append(message)
    verify_archive(archive, recipe.archive_kind(), root=recipe.archive_root, label=label, progress=progress)
    return digest


def dataset_folder_problems(recipe: Recipe, folder: Path, entries: Sequence[ManifestEntry] | None, *,
                            progress: bool = False) -> list[str]:
    """One line per file the dataset must have that is missing or altered under `folder`: the
    manifest's entries (when the recipe has one), the metadata CSV, and each file it lists."""
    problems = manifest_problems(folder, entries, progress=progress) if entries else []
    if recipe.metadata:
        table = folder / recipe.metadata
        if not table.is_file():
            return [*problems, f"{table}: missing (the {recipe.name} metadata, listing every file and its split)"]
        problems.extend(f"{folder / name}: missing, though {recipe.metadata} lists it"
                        for name in _listed_files(table) if not (folder / name).is_file())
    return problems


def verify_dataset_folder(recipe: Recipe, folder: Path, entries: Sequence[ManifestEntry] | None, *,
                          progress: bool = False) -> None:
    """Raises a one-line `DatasetError` naming the first problem `dataset_folder_problems` finds."""
    problems = dataset_folder_problems(recipe, folder, entries, progress=progress)
    if problems:
        checked = f"; checked against {recipe.manifest}" if entries else ""
        more = f" (and {len(problems) - 1} more file(s) missing or altered)" if len(problems) > 1 else ""
        raise DatasetError(f"{problems[0]}{checked}{more}")


def _listed_files(table: Path) -> list[str]:
    """The file names in a metadata CSV's midi_filename (or filename) column."""
    try:
        with open(table, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            column = next((c for c in ("midi_filename", "filename") if c in (reader.fieldnames or [])), None)
            if column is None:
                raise DatasetError(f"{table}: no 'midi_filename' or 'filename' column to locate files")
            return [row[column].strip() for row in reader if (row.get(column) or "").strip()]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"{table}: not a readable CSV file: {_reason(error)}") from None


def local_copy_hint(recipe: Recipe) -> str:
    """How to prepare a download recipe from a copy fetched some other way."""
    where = f" (from {recipe.homepage or recipe.url})" if recipe.homepage or recipe.url else ""
    return f"with a local copy{where}: gen data prepare {recipe.name} --source PATH (a folder or the {recipe.archive_kind()})"


def is_non_commercial(recipe: Recipe) -> bool:
    """Whether the recipe's license forbids commercial use (CC ...-NC-..., or "non-commercial")."""
    return bool(re.search(r"\bNC\b|non-?commercial", recipe.license, re.IGNORECASE))


def license_notice(recipe: Recipe) -> list[str]:
    """Lines to show before preparing: the license, the credit, and a non-commercial warning."""
    lines = [f"{recipe.title}: license {recipe.license}.", f"Credit: {recipe.credit}"]
    if is_non_commercial(recipe):
        lines.append(f"NON-COMMERCIAL USE ONLY: {recipe.name} is licensed {recipe.license}; do not use it, or "
                     "anything made from it, commercially without checking the license"
                     + (f" ({recipe.homepage})." if recipe.homepage else "."))
    return lines


# Split by MD5 name (Lakh) -----------------------------------------------------------------------


def split_by_md5_name(md5_name: str, fractions: dict[str, float]) -> str:
    """The split of a file named by its MD5 (32 hex digits): its first 8 hex digits read as a
    fraction of 16**8 in [0, 1), then the first split whose cumulative fraction exceeds it, in the
    order given (train 0.8, validation 0.1, test 0.1: below 0.8 train, below 0.9 validation, else
    test). An MD5 is already uniform, so no further hash is needed; and the same MIDI file is in the
    same split wherever it appears (LMD-full, or under several tracks of LMD-matched)."""
    name = md5_name.lower()
    if not _MD5_NAME.match(name):
        raise DatasetError(f"{md5_name!r} is not an MD5 name (32 hex digits)")
    return split_at(int(name[:8], 16) / 16**8, fractions)


def write_split_list(recipe: Recipe, folder: Path, *, warnings: list[str] | None = None,
                     progress: bool = False) -> Path:
    """Writes `<folder>/.gen-splits.csv`: every MIDI file under `folder` with the split
    `split_by_md5_name` gives it (midi_filename, split, and msd_track_id where the file lies in a
    Million Song Dataset track's folder, as in LMD-matched). `preprocess` reads it as metadata.

    Each file's MD5 is checked against its name; a file that fails is left out (the count and the
    first such file go to `warnings`). A MIDI file not named by an MD5 is a `DatasetError`: the
    folder is not laid out as this dataset is.
    """
    fractions = recipe.split_fractions or {}
    names = manifest_files(folder, (".mid", ".midi"))
    if not names:
        raise DatasetError(f"{folder}: no MIDI files (.mid) found for {recipe.name}")
    rows: list[tuple[str, str, str]] = []
    altered: list[str] = []
    with bar(progress, total=len(names), unit="file", desc="check md5") as shown:
        for name in names:
            path = Path(name)
            if not _MD5_NAME.match(path.stem.lower()):
                raise DatasetError(f"{folder / name}: not named by its MD5 (32 hex digits), as every {recipe.name} "
                                   "file is; is this the right dataset?")
            digest = hashlib.md5(_read_bytes(folder / name)).hexdigest()
            shown.update(1)
            if digest != path.stem.lower():
                altered.append(f"{folder / name} (md5 {digest})")
                continue
            track = path.parent.name if _MSD_TRACK_ID.match(path.parent.name) else ""
            rows.append((name, split_by_md5_name(path.stem, fractions), track))
    if altered and warnings is not None:
        more = f" (and {len(altered) - 1} more)" if len(altered) > 1 else ""
        warnings.append(f"{len(altered)} file(s) whose MD5 differs from their name were left out: {altered[0]}{more}")
    if not rows:
        raise DatasetError(f"{folder}: no MIDI file matches the MD5 in its name: {altered[0]}")
    target = folder / SPLIT_LIST
    try:
        with atomic_output(target) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            with_tracks = any(track for _, _, track in rows)
            writer.writerow(["midi_filename", "split", *(["msd_track_id"] if with_tracks else [])])
            writer.writerows((name, split, *([track] if with_tracks else [])) for name, split, track in rows)
    except OutputError as error:
        raise OutputError(f"{error}; the split list of {recipe.name} is written into the dataset folder, "
                          f"so give a writable copy or the {recipe.archive_kind()} archive as --source") from None
    return target


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise DatasetError(f"{path}: cannot read: {_reason(error)}") from None


def corpus_files(recipe: Recipe, *, root: str | os.PathLike[str] | None = None, limit: int | None = None) -> list[Path]:
    """The music21 corpus files a corpus recipe names, in a stable order.

    `recipe.corpus` holds one of: {"folder": F, "suffixes": [...], "exclude": [...]} (every file of
    that corpus folder), {"chorales": "riemenschneider"} (Bach's chorales as music21's
    `corpus.chorales.Iterator` lists them, each BWV once), or {"files": [paths relative to the corpus]}.
    `root` replaces music21's installed corpus folder.
    """
    spec = recipe.corpus or {}
    corpus_root = Path(root) if root is not None else _music21_corpus_root()
    if "folder" in spec:
        folder = corpus_root / spec["folder"]
        if not folder.is_dir():
            raise DatasetError(f"{folder}: corpus folder not found (is music21's corpus installed?)")
        suffixes = {s.lower() for s in spec.get("suffixes", [".abc", ".mxl", ".xml", ".krn"])}
        excluded = set(spec.get("exclude", []))
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes and p.name not in excluded)
    elif spec.get("chorales") == "riemenschneider":
        files = _chorale_files(corpus_root)
    elif "files" in spec:
        files = [corpus_root / name for name in spec["files"]]
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise DatasetError(f"{missing[0]}: corpus file not found{more}")
    else:
        raise DatasetError(f"{recipe.name}: recipe's corpus names no folder, chorales or files")
    if not files:
        raise DatasetError(f"{recipe.name}: no corpus files found under {corpus_root}")
    return files[:limit] if limit is not None else files


def _music21_corpus_root() -> Path:
    from music21 import common

    return Path(common.getCorpusFilePath())


def _chorale_files(corpus_root: Path) -> list[Path]:
    """Bach's chorales in Riemenschneider order, each file once; a name music21 abbreviates
    (e.g. bach/bwv18.5-l) is matched to the one file it starts."""
    from music21.corpus import chorales

    files: list[Path] = []
    for name in dict.fromkeys(chorales.Iterator(returnType="filename")):
        exact = [corpus_root / f"{name}{suffix}" for suffix in _SCORE_SUFFIXES if (corpus_root / f"{name}{suffix}").is_file()]
        if exact:
            chosen = exact[0]
        else:
            folder, stem = (corpus_root / name).parent, Path(name).name
            candidates = sorted(p for p in folder.glob(f"{stem}*") if p.suffix.lower() in _SCORE_SUFFIXES) if folder.is_dir() else []
            if len(candidates) != 1:
                continue  # not in this corpus
            chosen = candidates[0]
        if chosen not in files:
            files.append(chosen)
    return files


def _convert(
    recipe: Recipe,
    inputs: Sequence[Path],
    output_dir: Path,
    *,
    metadata: Path | None = None,
    split_fractions: dict[str, float] | None = None,
    jobs: int | None = None,
    progress: bool = False,
    warnings: list[str] | None = None,
) -> tuple[PreprocessReport, list[Path]]:
    """Runs `preprocess` into a staging folder, checks the split sizes, then moves the TFRecords
    to `<output_dir>/<name>-<split>.tfrecord` and removes older TFRecords of this dataset.

    Split sizes that differ from the recipe's are an error, or a line added to `warnings` when
    that list is given (a copy from another address, which need not be the published archive)."""
    _make_dir(output_dir)
    staging = Path(tempfile.mkdtemp(dir=output_dir, prefix=".staging-"))
    try:
        report = preprocess(inputs, staging / recipe.name, metadata=metadata, split_fractions=split_fractions,
                            jobs=jobs, progress=progress)
        counts = {_split_of(recipe.name, Path(path)): count for path, count in report.sequences_written.items()}
        if recipe.expected_splits and counts != recipe.expected_splits:
            first_skip = f"; first file skipped: {report.skipped[0][0]}: {report.skipped[0][1]}" if report.skipped else ""
            message = (f"{recipe.name}: split sizes {_format_counts(counts)} differ from the recipe's "
                       f"{_format_counts(recipe.expected_splits)}{first_skip}")
            if warnings is None:
                raise DatasetError(message)
            warnings.append(f"{message} (the published archive's; this copy came from another address)")
        finals = output_paths(output_dir / recipe.name, [split or None for split in counts])
        written: dict[str, int] = {}
        for split, count in counts.items():
            final = finals[split or None]
            os.replace(output_paths(staging / recipe.name, [split or None])[split or None], final)
            written[str(final)] = count
        for stale in _dataset_outputs(output_dir, recipe.name):
            if str(stale) not in written:
                stale.unlink()
        report.sequences_written = written
    except OSError as error:
        raise OutputError(f"{output_dir}: cannot write: {error.strerror or error}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report, [Path(path) for path in written]


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{path}: cannot create folder: {error.strerror or error}") from None


def _dataset_outputs(output_dir: Path, name: str) -> Iterator[Path]:
    pattern = re.compile(rf"^{re.escape(name)}(-[A-Za-z0-9_.-]+)?\.tfrecord$")
    return (path for path in output_dir.iterdir() if pattern.match(path.name) and path.is_file())


def _split_of(name: str, path: Path) -> str:
    """'groove-train.tfrecord' -> 'train'; 'groove.tfrecord' -> ''."""
    stem = path.name.removesuffix(".tfrecord")
    return stem[len(name) + 1:] if stem.startswith(f"{name}-") else ""


def _format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{split or '(all)'}={count}" for split, count in sorted(counts.items()))


def _reason(error: object) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return " ".join(str(error).split()) or type(error).__name__
