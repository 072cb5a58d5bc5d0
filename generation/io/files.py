"""Outputs appear under their final name only when complete: write a temporary file, then rename."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from generation.errors import GenError, OutputError


class _Readable(Protocol):  # a Path, or an importlib.resources Traversable
    def read_text(self, encoding: str = ...) -> str: ...


def read_json_object(path: _Readable, *, error: type[GenError], what: str) -> dict[str, Any]:
    """The JSON object in `path`; a missing, unreadable or non-object file raises `error`, one line
    naming the file: '<path>: no such <what>' or '<path>: not a readable <what>: <why>'."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as reason:
        raise error(f"{path}: not a readable {what}: {reason}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: not a readable {what}: expected a JSON object")
    return data


def cannot_write(path: str | os.PathLike[str], error: OSError) -> OutputError:
    """The one-line error for an output the OS refused."""
    return OutputError(f"{os.fspath(path)}: cannot write: {(error.strerror or str(error)).lower()}")


class AtomicFile:
    """A temporary name beside `path` that becomes `path` on `commit()`; `discard()` removes it.

    The temporary file sits in the same directory, so the rename never crosses file systems, and
    whatever is at `path` stays untouched until the commit. Creating the file is the caller's job.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        if os.path.isdir(self.path):
            raise OutputError(f"{self.path}: cannot write: is a directory")
        directory, name = os.path.split(os.path.abspath(self.path))
        self.temporary = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")

    def commit(self) -> None:
        try:
            os.replace(self.temporary, self.path)
        except OSError as error:
            self.discard()
            raise cannot_write(self.path, error) from None

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.temporary)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a temporary path beside `path` for the block to write; renames it onto `path` if the
    block succeeds. On any exception the temporary file is removed and `path` is left as it was; an
    `OSError` (missing directory, no permission, disk full) becomes a one-line `OutputError`."""
    target = AtomicFile(path)
    try:
        yield Path(target.temporary)
    except OSError as error:
        target.discard()
        raise cannot_write(path, error) from None
    except BaseException:
        target.discard()
        raise
    target.commit()


def check_output(path: str | os.PathLike[str], *, force: bool = False) -> None:
    """Checks, before any work, that `path` can be written: its folder exists and is writable, it is
    no folder itself, and it does not exist already unless `force`. One-line `OutputError`s."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise OutputError(f"{target}: cannot write: is a directory")
    if not folder.is_dir():
        raise OutputError(f"{target}: cannot write: no folder {folder}")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"{target}: cannot write: folder {folder} is not writable")
    if target.exists() and not force:
        raise OutputError(f"{target}: exists already; give --force to replace it")


SAMPLE_PATTERN = "sample-{:03d}.mid"


def sample_paths(folder: str | os.PathLike[str], count: int, *, force: bool = False) -> list[Path]:
    """The paths `gen sample` writes in `folder` (sample-001.mid ...), checked before any work.

    Earlier samples there (sample-*.mid) are an `OutputError` unless `force`, so that one folder
    never mixes two runs (`make_sample_folder` then removes them)."""
    directory = Path(folder)
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"{directory}: cannot write samples: not a folder")
    earlier = sorted(directory.glob("sample-*.mid")) if directory.is_dir() else []
    if earlier and not force:
        raise OutputError(f"{directory}: holds {len(earlier)} earlier samples ({earlier[0].name} ...); "
                          "give --force to replace them, or another folder")
    existing = next((p for p in [directory, *directory.parents] if p.exists()), Path("."))
    if not os.access(existing, os.W_OK):
        raise OutputError(f"{directory}: cannot write samples: {existing} is not writable")
    return [directory / SAMPLE_PATTERN.format(number) for number in range(1, count + 1)]


def make_sample_folder(folder: str | os.PathLike[str]) -> None:
    """Creates `folder` if missing and removes earlier samples (sample-*.mid) from it."""
    directory = Path(folder)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for path in directory.glob("sample-*.mid"):
            path.unlink()
    except OSError as error:
        raise cannot_write(directory, error) from None
