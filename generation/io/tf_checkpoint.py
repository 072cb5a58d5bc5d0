"""TensorFlow checkpoints (V2 tensor bundles) and TensorFlow.js weight folders, read without TensorFlow.

A tensor bundle with prefix P (`tf.compat.v1.train.Saver` and `tf.train.Checkpoint` write them) is

    P.index                       a LevelDB-format table: tensor name -> BundleEntryProto
    P.data-00000-of-0000N         the tensors' raw bytes, N shards

The table (TensorFlow's `core/lib/io/table_format`): data blocks, an index block whose entries
map keys to the BlockHandles (varint64 offset, varint64 size) of those data blocks, and a 48-byte
footer: the metaindex and index handles, zero padding, and the magic 0xdb4775248b80fb57. Every block
is followed by one byte of compression (0 none, 1 snappy) and the masked CRC32C of the block and that
byte. A block holds entries `varint32 shared | varint32 non_shared | varint32 value_length | key
suffix | value` (a key repeats `shared` bytes of the previous key) and ends with its restart offsets
(uint32 each) and their count (uint32). The entry with the empty key is a BundleHeaderProto
(num_shards = 1, endianness = 2, version = 3); every other one a BundleEntryProto (dtype = 1,
shape = 2, shard_id = 3, offset = 4, size = 5, crc32c = 6 masked CRC32C of the bytes, slices = 7),
parsed here from the protobuf wire format directly.

A TensorFlow.js folder (tensorflowjs `write_weights`, as magenta.js ships its checkpoints) holds
`weights_manifest.json`, a list of groups `{"paths": [shard files], "weights": [{"name", "shape",
"dtype", optional "quantization": {"dtype": "uint8"|"uint16", "min", "scale"} or {"dtype":
"float16"}}]}`; a group's shards, concatenated, hold its weights' bytes in order (a weight may
straddle two shards). Affine quantization stores q with value = q * scale + min. There is no checksum.

Every failure is a one-line `BadInputFile` naming the file.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import numpy as np

from generation.errors import BadInputFile
from generation.io.tfrecord import masked_crc32c

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48  # two BlockHandles padded to 20 bytes each, then the 8-byte magic
BLOCK_TRAILER_SIZE = 5  # compression byte + masked CRC32C
_NO_COMPRESSION, _SNAPPY = 0, 1
_MAX_CONSUMER_VERSION = 1  # kTensorBundleVersion: bundles asking for a newer reader are refused

# TensorFlow's DataType enum (types.proto) -> numpy dtype, for the types a checkpoint stores as raw bytes.
_DTYPES: dict[int, str] = {
    1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 9: "int64", 10: "bool",
    17: "uint16", 19: "float16", 22: "uint32", 23: "uint64",
}
DT_STRING = 7
DT_BFLOAT16 = 14  # read as float32 (bfloat16 is the top half of a float32)
_DTYPE_NAMES = {7: "string", 8: "complex64", 14: "bfloat16", 18: "complex128", 20: "resource", 21: "variant"}

MANIFEST = "weights_manifest.json"
_TFJS_DTYPES = {"float32": "<f4", "int32": "<i4", "bool": "u1"}
_TFJS_QUANTIZED = {"uint8": "u1", "uint16": "<u2", "float16": "<f2"}


# -- protobuf wire format ------------------------------------------------------------------------


def _varint(data: bytes | memoryview, position: int) -> tuple[int, int]:
    """(value, position after it) of the varint at `position`; ValueError past the end or over 10 bytes."""
    result = shift = 0
    for _ in range(10):
        if position >= len(data):
            raise ValueError("a varint runs past the end")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
    raise ValueError("a varint is longer than 10 bytes")


def _int64(value: int) -> int:
    """A varint's unsigned 64 bits read as protobuf's int64 (negative numbers take 10 bytes)."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def _proto_fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of each field of a serialized message: ints for varint and fixed
    fields, bytes for length-delimited ones. ValueError on a malformed message."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
            yield number, value
        elif wire_type == 1:
            if position + 8 > len(data):
                raise ValueError("a fixed64 field runs past the end")
            yield number, struct.unpack_from("<Q", data, position)[0]
            position += 8
        elif wire_type == 2:
            length, position = _varint(data, position)
            if position + length > len(data):
                raise ValueError("a length-delimited field runs past the end")
            yield number, bytes(data[position : position + length])
            position += length
        elif wire_type == 5:
            if position + 4 > len(data):
                raise ValueError("a fixed32 field runs past the end")
            yield number, struct.unpack_from("<I", data, position)[0]
            position += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")


def _shape(data: bytes) -> tuple[int, ...]:
    """TensorShapeProto: dim = 2 (TensorShapeProto.Dim: size = 1), unknown_rank = 3."""
    dims = []
    for number, value in _proto_fields(data):
        if number == 2 and isinstance(value, bytes):
            size = 0
            for dim_number, dim_value in _proto_fields(value):
                if dim_number == 1 and isinstance(dim_value, int):
                    size = _int64(dim_value)
            if size < 0:
                raise ValueError(f"dimension of unknown size {size}")
            dims.append(size)
        elif number == 3 and value:
            raise ValueError("a shape of unknown rank")
    return tuple(dims)


# -- snappy ----------------------------------------------------------------------------------------


def snappy_decompress(data: bytes) -> bytes:
    """Raw snappy (the block format, not the framing format): a varint length, then literals and
    back-references. ValueError on anything malformed."""
    length, position = _varint(data, 0)
    out = bytearray()
    while position < len(data):
        tag = data[position]
        position += 1
        kind = tag & 3
        if kind == 0:  # literal; lengths over 60 follow in 1-4 bytes
            size = tag >> 2
            if size >= 60:
                extra = size - 59
                if position + extra > len(data):
                    raise ValueError("a literal length runs past the end")
                size = int.from_bytes(data[position : position + extra], "little")
                position += extra
            size += 1
            if position + size > len(data):
                raise ValueError("a literal runs past the end")
            out += data[position : position + size]
            position += size
            continue
        if kind == 1:
            size, width = ((tag >> 2) & 7) + 4, 1
            if position + 1 > len(data):
                raise ValueError("a copy runs past the end")
            offset = ((tag >> 5) << 8) | data[position]
        else:
            size, width = (tag >> 2) + 1, 2 if kind == 2 else 4
            if position + width > len(data):
                raise ValueError("a copy runs past the end")
            offset = int.from_bytes(data[position : position + width], "little")
        position += 1 if kind == 1 else width
        if offset == 0 or offset > len(out):
            raise ValueError("a copy reaches before the start")
        start = len(out) - offset
        if offset >= size:
            out += out[start : start + size]
        else:  # an overlapping copy repeats the last `offset` bytes
            for index in range(size):
                out.append(out[start + index])
        if len(out) > length:
            raise ValueError("more bytes than the stated length")
    if len(out) != length:
        raise ValueError(f"{len(out)} bytes, the stated length is {length}")
    return bytes(out)


# -- the table ----------------------------------------------------------------------------------


def _read_block(table: bytes, handle: bytes, what: str) -> bytes:
    """The contents of the block `handle` (varint offset, varint size) points at, checked and unpacked."""
    offset, position = _varint(handle, 0)
    size, _ = _varint(handle, position)
    end = offset + size + BLOCK_TRAILER_SIZE
    if end > len(table) - FOOTER_SIZE:
        raise ValueError(f"the {what} block runs past the end of the file (truncated?)")
    contents = table[offset : offset + size]
    compression = table[offset + size]
    (stored_crc,) = struct.unpack_from("<I", table, offset + size + 1)
    if masked_crc32c(table[offset : offset + size + 1]) != stored_crc:
        raise ValueError(f"the {what} block's checksum does not match (corrupt)")
    if compression == _NO_COMPRESSION:
        return contents
    if compression == _SNAPPY:
        return snappy_decompress(contents)
    raise ValueError(f"the {what} block has unknown compression {compression}")


def _block_entries(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of each entry of a table block, prefix-compressed keys expanded."""
    if len(block) < 4:
        raise ValueError("a block too short to hold its restart count")
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 * (restarts + 1)
    if restarts < 1 or limit < 0:
        raise ValueError("a block with a bad restart count")
    key = b""
    position = 0
    while position < limit:
        shared, position = _varint(block, position)
        unshared, position = _varint(block, position)
        value_size, position = _varint(block, position)
        if shared > len(key) or position + unshared + value_size > limit:
            raise ValueError("a block entry runs past its block")
        key = key[:shared] + block[position : position + unshared]
        position += unshared
        yield key, block[position : position + value_size]
        position += value_size


def _table_entries(table: bytes) -> Iterator[tuple[bytes, bytes]]:
    if len(table) < FOOTER_SIZE:
        raise ValueError(f"{len(table)} bytes, too short for a table footer (truncated?)")
    footer = table[-FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)
    if magic != TABLE_MAGIC:
        raise ValueError("not a TensorFlow checkpoint index (bad magic number; truncated or another file?)")
    _, position = _varint(footer, 0)  # the metaindex block: empty in a bundle, not needed
    _, position = _varint(footer, position)
    index = _read_block(table, footer[position:], "index")
    previous = None
    for _, handle in _block_entries(index):
        for key, value in _block_entries(_read_block(table, handle, "data")):
            if previous is not None and key <= previous:
                raise ValueError("keys out of order (corrupt)")
            previous = key
            yield key, value


# -- tensor bundles -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor of a bundle lies; `dtype` is TensorFlow's DataType number."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc32c: int | None  # masked; None where the writer left it out
    sliced: bool  # a partitioned tensor, stored as slices under other keys

    @property
    def dtype_name(self) -> str:
        return _DTYPES.get(self.dtype) or _DTYPE_NAMES.get(self.dtype, f"DataType {self.dtype}")


def _bundle_entry(name: str, value: bytes) -> BundleEntry:
    fields: dict[int, int | bytes] = {}
    sliced = False
    for number, field_value in _proto_fields(value):
        if number == 7:
            sliced = True
        else:
            fields[number] = field_value
    shape_bytes = fields.get(2, b"")
    crc = fields.get(6)

    def integer(number: int) -> int:
        field_value = fields.get(number, 0)
        if not isinstance(field_value, int):
            raise ValueError(f"entry {name!r}: field {number} is not a number")
        return _int64(field_value)

    return BundleEntry(
        name=name, dtype=integer(1), shape=_shape(shape_bytes if isinstance(shape_bytes, bytes) else b""),
        shard=integer(3), offset=integer(4), size=integer(5), crc32c=crc if isinstance(crc, int) else None,
        sliced=sliced,
    )


def bundle_prefix(path: str | os.PathLike[str]) -> Path:
    """The prefix of the tensor bundle `path` names: the prefix itself (`model.ckpt-2721`), its
    `.index` or one of its `.data-*` files, or a folder holding one bundle (or a `checkpoint` file
    naming the newest, as `tf.train.Saver` writes)."""
    path = Path(path)
    if path.is_dir():
        pointer = path / "checkpoint"
        if pointer.is_file():
            match = re.search(r'^model_checkpoint_path:\s*"(.*)"\s*$', pointer.read_text(errors="replace"), re.M)
            if match:
                named = Path(match.group(1))
                prefix = named if named.is_absolute() else path / named
                if Path(f"{prefix}.index").is_file():
                    return prefix
                local = path / named.name  # a folder moved since: the pointer's folder is stale
                if Path(f"{local}.index").is_file():
                    return local
        indexes = sorted(path.glob("*.index"))
        if len(indexes) == 1:
            return indexes[0].with_suffix("")
        if not indexes:
            raise BadInputFile(path, "no TensorFlow checkpoint here (no .index file, no weights_manifest.json)")
        raise BadInputFile(path, f"holds {len(indexes)} checkpoints ({', '.join(p.stem for p in indexes)}); "
                                 "name one, e.g. " + str(indexes[-1].with_suffix("")))
    if path.suffix == ".index":
        return path.with_suffix("")
    match = re.match(r"^(.*)\.data-\d{5}-of-\d{5}$", path.name)
    if match:
        return path.with_name(match.group(1))
    if Path(f"{path}.index").is_file():
        return path
    raise BadInputFile(path, "not a TensorFlow checkpoint: neither a folder, nor a prefix with a .index file")


def extract_checkpoint_tar(archive: str | os.PathLike[str], folder: str | os.PathLike[str]) -> Path:
    """Extracts the one TensorFlow checkpoint in a tar archive (as Magenta publishes them, e.g.
    `groovae_4bar.tar`: `.index`, `.data-*` and a `.meta` graph, which is not needed) into `folder`;
    returns its prefix there. Only the checkpoint's files are written, under their base names."""
    import tarfile

    archive = Path(archive)
    try:
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            indexes = [m for m in members if m.name.endswith(".index")]
            if len(indexes) != 1:
                found = ", ".join(m.name for m in indexes) or "none"
                raise BadInputFile(archive, f"holds {len(indexes)} TensorFlow checkpoints (.index files: {found}); "
                                            "one expected")
            stem = indexes[0].name[: -len(".index")]
            wanted = [m for m in members if m.name == indexes[0].name or re.fullmatch(
                re.escape(stem) + r"\.data-\d{5}-of-\d{5}", m.name)]
            for member in wanted:
                source = tar.extractfile(member)
                if source is None:
                    raise tarfile.TarError(f"{member.name} cannot be extracted")
                with source, open(Path(folder) / Path(member.name).name, "wb") as target:
                    while block := source.read(1 << 20):
                        target.write(block)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise BadInputFile(archive, f"not a readable tar archive: {error}") from None
    return Path(folder) / Path(stem).name


def is_tar_archive(path: str | os.PathLike[str]) -> bool:
    import tarfile

    return Path(path).is_file() and tarfile.is_tarfile(path)


class TensorBundle:
    """A V2 checkpoint's table of contents, read from its `.index`; tensors read on demand."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.prefix = bundle_prefix(path)
        self.index_path = Path(f"{self.prefix}.index")
        try:
            table = self.index_path.read_bytes()
        except OSError as error:
            raise BadInputFile(self.index_path, f"cannot read: {(error.strerror or str(error)).lower()}") from None
        self.entries: dict[str, BundleEntry] = {}
        try:
            header_seen = False
            for key, value in _table_entries(table):
                if key == b"":
                    self._read_header(value)
                    header_seen = True
                    continue
                if not header_seen:
                    raise ValueError("no bundle header before the first tensor")
                name = key.decode("utf-8", errors="replace")
                self.entries[name] = _bundle_entry(name, value)
            if not header_seen:
                raise ValueError("no bundle header (an empty or foreign table)")
        except ValueError as error:
            raise BadInputFile(self.index_path, f"damaged TensorFlow checkpoint index: {error}") from None

    def _read_header(self, value: bytes) -> None:
        self.num_shards, self.big_endian = 1, False
        for number, field_value in _proto_fields(value):
            if number == 1 and isinstance(field_value, int):
                self.num_shards = _int64(field_value)
            elif number == 2 and isinstance(field_value, int):
                self.big_endian = field_value == 1
            elif number == 3 and isinstance(field_value, bytes):
                for version_number, version_value in _proto_fields(field_value):
                    if version_number == 2 and isinstance(version_value, int) and version_value > _MAX_CONSUMER_VERSION:
                        raise ValueError(f"written for bundle readers of version {version_value} and later; "
                                         f"this one reads version {_MAX_CONSUMER_VERSION}")
        if self.num_shards < 1:
            raise ValueError(f"{self.num_shards} data shards")

    def data_path(self, shard: int) -> Path:
        return Path(f"{self.prefix}.data-{shard:05d}-of-{self.num_shards:05d}")

    def read(self, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """The named tensors (default: all), each checked against its CRC32C. String tensors come as
        object arrays of bytes; bfloat16 as float32."""
        wanted = list(self.entries) if names is None else list(names)
        unknown = [name for name in wanted if name not in self.entries]
        if unknown:
            raise BadInputFile(self.index_path, f"no tensor named {unknown[0]!r}")
        by_shard: dict[int, list[BundleEntry]] = {}
        for name in wanted:
            entry = self.entries[name]
            if entry.sliced:
                raise BadInputFile(self.index_path, f"{name}: a partitioned tensor (stored in slices), not supported")
            if not 0 <= entry.shard < self.num_shards:
                raise BadInputFile(self.index_path, f"{name}: shard {entry.shard} of {self.num_shards}")
            by_shard.setdefault(entry.shard, []).append(entry)
        tensors: dict[str, np.ndarray] = {}
        for shard, entries in sorted(by_shard.items()):
            path = self.data_path(shard)
            try:
                with open(path, "rb") as handle:
                    file_size = os.fstat(handle.fileno()).st_size
                    for entry in sorted(entries, key=lambda e: e.offset):
                        if entry.offset < 0 or entry.size < 0 or entry.offset + entry.size > file_size:
                            raise BadInputFile(path, f"{entry.name}: bytes {entry.offset}-{entry.offset + entry.size} "
                                                     f"lie past the end of the file ({file_size} bytes; truncated?)")
                        handle.seek(entry.offset)
                        tensors[entry.name] = self._decode(entry, handle.read(entry.size), path)
            except FileNotFoundError:
                raise BadInputFile(path, f"missing: the checkpoint {self.prefix.name} has {self.num_shards} data "
                                         "file(s) beside its .index") from None
            except OSError as error:
                raise BadInputFile(path, f"cannot read: {(error.strerror or str(error)).lower()}") from None
        return {name: tensors[name] for name in wanted}

    def _decode(self, entry: BundleEntry, data: bytes, path: Path) -> np.ndarray:
        count = int(np.prod(entry.shape, dtype=np.int64))
        order = ">" if self.big_endian else "<"
        if entry.dtype == DT_STRING:
            return _string_tensor(entry, data, count, path, order)
        if entry.crc32c is not None and masked_crc32c(data) != entry.crc32c:
            raise BadInputFile(path, f"{entry.name}: its bytes do not match their checksum (corrupt)")
        if entry.dtype == DT_BFLOAT16:
            dtype = np.dtype(f"{order}u2")
        elif entry.dtype in _DTYPES:
            dtype = np.dtype(_DTYPES[entry.dtype]).newbyteorder(order)
        else:
            raise BadInputFile(path, f"{entry.name}: tensors of type {entry.dtype_name} are not supported")
        if len(data) != count * dtype.itemsize:
            raise BadInputFile(path, f"{entry.name}: {len(data)} bytes for shape {list(entry.shape)} of "
                                     f"{entry.dtype_name} (corrupt)")
        array = np.frombuffer(data, dtype=dtype).reshape(entry.shape)
        if entry.dtype == DT_BFLOAT16:
            return (array.astype(np.uint32) << 16).view(np.float32)
        return array.astype(dtype.newbyteorder("="))  # a native-order copy the caller owns


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _string_tensor(entry: BundleEntry, data: bytes, count: int, path: Path, order: str) -> np.ndarray:
    """`count` varint lengths, the masked CRC32C of those lengths (each as a uint32, or a uint64 past
    4 GiB) in 4 bytes, then the strings' bytes; the entry's CRC32C covers the lengths so encoded,
    those 4 bytes and the strings."""
    try:
        lengths, position, crc = [], 0, 0
        for _ in range(count):
            length, position = _varint(data, position)
            lengths.append(length)
            crc = google_crc32c.extend(crc, struct.pack(f"{order}{'I' if length <= 0xFFFFFFFF else 'Q'}", length))
        if position + 4 > len(data):
            raise ValueError("past the end")
        length_checksum = data[position : position + 4]
        position += 4
        if entry.crc32c is not None and struct.unpack(f"{order}I", length_checksum)[0] != _mask(crc):
            raise ValueError("the lengths do not match their checksum")
        crc = google_crc32c.extend(crc, length_checksum)
        values = []
        for length in lengths:
            if position + length > len(data):
                raise ValueError("past the end")
            values.append(data[position : position + length])
            crc = google_crc32c.extend(crc, values[-1])
            position += length
        if entry.crc32c is not None and _mask(crc) != entry.crc32c:
            raise ValueError("its bytes do not match their checksum")
    except ValueError as error:
        raise BadInputFile(path, f"{entry.name}: a damaged string tensor: {error}") from None
    array = np.empty(count, dtype=object)
    array[:] = values
    return array.reshape(entry.shape)


def read_tensor_bundle(path: str | os.PathLike[str], names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """{tensor name: array} of a TensorFlow V2 checkpoint (see `bundle_prefix` for what `path` may be)."""
    return TensorBundle(path).read(names)


# -- TensorFlow.js folders ------------------------------------------------------------------------


def is_tfjs_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a folder holding a TensorFlow.js weights manifest."""
    return (Path(path) / MANIFEST).is_file()


def read_tfjs_checkpoint(folder: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """{weight name: array} of a TensorFlow.js weights folder (`weights_manifest.json` + shards);
    quantized weights come back dequantized to their stored dtype (float32 or int32)."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInputFile(folder, f"not a TensorFlow.js checkpoint (no {MANIFEST})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadInputFile(manifest_path, f"not a readable weights manifest: {error}") from None
    if not isinstance(manifest, list):
        raise BadInputFile(manifest_path, "not a weights manifest: expected a list of weight groups")
    weights: dict[str, np.ndarray] = {}
    for number, group in enumerate(manifest, start=1):
        if not (isinstance(group, dict) and isinstance(group.get("paths"), list)
                and isinstance(group.get("weights"), list)):
            raise BadInputFile(manifest_path, f"weight group {number} is not {{\"paths\": [...], \"weights\": [...]}}")
        buffer = b"".join(_read_shard(folder, manifest_path, shard) for shard in group["paths"])
        position = 0
        for spec in group["weights"]:
            name, array, size = _tfjs_weight(spec, buffer, position, manifest_path)
            if name in weights:
                raise BadInputFile(manifest_path, f"weight {name!r} is listed twice")
            weights[name] = array
            position += size
        if position != len(buffer):
            raise BadInputFile(manifest_path, f"weight group {number}: its shards hold {len(buffer)} bytes, "
                                              f"its weights {position} (shards of another manifest?)")
    return weights


def _read_shard(folder: Path, manifest_path: Path, shard: object) -> bytes:
    if not isinstance(shard, str) or not shard or Path(shard).is_absolute() or ".." in Path(shard).parts:
        raise BadInputFile(manifest_path, f"shard path {shard!r} is not a file name inside {folder}")
    path = folder / shard
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BadInputFile(path, f"missing: {MANIFEST} lists it") from None
    except OSError as error:
        raise BadInputFile(path, f"cannot read: {(error.strerror or str(error)).lower()}") from None


def _tfjs_weight(spec: object, buffer: bytes, position: int, manifest_path: Path) -> tuple[str, np.ndarray, int]:
    """(name, array, bytes it takes) of one manifest entry whose bytes start at `position`."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise BadInputFile(manifest_path, f"a weight entry without a name: {spec!r:.80}")
    name = spec["name"]
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise BadInputFile(manifest_path, f"{name}: shape {shape!r} is not a list of sizes")
    dtype = spec.get("dtype")
    if dtype not in _TFJS_DTYPES:
        raise BadInputFile(manifest_path, f"{name}: dtype {dtype!r} is not supported ({', '.join(_TFJS_DTYPES)})")
    quantization = spec.get("quantization")
    stored = _TFJS_DTYPES[dtype]
    if quantization is not None:
        if not isinstance(quantization, dict) or quantization.get("dtype") not in _TFJS_QUANTIZED:
            raise BadInputFile(manifest_path, f"{name}: unknown quantization {quantization!r:.80}")
        stored = _TFJS_QUANTIZED[quantization["dtype"]]
    count = int(np.prod(shape, dtype=np.int64))
    size = count * np.dtype(stored).itemsize
    if position + size > len(buffer):
        raise BadInputFile(manifest_path, f"{name}: its bytes run past the end of its shards (truncated?)")
    values = np.frombuffer(buffer, dtype=stored, count=count, offset=position).reshape(shape)
    if quantization is None:
        return name, values.astype(np.dtype(stored).newbyteorder("=")), size
    if quantization["dtype"] == "float16":
        if dtype != "float32":
            raise BadInputFile(manifest_path, f"{name}: float16 quantization of a {dtype} weight")
        return name, values.astype(np.float32), size
    scale, minimum = quantization.get("scale"), quantization.get("min")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (scale, minimum)):
        raise BadInputFile(manifest_path, f"{name}: {quantization['dtype']} quantization without a numeric scale and min")
    real = values.astype(np.float64) * scale + minimum  # as TensorFlow.js computes it, in doubles
    if dtype == "int32":
        return name, np.round(real).astype(np.int32), size
    if dtype == "bool":
        raise BadInputFile(manifest_path, f"{name}: a quantized bool weight")
    return name, real.astype(np.float32), size


def read_tfjs_spec(folder: str | os.PathLike[str]) -> dict | None:
    """The folder's `config.json` (magenta.js's model spec: type, dataConverter ...), or None if it has none."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        return None
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadInputFile(path, f"not a readable magenta.js model config: {error}") from None
    if not isinstance(spec, dict):
        raise BadInputFile(path, "not a magenta.js model config: expected a JSON object")
    return spec
