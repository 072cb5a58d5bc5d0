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
