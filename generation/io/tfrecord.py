"""TFRecord files without TensorFlow, byte-compatible with tf.io.TFRecordWriter / tf.data.TFRecordDataset.

A file is a plain sequence of records, no file header, no compression. Each record is
    uint64 LE length | uint32 LE masked CRC32C of the 8 length bytes | data | uint32 LE masked CRC32C of data
where masked(crc) = ((crc >> 15) | (crc << 17)) + 0xA282EAD8, modulo 2**32.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from typing import NamedTuple

import google_crc32c

from generation.errors import BadInputFile, DamagedRecordError
from generation.io.files import AtomicFile, cannot_write

_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")  # length, masked CRC of the length bytes
_FOOTER = struct.Struct("<I")  # masked CRC of the data
_HEADER_SIZE = _HEADER.size  # 12 bytes
_FOOTER_SIZE = _FOOTER.size  # 4 bytes
# Large buffers keep per-record system calls rare; records bigger than this bypass the buffer anyway.
_BUFFER_SIZE = 1 << 20


def masked_crc32c(data: bytes) -> int:
    """The masked CRC32C of `data`, as a 32-bit unsigned int (the value TFRecord stores)."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _frame(data: bytes) -> tuple[bytes, bytes]:
    length = struct.pack("<Q", len(data))
    return length + _FOOTER.pack(masked_crc32c(length)), _FOOTER.pack(masked_crc32c(data))


def encode_record(data: bytes) -> bytes:
    """One framed record: `len(data) + 16` bytes ready to append to a TFRecord file."""
    data = bytes(data)
    header, footer = _frame(data)
    return header + data + footer


class TFRecordWriter:
    """Writes records to `path` atomically: the file appears under its name only on a clean `close()`.

    Records go to a hidden temporary file in the same directory (so the final rename never crosses
    file systems); `close()` flushes, fsyncs and renames it over `path`. An exception inside `with`,
    or `abort()`, deletes the temporary file and leaves whatever was at `path` untouched.
    `records_written` counts records; `bytes_written` counts bytes in the file, framing included.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._target = AtomicFile(path)
        self.path = self._target.path
        self.records_written = 0
        self.bytes_written = 0
        try:
            # os.open with mode 0o666 (not mkstemp's 0o600) so the final file gets the usual
            # umask-derived permissions; O_EXCL so we never write through someone else's file.
            fd = os.open(
                self._target.temporary,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                0o666,
            )
        except OSError as error:
            raise cannot_write(self.path, error) from None
        self._file: io.BufferedWriter | None = io.BufferedWriter(io.FileIO(fd, "wb"), _BUFFER_SIZE)

    def write(self, record: bytes) -> None:
        """Append one record (any length, including empty) to the file."""
        if self._file is None:
            raise ValueError(f"{self.path}: write to a closed TFRecordWriter")
        if not isinstance(record, bytes):
            record = bytes(record)  # google_crc32c only accepts bytes
        header, footer = _frame(record)
        try:
            self._file.write(header)
            self._file.write(record)
            self._file.write(footer)
        except OSError as error:
            self.abort()
            raise cannot_write(self.path, error) from None
        self.records_written += 1
        self.bytes_written += len(record) + _HEADER_SIZE + _FOOTER_SIZE

    def close(self) -> None:
        """Flush, fsync and move the finished file onto `path`. Calling it again does nothing."""
        if self._file is None:
            return
        try:
            self._file.flush()
            # Without fsync the rename can reach disk before the data, and a power cut would leave
            # an empty or partial file under the final name.
            os.fsync(self._file.fileno())
            self._file.close()
        except OSError as error:
            self.abort()
            raise cannot_write(self.path, error) from None
        self._file = None
        self._target.commit()

    def abort(self) -> None:
        """Discard everything written so far; `path` is left as it was. Safe to call at any time."""
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass  # the data is being thrown away; a failed flush does not matter
            self._file = None
        self._target.discard()

    def __enter__(self) -> TFRecordWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class RecordScan(NamedTuple):
    """One entry of `scan_records`: the record's start `offset` in bytes and either its `data`
    (problem None) or `data=None` and a `problem` in words."""

    offset: int
    data: bytes | None
    problem: str | None


def _scan(path: str | os.PathLike[str], verify: bool) -> Iterator[RecordScan]:
    # A problem with the data CRC is yielded and scanning goes on: the length was verified, so the
    # next record is still found. Any other problem is the last entry: the rest cannot be located.
    try:
        file = open(path, "rb", buffering=_BUFFER_SIZE)
    except FileNotFoundError:
        raise BadInputFile(path, "no such file") from None
    except OSError as error:
        raise BadInputFile(path, f"cannot read: {_reason(error)}") from None
    with file:
        try:
            size = os.fstat(file.fileno()).st_size
            offset = 0
            while header := file.read(_HEADER_SIZE):
                if len(header) < _HEADER_SIZE:
                    yield RecordScan(offset, None, _truncated(_HEADER_SIZE, len(header)))
                    return
                length, length_crc = _HEADER.unpack(header)
                if verify and masked_crc32c(header[:8]) != length_crc:
                    yield RecordScan(offset, None, "length checksum mismatch")
                    return
                needed = _HEADER_SIZE + length + _FOOTER_SIZE
                # Checked against the file size first so that a garbage length (only possible with
                # verify=False) fails cleanly instead of trying to allocate petabytes.
                if needed > size - offset:
                    yield RecordScan(offset, None, _truncated(needed, size - offset))
                    return
                data = file.read(length)
                footer = file.read(_FOOTER_SIZE)
                if len(data) + len(footer) < length + _FOOTER_SIZE:  # the file shrank while we read
                    got = _HEADER_SIZE + len(data) + len(footer)
                    yield RecordScan(offset, None, _truncated(needed, got))
                    return
                if verify and masked_crc32c(data) != _FOOTER.unpack(footer)[0]:
                    yield RecordScan(offset, None, "data checksum mismatch")
                else:
                    yield RecordScan(offset, data, None)
                offset += needed
        except OSError as error:
            raise BadInputFile(path, f"cannot read: {_reason(error)}") from None


def read_records(path: str | os.PathLike[str], *, verify: bool = True) -> Iterator[bytes]:
    """Yield each record's data, in file order, reading one record at a time (memory stays at about
    one record plus a 1 MiB buffer, whatever the file size).

    With `verify` both CRCs of every record are checked. Raises `DamagedRecordError` (with the byte
    offset where the bad record starts) for a checksum mismatch or a file that ends inside a record,
    and `BadInputFile` for a missing or unreadable file; being a generator, it raises these on
    iteration, not at the call.
    """
    for scan in _scan(path, verify):
        if scan.problem is not None:
            raise DamagedRecordError(path, scan.offset, scan.problem)
        yield scan.data  # type: ignore[misc]  # data is set whenever problem is None


def scan_records(path: str | os.PathLike[str]) -> Iterator[RecordScan]:
    """Yield every record with its byte offset, never raising for damage (both CRCs are checked).

    A record whose data checksum fails is yielded with `data=None` and a problem, and scanning
    continues. A bad length checksum or a file that ends inside a record yields one last problem
    entry and stops, since later records cannot be located. Missing or unreadable files raise
    `BadInputFile`.
    """
    return _scan(path, verify=True)


def count_records(path: str | os.PathLike[str]) -> int:
    """The number of records in the file, verifying every checksum (raises like `read_records`)."""
    return sum(1 for _ in read_records(path))


def _truncated(needed: int, left: int) -> str:
    return f"file ends inside a record (needs {needed} bytes, {left} left)"


def _reason(error: OSError) -> str:
    return (error.strerror or str(error)).lower()
