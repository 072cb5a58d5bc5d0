"""MIDI written by `gen continue`, `gen vary` and `gen humanize` for MT3-style input: every original
note at its time (within 1 ms), and bar lines where the music's downbeats are, read back by pretty_midi.

The inputs are MT3-style copies (120 bpm, 4/4, 220 ticks per quarter, velocity 127) of the README's
example played at odd tempos and starting 1.133 s in, as the multi-instrument MT3 file in ../shared does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from generation.io.midi import midi_to_note_sequence
from generation.io.readers import read_music_file
from generation.transcription import analyse, mt3_style_midi

from .test_cli import run

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bantry_lasses.mid"
LEAD_IN = 1.133


def mt3_copy(tmp_path: Path, bpm: float) -> Path:
    sequence = read_music_file(EXAMPLE).sequences[0]
    scale = sequence.tempos[0].qpm / bpm
    for note in sequence.notes:
        note.start_time = note.start_time * scale + LEAD_IN
        note.end_time = note.end_time * scale + LEAD_IN
    path = tmp_path / f"bantry_{bpm:g}bpm_mt3.mid"
    path.write_bytes(mt3_style_midi(sequence))
    return path


def notes(sequence, *, drums: bool = True) -> list[tuple]:
    return sorted((n.program, n.is_drum, n.pitch, n.start_time, n.end_time, n.velocity) for n in sequence.notes
                  if drums or not n.is_drum)


def assert_originals_kept(original, written, *, drums: bool = True) -> None:
    """Every original note is in `written` with its pitch, velocity and program, within 1 ms."""
    kept = notes(original, drums=drums)
    found = {}
    for note in notes(written, drums=drums):
        found.setdefault(note[:3], []).append(note)
    for note in kept:
        candidates = found.get(note[:3], [])
        errors = [max(abs(c[3] - note[3]), abs(c[4] - note[4])) for c in candidates if c[5] == note[5]]
        assert errors and min(errors) <= 1e-3, f"original note {note} not kept within 1 ms (best: {errors and min(errors)})"


def assert_bar_lines_on_downbeats(path: Path, analysis, until: float) -> None:
    downbeats = pretty_midi.PrettyMIDI(str(path)).get_downbeats()
    expected = [float(analysis.from_grid(analysis.to_grid(analysis.first_downbeat) + k * analysis.bar_seconds))
                for k in range(int((until - analysis.first_downbeat) / analysis.bar_seconds) + 1)]
    distance = np.abs(np.asarray(expected)[:, None] - downbeats[None, :]).min(axis=1)
    assert distance.max() < 1e-3, f"bar lines {downbeats[:6]} ... miss the downbeats {expected[:6]} ..."


@pytest.mark.parametrize("bpm", [65.0, 87.0, 137.0])
def test_continue_keeps_every_original_note_and_draws_the_musics_bars(bpm: float, tmp_path: Path) -> None:
    song = mt3_copy(tmp_path, bpm)
    original = midi_to_note_sequence(song.read_bytes(), song)
    out = tmp_path / "continued.mid"
    result = run("continue", str(song), "-o", str(out), "--bars", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.splitlines()[-1])
    written = midi_to_note_sequence(out.read_bytes(), out)
    assert_originals_kept(original, written)
    analysis = analyse(original)
    assert analysis.first_downbeat == pytest.approx(LEAD_IN, abs=0.02)
    assert_bar_lines_on_downbeats(out, analysis, report["continuation_start"] + analysis.bar_seconds)
    new = [n.start_time for n in written.notes if n.start_time >= report["continuation_start"] - 1e-3]
    assert new and min(new) >= report["continuation_start"] - 1e-3


def test_vary_and_humanize_draw_the_musics_bars(tmp_path: Path) -> None:
    song = mt3_copy(tmp_path, 87.0)
    original = midi_to_note_sequence(song.read_bytes(), song)
    analysis = analyse(original)
    for args in (("vary", str(song), "-o", str(tmp_path / "varied.mid"), "--amount", "0"),
                 ("humanize", "groove-humanize", str(song), "-o", str(tmp_path / "humanized.mid"))):
        result = run(*args)
        assert result.exit_code == 0, result.output
        out = Path(args[args.index("-o") + 1])
        written = midi_to_note_sequence(out.read_bytes(), out)
        assert_originals_kept(original, written, drums=False)
        assert_bar_lines_on_downbeats(out, analysis, analysis.end_time)


def test_the_writer_lays_a_long_tempo_map_as_note_seq_does(tmp_path: Path) -> None:
    """500 tempo events: the same bytes as note_seq's writer (which recomputes the whole tempo map
    after each event: minutes for a tempo event on every tick; this writer does it once)."""
    from note_seq import midi_io

    from generation.io.writers import write_midi
    from generation.protos import NoteSequence

    sequence = NoteSequence(ticks_per_quarter=96)
    time = 0.0
    for k in range(500):
        sequence.tempos.add(time=time, qpm=80 + (k * 37) % 90)
        sequence.notes.add(pitch=60 + k % 12, velocity=90, start_time=time, end_time=time + 0.05)
        time += 0.013 * (1 + k % 5)
    midi_io.sequence_proto_to_midi_file(sequence, str(tmp_path / "note_seq.mid"))
    write_midi(sequence, tmp_path / "gen.mid")
    assert (tmp_path / "gen.mid").read_bytes() == (tmp_path / "note_seq.mid").read_bytes()


def test_a_tempo_slower_than_midi_can_store_is_written_at_the_slowest_it_can(tmp_path: Path) -> None:
    from generation.io.writers import SLOWEST_QPM, write_midi
    from generation.protos import NoteSequence

    sequence = NoteSequence(ticks_per_quarter=96)
    sequence.tempos.add(time=0.0, qpm=2.0)  # 30,000,000 microseconds per quarter: past MIDI's 24 bits
    sequence.notes.add(pitch=60, velocity=90, start_time=0.0, end_time=10.0)
    write_midi(sequence, tmp_path / "slow.mid")
    assert read_music_file(tmp_path / "slow.mid").sequences[0].tempos[0].qpm == pytest.approx(SLOWEST_QPM, rel=1e-6)
