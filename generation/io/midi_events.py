"""pretty_midi's reading of one MIDI track chunk, for the rare chunks where symusic's reading differs.

symusic pairs note-ons and note-offs first-in first-out and gives a note the program it started
with. pretty_midi (and so Magenta) closes every open note of a pitch at its first note-off, drops a
note switched off on the tick it starts, and gives a note the program in force when it ends. Where a
chunk holds overlapping notes of one pitch, or several instruments, only a walk over its raw events
tells what pretty_midi makes of it. This walk decodes events the way mido does and applies
pretty_midi's rules; it is plain Python, so it is kept for those chunks only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from generation.errors import BadInputFile

# Data bytes after each system status that is neither meta (0xFF) nor system exclusive (0xF0, 0xF7).
_SYSTEM_DATA_LENGTH = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0, 0xF8: 0, 0xF9: 0, 0xFA: 0, 0xFB: 0, 0xFC: 0, 0xFD: 0, 0xFE: 0}


@dataclass
class RawInstrument:
    """Notes and controls pretty_midi files under one (program, channel) of a track, ticks as ints."""

    program: int
    is_drum: bool
    name: bytes
    notes: list[tuple[int, int, int, int]] = field(default_factory=list)  # (start, end, pitch, velocity)
    controls: list[tuple[int, int, int]] = field(default_factory=list)  # (tick, number, value)
    pitch_bends: list[tuple[int, int]] = field(default_factory=list)  # (tick, bend in -8192..8191)


@dataclass
class RawTrack:
    """What pretty_midi takes from one track chunk; instruments in pretty_midi's creation order."""

    instruments: list[RawInstrument]
    tempos: list[tuple[int, int]]  # (tick, microseconds per quarter)
    time_signatures: list[tuple[int, int, int]]  # (tick, numerator, denominator)
    key_signatures: list[tuple[int, int, int]]  # (tick, sharps (-7..7), mode 0 major / 1 minor)
    end_tick: int


def read_track(chunk: bytes, track_number: int, path: str | os.PathLike[str]) -> RawTrack:
    """Decodes one `MTrk` chunk (header included) with pretty_midi's note pairing."""

    def corrupt(position: int, what: str) -> BadInputFile:
        return BadInputFile(path, f"corrupt MIDI: track {track_number + 1}, byte {position} of the chunk: {what}")

    data = chunk
    end = len(data)
    position = 8
    tick = 0
    running_status: int | None = None

    def varint() -> int:
        nonlocal position
        value = 0
        for _ in range(4):
            if position >= end:
                raise corrupt(position, "ends inside a variable-length number")
            byte = data[position]
            position += 1
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                return value
        raise corrupt(position, "variable-length number longer than 4 bytes")

    track_name = b""
    tempos: list[tuple[int, int]] = []
    time_signatures: list[tuple[int, int, int]] = []
    key_signatures: list[tuple[int, int, int]] = []
    programs = [0] * 16
    open_notes: dict[tuple[int, int], list[tuple[int, int]]] = {}
    by_key: dict[tuple[int, int], RawInstrument] = {}  # (program, channel) -> instrument with notes
    stragglers: dict[int, RawInstrument] = {}  # channel -> controls seen before its first note
    order: list[RawInstrument] = []

    def instrument_for(channel: int, create: bool) -> RawInstrument:
        key = (programs[channel], channel)
        if key in by_key:
            return by_key[key]
        if not create and channel in stragglers:
            return stragglers[channel]
        inst = RawInstrument(program=programs[channel], is_drum=channel == 9, name=track_name)
        if create:
            straggler = stragglers.get(channel)
            if straggler is not None:
                # pretty_midi shares the straggler's lists with the first instrument of the channel.
                inst.controls = straggler.controls
                inst.pitch_bends = straggler.pitch_bends
            by_key[key] = inst
            order.append(inst)
        else:
            stragglers[channel] = inst
        return inst

    while position < end:
        byte = data[position]
        if byte < 0x80:  # most delta times fit one byte
            position += 1
            tick += byte
        else:
            tick += varint()
        if position >= end:
            raise corrupt(position, "ends after a delta time")
        status = data[position]
        event_start = position
        if status < 0x80:
            if running_status is None:
                raise corrupt(event_start, "running status with no previous status byte")
            status = running_status
        else:
            position += 1
            if status < 0xF0:
                running_status = status
        if status < 0xF0:
            kind = status & 0xF0
            channel = status & 0x0F
            if kind == 0xC0 or kind == 0xD0:
                if position >= end:
                    raise corrupt(event_start, "message runs past the end of the track")
                first = data[position]
                position += 1
                if first > 127:
                    raise corrupt(event_start, "data byte above 127")
                if kind == 0xC0:
                    programs[channel] = first
                continue
            if position + 2 > end:
                raise corrupt(event_start, "message runs past the end of the track")
            first = data[position]
            second = data[position + 1]
            position += 2
            if first > 127 or second > 127:
                raise corrupt(event_start, "data byte above 127")
            if kind == 0x90 and second:
                pending = open_notes.get((channel, first))
                if pending is None:
                    open_notes[(channel, first)] = [(tick, second)]
                else:
                    pending.append((tick, second))
            elif kind == 0x80 or kind == 0x90:
                key = (channel, first)
                pending = open_notes.get(key)
                if pending is None:
                    continue
                closing = [(start, velocity) for start, velocity in pending if start != tick]
                for start, velocity in closing:
                    instrument_for(channel, create=True).notes.append((start, tick, first, velocity))
                if closing and len(closing) < len(pending):
                    open_notes[key] = [(start, velocity) for start, velocity in pending if start == tick]
                else:
                    del open_notes[key]
            elif kind == 0xB0:
                instrument_for(channel, create=False).controls.append((tick, first, second))
            elif kind == 0xE0:
                instrument_for(channel, create=False).pitch_bends.append((tick, (first | (second << 7)) - 8192))
            continue
        if status == 0xFF:
            if position >= end:
                raise corrupt(position, "ends inside a meta event")
            meta_type = data[position]
            position += 1
            length = varint()
            payload = data[position : position + length]
            if len(payload) < length:
                raise corrupt(position, f"meta event of {length} bytes runs past the end of the track")
            position += length
            if meta_type == 0x03:
                track_name = payload
            elif meta_type == 0x51 and length == 3:
                tempos.append((tick, int.from_bytes(payload, "big")))
            elif meta_type == 0x58 and length >= 2:
                time_signatures.append((tick, payload[0], 2 ** payload[1]))
            elif meta_type == 0x59 and length >= 2:
                sharps = payload[0] - 256 if payload[0] > 127 else payload[0]
                key_signatures.append((tick, sharps, payload[1]))
        elif status in (0xF0, 0xF7):
            length = varint()
            position += length
            if position > end:
                raise corrupt(event_start, "system-exclusive message runs past the end of the track")
        else:
            length = _SYSTEM_DATA_LENGTH.get(status)
            if length is None:
                raise corrupt(event_start, f"undefined status byte 0x{status:02X}")
            position += length
    return RawTrack(
        instruments=order, tempos=tempos, time_signatures=time_signatures,
        key_signatures=key_signatures, end_tick=tick,
    )
