"""The fast MIDI reader gives the notes Magenta's reader (note_seq over pretty_midi) gives."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import mido
import pytest

import generation.io.midi as midi
from generation.errors import BadInputFile
from generation.io.readers import read_music_file
from generation.io.writers import write_midi

from .conftest import FIXTURES

midi_io = pytest.importorskip("note_seq.midi_io")

MIDI_FIXTURES = sorted(p for p in FIXTURES.rglob("*.mid") if "broken" not in p.parts)


def reference(data: bytes):
    sequence = midi_io.midi_to_note_sequence(data)
    for info in sequence.instrument_infos:  # mido reads names as latin-1; we decode UTF-8 where valid
        info.name = midi.decode_text(info.name.encode("latin-1"))
    return sequence


def note_multiset(sequence) -> Counter:
    return Counter(
        (n.instrument, n.program, n.is_drum, n.pitch, n.velocity, n.start_time, n.end_time) for n in sequence.notes
    )


def assert_same_music(ours, theirs) -> None:
    assert note_multiset(ours) == note_multiset(theirs)
    for name in ("tempos", "time_signatures", "key_signatures", "control_changes", "pitch_bends", "instrument_infos"):
        assert list(getattr(ours, name)) == list(getattr(theirs, name)), name
    assert ours.total_time == theirs.total_time
    assert ours.ticks_per_quarter == theirs.ticks_per_quarter
    assert ours.source_info == theirs.source_info


@pytest.mark.parametrize("path", MIDI_FIXTURES, ids=lambda p: p.name)
def test_fast_reader_gives_note_seqs_notes(path: Path) -> None:
    data = path.read_bytes()
    assert_same_music(midi.midi_to_note_sequence(data, path), reference(data))


@pytest.mark.parametrize("path", MIDI_FIXTURES, ids=lambda p: p.name)
def test_event_walk_is_byte_identical_to_note_seq(path: Path, monkeypatch) -> None:
    def symusic_unavailable(*args):
        raise midi._NeedsEventWalk

    monkeypatch.setattr(midi, "_symusic_track", symusic_unavailable)
    data = path.read_bytes()
    assert midi.midi_to_note_sequence(data, path).SerializeToString() == reference(data).SerializeToString()


def build_midi(tracks: list[list[tuple[int, object]]], midi_type: int = 1, ticks: int = 96) -> bytes:
    """Tracks of (absolute tick, mido message)."""
    midi_file = mido.MidiFile(type=midi_type, ticks_per_beat=ticks)
    for events in tracks:
        track = mido.MidiTrack()
        last = 0
        for tick, message in sorted(events, key=lambda event: event[0]):
            track.append(message.copy(time=tick - last))
            last = tick
        midi_file.tracks.append(track)
    out = io.BytesIO()
    midi_file.save(file=out)
    return out.getvalue()


on = lambda tick, pitch, velocity=100, channel=0: (tick, mido.Message("note_on", note=pitch, velocity=velocity, channel=channel))  # noqa: E731
off = lambda tick, pitch, channel=0: (tick, mido.Message("note_off", note=pitch, channel=channel))  # noqa: E731
tempo = lambda tick, bpm: (tick, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))  # noqa: E731
program = lambda tick, number, channel=0: (tick, mido.Message("program_change", program=number, channel=channel))  # noqa: E731
control = lambda tick, number, value, channel=0: (tick, mido.Message("control_change", control=number, value=value, channel=channel))  # noqa: E731

EDGE_CASES = {
    # pretty_midi closes both notes at the first note-off; symusic would pair them first-in first-out.
    "overlapping_same_pitch": [[on(0, 60), on(10, 60, 80), off(20, 60), off(30, 60)]],
    "double_note_on_one_tick": [[on(0, 44, 55), on(0, 44, 55), off(0, 44), on(5, 37), off(101, 44), off(120, 37)]],
    "zero_length_note": [[on(0, 60), off(0, 60), on(10, 62), off(20, 62), off(30, 60)]],
    "note_never_switched_off": [[on(0, 60), on(10, 62), off(20, 62)]],
    "program_change_while_note_sounds": [[program(0, 5), on(0, 60), program(10, 7), off(20, 60), on(30, 61), off(40, 61)]],
    "controls_before_program_change": [[control(0, 7, 100), control(0, 10, 30), program(0, 33), on(0, 40), off(90, 40), control(95, 64, 127)]],
    "two_channels_one_track": [[on(0, 60), on(0, 36, channel=9), off(20, 60), off(30, 36, channel=9)]],
    "tempo_changes": [[tempo(0, 100), tempo(0, 90), on(0, 60), tempo(96, 150), off(150, 60), tempo(192, 150), on(200, 62), tempo(300, 60), off(400, 62)]],
    "tempo_only_in_second_track": [[on(0, 60), off(96, 60)], [tempo(48, 60), on(50, 64), off(500, 64)]],
    "first_tempo_late": [[(0, mido.MetaMessage("key_signature", key="F#m")), on(0, 60), tempo(192, 140), off(400, 60)]],
    "pitch_bends": [[on(0, 60), (10, mido.Message("pitchwheel", pitch=-8192)), (20, mido.Message("pitchwheel", pitch=8191)), off(30, 60)]],
}


@pytest.mark.filterwarnings("ignore:Tempo, Key or Time signature change events:RuntimeWarning")  # pretty_midi's, on purpose
@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_cases_read_as_note_seq_reads_them(name: str) -> None:
    tracks = EDGE_CASES[name]
    data = build_midi(tracks, midi_type=0 if len(tracks) == 1 else 1)
    assert_same_music(midi.midi_to_note_sequence(data), reference(data))


def test_whole_groove_dataset_sample_matches_note_seq(groove_dir: Path) -> None:
    files = sorted(groove_dir.rglob("*.mid"))
    sample = files[::7] + [f for f in files if f.name.startswith(("1_rock_110", "78_jazz-fast"))]
    for path in sample:
        data = path.read_bytes()
        assert_same_music(midi.midi_to_note_sequence(data, path), reference(data))


def test_non_ascii_track_names_are_decoded_as_utf8() -> None:
    name = "Schlagzeug – 音轨"
    data = build_midi([[(0, mido.MetaMessage("track_name", name="x")), on(0, 36), off(10, 36)]])
    data = data.replace(b"\x03\x01x", b"\x03" + bytes([len(name.encode())]) + name.encode())
    data = data[:18] + (int.from_bytes(data[18:22], "big") + len(name.encode()) - 1).to_bytes(4, "big") + data[22:]
    assert midi.midi_to_note_sequence(data).instrument_infos[0].name == name


@pytest.mark.parametrize("path", MIDI_FIXTURES, ids=lambda p: p.name)
def test_midi_round_trip_keeps_every_note_within_one_tick(path: Path, tmp_path: Path) -> None:
    original = read_music_file(path).sequences[0]
    write_midi(original, tmp_path / "out.mid")
    again = read_music_file(tmp_path / "out.mid").sequences[0]
    assert len(again.notes) == len(original.notes)
    seconds_per_tick = 60.0 / (max(t.qpm for t in original.tempos) * original.ticks_per_quarter)
    key = lambda n: (n.start_time, n.pitch, n.end_time)  # noqa: E731
    for before, after in zip(sorted(original.notes, key=key), sorted(again.notes, key=key)):
        assert (before.pitch, before.velocity, before.program, before.is_drum) == (
            after.pitch, after.velocity, after.program, after.is_drum)
        assert abs(before.start_time - after.start_time) <= seconds_per_tick
        assert abs(before.end_time - after.end_time) <= seconds_per_tick


def test_write_midi_is_atomic(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "keep.mid"
    target.write_bytes(b"previous")
    sequence = read_music_file(MIDI_FIXTURES[0]).sequences[0]

    class HalfWritten:
        def write(self, path):
            Path(path).write_bytes(b"half")
            raise RuntimeError("disk full")

    from generation.io import writers

    monkeypatch.setattr(writers, "to_pretty_midi", lambda sequence: HalfWritten())
    with pytest.raises(RuntimeError):
        write_midi(sequence, target)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.mid"]


# Each broken fixture is named after the error it must give.
BROKEN = {
    "empty_file.mid": "empty file",
    "not_a_midi_file_text.mid": "not a MIDI file: looks like text",
    "not_a_midi_file_garbage.mid": "not a MIDI file",
    "truncated.mid": "truncated",
    "corrupt_midi_running_status.mid": "corrupt MIDI",
    "not_readable_as_musicxml.xml": "not readable as MusicXML",
    "not_readable_as_musicxml.mxl": "not readable as MusicXML",
    "no_tunes_found.abc": "no tunes found",
}


def test_every_broken_fixture_has_an_expected_error() -> None:
    assert sorted(p.name for p in (FIXTURES / "broken").iterdir()) == sorted(BROKEN)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_file_gives_one_line_error_naming_it(name: str) -> None:
    path = FIXTURES / "broken" / name
    with pytest.raises(BadInputFile) as caught:
        read_music_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert BROKEN[name] in caught.value.reason
    assert "\n" not in message


@pytest.mark.parametrize("walk", [False, True], ids=["symusic", "event walk"])
def test_time_signature_denominator_beyond_int32_is_a_bad_file(walk: bool, monkeypatch) -> None:
    # Found by fuzzing: the denominator is 2 ** byte, and 2 ** 40 does not fit the proto's int32.
    data = build_midi([[(0, mido.MetaMessage("time_signature", numerator=4, denominator=4)), on(0, 60), off(10, 60)]])
    data = data.replace(b"\xff\x58\x04\x04\x02", b"\xff\x58\x04\x04\x28")
    if walk:
        monkeypatch.setattr(midi, "_symusic_track", lambda *args: (_ for _ in ()).throw(midi._NeedsEventWalk()))
    with pytest.raises(BadInputFile, match="corrupt MIDI: time signature 4/"):
        midi.midi_to_note_sequence(data, "odd.mid")


@pytest.mark.parametrize("walk", [False, True], ids=["symusic", "event walk"])
@pytest.mark.parametrize("at", [0, 10], ids=["at the start", "mid-file"])
def test_a_tempo_of_zero_is_a_bad_file(walk: bool, at: int, monkeypatch) -> None:
    # Found by a hostile corpus (issue 16): set_tempo 0 made the tick -> seconds map divide by zero.
    data = build_midi([[(at, mido.MetaMessage("set_tempo", tempo=0)), on(0, 60), off(10, 60), on(20, 62), off(30, 62)]])
    if walk:
        monkeypatch.setattr(midi, "_symusic_track", lambda *args: (_ for _ in ()).throw(midi._NeedsEventWalk()))
    with pytest.raises(BadInputFile, match=f"a tempo of 0 microseconds per quarter note at tick {at}"):
        midi.midi_to_note_sequence(data, "tempo0.mid")


def test_header_declares_more_tracks_than_the_file_has() -> None:
    data = build_midi([[on(0, 60), off(10, 60)]])
    data = data[:10] + (3).to_bytes(2, "big") + data[12:]
    with pytest.raises(BadInputFile, match="declares 3 tracks, the file ends after 1"):
        midi.midi_to_note_sequence(data, "three.mid")
