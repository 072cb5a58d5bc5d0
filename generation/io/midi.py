"""MIDI bytes -> NoteSequence, fast, with the notes Magenta's own reader gives.

Magenta reads MIDI with `note_seq.midi_to_note_sequence`, which runs pretty_midi over mido: pure
Python, about 50-160 files/s on one core. Here symusic (C++) parses each track chunk and numpy
applies pretty_midi's interpretation on top, so the NoteSequence holds the same notes at the same
float64 times:

- tempo, time and key signatures come from the first track only; a repeated tempo is ignored and
  the last tempo at tick 0 replaces the default 120 qpm;
- ticks become seconds by pretty_midi's own arithmetic (`base + scale * ticks` per tempo segment);
- instruments are keyed by (track, channel, program) and numbered in the order their first note
  ends, as pretty_midi numbers them; zero-length notes and notes never switched off are dropped.

Where symusic's reading and pretty_midi's can disagree (overlapping notes of one pitch, which
pretty_midi closes together at the first note-off while symusic pairs them first-in first-out; or
several instruments in one track chunk, where pretty_midi gives a note the program in force at its
note-off) and where symusic cannot parse a chunk, that chunk is walked event by event with
pretty_midi's rules (`midi_events.read_track`). Files with SMPTE time division go through note_seq.

Known differences from note_seq: text is decoded as UTF-8 where valid (mido decodes latin-1, which
garbles non-ASCII names); within one tick, notes are listed in pitch order where pretty_midi lists
them in the order of their note-offs, which symusic does not report; and a program change while a
note sounds, with no later note under the new program in that track, leaves the note the program
it started with (pretty_midi gives it the new one; any later note would make a second instrument
and send the chunk to the event walk, which agrees with pretty_midi).

The repeated fields (notes, control changes) are written as protobuf wire bytes by numpy and parsed
by upb in one call: building them field by field in Python costs more than parsing the MIDI.
"""

from __future__ import annotations

import bisect
import os
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from generation.errors import BadInputFile

if TYPE_CHECKING:
    from note_seq.protobuf.music_pb2 import NoteSequence

# note_seq raises pretty_midi's own limit to this; a larger tick means a corrupt file.
MAX_TICK = 10**10
DEFAULT_QPM = 120.0
_INT32_MAX = 2**31 - 1  # NoteSequence's integer fields are int32

_HEADER = struct.Struct(">4sL")
_FILE_HEADER = struct.Struct(">hhh")


@dataclass(frozen=True)
class MidiChunks:
    """The raw layout of a Standard MIDI File: header fields and one bytes object per track chunk."""

    format: int
    ticks_per_quarter: int
    tracks: list[bytes]


def split_chunks(data: bytes, path: str | os.PathLike[str] = "<bytes>") -> MidiChunks:
    """Splits a Standard MIDI File into its track chunks, as mido reads them.

    Exactly as many `MTrk` chunks as the header declares are read; anything after them is ignored.
    Raises `BadInputFile` with the reason for an empty, non-MIDI or truncated file.
    """
    if not data:
        raise BadInputFile(path, "empty file (0 bytes)")
    if data[:4] != b"MThd":
        raise BadInputFile(path, f"not a MIDI file: {_describe_start(data)} instead of the 'MThd' header")
    if len(data) < 14:
        raise BadInputFile(path, f"truncated: the MIDI header needs 14 bytes, the file has {len(data)}")
    _, header_size = _HEADER.unpack_from(data, 0)
    if header_size < 6:
        raise BadInputFile(path, f"corrupt MIDI header: declared length {header_size}, at least 6 needed")
    midi_format, num_tracks, division = _FILE_HEADER.unpack_from(data, 8)
    offset = 8 + header_size
    tracks: list[bytes] = []
    for index in range(num_tracks):
        if offset + 8 > len(data):
            raise BadInputFile(
                path, f"truncated: the header declares {num_tracks} tracks, the file ends after {index}"
            )
        name, size = _HEADER.unpack_from(data, offset)
        if name != b"MTrk":
            raise BadInputFile(path, f"corrupt MIDI: expected track chunk 'MTrk' at byte {offset}, found {name!r}")
        end = offset + 8 + size
        if end > len(data):
            raise BadInputFile(
                path,
                f"truncated: track {index + 1} of {num_tracks} declares {size} bytes, "
                f"the file ends {len(data) - offset - 8} bytes into it",
            )
        tracks.append(data[offset:end])
        offset = end
    return MidiChunks(format=midi_format, ticks_per_quarter=division, tracks=tracks)


def _describe_start(data: bytes) -> str:
    # Text (ASCII or UTF-8) has no control bytes besides tab and line breaks; binary data soon does.
    if all(byte >= 0x20 or byte in (0x09, 0x0A, 0x0D) for byte in data[:64]):
        return "looks like text"
    return f"starts with bytes {data[:4]!r}"


class _NeedsEventWalk(Exception):
    """symusic's reading of this chunk may differ from pretty_midi's."""


def midi_to_note_sequence(data: bytes, path: str | os.PathLike[str] = "<bytes>") -> NoteSequence:
    """Converts MIDI file bytes to a NoteSequence with the notes `note_seq.midi_to_note_sequence` gives.

    Times are in seconds (float64). Raises `BadInputFile` naming `path` and the problem for a file
    that cannot be decoded.
    """
    chunks = split_chunks(data, path)
    if chunks.ticks_per_quarter <= 0:
        # SMPTE time division: rare, and only pretty_midi's reading of it counts as Magenta's.
        return reference_midi_to_note_sequence(data, path)
    tracks = [_read_track(chunk, chunks.ticks_per_quarter, number, path) for number, chunk in enumerate(chunks.tracks)]
    return _assemble(tracks, chunks.ticks_per_quarter, path)


def reference_midi_to_note_sequence(data: bytes, path: str | os.PathLike[str] = "<bytes>") -> NoteSequence:
    """Magenta's own path (`note_seq.midi_to_note_sequence`), with its errors as `BadInputFile`."""
    from note_seq import midi_io  # slow import (pretty_midi, librosa): only when a file needs it

    try:
        sequence = midi_io.midi_to_note_sequence(data)
    except midi_io.MIDIConversionError as error:
        raise BadInputFile(path, f"corrupt MIDI: {_short(error)}") from None
    for info in sequence.instrument_infos:
        # mido decodes names as latin-1; give them the same decoding as the fast path.
        info.name = decode_text(info.name.encode("latin-1", errors="replace"))
    return sequence


def decode_text(raw: bytes) -> str:
    """MIDI text is bytes with no declared charset: UTF-8 where it decodes, else latin-1 (never fails)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split())
    text = text.replace("Midi decoding error <class '", "").replace("'>:", ":")
    return text[:200] if text else type(error).__name__


@dataclass
class _Instrument:
    """One pretty_midi instrument: a (track, channel, program); ticks as integer arrays."""

    number_key: tuple[int, int, int]  # sorts as pretty_midi numbers instruments
    program: int
    is_drum: bool
    name: str
    starts: np.ndarray
    ends: np.ndarray
    pitches: np.ndarray
    velocities: np.ndarray
    control_ticks: np.ndarray
    control_numbers: np.ndarray
    control_values: np.ndarray
    bend_ticks: np.ndarray
    bend_values: np.ndarray


@dataclass
class _Track:
    instruments: list[_Instrument]
    tempos: list[tuple[int, int]]  # (tick, microseconds per quarter)
    time_signatures: list[tuple[int, int, int]]  # (tick, numerator, denominator)
    key_signatures: list[tuple[int, int, int]]  # (tick, sharps, mode)
    end_tick: int


def _read_track(chunk: bytes, ticks_per_quarter: int, number: int, path: str | os.PathLike[str]) -> _Track:
    try:
        return _symusic_track(chunk, ticks_per_quarter, number)
    except _NeedsEventWalk:
        return _event_walk_track(chunk, number, path)


def _symusic_track(chunk: bytes, ticks_per_quarter: int, number: int) -> _Track:
    from symusic import Score

    # A one-track file per chunk, so that every instrument symusic finds is known to come from this chunk.
    single = b"MThd" + struct.pack(">LHHH", 6, 0, 1, ticks_per_quarter) + chunk
    try:
        score = Score.from_midi(single)
    except Exception:  # symusic raises plain RuntimeError/ValueError on bad event data
        raise _NeedsEventWalk from None
    raw_name = _leading_track_name(chunk)
    instruments: list[_Instrument] = []
    control_only = []
    for track in score.tracks:
        notes = track.notes.numpy()  # int32 ticks, int8 pitches and velocities
        starts = notes["time"]
        ends = starts + notes["duration"]
        pitches = notes["pitch"]
        if _has_ambiguous_repeats(starts, ends, pitches):
            raise _NeedsEventWalk
        velocities = notes["velocity"]
        keep = ends > starts  # pretty_midi drops notes switched off on the tick they start
        if not keep.all():
            starts, ends, pitches, velocities = starts[keep], ends[keep], pitches[keep], velocities[keep]
        if len(starts) == 0:
            control_only.append(track)
            continue
        # pretty_midi appends a note when its note-off arrives; the order of note-offs within one tick
        # is not visible through symusic, and by pitch is how the Groove kit (Roland TD-11) writes them.
        order = np.lexsort((pitches, ends))
        controls = track.controls.numpy() if len(track.controls) else _NO_CONTROLS
        bends = track.pitch_bends.numpy() if len(track.pitch_bends) else _NO_BENDS
        instruments.append(
            _Instrument(
                number_key=(number, int(ends.min()), len(instruments)), program=int(track.program),
                is_drum=bool(track.is_drum), name=decode_text(raw_name) if raw_name is not None else track.name,
                starts=starts[order], ends=ends[order], pitches=pitches[order], velocities=velocities[order],
                control_ticks=controls["time"], control_numbers=controls["number"], control_values=controls["value"],
                bend_ticks=bends["time"], bend_values=bends["value"],
            )
        )
    for is_drum in (False, True):
        if sum(inst.is_drum == is_drum for inst in instruments) > 1:
            # Several channels, or program changes on one channel: pretty_midi gives a note the
            # program in force at its note-off, which symusic does not tell.
            raise _NeedsEventWalk
    if control_only:
        # Controls that come before a channel's first note (volume, bank select ...) go to that
        # channel's first instrument in pretty_midi; symusic files them under program 0.
        raise _NeedsEventWalk
    return _Track(
        instruments=instruments,
        tempos=[(t.time, t.mspq) for t in score.tempos],
        time_signatures=[(t.time, t.numerator, t.denominator) for t in score.time_signatures],
        key_signatures=[(k.time, k.key, k.tonality) for k in score.key_signatures],
        end_tick=int(score.end()),
    )


_NO_CONTROLS = {"time": np.zeros(0, np.int32), "number": np.zeros(0, np.uint8), "value": np.zeros(0, np.uint8)}
_NO_BENDS = {"time": np.zeros(0, np.int32), "value": np.zeros(0, np.int32)}


def _event_walk_track(chunk: bytes, number: int, path: str | os.PathLike[str]) -> _Track:
    from generation.io.midi_events import read_track

    raw = read_track(chunk, number, path)
    instruments = []
    for created, inst in enumerate(raw.instruments):
        notes = np.array(inst.notes, dtype=np.int64).reshape(-1, 4)
        controls = np.array(inst.controls, dtype=np.int64).reshape(-1, 3)
        bends = np.array(inst.pitch_bends, dtype=np.int64).reshape(-1, 2)
        instruments.append(
            _Instrument(
                number_key=(number, int(notes[:, 1].min()), created), program=inst.program, is_drum=inst.is_drum,
                name=decode_text(inst.name), starts=notes[:, 0], ends=notes[:, 1], pitches=notes[:, 2],
                velocities=notes[:, 3], control_ticks=controls[:, 0], control_numbers=controls[:, 1],
                control_values=controls[:, 2], bend_ticks=bends[:, 0], bend_values=bends[:, 1],
            )
        )
    return _Track(
        instruments=instruments, tempos=raw.tempos, time_signatures=raw.time_signatures,
        key_signatures=raw.key_signatures, end_tick=raw.end_tick,
    )


def _leading_track_name(chunk: bytes) -> bytes | None:
    """The raw bytes of a track-name meta event at the start of a track chunk, where writers put it."""
    # chunk: b"MTrk", length (4), delta-time 0, 0xFF, 0x03, text length (variable-length int), text
    if chunk[8:11] != b"\x00\xff\x03":
        return None
    length, position = 0, 11
    while position < len(chunk):
        byte = chunk[position]
        length = (length << 7) | (byte & 0x7F)
        position += 1
        if byte < 0x80:
            return chunk[position : position + length]
    return None


def _has_ambiguous_repeats(starts: np.ndarray, ends: np.ndarray, pitches: np.ndarray) -> bool:
    """Whether two notes of one pitch overlap or start on one tick (zero-length ones included)."""
    if len(starts) < 2:
        return False
    order = np.lexsort((starts, pitches))
    p, s, e = pitches[order], starts[order], ends[order]
    same_pitch = p[1:] == p[:-1]
    return bool(np.any(same_pitch & ((s[1:] < e[:-1]) | (s[1:] == s[:-1]))))


class _TempoMap:
    """pretty_midi's tick -> seconds map: per segment, seconds = base + scale * (tick - start_tick).

    Float64 arithmetic in pretty_midi's order, so the times equal note_seq's to the last bit.
    """

    def __init__(self, tempo_events: list[tuple[int, int]], ticks_per_quarter: int) -> None:
        """`tempo_events` are (tick, microseconds per quarter) from the first track, in file order."""
        segments = [(0, 60.0 / (DEFAULT_QPM * ticks_per_quarter))]
        for tick, mspq in tempo_events:
            scale = 60.0 / ((6e7 / mspq) * ticks_per_quarter)
            if tick == 0:
                segments = [(0, scale)]
            elif scale != segments[-1][1]:
                segments.append((tick, scale))
        bases = [0.0]
        for (start, scale), (end, _) in zip(segments[:-1], segments[1:]):
            bases.append(bases[-1] + scale * (end - start))
        self.start_ticks = [start for start, _ in segments]
        self.scales = [scale for _, scale in segments]
        self.bases = bases
        self._arrays = (np.array(self.start_ticks, np.int64), np.array(self.scales), np.array(self.bases))

    def seconds_at(self, tick: int) -> float:
        segment = bisect.bisect_right(self.start_ticks, tick) - 1
        return self.bases[segment] + self.scales[segment] * float(tick - self.start_ticks[segment])

    def seconds(self, ticks: np.ndarray) -> np.ndarray:
        if len(self.scales) == 1:
            return self.bases[0] + self.scales[0] * ticks.astype(np.float64)
        start_ticks, scales, bases = self._arrays
        segment = np.searchsorted(start_ticks, ticks, side="right") - 1
        return bases[segment] + scales[segment] * (ticks - start_ticks[segment]).astype(np.float64)


# Wire layout of NoteSequence.notes entries (field 8): pitch 1, velocity 2, start_time 3 (double),
# end_time 4 (double), instrument 7, program 8, is_drum 9; every varint here is below 128.
_NOTE_WIRE = np.dtype([
    ("tag", "u1"), ("size", "u1"), ("pitch_tag", "u1"), ("pitch", "u1"), ("velocity_tag", "u1"), ("velocity", "u1"),
    ("start_tag", "u1"), ("start", "<f8"), ("end_tag", "u1"), ("end", "<f8"), ("instrument_tag", "u1"),
    ("instrument", "u1"), ("program_tag", "u1"), ("program", "u1"), ("drum_tag", "u1"), ("is_drum", "u1"),
])
_NOTE_TAGS = {"tag": 0x42, "pitch_tag": 0x08, "velocity_tag": 0x10, "start_tag": 0x19, "end_tag": 0x21,
              "instrument_tag": 0x38, "program_tag": 0x40, "drum_tag": 0x48}
# NoteSequence.control_changes entries (field 11): time 1 (double), control_number 2, control_value 3,
# instrument 4, program 5, is_drum 6.
_CONTROL_WIRE = np.dtype([
    ("tag", "u1"), ("size", "u1"), ("time_tag", "u1"), ("time", "<f8"), ("number_tag", "u1"), ("number", "u1"),
    ("value_tag", "u1"), ("value", "u1"), ("instrument_tag", "u1"), ("instrument", "u1"), ("program_tag", "u1"),
    ("program", "u1"), ("drum_tag", "u1"), ("is_drum", "u1"),
])
_CONTROL_TAGS = {"tag": 0x5A, "time_tag": 0x09, "number_tag": 0x10, "value_tag": 0x18, "instrument_tag": 0x20,
                 "program_tag": 0x28, "drum_tag": 0x30}


def _wire_template(dtype: np.dtype, tags: dict[str, int]) -> np.ndarray:
    template = np.zeros((), dtype=dtype)
    for name, tag in tags.items():
        template[name] = tag
    template["size"] = dtype.itemsize - 2  # the message's length, after its tag and length bytes
    return template


_NOTE_TEMPLATE = _wire_template(_NOTE_WIRE, _NOTE_TAGS)
_CONTROL_TEMPLATE = _wire_template(_CONTROL_WIRE, _CONTROL_TAGS)


def _instrument_records(
    template: np.ndarray, instruments: list[_Instrument], counts: list[int], **columns: np.ndarray
) -> np.ndarray:
    """Wire records for every event of every instrument, in instrument order: `columns` hold the
    events' own fields; instrument number, program and is_drum are filled in per instrument."""
    records = np.empty(sum(counts), dtype=template.dtype)
    records[...] = template
    for name, values in columns.items():
        records[name] = values
    records["instrument"] = np.repeat(np.arange(len(instruments)), counts)
    records["program"] = np.repeat([inst.program for inst in instruments], counts)
    records["is_drum"] = np.repeat([inst.is_drum for inst in instruments], counts)
    return records


def _joined(instruments: list[_Instrument], field: str) -> np.ndarray:
    return np.concatenate([getattr(inst, field) for inst in instruments])


def _assemble(tracks: list[_Track], ticks_per_quarter: int, path: str | os.PathLike[str]) -> NoteSequence:
    from generation.protos import music_pb2

    if max((track.end_tick for track in tracks), default=0) > MAX_TICK:
        raise BadInputFile(path, f"corrupt MIDI: a tick beyond {MAX_TICK} (largest allowed)")
    first = tracks[0] if tracks else _Track([], [], [], [], 0)
    for tick, mspq in first.tempos:
        if mspq <= 0:  # would put every later note at the same instant (pretty_midi divides by zero)
            raise BadInputFile(path, f"corrupt MIDI: a tempo of {mspq} microseconds per quarter note at tick {tick}; "
                                     "a tempo must be more than 0")
    tempo_map = _TempoMap(first.tempos, ticks_per_quarter)
    instruments = sorted((inst for track in tracks for inst in track.instruments), key=lambda i: i.number_key)
    if len(instruments) > 127:
        # Instrument numbers above 127 need two-byte varints; no wire shortcut for such rare files.
        raise BadInputFile(path, f"more than 127 instruments ({len(instruments)}); not supported")

    sequence = music_pb2.NoteSequence()
    sequence.ticks_per_quarter = ticks_per_quarter
    sequence.source_info.parser = music_pb2.NoteSequence.SourceInfo.PRETTY_MIDI
    sequence.source_info.encoding_type = music_pb2.NoteSequence.SourceInfo.MIDI
    for tick, numerator, denominator in first.time_signatures:
        if numerator <= 0 or not 0 < denominator <= _INT32_MAX:
            raise BadInputFile(path, f"corrupt MIDI: time signature {numerator}/{denominator} at tick {tick}")
        sequence.time_signatures.add(
            time=tempo_map.seconds_at(tick), numerator=numerator, denominator=denominator
        )
    for tick, sharps, mode in first.key_signatures:
        if not -7 <= sharps <= 7 or mode not in (0, 1):
            raise BadInputFile(path, f"corrupt MIDI: key signature with {sharps} sharps and mode {mode} at tick {tick}")
        # Each sharp moves the major tonic a fifth up; the minor tonic lies a minor third below it.
        tonic = (7 * sharps + (9 if mode == 1 else 0)) % 12
        sequence.key_signatures.add(time=tempo_map.seconds_at(tick), key=tonic, mode=mode)
    for start, scale in zip(tempo_map.start_ticks, tempo_map.scales):
        sequence.tempos.add(time=tempo_map.seconds_at(start), qpm=60.0 / (scale * ticks_per_quarter))
    for number, inst in enumerate(instruments):
        if inst.name:
            sequence.instrument_infos.add(name=inst.name, instrument=number)

    wire = []
    note_counts = [len(inst.starts) for inst in instruments]
    if sum(note_counts):
        notes = _instrument_records(
            _NOTE_TEMPLATE, instruments, note_counts,
            pitch=_joined(instruments, "pitches"), velocity=_joined(instruments, "velocities"),
            start=tempo_map.seconds(_joined(instruments, "starts")), end=tempo_map.seconds(_joined(instruments, "ends")),
        )
        sequence.total_time = float(notes["end"].max())
        wire.append(notes.tobytes())
    # note_seq lists every instrument's pitch bends, then every instrument's control changes.
    for number, inst in enumerate(instruments):
        for seconds, bend in zip(tempo_map.seconds(inst.bend_ticks).tolist(), inst.bend_values.tolist()):  # rare
            sequence.pitch_bends.add(
                time=seconds, bend=bend, instrument=number, program=inst.program, is_drum=inst.is_drum
            )
    control_counts = [len(inst.control_ticks) for inst in instruments]
    if sum(control_counts):
        controls = _instrument_records(
            _CONTROL_TEMPLATE, instruments, control_counts, time=tempo_map.seconds(_joined(instruments, "control_ticks")),
            number=_joined(instruments, "control_numbers"), value=_joined(instruments, "control_values"),
        )
        wire.append(controls.tobytes())
    if wire:
        sequence.MergeFromString(b"".join(wire))
    return sequence
