"""TFRecord framing: checked against the spec (via a second CRC32C implementation), against the
independent `tfrecord` package, and for damage reporting, writer atomicity and streaming reads."""

from __future__ import annotations

import os
import struct
import sys
import tracemalloc

import crc32c  # a different C implementation than the google_crc32c the module uses
import google_crc32c
import pytest
import tfrecord
from tfrecord import example_pb2

from generation.errors import BadInputFile, DamagedRecordError, GenError, OutputError
from generation.io import tfrecord as tfr


def spec_masked_crc(data: bytes) -> int:
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) % 2**32


def spec_record(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    length_crc = struct.pack("<I", spec_masked_crc(length))
    return length + length_crc + data + struct.pack("<I", spec_masked_crc(data))


def write_file(path, records) -> list[int]:
    """Write `records` with our writer; return each record's start offset."""
    offsets, offset = [], 0
    with tfr.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
            offsets.append(offset)
            offset += len(record) + 16
    return offsets


def flip_byte(path, position: int) -> None:
    with open(path, "r+b") as f:
        f.seek(position)
        byte = f.read(1)
        f.seek(position)
        f.write(bytes([byte[0] ^ 0x40]))


def tfrecord_package_records(path) -> list[bytes]:
    # tfrecord_iterator reuses one buffer for every record: copy each view before the next.
    return [bytes(view) for view in tfrecord.reader.tfrecord_iterator(str(path))]


FIVE = [b"first record", b"second record", b"third", b"4th record here", b"fifth and last"]


# 1. The format, from the spec.


def test_crc32c_known_vectors():
    assert google_crc32c.implementation == "c"  # the pure-Python fallback is ~50x slower
    assert google_crc32c.value(b"123456789") == 0xE3069283  # the standard CRC-32C check value
    assert google_crc32c.value(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4, 32 zero bytes
    assert tfr.masked_crc32c(b"123456789") == spec_masked_crc(b"123456789")
    assert tfr.masked_crc32c(bytes(8)) == spec_masked_crc(bytes(8)) == 0x07980329


def test_encode_record_matches_spec_byte_for_byte():
    expected = spec_record(b"hello")
    assert expected == bytes.fromhex("0500000000000000" "eab2043e" "68656c6c6f" "bb1f1c19")
    assert tfr.encode_record(b"hello") == expected
    assert tfr.encode_record(b"") == spec_record(b"")
    assert len(tfr.encode_record(b"")) == 16


def test_writer_output_is_concatenated_encoded_records(tmp_path):
    path = tmp_path / "a.tfrecord"
    write_file(path, FIVE)
    assert path.read_bytes() == b"".join(spec_record(r) for r in FIVE)


# 2. Compatibility with the independent `tfrecord` package.


def test_tfrecord_package_reads_our_files(tmp_path):
    path = tmp_path / "ours.tfrecord"
    records = [os.urandom(n) for n in (0, 1, 100, 5000, 2 * 1024 * 1024)] + FIVE
    write_file(path, records)
    assert tfrecord_package_records(path) == records


def test_we_read_tfrecord_package_files(tmp_path):
    path = tmp_path / "theirs.tfrecord"
    datums = [
        {"id": (i, "int"), "name": (f"seq {i}".encode(), "byte"), "x": ([0.5 * i, 1.0], "float")}
        for i in range(20)
    ]
    writer = tfrecord.writer.TFRecordWriter(str(path))
    for datum in datums:
        writer.write(datum)
    writer.close()

    ours = list(tfr.read_records(path))
    assert ours == tfrecord_package_records(path)
    assert ours == [tfrecord.writer.TFRecordWriter.serialize_tf_example(d) for d in datums]
    assert example_pb2.Example.FromString(ours[3]).features.feature["id"].int64_list.value == [3]

    # Same records through our writer: the two files must be identical, CRCs included.
    ours_path = tmp_path / "ours.tfrecord"
    write_file(ours_path, ours)
    assert ours_path.read_bytes() == path.read_bytes()


# 3. Round trip.


def test_round_trip_many_records_with_empty_and_large(tmp_path):
    path = tmp_path / "many.tfrecord"
    small = [os.urandom(i * 37 % 4000) for i in range(500)]
    records = [b"", *small, b"", os.urandom(3 * 1024 * 1024), b"end"]
    with tfr.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
        assert writer.records_written == len(records)
    assert writer.bytes_written == path.stat().st_size == sum(len(r) + 16 for r in records)
    assert list(tfr.read_records(path)) == records
    assert list(tfr.read_records(path, verify=False)) == records
    assert tfr.count_records(path) == len(records)
    scans = list(tfr.scan_records(path))
    assert [s.data for s in scans] == records and all(s.problem is None for s in scans)


def test_writer_accepts_bytearray_and_memoryview(tmp_path):
    path = tmp_path / "views.tfrecord"
    with tfr.TFRecordWriter(path) as writer:
        writer.write(bytearray(b"abc"))
        writer.write(memoryview(b"defg"))
    assert list(tfr.read_records(path)) == [b"abc", b"defg"]


def test_empty_file_has_no_records(tmp_path):
    path = tmp_path / "empty.tfrecord"
    with tfr.TFRecordWriter(path):
        pass
    assert path.read_bytes() == b""
    assert tfr.count_records(path) == 0


# 4. Damage.


def test_flipped_data_byte_names_file_and_record_offset(tmp_path):
    path = tmp_path / "bad.tfrecord"
    offsets = write_file(path, FIVE)
    flip_byte(path, offsets[1] + 12 + 3)
    reader = tfr.read_records(path)
    assert next(reader) == FIVE[0]
    with pytest.raises(DamagedRecordError) as caught:
        next(reader)
    assert caught.value.offset == offsets[1] == 28
    assert "data checksum mismatch" in caught.value.reason
    assert str(path) in str(caught.value) and "byte 28" in str(caught.value)
    # Without verification the damaged bytes come through as they are.
    damaged = list(tfr.read_records(path, verify=False))
    assert damaged[1] != FIVE[1] and damaged[:1] + damaged[2:] == FIVE[:1] + FIVE[2:]


def test_flipped_data_checksum_byte_is_detected(tmp_path):
    path = tmp_path / "bad.tfrecord"
    offsets = write_file(path, FIVE)
    flip_byte(path, offsets[3] - 1)  # last byte of record 3's data CRC
    with pytest.raises(DamagedRecordError) as caught:
        list(tfr.read_records(path))
    assert caught.value.offset == offsets[2]


@pytest.mark.parametrize("position", [0, 7, 8, 11])  # length bytes and length CRC bytes
def test_flipped_length_field_is_detected(tmp_path, position):
    path = tmp_path / "bad.tfrecord"
    offsets = write_file(path, FIVE)
    flip_byte(path, offsets[1] + position)
    with pytest.raises(DamagedRecordError) as caught:
        list(tfr.read_records(path))
    assert caught.value.offset == offsets[1]
    assert "length checksum mismatch" in caught.value.reason
    assert str(path) in str(caught.value)


def test_truncated_inside_last_record(tmp_path):
    path = tmp_path / "cut.tfrecord"
    offsets = write_file(path, FIVE)
    size = path.stat().st_size
    os.truncate(path, size - 8)
    reader = tfr.read_records(path)
    assert [next(reader) for _ in range(4)] == FIVE[:4]
    with pytest.raises(DamagedRecordError) as caught:
        next(reader)
    last_size = len(FIVE[4]) + 16
    assert caught.value.offset == offsets[4]
    assert caught.value.reason == f"file ends inside a record (needs {last_size} bytes, {last_size - 8} left)"
    assert f"byte {offsets[4]}" in str(caught.value)
    with pytest.raises(DamagedRecordError):
        list(tfr.read_records(path, verify=False))


def test_truncated_inside_header(tmp_path):
    path = tmp_path / "cut.tfrecord"
    offsets = write_file(path, FIVE)
    os.truncate(path, offsets[4] + 5)
    with pytest.raises(DamagedRecordError) as caught:
        list(tfr.read_records(path))
    assert caught.value.offset == offsets[4]
    assert "needs 12 bytes, 5 left" in caught.value.reason


def test_garbage_length_without_verify_fails_cleanly(tmp_path):
    path = tmp_path / "huge.tfrecord"
    path.write_bytes(struct.pack("<QI", 2**62, 0) + b"xyz")
    with pytest.raises(DamagedRecordError) as caught:
        list(tfr.read_records(path, verify=False))
    assert caught.value.offset == 0 and "file ends inside a record" in caught.value.reason


def test_scan_counts_damaged_data_and_continues(tmp_path):
    path = tmp_path / "scan.tfrecord"
    offsets = write_file(path, FIVE)
    flip_byte(path, offsets[1] + 12)
    scans = list(tfr.scan_records(path))
    assert [s.offset for s in scans] == offsets
    good = [s for s in scans if s.problem is None]
    bad = [s for s in scans if s.problem is not None]
    assert [s.data for s in good] == FIVE[:1] + FIVE[2:]
    assert len(bad) == 1 and bad[0].offset == offsets[1] and bad[0].data is None
    assert "data checksum mismatch" in bad[0].problem


def test_scan_stops_at_bad_length_or_truncation(tmp_path):
    path = tmp_path / "scan.tfrecord"
    offsets = write_file(path, FIVE)
    flip_byte(path, offsets[2] + 1)
    scans = list(tfr.scan_records(path))
    assert [s.data for s in scans[:2]] == FIVE[:2]
    assert len(scans) == 3 and scans[2].offset == offsets[2] and "length checksum" in scans[2].problem

    path.unlink()
    write_file(path, FIVE)
    os.truncate(path, path.stat().st_size - 1)
    scans = list(tfr.scan_records(path))
    assert len(scans) == 5 and scans[4].offset == offsets[4] and "file ends inside" in scans[4].problem


def test_missing_or_unreadable_input(tmp_path):
    with pytest.raises(BadInputFile) as caught:
        list(tfr.read_records(tmp_path / "nope.tfrecord"))
    assert isinstance(caught.value, GenError)
    assert str(caught.value) == f"{tmp_path / 'nope.tfrecord'}: no such file"
    with pytest.raises(BadInputFile):
        tfr.count_records(tmp_path)  # a directory
    with pytest.raises(BadInputFile):
        list(tfr.scan_records(tmp_path / "nope.tfrecord"))


# 5. Writer atomicity.


def test_exception_inside_with_leaves_nothing(tmp_path):
    path = tmp_path / "out.tfrecord"
    with pytest.raises(RuntimeError):
        with tfr.TFRecordWriter(path) as writer:
            writer.write(b"x" * 100_000)
            assert len(os.listdir(tmp_path)) == 1  # the temporary file, not yet the final name
            assert not path.exists()
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_existing_file_survives_failed_write_and_abort(tmp_path):
    path = tmp_path / "out.tfrecord"
    path.write_bytes(b"precious")
    with pytest.raises(KeyError):
        with tfr.TFRecordWriter(path) as writer:
            writer.write(b"new")
            raise KeyError("boom")
    assert path.read_bytes() == b"precious"

    writer = tfr.TFRecordWriter(path)
    writer.write(b"new")
    writer.abort()
    writer.abort()
    assert path.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["out.tfrecord"]


def test_clean_close_replaces_existing_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "out.tfrecord"
    path.write_bytes(b"old")
    writer = tfr.TFRecordWriter(path)
    writer.write(b"new")
    writer.close()
    writer.close()  # idempotent
    assert list(tfr.read_records(path)) == [b"new"]
    assert os.listdir(tmp_path) == ["out.tfrecord"]
    with pytest.raises(ValueError):
        writer.write(b"late")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_final_file_gets_umask_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    path = tmp_path / "out.tfrecord"
    with tfr.TFRecordWriter(path) as writer:
        writer.write(b"x")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_missing_directory_is_one_line_output_error(tmp_path):
    path = tmp_path / "no" / "such" / "dir" / "out.tfrecord"
    with pytest.raises(OutputError) as caught:
        tfr.TFRecordWriter(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path)) and "no such file or directory" in message
    assert not (tmp_path / "no").exists()


def test_directory_as_output_is_output_error(tmp_path):
    with pytest.raises(OutputError, match="is a directory"):
        tfr.TFRecordWriter(tmp_path)


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root ignores permissions")
def test_unwritable_directory_is_output_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(OutputError, match="permission denied"):
        tfr.TFRecordWriter(locked / "out.tfrecord")


# 6. Streaming.


class ReadSpy:
    def __init__(self, file):
        self.file = file
        self.sizes: list[int] = []

    def read(self, size=-1):
        self.sizes.append(size)
        return self.file.read(size)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.file.close()


def test_reads_ask_for_at_most_one_record(tmp_path, monkeypatch):
    path = tmp_path / "spy.tfrecord"
    records = [os.urandom(n) for n in (10, 3000, 0, 70_000, 5)]
    write_file(path, records)
    spies = []

    def spying_open(*args, **kwargs):
        spies.append(ReadSpy(open(*args, **kwargs)))
        return spies[-1]

    monkeypatch.setattr(tfr, "open", spying_open, raising=False)
    assert list(tfr.read_records(path)) == records
    sizes = spies[0].sizes
    assert sizes and all(0 <= size <= 70_000 + 12 for size in sizes)


def test_large_file_is_read_in_constant_memory(tmp_path):
    path = tmp_path / "big.tfrecord"
    block = os.urandom(1 << 20)
    with tfr.TFRecordWriter(path) as writer:
        for i in range(5 * 1024):  # 50 MiB of 10 KiB records
            writer.write(block[(i % 100) * 10240 :][:10240])
    size = path.stat().st_size
    assert size > 50 * 2**20

    tracemalloc.start()
    try:
        count = sum(1 for _ in tfr.read_records(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 5 * 1024
    assert peak < 4 * 2**20, f"peak {peak} bytes for a {size}-byte file"
