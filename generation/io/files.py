"""Outputs appear under their final name only when complete: write a temporary file, then rename."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from generation.errors import OutputError


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a temporary path beside `path`; renames it onto `path` if the block succeeds.

    On any exception the temporary file is removed and an existing file at `path` is untouched.
    A missing directory or a refused write is an `OutputError` naming `path`.
    """
    final = Path(path)
    if final.is_dir():
        raise OutputError(f"{final}: cannot write: is a directory")
    if not final.parent.is_dir():
        raise OutputError(f"{final}: cannot write: directory {final.parent} does not exist")
    temporary = final.with_name(f".{final.name}.{secrets.token_hex(6)}.tmp")
    try:
        yield temporary
        os.replace(temporary, final)
    except OSError as error:
        raise OutputError(f"{final}: cannot write: {error.strerror or error}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
