"""One exception type per user-facing failure.

The CLI turns every `GenError` into one line on standard error and a non-zero exit; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import os


class GenError(Exception):
    """A failure the user can act on; `str(error)` is the whole one-line message."""


class BadInputFile(GenError):
    """A file that cannot be read as music (truncated, corrupt, empty, wrong format ...)."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class DamagedRecordError(GenError):
    """A TFRecord whose framing or checksum is wrong, at a known byte offset."""

    def __init__(self, path: str | os.PathLike[str], offset: int, reason: str) -> None:
        self.path = os.fspath(path)
        self.offset = offset
        self.reason = reason
        super().__init__(f"{self.path}: damaged record at byte {offset}: {reason}")


class OutputError(GenError):
    """An output that cannot be written (missing directory, no permission, disk full ...)."""


class NoExamplesError(GenError):
    """Nothing usable was extracted from the inputs."""


class BadConfig(GenError):
    """A config name or key that does not exist, or a value of the wrong kind."""


class RunDirInUse(GenError):
    """A run directory that another training process holds."""


class DamagedCheckpoint(GenError):
    """A checkpoint that is truncated, corrupt or does not match its config."""


class DatasetError(GenError):
    """A dataset recipe that cannot be carried out: download failed, checksum mismatch, missing files."""


class DownloadError(DatasetError):
    """A download that failed: `network` when no answer came (offline, DNS, refused, timeout, reset),
    not for an HTTP error status. `hint` (how to go on without the network) ends the message."""

    def __init__(self, url: str, reason: str, *, network: bool = False, hint: str = "") -> None:
        self.url, self.reason, self.network, self.hint = url, reason, network, hint
        super().__init__(f"could not download {url} ({reason})" + (f"; {hint}" if hint else ""))
