"""`gen continue` on MT3-style files built here from committed fixtures: tempo, downbeat, the
original kept note for note, the continuation on the piece's grid, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from generation.io.readers import read_music_file
from generation.protos import NoteSequence
from generation.transcription import analyse, is_mt3_style, mt3_style_midi

from .conftest import FIXTURES, train_tiny_runs

GROOVE_FILES = sorted((FIXTURES / "groove").rglob("*.mid"))
# Tempo is estimated reliably from more than 10 s of music; the one-bar fill is checked apart.
LONG_FILES = [p for p in GROOVE_FILES if "_fill_" not in p.name]
FILL = next(p for p in GROOVE_FILES if "_fill_" in p.name)
ARRANGEMENT = FIXTURES / "multitrack" / "pop_arrangement.mid"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def tempo_hit(estimate: float, truth: float) -> bool:
    return any(abs(estimate - truth * m) / (truth * m) <= 0.04 for m in (0.5, 1.0, 2.0))


def mt3_copy(path: Path, tmp_path: Path, velocity: int | None = 127) -> Path:
    original = read_music_file(path).sequences[0]
    out = tmp_path / f"{path.stem}_mt3.mid"
    out.write_bytes(mt3_style_midi(original, velocity=velocity))
    return out


@pytest.mark.parametrize("path", LONG_FILES + [ARRANGEMENT], ids=lambda p: p.stem)
def test_mt3_style_copies_give_the_files_tempo(path: Path, tmp_path: Path) -> None:
    original = read_music_file(path).sequences[0]
    copy = read_music_file(mt3_copy(path, tmp_path)).sequences[0]
    assert is_mt3_style(copy) and not is_mt3_style(original)
    analysis = analyse(copy)
    assert analysis.tempo_source == "estimated" and analysis.flat_velocities
    assert tempo_hit(analysis.tempo_bpm, original.tempos[0].qpm), (analysis.tempo_bpm, original.tempos[0].qpm)
    assert analyse(original).tempo_source == "file"  # an ordinary file's own tempo is trusted


def test_a_short_fill_still_gives_a_tempo_in_range(tmp_path: Path) -> None:
    analysis = analyse(read_music_file(mt3_copy(FILL, tmp_path)).sequences[0])
    # The continuation starts at the first downbeat at or after the end (a note may ring a 16th past it).
    assert 60 <= analysis.tempo_bpm < 200
    assert analysis.continuation_start >= analysis.end_time - analysis.bar_seconds / 16 - 1e-6


def test_a_drummers_downbeat_is_found(tmp_path: Path) -> None:
    """A 4/4 Groove file starts on a bar line: the copy's estimated downbeat is on the file's bar grid."""
    path = next(p for p in LONG_FILES if p.name.endswith("4-4.mid"))
    original = read_music_file(path).sequences[0]
    analysis = analyse(read_music_file(mt3_copy(path, tmp_path)).sequences[0])
    assert analysis.tempo_bpm == pytest.approx(original.tempos[0].qpm, rel=0.01)
    bar = 4 * 60 / original.tempos[0].qpm
    off = (analysis.first_downbeat / bar) % 1
    assert min(off, 1 - off) < 0.05, (analysis.first_downbeat, bar)


def test_roles_and_key_of_an_arrangement() -> None:
    analysis = analyse(read_music_file(ARRANGEMENT).sequences[0])
    roles = {(t.program, t.is_drum): t.role for t in analysis.tracks}
    assert roles == {(0, True): "drums", (33, False): "bass", (0, False): "chords", (80, False): "melody"}
    assert analysis.key.endswith("major") or analysis.key.endswith("minor")


@pytest.fixture(scope="module")
def drum_and_melody_runs(tmp_path_factory) -> dict[str, Path]:
    roles = {"drums": "drum_kit_rnn_tiny", "melody": "attention_rnn_tiny", "chords": "polyphony_rnn_tiny"}
    return train_tiny_runs(tmp_path_factory.mktemp("continue"), roles)


def models_args(runs: dict[str, Path]) -> list[str]:
    return [arg for role, path in runs.items() for arg in ("--model", f"{role}={path}")]


def test_continue_keeps_every_note_and_follows_the_grid(drum_and_melody_runs, tmp_path: Path) -> None:
    song = mt3_copy(ARRANGEMENT, tmp_path)
    out = tmp_path / "continued.mid"
    result = run("continue", str(song), "-o", str(out), "--bars", "4", "--seed", "3", "--json",
                 *models_args(drum_and_melody_runs))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["output"] == str(out) and report["time_signature"] == "4/4" and report["key"]
    assert tempo_hit(report["tempo_bpm"], 96.0)
    assert {t["role"] for t in report["tracks"]} == {"drums", "bass", "melody", "chords"}
    original = read_music_file(song).sequences[0]
    written = read_music_file(out).sequences[0]
    remaining = [(n.start_time, n.pitch, n.velocity, n.program, n.is_drum) for n in written.notes]
    for note in original.notes:  # every original note: same time (1 ms), pitch, velocity, program
        match = [r for r in remaining if abs(r[0] - note.start_time) < 1e-3 and r[1:] == (note.pitch, note.velocity, note.program, note.is_drum)]
        assert match, note
        remaining.remove(match[0])
    start = report["continuation_start"]
    end_of_piece = max(n.end_time for n in original.notes)
    beat = 60 / report["tempo_bpm"]
    assert start >= end_of_piece - 1e-3 and start - end_of_piece < 4 * beat + 1e-3  # the next downbeat
    assert remaining and all(r[0] >= start - 1e-3 for r in remaining)
    sixteenth = beat / 4
    for onset, *_ in remaining:  # the continuation's onsets lie on the estimated tempo's 16th grid
        steps = (onset - start) / sixteenth
        assert abs(steps - round(steps)) < 0.05
    assert max(r[0] for r in remaining) < start + 4 * 4 * beat
    assert written.tempos[0].qpm == pytest.approx(report["tempo_bpm"], rel=1e-3)


def test_only_the_continuation_and_a_missing_role(drum_and_melody_runs, tmp_path: Path) -> None:
    song = mt3_copy(GROOVE_FILES[0], tmp_path)
    out = tmp_path / "new.mid"
    result = run("continue", str(song), "-o", str(out), "--only-continuation", "--bars", "2",
                 "--model", f"drums={drum_and_melody_runs['drums']}")
    assert result.exit_code == 0, result.output
    analysis = analyse(read_music_file(song).sequences[0])
    written = read_music_file(out).sequences[0]
    assert written.notes and all(n.start_time >= analysis.continuation_start - 1e-3 for n in written.notes)
    result = run("continue", str(song), "-o", str(tmp_path / "x.mid"), "--no-bundled", "--style", "models",
                 "--model", f"melody={drum_and_melody_runs['melody']}")
    assert result.exit_code == 1 and "no model for any of its tracks (drums)" in result.stderr
    assert not (tmp_path / "x.mid").exists()


def write_sequence(path: Path, notes: list[tuple[int, float, float, int, bool]], tracks: int = 1) -> Path:
    sequence = NoteSequence(ticks_per_quarter=220)
    sequence.tempos.add(qpm=120)
    for index, (pitch, start, end, velocity, is_drum) in enumerate(notes):
        sequence.notes.add(pitch=pitch, start_time=start, end_time=end, velocity=velocity, is_drum=is_drum,
                           instrument=index % tracks, program=(index % tracks) % 128)
    sequence.total_time = max([n.end_time for n in sequence.notes], default=0.0)
    path.write_bytes(mt3_style_midi(sequence))
    return path


def test_bad_and_odd_input_gives_a_line_or_a_sensible_result(drum_and_melody_runs, tmp_path: Path) -> None:
    args = models_args(drum_and_melody_runs)
    empty = write_sequence(tmp_path / "empty.mid", [])
    result = run("continue", str(empty), "-o", str(tmp_path / "o1.mid"), *args)
    assert result.exit_code == 1 and result.stderr.strip().endswith("it has no notes") and str(empty) in result.stderr
    assert not (tmp_path / "o1.mid").exists()
    one = write_sequence(tmp_path / "one.mid", [(60, 0.0, 0.5, 127, False)])
    result = run("continue", str(one), "-o", str(tmp_path / "o2.mid"), "--seed", "1", *args)
    assert result.exit_code == 0, result.output
    odd = [(60, 0.0, 0.0, 127, False)] + [(62, 0.5 * i, 0.5 * i + 0.4, 127, False) for i in range(16)] * 2
    result = run("continue", str(write_sequence(tmp_path / "odd.mid", odd)), "-o", str(tmp_path / "o3.mid"), *args)
    assert result.exit_code == 0, result.output  # zero-length and doubled notes
    many = [(40 + i % 40, 0.25 * i, 0.25 * i + 0.2, 100, False) for i in range(128 * 2)]
    result = run("continue", str(write_sequence(tmp_path / "many.mid", many, tracks=120)), "-o", str(tmp_path / "o4.mid"),
                 "--bars", "1", *args)
    assert result.exit_code == 0, result.output
    assert sum(line.startswith("  ") for line in result.stdout.splitlines()) >= 100  # a line per track
    assert run("continue", str(one), "-o", str(tmp_path / "o5.mid"), "--model", "lead=x").exit_code == 2


def test_a_long_transcription_is_estimated_in_bounded_time_and_memory(tmp_path: Path) -> None:
    """45 minutes of notes at 100 bpm: the tempo fit works in blocks of onsets."""
    import time

    sequence = NoteSequence(ticks_per_quarter=220)
    beat = 0.6
    for index in range(int(45 * 60 / beat * 2)):
        sequence.notes.add(pitch=36 if index % 4 == 0 else 42, start_time=index * beat / 2,
                           end_time=index * beat / 2 + 0.01, velocity=127, is_drum=True, instrument=9)
    started = time.perf_counter()
    analysis = analyse(sequence, estimate=True)
    assert tempo_hit(analysis.tempo_bpm, 100.0) and time.perf_counter() - started < 60


@pytest.fixture(scope="module")
def groove_run(drum_and_melody_runs) -> Path:
    root = drum_and_melody_runs["drums"].parent
    trained = run("train", "--config", "groovae_tiny", "--examples", str(root / "music.tfrecord"), "--run-dir",
                  str(root / "groove"), "--num-steps", "4", "--batch-size", "2", "--workers", "1", "-q")
    assert trained.exit_code == 0, trained.output
    return root / "groove"


def pitched(sequence) -> list[tuple]:
    return sorted((round(n.start_time, 3), n.pitch, n.velocity, n.program) for n in sequence.notes if not n.is_drum)


def test_vary_regrooves_drums_and_resamples_chosen_bars(drum_and_melody_runs, groove_run, tmp_path: Path,
                                                       monkeypatch) -> None:
    from generation import continuation

    song = mt3_copy(ARRANGEMENT, tmp_path)
    # The tiny models are untrained: their bars are never near a track's texture, and the guard keeps the piece.
    kept = run("vary", str(song), "-o", str(tmp_path / "kept.mid"), "--no-bundled", "--groove", str(groove_run),
               "--model", f"melody={drum_and_melody_runs['melody']}", "--amount", "1", "--seed", "5")
    assert kept.exit_code == 0 and "melody: Lead 1 (square) (program 80): 0 of " in kept.stdout, kept.output
    monkeypatch.setattr(continuation, "MAX_TEXTURE_DISTANCE", float("inf"))
    original = read_music_file(song).sequences[0]
    out = tmp_path / "varied.mid"
    models = ["--no-bundled", "--model", f"melody={drum_and_melody_runs['melody']}",
              "--model", f"chords={drum_and_melody_runs['chords']}"]
    result = run("vary", str(song), "-o", str(out), "-n", "2", "--groove", str(groove_run), *models, "--amount", "1",
                 "--seed", "5", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["output"] == [str(tmp_path / "varied-001.mid"), str(tmp_path / "varied-002.mid")]
    assert tempo_hit(report["tempo_bpm"], 96.0) and "drums: Drums" in report["changed"]
    first, second = (read_music_file(p).sequences[0] for p in report["output"])
    assert pitched(first) != pitched(original) and pitched(first) != pitched(second)
    assert any(n.is_drum for n in first.notes)
    end = max(n.end_time for n in original.notes)
    assert all(n.start_time < end + 1e-3 for n in first.notes)  # a variation, not a continuation
    # Nothing re-sampled: the pitched tracks come back note for note.
    same = run("vary", str(song), "-o", str(tmp_path / "same.mid"), "--groove", str(groove_run), *models,
               "--amount", "0")
    assert same.exit_code == 0, same.output
    assert pitched(read_music_file(tmp_path / "same.mid").sequences[0]) == pitched(original)


def test_vary_humanize_and_its_errors(groove_run, tmp_path: Path, monkeypatch) -> None:
    song = mt3_copy(GROOVE_FILES[0], tmp_path)
    result = run("vary", str(song), "-o", str(tmp_path / "played.mid"), "--groove", str(groove_run), "--mode", "humanize")
    assert result.exit_code == 0, result.output
    played = read_music_file(tmp_path / "played.mid").sequences[0]
    assert played.notes and all(n.is_drum for n in played.notes)
    from generation import bundled

    monkeypatch.setattr(bundled, "models_dir", lambda: tmp_path / "no-models")
    result = run("vary", str(song), "-o", str(tmp_path / "x.mid"))
    assert result.exit_code == 2 and "no bundled models are installed" in result.stderr
    result = run("vary", str(song), "-o", str(tmp_path / "x.mid"), "--groove", str(groove_run), "--tracks", "lead")
    assert result.exit_code == 2 and "roles are drums, bass, melody, chords" in result.stderr


def test_vary_keeps_the_candidate_bar_that_agrees_with_the_other_tracks() -> None:
    from types import SimpleNamespace

    from generation.continuation import VARY_CANDIDATES, vary_piece

    piece = NoteSequence(ticks_per_quarter=480)
    piece.tempos.add(qpm=120)
    piece.time_signatures.add(numerator=4, denominator=4)
    for bar in range(4):  # a held C major chord each bar, a melody note on each beat
        for pitch in (48, 52, 55):
            piece.notes.add(pitch=pitch, velocity=70, start_time=bar * 2.0, end_time=bar * 2.0 + 2.0, program=0)
        for beat in range(4):
            piece.notes.add(pitch=72, velocity=90, start_time=bar * 2.0 + beat * 0.5,
                            end_time=bar * 2.0 + beat * 0.5 + 0.45, program=73)
    piece.total_time = 8.0

    def bar_of(pitches, start):
        sequence = NoteSequence()
        for k, pitch in enumerate(pitches):
            sequence.notes.add(pitch=pitch, velocity=80, start_time=start + k * 0.5, end_time=start + k * 0.5 + 0.4)
        return sequence

    class Candidates:  # an LSTM stand-in: its best-fitting candidate is never the first
        encoding = SimpleNamespace(metric=True)
        config = SimpleNamespace(name="fake_rnn")

        def sample(self, n, primer, *, start_time, **_):
            assert n == VARY_CANDIDATES
            clashing = [bar_of([73, 75, 78, 70], start_time) for _ in range(n - 1)]
            return clashing + [bar_of([76, 79, 72, 67], start_time)]

    result = vary_piece(piece, {"melody": Candidates()}, amount=1.0, seed=2)
    melody = [n.pitch for n in result.sequence.notes if n.program == 73]
    assert melody[:4] == [72] * 4  # the first bar has no music before it to go on from
    assert melody[4:] == [76, 79, 72, 67] * 3
    assert "best of 4 by its harmony" in result.changed["melody: Flute (program 73)"]


def drifting_copy(tmp_path: Path, start_bpm: float = 126.0, end_bpm: float = 146.0) -> tuple[Path, object]:
    """A Groove file played three times over while its tempo rises steadily from `start_bpm` to
    `end_bpm`, written as MT3 writes MIDI; and the performance's time of any beat position."""
    from generation.transcription import ramped_performance

    played, time_of = ramped_performance(read_music_file(LONG_FILES[0]).sequences[0], start_bpm, end_bpm)
    path = tmp_path / "drifting_mt3.mid"
    path.write_bytes(mt3_style_midi(played))
    return path, time_of


def test_a_drifting_performance_is_continued_at_its_ending_tempo_on_its_own_beats(drum_and_melody_runs,
                                                                                   tmp_path: Path) -> None:
    import dataclasses

    import numpy as np

    path, time_of = drifting_copy(tmp_path)
    analysis = analyse(read_music_file(path).sequences[0])
    assert analysis.drifting and tempo_hit(analysis.end_tempo_bpm, 146)
    ratio = round(analysis.end_tempo_bpm / 146 * 2) / 2  # the beat found may be the played one's double or half
    assert analysis.end_tempo_bpm == pytest.approx(146 * ratio, rel=0.02)
    true_end = 60 / 146 / ratio  # the performance's last beat length goes on after it

    def true_beat_times(grid_times):
        """The performance's beat nearest each of the analysis's continuation beats."""
        performance = np.asarray(analysis.from_grid(grid_times))
        positions = np.arange(0, 400 * ratio) / ratio
        beats = time_of(positions[time_of(positions) <= analysis.end_time])
        beats = np.concatenate([beats, beats[-1] + true_end * np.arange(1, 40)])
        return performance, beats[np.abs(performance[:, None] - beats[None, :]).argmin(axis=1)]

    grid_beats = analysis.continuation_grid_start + np.arange(9) * analysis.beat_seconds  # two bars on
    mapped, truth = true_beat_times(grid_beats)
    # Within a 16th note of the performance's own beats (a window's steady fit lags a speeding
    # performance a little at its end).
    assert np.abs(mapped - truth).max() < 0.25 * true_end, (mapped - truth) / true_end
    steady = dataclasses.replace(analysis, beat_times=[])  # what one tempo for the whole piece would give
    assert np.abs(np.asarray(steady.from_grid(steady.to_grid(analysis.end_time) + np.arange(9) * steady.beat_seconds))
                  - truth).max() > 0.25 * true_end or abs(steady.tempo_bpm / 146 - 1) > 0.03
    result = run("continue", str(path), "-o", str(tmp_path / "out.mid"), "--bars", "2", "--seed", "1", "--json",
                 "--style", "models", "--model", f"drums={drum_and_melody_runs['drums']}")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["tempo_drifts"] and "drifting: " in result.stdout
    written = read_music_file(tmp_path / "out.mid").sequences[0]
    assert len(written.tempos) > 3 and written.tempos[-1].qpm == pytest.approx(146 * ratio, rel=0.02)
    onsets = sorted({round(n.start_time, 4) for n in written.notes if n.start_time >= report["continuation_start"] - 1e-3})
    assert onsets and onsets[0] == pytest.approx(report["continuation_start"], abs=0.02)


def piano_model_copy(tmp_path: Path) -> Path:
    """A Bach chorale (committed fixture) as MT3's piano model writes a transcription: one piano
    track, real velocities, the sustain pedal folded into note lengths, at 120 bpm / 220 ticks."""
    import random

    chorale = read_music_file(FIXTURES / "scores" / "bwv66.6.mxl").sequences[0]
    beat = 60 / chorale.tempos[0].qpm
    rng = random.Random(1)
    piano = NoteSequence(ticks_per_quarter=220)
    for note in chorale.notes:
        played = piano.notes.add()
        played.CopyFrom(note)
        played.program = played.instrument = 0
        played.velocity = rng.randint(48, 92)
        played.end_time = max(note.end_time, (int(note.start_time / (2 * beat)) + 1) * 2 * beat)  # pedal
    path = tmp_path / "chorale_piano_mt3.mid"
    path.write_bytes(mt3_style_midi(piano, velocity=None))
    return path


def test_piano_model_output_is_continued_on_its_own_bar_lines(drum_and_melody_runs, tmp_path: Path) -> None:
    """The chorale starts with a one-beat pickup at 120 bpm: bar lines at 0.5 s, 2.5 s, ...; it ends at 18 s."""
    song = piano_model_copy(tmp_path)
    original = read_music_file(song).sequences[0]
    analysis = analyse(original)
    assert analysis.mt3_style and not analysis.flat_velocities
    assert tempo_hit(analysis.tempo_bpm, 120) and analysis.first_downbeat == pytest.approx(0.5, abs=0.02)
    assert [t.role for t in analysis.tracks] == ["chords"] and analysis.key == "F# minor"
    out = tmp_path / "continued.mid"
    result = run("continue", str(song), "-o", str(out), "--bars", "2", "--seed", "2", "--json",
                 "--model", f"chords={drum_and_melody_runs['chords']}")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["continuation_start"] == pytest.approx(18.5, abs=0.02)
    written = read_music_file(out).sequences[0]
    kept = sorted((round(n.start_time, 3), n.pitch, n.velocity) for n in written.notes if n.start_time < 18.4)
    assert kept == sorted((round(n.start_time, 3), n.pitch, n.velocity) for n in original.notes)
    new = [n.start_time for n in written.notes if n.start_time >= 18.4]
    assert new and all(abs((t - 18.5) / 0.125 - round((t - 18.5) / 0.125)) < 0.05 for t in new)


def test_a_piece_cut_on_an_estimated_downbeat_goes_on_at_once() -> None:
    """An MT3-style prefix cut at a bar line, whose estimated downbeat falls a few ms before its end
    (a note ringing to the cut), continues on that downbeat, not a silent bar later."""
    sequence = NoteSequence(ticks_per_quarter=220)
    sequence.tempos.add(qpm=120)
    sequence.time_signatures.add(numerator=4, denominator=4)
    for beat in range(32):  # 8 bars at 120 bpm of quarter notes, a low note on each downbeat
        sequence.notes.add(pitch=40 if beat % 4 == 0 else 64 + beat % 3, velocity=127, start_time=beat * 0.5,
                           end_time=beat * 0.5 + 0.5)
    # The last note rings 15 ms past the cut at 16 s: the downbeat at 16 s is where the continuation begins.
    sequence.notes[-1].end_time = 16.015
    analysis = analyse(sequence)
    assert analysis.continuation_start == pytest.approx(16.0, abs=0.02)
