"""Hostile and extreme MIDI files, written from a seed, and the runner that puts one `gen` command
over one of them in a fresh process and says how it ended.

The corpus (`write_corpus`) holds damaged files (truncated or byte-flipped copies of the committed
fixtures and examples; broken headers, chunks, events and lengths; files that are not MIDI at all),
hostile ones (tempo 0 or 1 microsecond per quarter, notes past tick 2^28 and 10^10, 500,000 and
2,000,001 notes, a tempo event on every tick, thousands of time signatures, meters of 255/4 or 0/4)
and extreme but valid music (a dense hour of piano, 128-note chords, 200 instruments, MT3-style
transcriptions of 1 to 64 minutes). Each file's name says what is wrong with it. The same seed
writes the same bytes; a file of the sample has the same bytes as the file of that name in the
full corpus.

Only the standard library and mido build the files; nothing from `generation` is used, so the
inputs do not depend on the code they test. Used by tests/test_hostile.py and
benchmarks/hostile_corpus.py.
"""

from __future__ import annotations

import os
import random
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import mido

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
TPQ = 480
SOURCES = sorted(FIXTURES.glob("groove/**/*.mid")) + sorted(FIXTURES.glob("multitrack/*.mid")) + sorted(
    (ROOT / "examples").glob("*.mid"))
DAMAGED_PER_SOURCE = 12  # truncated and byte-flipped copies of each source file, in "full"

# ---------------------------------------------------------------------------------------------
# Raw Standard MIDI File writing (the damage mido refuses to write, and the big files, fast)


def vlq(value: int) -> bytes:
    """A MIDI variable-length quantity (any size: values past 2^28 give 5 bytes and more, which
    the standard does not allow)."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


_VLQ = [vlq(n) for n in range(4096)]


def chunk(kind: bytes, data: bytes, length: int | None = None) -> bytes:
    """A chunk; `length` overrides the length field (a lie about the data)."""
    return kind + struct.pack(">L", len(data) if length is None else length) + data


def header(fmt: int = 1, tracks: int = 1, division: int = TPQ, length: int | None = None) -> bytes:
    return chunk(b"MThd", struct.pack(">HHH", fmt, tracks, division & 0xFFFF), length)


END_OF_TRACK = b"\xff\x2f\x00"


def track(events: Iterable[tuple[int, bytes]], end: bool = True, length: int | None = None) -> bytes:
    """An MTrk chunk of (absolute tick, event bytes), in time order (a stable sort: events of one
    tick keep the order given)."""
    parts, last = [], 0
    for tick, data in sorted(events, key=lambda e: e[0]):
        delta = tick - last
        parts.append(_VLQ[delta] if delta < 4096 else vlq(delta))
        parts.append(data)
        last = tick
    if end:
        parts.append(b"\x00" + END_OF_TRACK)
    return chunk(b"MTrk", b"".join(parts), length)


def smf(tracks: list[bytes], fmt: int | None = None, division: int = TPQ) -> bytes:
    return header(1 if fmt is None else fmt, len(tracks), division) + b"".join(tracks)


def note_on(channel: int, pitch: int, velocity: int) -> bytes:
    return bytes((0x90 | channel, pitch, velocity))


def note_off(channel: int, pitch: int) -> bytes:
    return bytes((0x80 | channel, pitch, 64))


def program(channel: int, number: int) -> bytes:
    return bytes((0xC0 | channel, number))


def meta(kind: int, data: bytes, length: int | None = None) -> bytes:
    return bytes((0xFF, kind)) + vlq(len(data) if length is None else length) + data


def tempo(microseconds: int) -> bytes:
    return meta(0x51, microseconds.to_bytes(3, "big"))


def time_signature(numerator: int, exponent: int) -> bytes:
    """Raw: the denominator is 2^exponent, any byte."""
    return meta(0x58, bytes((numerator, exponent, 24, 8)))


def track_name(name: str | bytes) -> bytes:
    return meta(0x03, name if isinstance(name, bytes) else name.encode("utf-8"))


Note = tuple[int, int, int, int, int]  # start tick, end tick, channel, pitch, velocity


def note_events(notes: Iterable[Note]) -> list[tuple[int, bytes]]:
    """Note-on/off events in time order, note-offs first within a tick."""
    events = []
    for start, end, channel, pitch, velocity in notes:
        events.append((start, 1, note_on(channel, pitch, velocity)))
        events.append((end, 0, note_off(channel, pitch)))
    events.sort(key=lambda e: (e[0], e[1]))
    return [(tick, data) for tick, _, data in events]


def conductor(tempo_us: int = 500_000, meter: tuple[int, int] = (4, 2), extra: Iterable[tuple[int, bytes]] = ()
              ) -> bytes:
    events = [(0, track_name("conductor")), (0, tempo(tempo_us)), (0, time_signature(*meter))] + list(extra)
    events.sort(key=lambda e: e[0])
    return track(events)


def band(bars: int = 8, tpq: int = TPQ, offset: int = 0) -> dict[str, list[Note]]:
    """A plain 4/4 pop band: drums (channel 10), bass, piano chords and a lead, `bars` bars."""
    q = tpq
    chords = [(43, (55, 59, 62)), (40, (52, 55, 59)), (36, (48, 52, 55)), (38, (50, 54, 57))]
    melody = [67, 69, 71, 74, 72, 71, 69, 67]
    parts: dict[str, list[Note]] = {"drums": [], "bass": [], "piano": [], "lead": []}
    for bar in range(bars):
        at = offset + bar * 4 * q
        root, triad = chords[bar % 4]
        for eighth in range(8):
            t = at + eighth * q // 2
            parts["drums"].append((t, t + q // 8, 9, 42, 70 + 10 * (eighth % 2 == 0)))
            if eighth in (0, 4):
                parts["drums"].append((t, t + q // 8, 9, 36, 110))
            if eighth in (2, 6):
                parts["drums"].append((t, t + q // 8, 9, 38, 100))
        parts["bass"] += [(at, at + 3 * q // 2, 1, root, 96), (at + 2 * q, at + 7 * q // 2, 1, root + 7, 90)]
        parts["piano"] += [(at, at + 4 * q - 1, 2, pitch, 70) for pitch in triad]
        parts["lead"] += [(at + i * q // 2, at + (i + 1) * q // 2 - 10, 3, melody[(i + bar) % 8], 85) for i in range(8)]
    return parts


PROGRAMS = {"drums": None, "bass": 33, "piano": 0, "lead": 80}


def band_tracks(parts: dict[str, list[Note]]) -> list[bytes]:
    out = []
    for role, notes in parts.items():
        channel = notes[0][2] if notes else 0
        setup = [(0, track_name(role))]
        if PROGRAMS.get(role) is not None:
            setup.append((0, program(channel, PROGRAMS[role])))
        out.append(track(setup + note_events(notes)))
    return out


def plain_song(bars: int = 8, tempo_us: int = 500_000, extra: Iterable[tuple[int, bytes]] = (),
               tpq: int = TPQ) -> bytes:
    """A valid type-1 song: conductor track (tempo, 4/4, `extra` events) and the band."""
    return smf([conductor(tempo_us, extra=extra)] + band_tracks(band(bars, tpq)), division=tpq)


def melody_track(notes: Iterable[Note], setup: Iterable[tuple[int, bytes]] = (), end: bool = True) -> bytes:
    return track(list(setup) + note_events(notes), end=end)


def eighths(count: int = 32, channel: int = 0, start: int = 0, velocity: int = 90) -> list[Note]:
    return [(start + i * TPQ // 2, start + (i + 1) * TPQ // 2, channel, 60 + (i * 5) % 12, velocity)
            for i in range(count)]


# ---------------------------------------------------------------------------------------------
# The corpus


@dataclass(frozen=True)
class Entry:
    name: str
    category: str
    build: Callable[[random.Random], bytes]
    in_sample: bool = False
    must_accept: bool = False  # extreme but valid music: every command must take it (MT3-style files)


def _truncated(data: bytes, at: int) -> Callable[[random.Random], bytes]:
    return lambda rng: data[:at]


def _flipped(data: bytes, positions: list[int], values: list[int]) -> Callable[[random.Random], bytes]:
    def build(rng: random.Random) -> bytes:
        out = bytearray(data)
        for position, value in zip(positions, values):
            out[position] = value
        return bytes(out)
    return build


def damaged(seed: int) -> list[Entry]:
    """Truncated and byte-flipped copies of the committed fixtures and examples; the damage is
    drawn from the seed here so that it can be named."""
    entries = []
    rng = random.Random(f"damaged:{seed}")
    number = 0
    for source in SOURCES:
        data = source.read_bytes()
        for k in range(DAMAGED_PER_SOURCE):
            number += 1
            # cuts: the first of each source inside the header region, the rest anywhere
            at = rng.randrange(1, 23) if k == 0 else rng.randrange(1, len(data))
            entries.append(Entry(f"truncated-{number:03d}-{source.stem}-at-byte-{at}-of-{len(data)}.mid", "truncated",
                                 _truncated(data, at), in_sample=number in (3, 50)))
    number = 0
    for source in SOURCES:
        data = source.read_bytes()
        for k in range(DAMAGED_PER_SOURCE):
            number += 1
            count = rng.choice((1, 1, 2, 3, 5, 8))
            low = 0 if k % 3 == 0 else 22  # a third of them may hit the header, the rest only track data
            positions = sorted(rng.sample(range(low, len(data)), count))
            values = [(data[p] + rng.randrange(1, 256)) % 256 for p in positions]
            where = "anywhere" if low == 0 else "in-tracks"
            entries.append(Entry(f"byte-flipped-{number:03d}-{source.stem}-{count}-bytes-{where}.mid", "byte-flipped",
                                 _flipped(data, positions, values), in_sample=number in (7, 42)))
    return entries


def _mt3_like(minutes: float, piano_only: bool = False) -> Callable[[random.Random], bytes]:
    """As MT3 writes a transcription: 220 ticks per quarter, one 120 bpm tempo and 4/4 (whatever
    the music plays), one track per program, drums on channel 10, every velocity 127 (the piano
    model keeps velocities), times on 10 ms frames, slightly off a real tempo of about 97 bpm."""
    def build(rng: random.Random) -> bytes:
        tpq = 220
        tick = lambda seconds: int(round(seconds * 100)) * tpq * 2 // 100  # 10 ms frames; 440 ticks/s at 120 bpm
        beat = 60 / rng.uniform(92, 102)
        beats = int(minutes * 60 / beat)
        velocity = lambda: rng.randrange(40, 110) if piano_only else 127
        jitter = lambda: rng.gauss(0, 0.012)
        parts: dict[tuple[int, int], list[Note]] = {}
        add = lambda channel, prog, start, end, pitch: parts.setdefault((channel, prog), []).append(
            (tick(max(0.0, start)), max(tick(max(0.0, start)) + 4, tick(end)), channel, pitch, velocity()))
        progression = [(45, (57, 60, 64)), (41, (53, 57, 60)), (48, (55, 60, 64)), (43, (55, 59, 62))]
        scale = [57, 59, 60, 62, 64, 65, 67, 69, 71, 72]
        pitch = 64
        # instruments come and go by section (MT3 also splits one instrument over programs)
        for b in range(beats):
            t = b * beat
            bar, in_bar = divmod(b, 4)
            section = (bar // 8) % 4
            root, triad = progression[bar % 4]
            if piano_only:
                for p in triad:
                    add(0, 0, t + jitter(), t + beat * 0.9, p + (12 if in_bar % 2 else 0))
                add(0, 0, t + jitter(), t + beat * 0.45, scale[rng.randrange(len(scale))] + 12)
                if in_bar == 0:
                    add(0, 0, t + jitter(), t + 4 * beat * 0.95, root - 12)
                continue
            for half in (0, 0.5):
                add(9, 0, t + half * beat + jitter(), t + half * beat + 0.05, 42 if section != 2 else 51)
            if in_bar in (0, 2):
                add(9, 0, t + jitter(), t + 0.05, 36)
            if in_bar in (1, 3):
                add(9, 0, t + jitter(), t + 0.05, 38)
            if in_bar == 3 and bar % 8 == 7:
                add(9, 0, t + beat / 2 + jitter(), t + beat / 2 + 0.05, 49)
            add(1, 33 if section != 3 else 34, t + jitter(), t + beat * 0.8, root if in_bar % 2 == 0 else root + 7)
            if in_bar == 0:
                for p in triad:
                    add(2, 0 if section < 2 else 4, t + jitter(), t + 4 * beat * 0.97, p)
            if section in (1, 3):
                pitch = min(max(pitch + rng.choice((-2, -1, 0, 1, 2)), 55), 79)
                add(3, 73, t + jitter(), t + beat * 0.9, pitch)
            if section == 2 and in_bar in (0, 2):
                for p in triad:
                    add(4, 48, t + jitter(), t + 2 * beat * 0.95, p + 12)
            if section == 3:
                add(5, 25, t + beat / 2 + jitter(), t + beat, triad[b % 3])
        tracks = [track([(0, tempo(500_000)), (0, time_signature(4, 2))])]
        for (channel, prog), notes in parts.items():
            setup = [(0, program(channel, prog))]
            tracks.append(track(setup + note_events(notes)))
        return smf(tracks, division=tpq)
    return build


def _dense_piano(notes_per_second: int, seconds: int, instruments: int = 4) -> Callable[[random.Random], bytes]:
    """Piano-like material (runs and chords) over `instruments` tracks, `notes_per_second` notes in
    all, for `seconds` at 120 bpm."""
    def build(rng: random.Random) -> bytes:
        per_track = notes_per_second // instruments
        step = TPQ * 2 // per_track  # ticks between notes of one track (960 ticks a second)
        tracks = [conductor()]
        programs = (0, 1, 4, 6)
        for i in range(instruments):
            base = 40 + 10 * i
            count = per_track * seconds
            walk = [base + (k * 7 + (k // 16) * 3) % 24 for k in range(4096)]
            events = [(0, program(i, programs[i % 4]))]
            on, off = 0x90 | i, 0x80 | i
            for k in range(count):
                t = k * step
                p = walk[k % 4096]
                events.append((t, bytes((on, p, 60 + (k * 13) % 50))))
                events.append((t + step - 1, bytes((off, p, 64))))
            tracks.append(track(events))
        return smf(tracks)
    return build


def _many_notes(count: int, per_step: int) -> Callable[[random.Random], bytes]:
    """`count` notes on one piano track, `per_step` at once every 32nd note at 120 bpm (500,000 in
    65 minutes at 8; 2,000,001 in 130 minutes at 16: under the length limit), in running status
    with note-offs as note-ons of velocity 0 (as many sequencers write long files). A repeated
    block of bytes: fast for millions."""
    def build(rng: random.Random) -> bytes:
        step = TPQ // 8
        steps = []
        for k in range(12):  # on at t (the first after delta 1 from the last off), offs at t + step - 1
            pitches = [36 + (k * 5 + j * 7) % 60 for j in range(per_step)]
            ons = b"".join((_VLQ[1] if j == 0 else _VLQ[0]) + bytes((p, 80)) for j, p in enumerate(pitches))
            offs = b"".join((_VLQ[step - 1] if j == 0 else _VLQ[0]) + bytes((p, 0)) for j, p in enumerate(pitches))
            steps.append((ons, offs))
        block = b"".join(ons + offs for ons, offs in steps)
        whole, rest = divmod(count, 12 * per_step)
        tail = b"".join(ons + offs for ons, offs in steps[: rest // per_step])
        extra = rest % per_step  # the last notes, alone
        pitches = [36 + j * 7 % 60 for j in range(extra)]
        tail += b"".join(_VLQ[1 if j == 0 else 0] + bytes((p, 80)) for j, p in enumerate(pitches))
        tail += b"".join(_VLQ[step - 1 if j == 0 else 0] + bytes((p, 0)) for j, p in enumerate(pitches))
        # a silent first event sets the running status
        body = b"\x00\x90\x30\x00" + block * whole + tail + b"\x00" + END_OF_TRACK
        return smf([conductor(), chunk(b"MTrk", body)])
    return build


def _song(extra: Iterable[tuple[int, bytes]] = (), tempo_us: int = 500_000,
          bars: int = 8) -> Callable[[random.Random], bytes]:
    extra = list(extra)
    return lambda rng: plain_song(bars, tempo_us, extra)


def _fixed(data: bytes) -> Callable[[random.Random], bytes]:
    return lambda rng: data


def _tempo_every_tick(ticks: int) -> Callable[[random.Random], bytes]:
    def build(rng: random.Random) -> bytes:
        events = [(0, track_name("conductor")), (0, time_signature(4, 2))]
        events += [(t, tempo(rng.randrange(300_000, 700_000))) for t in range(ticks)]
        return smf([track(events)] + band_tracks(band(max(1, ticks // (4 * TPQ)))))
    return build


def _time_signatures(count: int, per_bar: bool = True) -> Callable[[random.Random], bytes]:
    def build(rng: random.Random) -> bytes:
        meters = [(4, 2), (3, 2), (7, 3), (5, 2), (6, 3), (2, 2)]
        events = [(0, track_name("conductor")), (0, tempo(500_000))]
        t = 0
        for k in range(count):
            numerator, exponent = meters[rng.randrange(len(meters))]
            events.append((t, time_signature(numerator, exponent)))
            if per_bar:
                t += numerator * TPQ * 4 // (2 ** exponent)
        bars = max(1, t // (4 * TPQ))
        return smf([track(events)] + band_tracks(band(min(bars, 200))))
    return build


def _instruments(count: int) -> Callable[[random.Random], bytes]:
    """`count` tracks, one instrument each: programs 0-127 over channels 1-16 (channel 10 drums)."""
    def build(rng: random.Random) -> bytes:
        tracks = [conductor()]
        for i in range(count):
            channel, prog = i % 16, (i * 37) % 128
            notes = [(j * TPQ + (i % 8) * 30, j * TPQ + (i % 8) * 30 + TPQ // 2, channel, 36 + (i + 3 * j) % 60, 80)
                     for j in range(16)]
            tracks.append(melody_track(notes, [(0, track_name(f"instrument {i + 1}")), (0, program(channel, prog))]))
        return smf(tracks)
    return build


def _program_changes_per_note(count: int) -> Callable[[random.Random], bytes]:
    def build(rng: random.Random) -> bytes:
        events = []
        for k in range(count):
            t = k * TPQ // 4
            events.append((t, program(0, k % 128)))
            events.append((t, note_on(0, 60 + k % 12, 90)))
            events.append((t + TPQ // 4 - 1, note_off(0, 60 + k % 12)))
        return smf([conductor(), track(events)])
    return build


def _chords_128(count: int) -> Callable[[random.Random], bytes]:
    def build(rng: random.Random) -> bytes:
        notes = [(k * TPQ * 2, (k + 1) * TPQ * 2 - 1, 0, p, 80) for k in range(count) for p in range(128)]
        drums = band_tracks({"drums": band(count // 2)["drums"]})
        return smf([conductor(), melody_track(notes, [(0, program(0, 0))])] + drums)
    return build


def _simple(notes: list[Note], setup: Iterable[tuple[int, bytes]] = (), tempo_us: int = 500_000,
            division: int = TPQ, fmt: int = 1) -> Callable[[random.Random], bytes]:
    return lambda rng: smf([conductor(tempo_us), melody_track(notes, setup)], fmt=fmt, division=division)


def _raw_track(body: bytes, with_conductor: bool = True) -> Callable[[random.Random], bytes]:
    """A file whose second track chunk holds `body` as it is (no end-of-track added)."""
    def build(rng: random.Random) -> bytes:
        tracks = ([conductor()] if with_conductor else []) + [chunk(b"MTrk", body)]
        return smf(tracks)
    return build


def _note_bytes(count: int = 16, channel: int = 0) -> bytes:
    return b"".join(_VLQ[0] + note_on(channel, 60 + k % 12, 90) + _VLQ[TPQ // 2] + note_off(channel, 60 + k % 12)
                    for k in range(count))


def _random_bytes(size: int) -> Callable[[random.Random], bytes]:
    return lambda rng: bytes(rng.randrange(256) for _ in range(size))


def _mido(build_file: Callable[[random.Random], mido.MidiFile]) -> Callable[[random.Random], bytes]:
    def build(rng: random.Random) -> bytes:
        import io
        out = io.BytesIO()
        build_file(rng).save(file=out)
        return out.getvalue()
    return build


def _type0(rng: random.Random) -> mido.MidiFile:
    """A valid type-0 file (every part in one track), written by mido."""
    midi = mido.MidiFile(type=0, ticks_per_beat=TPQ)
    events = [(0, mido.MetaMessage("set_tempo", tempo=600_000)),
              (0, mido.MetaMessage("time_signature", numerator=3, denominator=4))]
    for channel, prog in ((0, 40), (1, 41), (2, 42)):
        events.append((0, mido.Message("program_change", channel=channel, program=prog)))
    for bar in range(12):
        for beat in range(3):
            t = (bar * 3 + beat) * TPQ
            for channel, pitch in ((0, 72 + (bar + beat) % 5), (1, 64 + beat), (2, 48 + bar % 4)):
                events.append((t, mido.Message("note_on", channel=channel, note=pitch, velocity=70)))
                events.append((t + TPQ - 20, mido.Message("note_off", channel=channel, note=pitch)))
    part, last = mido.MidiTrack(), 0
    for t, message in sorted(events, key=lambda e: e[0]):
        part.append(message.copy(time=t - last))
        last = t
    midi.tracks.append(part)
    return midi


def _type2(rng: random.Random) -> bytes:
    """Type 2: independent patterns one after another, each with its own tempo."""
    tracks = []
    for k, tempo_us in enumerate((500_000, 400_000, 700_000)):
        events = [(0, tempo(tempo_us)), (0, time_signature(4, 2))] + note_events(eighths(16, channel=k))
        tracks.append(track(events))
    return smf(tracks, fmt=2)


def _rmid(rng: random.Random) -> bytes:
    """A RIFF-wrapped MIDI file (.rmi), named .mid."""
    data = plain_song(4)
    body = b"RMID" + chunk(b"data", data)[:4] + struct.pack("<L", len(data)) + data
    return b"RIFF" + struct.pack("<L", len(body)) + body


def entries(seed: int = 0) -> list[Entry]:
    """Every file of the full corpus, in order; `in_sample` marks the sample."""
    E = Entry
    q, bar = TPQ, 4 * TPQ
    big = 2 ** 28 - 1  # the largest delta time a 4-byte variable-length quantity holds
    song = plain_song
    out: list[Entry] = damaged(seed)
    out += [
        # --- tempo
        E("tempo-zero-at-tick-0.mid", "tempo", _song(tempo_us=0), True),
        E("tempo-zero-mid-file.mid", "tempo", _song([(4 * bar, tempo(0))]), True),
        E("tempo-1-microsecond-per-quarter-at-tick-0.mid", "tempo", _song(tempo_us=1), True),
        E("tempo-1-microsecond-per-quarter-mid-file.mid", "tempo", _song([(4 * bar + 7, tempo(1))])),
        E("tempo-max-16777215-microseconds-per-quarter.mid", "tempo", _song(tempo_us=0xFFFFFF)),
        E("tempo-2001-bpm.mid", "tempo", _song(tempo_us=60_000_000 // 2001)),
        E("tempo-alternating-1-and-16777215-every-beat.mid", "tempo",
          _song([(b * q, tempo(1 if b % 2 else 0xFFFFFF)) for b in range(32)])),
        E("tempo-meta-4-bytes-0xffffffff.mid", "tempo", _song([(0, meta(0x51, b"\xff\xff\xff\xff"))]), True),
        E("tempo-meta-0-bytes.mid", "tempo", _song([(0, meta(0x51, b""))])),
        E("tempo-meta-1-byte.mid", "tempo", _song([(bar, meta(0x51, b"\x07"))])),
        E("tempo-event-on-every-tick-20000-ticks.mid", "tempo", _tempo_every_tick(20_000), True),
        E("tempo-event-on-every-tick-150000-ticks.mid", "tempo", _tempo_every_tick(150_000)),
        E("tempo-events-10000-at-tick-0.mid", "tempo",
          lambda rng: plain_song(4, extra=[(0, tempo(400_000 + k)) for k in range(10_000)])),
        # --- time signatures
        E("time-signature-255-4.mid", "meter", _song([(0, time_signature(255, 2))]), True),
        E("time-signature-numerator-0.mid", "meter", _song([(0, time_signature(0, 2))]), True),
        E("time-signature-denominator-2-to-the-255.mid", "meter", _song([(0, time_signature(4, 255))]), True),
        E("time-signature-denominator-2-to-the-31-mid-file.mid", "meter", _song([(2 * bar, time_signature(4, 31))])),
        E("time-signature-denominator-2-to-the-7.mid", "meter", _song([(0, time_signature(4, 7))])),
        E("time-signature-4-1.mid", "meter", _song([(0, time_signature(4, 0))])),
        E("time-signature-65-4.mid", "meter", _song([(0, time_signature(65, 2))])),
        E("time-signature-meta-0-bytes.mid", "meter", _song([(0, meta(0x58, b""))])),
        E("time-signature-meta-2-bytes.mid", "meter", _song([(0, meta(0x58, b"\x03\x02"))])),
        E("time-signatures-5000-one-per-bar.mid", "meter", _time_signatures(5_000)),
        E("time-signatures-20000-one-per-bar.mid", "meter", _time_signatures(20_000), True),
        E("time-signatures-3000-at-tick-0.mid", "meter", _time_signatures(3_000, per_bar=False)),
        E("key-signature-100-sharps.mid", "meter", _song([(0, meta(0x59, b"\x64\x00"))])),
        E("key-signature-mode-7.mid", "meter", _song([(0, meta(0x59, b"\x02\x07"))])),
        # --- far in time
        E("note-at-tick-2-28.mid", "far",
          _simple(eighths(31) + [(31 * q // 2 + big, 31 * q // 2 + big + q, 0, 60, 90)]), True),
        E("note-ending-at-tick-2-28.mid", "far", _simple(eighths(16) + [(8 * q, 8 * q + big, 0, 48, 90)])),
        E("notes-past-tick-1e10-by-40-max-deltas.mid", "far",
          _simple([(k * big, k * big + q, 0, 60 + k % 12, 90) for k in range(41)]), True),
        E("delta-time-5-byte-vlq.mid", "far",
          _raw_track(_note_bytes(8) + vlq(2 ** 35) + note_on(0, 60, 90) + _VLQ[q] + note_off(0, 60)
                     + b"\x00" + END_OF_TRACK)),
        E("note-at-tick-2-28-ticks-per-beat-1.mid", "far",
          lambda rng: smf([conductor(), melody_track([(k, k + 1, 0, 60, 90) for k in range(16)]
                                                     + [(big, big + 1, 0, 62, 90)])],
                          division=1)),
        E("silence-170-minutes-then-notes.mid", "far",
          lambda rng: smf([conductor()] + band_tracks(band(4, offset=170 * 120 * q)))),
        E("notes-from-0-to-179-minutes-sparse.mid", "far",
          _simple([(k * 179 * 120 * q // 63, k * 179 * 120 * q // 63 + q, 0, 60 + k % 24, 90) for k in range(64)])),
        # --- size
        E("notes-500000.mid", "size", _many_notes(500_000, 8)),
        E("notes-2000001-past-the-limit.mid", "size", _many_notes(2_000_001, 16)),
        E("dense-one-hour-230400-notes-4-instruments.mid", "size", _dense_piano(64, 3600)),
        E("dense-one-minute-3840-notes-4-instruments.mid", "size", _dense_piano(64, 60), True),
        E("chords-of-128-notes.mid", "size", _chords_128(16), True),
        E("instruments-200-tracks-16-channels.mid", "size", _instruments(200), True),
        E("tracks-1000-one-note-each.mid", "size", lambda rng: smf(
            [conductor()] + [melody_track([(k * 60, k * 60 + q, k % 16, 40 + k % 50, 80)]) for k in range(1000)])),
        E("program-change-before-every-note-5000-notes.mid", "size", _program_changes_per_note(5_000)),
        E("meta-text-1-megabyte.mid", "size", _song([(0, meta(0x01, b"la " * 350_000))])),
        E("control-changes-100000.mid", "size", lambda rng: smf(
            [conductor(), track([(k, bytes((0xB0, 1, k % 128))) for k in range(100_000)] + note_events(eighths(32)))])),
        # --- file structure
        E("type-0-three-channels-mido.mid", "structure", _mido(_type0), True),
        E("type-2-three-patterns.mid", "structure", _type2, True),
        E("type-3-format.mid", "structure", lambda rng: smf([conductor()] + band_tracks(band(4)), fmt=3)),
        E("zero-tracks.mid", "structure", _fixed(header(1, 0)), True),
        E("zero-tracks-type-0.mid", "structure", _fixed(header(0, 0))),
        E("type-0-with-4-tracks.mid", "structure", lambda rng: smf([conductor()] + band_tracks(band(4)), fmt=0)),
        E("smpte-division-25-fps-40-ticks.mid", "structure", lambda rng: smf(
            [conductor()] + band_tracks(band(4)), division=(0x100 - 25) << 8 | 40), True),
        E("smpte-division-29-fps-0-ticks.mid", "structure", lambda rng: smf(
            [conductor()] + band_tracks(band(4)), division=(0x100 - 29) << 8)),
        E("smpte-division-minus-128-fps.mid", "structure",
          lambda rng: smf([conductor()] + band_tracks(band(4)), division=0x8050)),
        E("ticks-per-beat-0.mid", "structure", _simple(eighths(32), division=0), True),
        E("ticks-per-beat-1.mid", "structure", lambda rng: smf(
            [conductor(), melody_track([(k, k + 1, 0, 60 + k % 12, 90) for k in range(32)])], division=1), True),
        E("ticks-per-beat-32767.mid", "structure", lambda rng: smf([conductor()] + band_tracks(band(8, tpq=32767)),
                                                                 division=32767), True),
        E("header-claims-5-tracks-has-2.mid", "structure",
          lambda rng: header(1, 5) + conductor() + melody_track(eighths()), True),
        E("header-claims-1-track-has-5.mid", "structure",
          lambda rng: header(1, 1) + b"".join([conductor()] + band_tracks(band(4)))),
        E("header-claims-65535-tracks.mid", "structure",
          lambda rng: header(1, 65535) + conductor() + melody_track(eighths())),
        E("header-length-0.mid", "structure", lambda rng: chunk(b"MThd", b"") + conductor() + melody_track(eighths())),
        E("header-length-4-billion.mid", "structure",
          lambda rng: header(1, 2, length=0xFFFFFFFF) + conductor() + melody_track(eighths())),
        E("header-length-10-with-padding.mid", "structure",
          lambda rng: chunk(b"MThd", struct.pack(">HHH", 1, 2, TPQ) + b"\0\0\0\0") + conductor()
          + melody_track(eighths())),
        E("header-only-no-track-chunks.mid", "structure", _fixed(header(1, 1))),
        E("track-chunk-length-4-billion.mid", "structure",
          lambda rng: header(1, 2) + conductor() + b"MTrk\xff\xff\xff\xff" + melody_track(eighths())[8:]),
        E("track-chunk-length-0.mid", "structure", lambda rng: smf([conductor(), chunk(b"MTrk", b"")])),
        E("track-chunk-length-too-short.mid", "structure",
          lambda rng: header(1, 2) + conductor() + track(note_events(eighths()), length=37)),
        E("track-chunk-length-too-long.mid", "structure",
          lambda rng: header(1, 2) + conductor() + track(note_events(eighths()), length=100_000)),
        E("no-end-of-track.mid", "structure", lambda rng: smf([conductor(), melody_track(eighths(), end=False)])),
        E("events-after-end-of-track.mid", "structure",
          _raw_track(_note_bytes(8) + b"\x00" + END_OF_TRACK + _note_bytes(8) + b"\x00" + END_OF_TRACK)),
        E("unknown-chunk-between-tracks.mid", "structure",
          lambda rng: header(1, 2) + conductor() + chunk(b"XFIH", b"\x01\x02" * 50) + melody_track(eighths())),
        E("track-chunk-id-mtrx.mid", "structure",
          lambda rng: header(1, 2) + conductor() + b"MTrx" + melody_track(eighths())[4:]),
        E("trailing-garbage-after-tracks.mid", "structure",
          lambda rng: plain_song(4) + bytes(rng.randrange(256) for _ in range(3000))),
        E("riff-rmid-wrapped.mid", "structure", _rmid),
        E("unicode-name-ünïcödé with spaces.mid", "structure", _song()),
        # --- not MIDI
        E("empty-file.mid", "not-midi", _fixed(b""), True),
        E("text-file.mid", "not-midi", _fixed(b"This is not a MIDI file.\nJust some text, named .mid.\n" * 4), True),
        E("png-header.mid", "not-midi", _fixed(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00"
                                                b"\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa" + b"\x00" * 64), True),
        E("gzip-header.mid", "not-midi", _fixed(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\x00" * 40)),
        E("mthd-only-4-bytes.mid", "not-midi", _fixed(b"MThd")),
        E("random-bytes-4096.mid", "not-midi", _random_bytes(4096)),
        E("zeros-65536.mid", "not-midi", _fixed(b"\x00" * 65536)),
        E("utf16-text-with-bom.mid", "not-midi", _fixed("MThd is not here\n".encode("utf-16"))),
        E("musicxml-named-mid.mid", "not-midi",
          _fixed(b'<?xml version="1.0"?>\n<score-partwise version="3.1"><part-list/></score-partwise>\n')),
        # --- notes
        E("note-ons-without-note-offs.mid", "notes", lambda rng: smf([conductor(), track(
            [(k * q // 2, note_on(0, 60 + k % 12, 90)) for k in range(64)])]), True),
        E("note-offs-without-note-ons.mid", "notes", lambda rng: smf([conductor(), track(
            [(k * q // 2, note_off(0, 60 + k % 12)) for k in range(64)])]), True),
        E("zero-length-notes.mid", "notes", _simple([(s, s, c, p, v) for s, e, c, p, v in eighths(64)]), True),
        E("zero-length-notes-and-one-real-note.mid", "notes",
          _simple([(s, s, c, p, v) for s, e, c, p, v in eighths(64)] + [(0, q, 0, 72, 90)])),
        E("velocity-0-everything.mid", "notes", _simple(eighths(64, velocity=0)), True),
        E("velocity-1-everything.mid", "notes", _simple(eighths(64, velocity=1))),
        E("drums-only-channel-10.mid", "notes",
          lambda rng: smf([conductor()] + band_tracks({"drums": band(16)["drums"]})), True),
        E("drums-only-channel-10-one-pitch-every-tick.mid", "notes",
          _simple([(t, t + 1, 9, 38, 100) for t in range(0, 8 * bar)])),
        E("pitch-0-and-127-only.mid", "notes",
          _simple([(k * q // 2, (k + 1) * q // 2, 0, 0 if k % 2 else 127, 90) for k in range(64)]), True),
        E("drums-pitch-0-and-127-only.mid", "notes",
          _simple([(k * q // 2, k * q // 2 + 30, 9, 0 if k % 2 else 127, 90) for k in range(64)])),
        E("overlapping-notes-of-one-pitch.mid", "notes",
          _simple([(k * q // 4, k * q // 4 + 4 * q, 0, 60, 90) for k in range(64)])),
        E("all-notes-at-tick-0.mid", "notes", _simple([(0, q, k % 16, 30 + k % 60, 90) for k in range(200)])),
        E("single-note.mid", "notes", _simple([(0, q, 0, 60, 90)])),
        E("single-note-one-tick-long.mid", "notes", _simple([(0, 1, 0, 60, 90)])),
        E("controllers-and-pitch-bends-only.mid", "notes", lambda rng: smf([conductor(), track(
            [(k * 10, bytes((0xE0, k % 128, (k * 3) % 128))) for k in range(2000)]
            + [(20_000 + k, bytes((0xB0, 64, 127 * (k % 2)))) for k in range(100)])])),
        E("note-on-channel-16-data-bytes-high-bit.mid", "notes",
          _raw_track(b"\x00\x9f\xbc\xff" + _note_bytes(8) + b"\x00" + END_OF_TRACK)),
        E("running-status-at-track-start.mid", "notes",
          _raw_track(b"\x00\x3c\x40" + _note_bytes(8) + b"\x00" + END_OF_TRACK), True),
        E("running-status-garbage-data-bytes-mid-track.mid", "notes", lambda rng: smf([conductor(), chunk(
            b"MTrk", _note_bytes(8) + bytes(rng.randrange(0, 128) for _ in range(301)) + _note_bytes(8)
            + b"\x00" + END_OF_TRACK)])),
        E("running-status-after-meta-event.mid", "notes",
          _raw_track(b"\x00\x90\x3c\x40" + b"\x00" + track_name("x") + b"\x60\x3c\x00" + b"\x00" + END_OF_TRACK)),
        E("undefined-status-bytes-f4-f5-fd.mid", "notes",
          _raw_track(_note_bytes(4) + b"\x00\xf4\x00\xf5\x00\xfd" + _note_bytes(4) + b"\x00" + END_OF_TRACK)),
        E("sysex-length-2-28.mid", "notes", _raw_track(b"\x00\xf0" + vlq(big) + b"\x7e\x7f\x09\x01\xf7" + _note_bytes(8)
                                                     + b"\x00" + END_OF_TRACK), True),
        E("sysex-escape-f7-length-2-28.mid", "notes",
          _raw_track(_note_bytes(4) + b"\x00\xf7" + vlq(big) + b"\x01" + b"\x00" + END_OF_TRACK)),
        E("sysex-unterminated-then-notes.mid", "notes",
          _raw_track(b"\x00\xf0\x05\x7e\x7f\x09\x01\x01" + _note_bytes(8) + b"\x00" + END_OF_TRACK)),
        E("meta-event-length-2-28.mid", "notes",
          _raw_track(_note_bytes(4) + b"\x00\xff\x01" + vlq(big) + b"hello" + b"\x00" + END_OF_TRACK), True),
        E("meta-event-length-5-byte-vlq.mid", "notes",
          _raw_track(_note_bytes(4) + b"\x00\xff\x05" + b"\xff\xff\xff\xff\x7f" + b"la" + b"\x00" + END_OF_TRACK)),
        E("end-of-track-meta-with-length-9.mid", "notes",
          _raw_track(_note_bytes(8) + b"\x00\xff\x2f\x09" + b"\x00" * 9)),
        E("track-name-control-characters-and-path.mid", "notes", lambda rng: smf([conductor(), melody_track(
            eighths(), [(0, track_name("../../etc/passwd\x00\n\r\t\x1b[31mred"))])])),
        E("track-name-invalid-utf8.mid", "notes", lambda rng: smf([conductor(), melody_track(
            eighths(), [(0, track_name(b"\xff\xfe\xc3\x28 bad \xa0\xa1"))])])),
        # --- extreme but valid, as MT3 writes transcriptions
        E("mt3-like-1-minute.mid", "mt3", _mt3_like(1), True, True),
        E("mt3-like-4-minutes.mid", "mt3", _mt3_like(4), False, True),
        E("mt3-like-16-minutes.mid", "mt3", _mt3_like(16), False, True),
        E("mt3-like-64-minutes.mid", "mt3", _mt3_like(64), False, True),
        E("mt3-like-piano-model-4-minutes.mid", "mt3", _mt3_like(4, piano_only=True)),  # no drums to humanize
    ]
    return out


def plan(size: str = "full", seed: int = 0) -> list[Entry]:
    """The entries `write_corpus` writes, without building them."""
    if size not in ("full", "sample"):
        raise ValueError(f"size must be 'full' or 'sample', not {size!r}")
    every = entries(seed)
    return every if size == "full" else [e for e in every if e.in_sample]


def write_corpus(directory: Path, seed: int = 0, size: str = "full") -> list[Path]:
    """Writes the corpus into `directory` (made if missing): the paths, in plan order."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for entry in plan(size, seed):
        path = directory / entry.name
        path.write_bytes(entry.build(random.Random(f"{seed}:{entry.name}")))
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# Running a command over a file

def gen_command() -> list[str]:
    """The `gen` entry point beside this interpreter, else `python -m cli` (run from the root)."""
    script = Path(sys.executable).with_name("gen")
    return [str(script)] if script.is_file() else [sys.executable, str(ROOT / "cli.py")]


INTERPOLATE_END = ROOT / "examples" / "drums.mid"

# command -> (arguments given FILE and the run's output directory, the output that must exist)
COMMANDS: dict[str, Callable[[Path, Path], tuple[list[str], Path]]] = {
    "continue": lambda f, d: (["continue", str(f), "-o", str(d / "out.mid"), "--bars", "4"], d / "out.mid"),
    "vary": lambda f, d: (["vary", str(f), "-o", str(d / "out.mid")], d / "out.mid"),
    "humanize": lambda f, d: (["humanize", "groove-humanize", str(f), "-o", str(d / "out.mid")], d / "out.mid"),
    # --primer is for LSTM models only (groove-4bar refuses it): the drum LSTM, 2 bars
    "sample": lambda f, d: (["sample", "groove-drums", "-n", "1", "--bars", "2", "--primer", str(f), "-o",
                             str(d / "samples")], d / "samples" / "sample-001.mid"),
    "interpolate": lambda f, d: (["interpolate", "groove-4bar", str(f), str(INTERPOLATE_END), "-o", str(d / "out.mid")],
                                 d / "out.mid"),
    "tidy": lambda f, d: (["tidy", str(f), "-o", str(d / "out.mid")], d / "out.mid"),
    "score": lambda f, d: (["score", str(f), "-o", str(d / "out.musicxml")], d / "out.musicxml"),
    "plot": lambda f, d: (["plot", str(f), "-o", str(d / "out.png")], d / "out.png"),
    "render": lambda f, d: (["render", str(f), "-o", str(d / "out.wav")], d / "out.wav"),
}

FAILURES = ("traceback", "timeout", "memory", "leftover", "multi-line", "no-output", "refused-valid")
OUTCOMES = ("ok", "refused") + FAILURES
_PROGRESS_BAR = re.compile(r"\d+%\|.*\|")  # tqdm: " 40%|####      | 4/10 [00:01<00:02, 3.1it/s]"
_PYTHON_WARNING = re.compile(r"\b\w*Warning: ")  # "x.py:3: RuntimeWarning: ..." from the warnings module


@dataclass
class Run:
    command: str
    file: Path
    argv: list[str]
    outcome: str
    seconds: float
    peak_mb: float
    returncode: int
    stderr: str
    leftovers: list[str] = field(default_factory=list)
    out: Path | None = None  # the output folder it ran in (deleted)

    @property
    def last_line(self) -> str:
        lines = shown_lines(self.stderr)
        return lines[-1] if lines else ""

    def reproduce(self) -> str:
        """The command line, its outputs relative to the working directory it ran in."""
        import shlex
        args = [_relative(a, self.out) for a in self.argv[len(gen_command()):]]
        return " ".join(shlex.quote(a) for a in ["gen"] + args)


def _relative(argument: str, folder: Path | None) -> str:
    prefix = f"{folder}{os.sep}" if folder else None
    return argument[len(prefix):] if prefix and argument.startswith(prefix) else argument


def shown_lines(stderr: str) -> list[str]:
    """The non-empty lines of stderr as a terminal shows them (the text after a line's last
    carriage return), without tqdm progress bars."""
    lines = [line.rsplit("\r", 1)[-1].strip() for line in stderr.split("\n")]
    return [line for line in lines if line and not _PROGRESS_BAR.search(line)]


def classify(returncode: int, stderr: str, wrote_output: bool, leftovers: list[str], timed_out: bool,
             over_memory: bool, must_accept: bool = False) -> str:
    """One outcome per run, the first that applies:

    timeout (killed at the wall-clock limit), memory (peak resident memory past the limit; killed
    when seen during the run), traceback ("Traceback" anywhere on stderr, whatever the exit
    status), leftover (a failed run left any file or folder in its output folder, which is also
    its working directory; or a successful one left anything besides its output), no-output (exit
    0 without the output file), ok (exit 0, output written), refused-valid (a nonzero exit over a
    file every command must accept, the MT3-style transcriptions with drums, other than a stated
    limit's: "raise the limit with GEN_MAX_..."), refused (nonzero
    exit, and stderr ends with its one "Error: ..." line; before it only the command's own progress
    lines, such as "Models: ..." or tqdm bars), multi-line (a nonzero exit whose stderr shows a
    second "Error:" line, a Python warning, click's usage text, or no "Error:" line last)."""
    if timed_out:
        return "timeout"
    if over_memory:
        return "memory"
    if "Traceback" in stderr:
        return "traceback"
    if leftovers:
        return "leftover"
    if returncode == 0:
        return "ok" if wrote_output else "no-output"
    if must_accept and "raise the limit with GEN_MAX_" not in stderr:  # a stated limit may refuse anything
        return "refused-valid"
    lines = shown_lines(stderr)
    errors = [line for line in lines if line.startswith("Error:")]
    noise = [line for line in lines if _PYTHON_WARNING.search(line) or line.startswith("Usage:")]
    return "refused" if len(errors) == 1 and lines[-1] == errors[0] and not noise else "multi-line"


def _peak_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_one(command: str, file: Path, work: Path, limit_s: float = 60, limit_mb: float = 2048,
            must_accept: bool = False, env: dict[str, str] | None = None) -> Run:
    """Runs `gen COMMAND` over `file` in a fresh process, with a fresh output folder under `work`
    as its output and working directory; kills its process group at `limit_s` seconds or once its
    resident memory passes `limit_mb`. The peak memory is the process's own (wait4's ru_maxrss)."""
    out = Path(tempfile.mkdtemp(prefix=f"{command}-", dir=work))
    args, output = COMMANDS[command](Path(file).resolve(), out)
    argv = gen_command() + args
    err_path = out.parent / (out.name + ".stderr")
    started = time.perf_counter()
    with open(err_path, "w+b") as err:
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL, cwd=out,
                                 env=env, start_new_session=True)
        timed_out = over_memory = False
        peak_seen = 0.0
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            elapsed = time.perf_counter() - started
            peak_seen = max(peak_seen, _peak_rss_mb(child.pid))
            if elapsed > limit_s or peak_seen > limit_mb:
                timed_out, over_memory = elapsed > limit_s, peak_seen > limit_mb
                try:
                    os.killpg(child.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                pid, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.02 if elapsed < 2 else 0.1)
        seconds = time.perf_counter() - started
        child.returncode = returncode = os.waitstatus_to_exitcode(status)
        try:  # whatever else the command started, in its group, goes too
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    err_path.unlink()
    peak_mb = max(usage.ru_maxrss / 1024, peak_seen)
    over_memory = over_memory or peak_mb > limit_mb
    wrote = output.is_file() and output.stat().st_size > 0
    made = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    expected = set()
    if wrote and returncode == 0:
        expected = {str(output.relative_to(out)), str(output.parent.relative_to(out))}
    leftovers = [p for p in made if p not in expected and p != "."]
    outcome = classify(returncode, stderr, wrote, leftovers, timed_out, over_memory, must_accept)
    _remove(out)
    return Run(command, Path(file), argv, outcome, seconds, peak_mb, returncode, stderr, leftovers, out)


def _remove(folder: Path) -> None:
    import shutil
    shutil.rmtree(folder, ignore_errors=True)
