"""`gen render`: a piece played on a General MIDI SoundFont, at one loudness, never clipped."""

from __future__ import annotations

import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli
from generation.io.readers import read_music_file
from generation.render import PEAK_DBFS, TARGET_RMS_DBFS, loudness_gain, with_gain

pytest.importorskip("midirenderer", reason="gen render needs the audio extra (pip install '.[audio]')")
soundfile = pytest.importorskip("soundfile", reason="FLAC needs the audio extra (pip install '.[audio]')")

REPOSITORY = Path(__file__).resolve().parents[1]
EXAMPLE = REPOSITORY / "examples" / "bantry_lasses.mid"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def db(x: float) -> float:
    return 20 * np.log10(x)


def test_the_example_renders_at_the_loudness_target_without_clipping(tmp_path: Path) -> None:
    out = tmp_path / "example.wav"
    result = run("render", str(EXAMPLE), "-o", str(out))
    assert result.exit_code == 0, result.output
    with wave.open(str(out)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth()) == (2, 2)
        rate, frames = reader.getframerate(), reader.readframes(reader.getnframes())
    audio = np.frombuffer(frames, "<i2").reshape(-1, 2) / 32768.0
    last_note = max(n.end_time for n in read_music_file(EXAMPLE).sequences[0].notes)  # 8 bars at 112 bpm
    assert last_note + 0.2 < len(audio) / rate <= last_note + 2.1  # the last notes ring out, then it ends
    assert db(np.abs(audio[-rate // 50:]).max() + 1e-9) < -50  # ... on their decay, not cut off
    assert db(np.sqrt(np.mean(audio ** 2))) == pytest.approx(TARGET_RMS_DBFS, abs=0.2) or \
        db(np.abs(audio).max()) == pytest.approx(PEAK_DBFS, abs=0.1)
    assert db(np.abs(audio).max()) <= PEAK_DBFS + 0.01
    assert np.abs(audio[: rate // 2]).max() > 0.01  # the fiddle and drums start at once


def test_the_drums_are_heard() -> None:
    """A drums-only MT3 file: the synthesizer's own output (before any gain) has a loud attack at
    its kicks (median over them within 30 dB of full scale)."""
    from generation.io.midi import midi_to_note_sequence
    from generation.render import default_soundfont, synthesize

    drums = REPOSITORY / "examples" / "drums_mt3.mid"
    samples, rate = synthesize(drums.read_bytes(), default_soundfont())
    audio = samples / 32768.0
    sequence = midi_to_note_sequence(drums.read_bytes(), str(drums))
    kicks = sorted(n.start_time for n in sequence.notes if n.pitch in (35, 36))
    assert kicks
    level = np.abs(audio).max(axis=1)
    attacks = [level[int(t * rate):int(t * rate) + rate // 20].max() for t in kicks]
    assert db(np.median(attacks)) > -30, db(np.median(attacks))
    assert db(float(np.abs(audio).max())) > -20


def test_flac_holds_the_same_samples_as_wav(tmp_path: Path) -> None:
    for suffix in ("wav", "flac"):
        assert run("render", str(EXAMPLE), "-o", str(tmp_path / f"x.{suffix}")).exit_code == 0
    wav, wav_rate = soundfile.read(tmp_path / "x.wav", dtype="int16")
    flac, flac_rate = soundfile.read(tmp_path / "x.flac", dtype="int16")
    assert wav_rate == flac_rate and np.array_equal(wav, flac)


def test_loudness_is_capped_by_the_peak_and_silence_stays_silent() -> None:
    spiky = np.zeros((48000, 2), np.int16)
    spiky[::4800] = int(0.9 * 32768)  # a quiet RMS, loud peaks: the peak sets the gain
    gain = loudness_gain(spiky)
    louder = with_gain(spiky, gain) / 32768.0
    assert db(np.abs(louder).max()) == pytest.approx(PEAK_DBFS, abs=1e-3)
    assert gain == pytest.approx(PEAK_DBFS - db(0.9), abs=1e-4)
    steady = np.round(np.tile(np.sin(np.linspace(0, 2000 * np.pi, 48000))[:, None] * 0.01 * 32768, (1, 2)))
    normal = with_gain(steady.astype(np.int16), loudness_gain(steady.astype(np.int16))) / 32768.0
    assert db(np.sqrt(np.mean(normal ** 2))) == pytest.approx(TARGET_RMS_DBFS, abs=0.01)
    assert loudness_gain(np.zeros((100, 2), np.int16)) == 0.0


def test_gain_and_writing_go_block_by_block(tmp_path: Path, monkeypatch) -> None:
    """Blocks smaller than the audio give the same file and gain as one block."""
    from generation import render

    rng = np.random.default_rng(0)
    samples = (rng.standard_normal((10_000, 2)) * 1000).astype(np.int16)
    whole_gain = loudness_gain(samples)
    render.write_audio(samples, 22050, tmp_path / "whole.wav", whole_gain)
    monkeypatch.setattr(render, "BLOCK_FRAMES", 777)
    assert loudness_gain(samples) == pytest.approx(whole_gain, abs=1e-9)
    render.write_audio(samples, 22050, tmp_path / "blocks.wav", whole_gain)
    render.write_audio(samples, 22050, tmp_path / "blocks.flac", whole_gain)
    assert (tmp_path / "whole.wav").read_bytes() == (tmp_path / "blocks.wav").read_bytes()
    assert np.array_equal(soundfile.read(tmp_path / "blocks.flac", dtype="int16")[0],
                          soundfile.read(tmp_path / "whole.wav", dtype="int16")[0])
    loud = samples.copy()
    loud[4000:4100] = 0
    loud[5000:] = 0  # silent from frame 5000: cut 50 ms (1102 frames) after the last loud one, 4999
    assert len(render._trim_silence(loud, 22050)) == 4999 + 22050 // 20


def test_a_score_is_rendered_through_midi(tmp_path: Path) -> None:
    score = next(p for p in sorted((FIXTURES / "scores").rglob("*")) if p.suffix in (".xml", ".mxl", ".abc", ".krn"))
    result = run("render", str(score), "-o", str(tmp_path / "score.wav"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "score.wav").stat().st_size > 44


def test_bad_input_gives_one_line_and_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "x.wav"
    cases = [
        (("render", str(FIXTURES / "broken" / "truncated.mid"), "-o", str(out)), 1, "truncated"),
        (("render", str(EXAMPLE), "-o", str(out), "--soundfont", str(EXAMPLE)), 1, "not a SoundFont 2 file"),
        (("render", str(EXAMPLE), "-o", str(tmp_path / "x.mp3")), 2, "audio is written as .wav or .flac"),
        (("render", str(EXAMPLE), "-o", str(tmp_path / "missing" / "x.wav")), 1, "no folder"),
    ]
    for args, status, words in cases:
        result = run(*args)
        assert result.exit_code == status and words in result.output, (args, result.output)
        assert "Traceback" not in result.output
        if status == 1:
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    empty = tmp_path / "empty.mid"
    empty.write_bytes(bytes.fromhex("4d546864000000060001000101e04d54726b0000000400ff2f00"))
    result = run("render", str(empty), "-o", str(out))
    assert result.exit_code == 1 and result.stderr == f"Error: {empty}: it has no notes\n"
    empty.unlink()
    monkeypatch.setitem(sys.modules, "midirenderer", None)  # as without the audio extra
    result = run("render", str(EXAMPLE), "-o", str(out))
    assert result.exit_code == 1 and "pip install 'gen-music[audio]'" in result.stderr
    assert list(tmp_path.iterdir()) == []
