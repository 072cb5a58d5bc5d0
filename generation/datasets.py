"""Dataset recipes: named datasets turned into TFRecord files of NoteSequences (`gen data prepare`).

A recipe is a JSON file in `train_data/` (installed as the package `generation.train_data`):

- kind "download" (the Groove MIDI Dataset): a zip fetched from `url` (or a local copy), unpacked
  under `<out_dir>/raw/`, every file checked against the recipe's manifest (path, sha256, bytes),
  then converted with the dataset's own split column and the split sizes checked;
- kind "music21_corpus": files chosen from the corpus installed with music21 (a folder, or Bach's
  chorales in Riemenschneider order), split by `preprocess`'s stable hash of each sequence id.

Prepared data lands in `data_home()/<name>` unless an output directory is given: TFRecords at
`<out_dir>/<name>-<split>.tfrecord`, downloaded files under `<out_dir>/raw/`. TFRecords are written
under temporary names and renamed only when every check has passed.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import importlib.resources
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import MISSING, dataclass, field, fields
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from generation.errors import DatasetError, DownloadError, OutputError
from generation.io.files import read_json_object
from generation.preprocess import PreprocessReport, output_paths, preprocess
from generation.progress import bar

DATA_HOME_VARIABLE = "GEN_DATA_HOME"
KINDS = ("download", "music21_corpus")
DOWNLOAD_TIMEOUT_S = 60.0
_CHUNK = 1 << 20
_NAME = re.compile(r"^[a-z0-9_]+$")
_SCORE_SUFFIXES = (".mxl", ".xml", ".musicxml")


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
    archive_root: str | None = None  # download: the zip's top folder (also the collection name)
    metadata: str | None = None  # download: CSV with a split column, relative to the dataset root
    manifest: str | None = None  # download: CSV of path,sha256,bytes beside the recipe file
    expected_splits: dict[str, int] = field(default_factory=dict)
    split_fractions: dict[str, float] | None = None
    corpus: dict[str, Any] | None = None  # music21_corpus: which files (see `corpus_files`)
    location: Path | Traversable | None = field(default=None, compare=False, repr=False)  # folder of the JSON

    def manifest_path(self) -> Path | Traversable:
        """Where the manifest lives: beside the recipe file, or as given when absolute."""
        if self.manifest is None:
            raise DatasetError(f"recipe {self.name!r} has no manifest")
        if os.path.isabs(self.manifest) or self.location is None:
            return Path(self.manifest)
        return self.location / self.manifest


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


# Download and unpack ----------------------------------------------------------------------------


def download(url: str, destination: str | os.PathLike[str], *, progress: bool = False, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Fetches `url` into a temporary file beside `destination`, renamed onto it when complete.

    Every failure (HTTP status, unreachable host, timeout, short read) is a one-line `DownloadError`
    (a `DatasetError`) naming the URL and the reason; nothing is left at `destination` then.
    `progress`: a bar of bytes received (of Content-Length when the server sends it).
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary_name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
    temporary = Path(temporary_name)
    try:
        with os.fdopen(handle, "wb") as output, urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            with bar(progress, total=total, unit="B", desc="download", unit_scale=True, unit_divisor=1024) as shown:
                while chunk := response.read(_CHUNK):
                    output.write(chunk)
                    received += len(chunk)
                    shown.update(len(chunk))
        if total is not None and received != total:
            raise DownloadError(url, f"got {received} of {total} bytes", network=True)
        os.replace(temporary, destination)
    except urllib.error.HTTPError as error:
        raise DownloadError(url, f"HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:  # DNS failure, connection refused, unreachable network ...
        if isinstance(error.reason, TimeoutError):
            raise DownloadError(url, f"no answer within {timeout:g} s", network=True) from None
        network = isinstance(error.reason, OSError)
        raise DownloadError(url, _reason(error.reason), network=network) from None
    except TimeoutError:
        raise DownloadError(url, f"no answer within {timeout:g} s", network=True) from None
    except (http.client.HTTPException, ConnectionError) as error:  # connection closed or reset mid-answer
        raise DownloadError(url, _reason(error), network=True) from None
    except (OSError, ValueError) as error:  # unknown URL type, disk full ...
        raise DownloadError(url, _reason(error)) from None
    finally:
        temporary.unlink(missing_ok=True)
    return destination


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


def unpack(archive: str | os.PathLike[str], destination: str | os.PathLike[str], root: str | None = None, *,
           progress: bool = False) -> Path:
    """Unpacks `archive` into a temporary folder beside `destination`, then renames its `root` folder
    (or all of it) onto `destination`, replacing what was there.

    A member with an absolute path, '..' or a link is refused before anything is written.
    `progress`: a bar of the members' unpacked bytes.
    """
    archive, destination = Path(archive), Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=".unpack-"))
    try:
        try:
            with zipfile.ZipFile(archive) as bundle:
                members = bundle.infolist()
                for info in members:
                    reason = unsafe_member(info)
                    if reason:
                        raise DatasetError(f"{archive}: refusing to unpack member {info.filename!r}: {reason}")
                with bar(progress, total=sum(info.file_size for info in members), unit="B", desc="unpack",
                         unit_scale=True, unit_divisor=1024) as shown:
                    for info in members:  # what extractall does, one member at a time
                        bundle.extract(info, staging)
                        shown.update(info.file_size)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
            raise DatasetError(f"{archive}: not a readable zip file: {error}") from None
        except FileNotFoundError:
            raise DatasetError(f"{archive}: no such file") from None
        unpacked = staging / root if root else staging
        if not unpacked.is_dir():
            raise DatasetError(f"{archive}: no top folder {root + '/'!r} in the archive")
        if destination.exists():
            shutil.rmtree(destination)
        os.replace(unpacked, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


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
    the zip; corpus recipes: a music21 corpus folder). `url` overrides the recipe's download URL.
    `limit` keeps the first N files of a corpus recipe (for quick trials).
    """
    recipe = name if isinstance(name, Recipe) else get_recipe(name)
    started = time.perf_counter()
    output_dir = Path(out_dir) if out_dir is not None else data_home() / recipe.name
    if recipe.kind == "download":
        if limit is not None:
            raise DatasetError(f"{recipe.name}: limit applies to corpus recipes only; this dataset is checked whole")
        data_dir, downloaded = fetch(recipe, output_dir, source=source, url=url, progress=progress)
        report, paths = _convert(
            recipe, [data_dir], output_dir,
            metadata=data_dir / recipe.metadata if recipe.metadata else None, jobs=jobs, progress=progress,
        )
    else:
        if url is not None:
            raise DatasetError(f"{recipe.name}: is built from the music21 corpus; there is nothing to download")
        data_dir, downloaded = None, False
        files = corpus_files(recipe, root=source, limit=limit)
        report, paths = _convert(recipe, files, output_dir, split_fractions=recipe.split_fractions, jobs=jobs, progress=progress)
    return PrepareResult(recipe, output_dir, report, paths, time.perf_counter() - started, data_dir, downloaded)


def fetch(
    recipe: Recipe,
    output_dir: Path,
    *,
    source: str | os.PathLike[str] | None = None,
    url: str | None = None,
    progress: bool = False,
) -> tuple[Path, bool]:
    """The verified dataset folder of a download recipe, and whether it was downloaded just now.

    With `source` a folder, it is verified and converted in place (its folder name becomes the
    collection name in sequence ids; Magenta's Groove ids need `groove`). With `source` a zip, it is
    unpacked under `<output_dir>/raw/`. Without `source`, files already under raw/ that verify are
    reused, else the zip is downloaded (into a temporary file in `output_dir`, removed after unpacking).
    """
    entries = read_manifest(recipe)
    manifest_name = str(recipe.manifest)
    raw = output_dir / "raw" / (recipe.archive_root or recipe.name)
    if source is not None:
        source = Path(source)
        if source.is_dir():
            verify_manifest(source, entries, manifest_name, progress=progress)
            return source, False
        if not source.is_file():
            raise DatasetError(f"{source}: no such file or folder (expected the unpacked dataset or its zip)")
        unpack(source, raw, recipe.archive_root, progress=progress)
        verify_manifest(raw, entries, manifest_name, progress=progress)
        return raw, False
    if raw.is_dir() and not manifest_problems(raw, entries, progress=progress):
        return raw, False
    address = url or recipe.url
    if not address:
        raise DatasetError(f"{recipe.name}: recipe has no url; pass a local copy as source")
    _make_dir(output_dir)
    archive = output_dir / f".{recipe.name}-{secrets.token_hex(4)}.zip"
    try:
        try:
            download(address, archive, progress=progress)
        except DownloadError as error:
            raise DownloadError(error.url, error.reason, network=error.network, hint=local_copy_hint(recipe)) from None
        unpack(archive, raw, recipe.archive_root, progress=progress)
    finally:
        archive.unlink(missing_ok=True)
    verify_manifest(raw, entries, manifest_name, progress=progress)
    return raw, True


def local_copy_hint(recipe: Recipe) -> str:
    """How to prepare a download recipe from a copy fetched some other way."""
    where = f" (from {recipe.homepage or recipe.url})" if recipe.homepage or recipe.url else ""
    return f"with a local copy{where}: gen data prepare {recipe.name} --source PATH (a folder or the zip)"


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
) -> tuple[PreprocessReport, list[Path]]:
    """Runs `preprocess` into a staging folder, checks the split sizes, then moves the TFRecords
    to `<output_dir>/<name>-<split>.tfrecord` and removes older TFRecords of this dataset."""
    _make_dir(output_dir)
    staging = Path(tempfile.mkdtemp(dir=output_dir, prefix=".staging-"))
    try:
        report = preprocess(inputs, staging / recipe.name, metadata=metadata, split_fractions=split_fractions,
                            jobs=jobs, progress=progress)
        counts = {_split_of(recipe.name, Path(path)): count for path, count in report.sequences_written.items()}
        if recipe.expected_splits and counts != recipe.expected_splits:
            first_skip = f"; first file skipped: {report.skipped[0][0]}: {report.skipped[0][1]}" if report.skipped else ""
            raise DatasetError(
                f"{recipe.name}: split sizes {_format_counts(counts)} differ from the recipe's "
                f"{_format_counts(recipe.expected_splits)}{first_skip}"
            )
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
