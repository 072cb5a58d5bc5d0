"""`generation.audio_transcription`: a recording to notes with the bundled Basic Pitch model.

A C major arpeggio is rendered here (generation.render: piano on TimGM6mb.sf2, 48 kHz stereo) and
written again as mono, stereo with one silent channel, 44.1, 48 and 8 kHz, WAV, FLAC, OGG and MP3;
each must transcribe to its pitches at its onsets (within 50 ms). The decoder is also checked on
activations made by hand, the resampler on sines, and broken, empty and silent files on their
one-line errors. About 10 s here.
"""

from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path

import numpy as np
import pytest

from generation import audio_transcription as at
from generation.errors import BadInputFile, GenError
from generation.io.readers import read_music_file

soundfile = pytest.importorskip("soundfile", reason="reading audio needs soundfile (pip install '.[transcribe]')")

REPOSITORY = Path(__file__).resolve().parents[1]
ARPEGGIO = [60, 64, 67, 72, 67, 64, 60]  # C4 E4 G4 C5 G4 E4 C4
FIRST, STEP, LENGTH = 0.25, 0.4, 0.35  # seconds: the first onset, onset to onset, each note's length
ONSETS = [FIRST + STEP * i for i in range(len(ARPEGGIO))]
TOLERANCE = 0.05  # seconds, as mir_eval's onset F1


@pytest.fixture(scope="module")
def model():
    pytest.importorskip("onnxruntime", reason="transcription needs onnxruntime (pip install '.[transcribe]')")
    return at.load_model()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, model) -> Path:
    """The arpeggio on piano, as generation.render writes it: 16-bit WAV, 48 kHz stereo."""
    pytest.importorskip("midirenderer", reason="rendering the clip needs midirenderer (pip install '.[audio]')")
    import pretty_midi

    from generation.render import render_file

    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    for pitch, onset in zip(ARPEGGIO, ONSETS):
        piano.notes.append(pretty_midi.Note(velocity=90, pitch=pitch, start=onset, end=onset + LENGTH))
    midi.instruments.append(piano)
    data = io.BytesIO()
    midi.write(data)
    path = tmp_path_factory.mktemp("arpeggio") / "arpeggio.wav"
    render_file(data.getvalue(), path)
    return path


def assert_arpeggio(sequence) -> None:
    """Every onset of the arpeggio is heard, on its pitch, within 50 ms; at each onset the most
    confident note (highest velocity) is the one played (the model also hears some overtones)."""
    notes = list(sequence.notes)
    for pitch, onset in zip(ARPEGGIO, ONSETS):
        near = [n for n in notes if abs(n.start_time - onset) <= TOLERANCE]
        assert any(n.pitch == pitch for n in near), (pitch, onset, [(n.pitch, round(n.start_time, 3)) for n in near])
        assert max(near, key=lambda n: n.velocity).pitch == pitch, (pitch, onset, [(n.pitch, n.velocity) for n in near])
    assert all(21 <= n.pitch <= 108 and 1 <= n.velocity <= 127 and n.end_time > n.start_time for n in notes)


def test_a_rendered_arpeggio_is_transcribed_to_its_pitches_and_onsets(rendered: Path) -> None:
    from generation.transcription import is_mt3_style

    sequence = at.transcribe(rendered)
    assert_arpeggio(sequence)
    assert {(n.instrument, n.program, n.is_drum) for n in sequence.notes} == {(0, 0, False)}  # one piano
    assert is_mt3_style(sequence)  # 220 ticks per quarter at 120 bpm: `gen tidy` estimates tempo and meter
    seconds = soundfile.info(str(rendered)).duration
    assert sequence.total_time == pytest.approx(seconds, abs=0.01)
    assert len(sequence.notes) <= 3 * len(ARPEGGIO)


def _written(rendered: Path, folder: Path, rate: int, channels: str, suffix: str) -> Path:
    """The rendered clip at `rate` (resampled here), mono, stereo or stereo with the right channel
    silent, written as `suffix` (by soundfile: MP3 needs libsndfile 1.1+)."""
    samples, source_rate = soundfile.read(str(rendered), dtype="float32", always_2d=True)
    resampled = np.stack([at.resample(samples[:, c], source_rate, rate) for c in range(2)], axis=1)
    if channels == "mono":
        resampled = resampled.mean(axis=1, keepdims=True)
    elif channels == "left only":
        resampled[:, 1] = 0
    path = folder / f"arpeggio-{rate}-{channels.replace(' ', '-')}{suffix}"
    formats = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS"),
               ".mp3": ("MP3", "MPEG_LAYER_III")}
    format_, subtype = formats[suffix]
    if format_ not in soundfile.available_formats():
        pytest.skip(f"this libsndfile ({soundfile.__libsndfile_version__}) cannot write {format_}")
    soundfile.write(str(path), resampled, rate, format=format_, subtype=subtype)
    return path


@pytest.mark.parametrize("rate, channels, suffix", [
    (44100, "stereo", ".wav"), (44100, "mono", ".flac"), (48000, "left only", ".wav"), (8000, "mono", ".wav"),
    (48000, "stereo", ".ogg"), (44100, "stereo", ".mp3"),
])
def test_other_rates_channels_and_formats_transcribe_alike(rendered: Path, tmp_path: Path, rate: int,
                                                           channels: str, suffix: str) -> None:
    assert_arpeggio(at.transcribe(_written(rendered, tmp_path, rate, channels, suffix)))


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000, 44056, 96000])
def test_the_resampler_keeps_a_sines_frequency_and_level(rate: int) -> None:
    seconds, frequency = 2.0, 1000.0
    n = int(rate * seconds)
    sine = 0.5 * np.sin(2 * np.pi * frequency * np.arange(n) / rate)
    out = at.resample(sine, rate)
    assert out.dtype == np.float32 and len(out) == -(-n * at.SAMPLE_RATE // rate)
    middle = out[2000:-2000]  # away from the edges, where the filter meets the zero padding
    expected = 0.5 * np.sin(2 * np.pi * frequency * np.arange(2000, len(out) - 2000) / at.SAMPLE_RATE)
    assert np.abs(middle - expected).max() < 1e-3  # same frequency, phase and level
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
    peak = np.argmax(spectrum) * at.SAMPLE_RATE / len(middle)
    assert peak == pytest.approx(frequency, abs=at.SAMPLE_RATE / len(middle))


def test_the_resampler_removes_what_22050_hz_cannot_hold() -> None:
    """A 15 kHz tone at 48 kHz is above 11025 Hz: it must vanish, not fold down to 7050 Hz."""
    tone = np.sin(2 * np.pi * 15000 * np.arange(48000) / 48000)
    assert np.sqrt(np.mean(at.resample(tone, 48000)[2000:-2000] ** 2)) < 1e-3  # below -57 dB


def test_frames_tile_the_recording_as_basic_pitch_does() -> None:
    assert at.frame_seconds(0) == 0
    assert at.frame_seconds(141) == pytest.approx(141 * 256 / 22050)
    assert at.frame_seconds(142) == pytest.approx(36164 / 22050)  # the second window's first kept frame
    assert [at.frame_count(n) for n in (1, 256, 257, 36164, 36165)] == [1, 1, 2, 142, 143]
    assert at.windows(np.ones(100_000, np.float32)).shape == (3, 43844)


def _activations(frames: int = 200) -> at.Activations:
    return at.Activations(np.zeros((frames, at.KEYS), np.float32), np.zeros((frames, at.KEYS), np.float32))


def test_the_decoder_follows_onsets_and_bridges_short_gaps() -> None:
    """Rises are kept gradual where no onset is meant: a sudden rise of the note activation counts
    as an onset too (basic-pitch's inferred onsets)."""
    acts = _activations()
    key = 60 - at.LOWEST_PITCH
    acts.note[20:60, key] = 0.8
    acts.note[35:40, key] = 0.2  # a dip below the frame threshold, shorter than GAP_FRAMES: the same note
    acts.note[40:46, key] = np.linspace(0.3, 0.8, 6)
    acts.onset[19:22, key] = [0.3, 0.9, 0.3]  # an onset peak at frame 20
    acts.note[22:58, key + 1] = np.minimum(0.5, np.linspace(0.1, 3.7, 36))  # a semitone's leakage: claimed by the note
    acts.note[100:111, key + 12] = 0.9  # 11 frames: too short, dropped
    for melodia in (False, True):
        events = at.note_events(acts, melodia=melodia)
        assert [(s, e, p) for s, e, p, _ in events] == [(20, 60, 60)], melodia
    assert events[0][3] == pytest.approx(float(acts.note[20:60, key].mean()))
    sequence = at.to_note_sequence(events, 200 * 256 / 22050)
    (note,) = sequence.notes
    assert (note.pitch, note.velocity) == (60, round(127 * events[0][3]))
    assert note.start_time == pytest.approx(20 * 256 / 22050) and note.end_time == pytest.approx(60 * 256 / 22050)


def test_the_melodia_pass_finds_notes_without_an_onset() -> None:
    acts = _activations()
    acts.note[50:80, 40] = 0.6  # no onset activation at all (inferred onsets scale to its peak: none either)
    acts.note[60, 40] = 0.7  # the strongest frame: the note grows from it both ways
    assert at.note_events(acts, melodia=False) == []
    ((start, end, pitch, _),) = at.note_events(acts)
    assert (start, end, pitch) == (50, 79, 40 + at.LOWEST_PITCH)  # basic-pitch ends these a frame sooner


def test_silence_is_an_error_naming_the_file(tmp_path: Path) -> None:
    silent = tmp_path / "silent.wav"
    soundfile.write(str(silent), np.zeros((44100, 2)), 44100)
    with pytest.raises(BadInputFile, match=r"silent\.wav: the audio \(1\.0 s\) is silent"):
        at.transcribe(silent)
    no_samples = tmp_path / "nothing.wav"  # a header and no samples
    soundfile.write(str(no_samples), np.zeros((0, 1)), 44100)
    with pytest.raises(BadInputFile, match="nothing.wav: the audio has no samples"):
        at.transcribe(no_samples)


def test_a_sound_without_notes_gives_an_empty_sequence(tmp_path: Path, model) -> None:
    noise = tmp_path / "noise.wav"
    soundfile.write(str(noise), 0.1 * np.random.default_rng(0).standard_normal(44100), 44100)
    sequence = at.transcribe(noise)
    assert not sequence.notes and sequence.total_time == pytest.approx(1.0, abs=0.01)


def test_broken_files_are_one_line_errors_naming_the_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n")
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    flac = tmp_path / "cut.flac"
    noise = 0.3 * np.random.default_rng(1).standard_normal((44100, 2))  # noise: FLAC cannot shrink it much
    soundfile.write(str(flac), noise, 44100, format="FLAC")
    flac.write_bytes(flac.read_bytes()[:30_000])  # cut inside the audio
    cases = {text: "cannot read it as audio", empty: "the file is empty", tmp_path / "missing.ogg": "no such file",
             tmp_path: "is a folder"}
    for path, reason in cases.items():
        with pytest.raises(GenError) as caught:
            at.transcribe(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: ") and reason in message and "\n" not in message, message
    try:  # libsndfile may decode what is left of a cut FLAC, or refuse it: either way no traceback
        at.transcribe(flac)
    except GenError as error:
        assert str(error).startswith(f"{flac}: ") and "\n" not in str(error)


def test_a_missing_extra_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = tmp_path / "tone.wav"
    soundfile.write(str(clip), 0.5 * np.sin(2 * np.pi * 440 * np.arange(22050) / 22050), 22050)
    at.load_model.cache_clear()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    try:
        with pytest.raises(GenError, match=r"needs onnxruntime: pip install 'gen-music\[transcribe\]'"):
            at.transcribe(clip)
    finally:
        at.load_model.cache_clear()
    monkeypatch.setitem(sys.modules, "soundfile", None)
    needs_soundfile = r"tone\.wav: reading audio needs soundfile: pip install 'gen-music\[transcribe\]'"
    with pytest.raises(GenError, match=needs_soundfile):
        at.transcribe(clip)


def test_the_model_ships_with_its_license_and_credit() -> None:
    folder = at.MODEL_PATH.parent
    digest = hashlib.sha256(at.MODEL_PATH.read_bytes()).hexdigest()
    notice = (folder / "NOTICE").read_text(encoding="utf-8")
    assert digest in notice  # the file is basic-pitch 0.4.0's, unchanged
    assert "Spotify AB" in notice and "Bittner" in notice and "ICASSP" in notice
    assert "Apache License" in (folder / "LICENSE").read_text(encoding="utf-8")
    assert (folder / "README.md").is_file()


def _band_recording(folder: Path) -> Path:
    """The example (fiddle, piano, bass, drums at 112 bpm) rendered to a WAV file."""
    from generation.render import render_file

    pytest.importorskip("midirenderer", reason="rendering the clip needs midirenderer (pip install '.[audio]')")
    wav = folder / "bantry.wav"
    render_file((REPOSITORY / "examples" / "bantry_lasses.mid").read_bytes(), wav)
    return wav


def test_gen_transcribe_writes_the_heard_notes_on_their_estimated_bars(tmp_path: Path, model) -> None:
    from .test_cli import run

    wav = _band_recording(tmp_path)
    out = tmp_path / "heard.mid"
    result = run("transcribe", str(wav), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "112.0 bpm (estimated)" in result.stdout
    written = read_music_file(out).sequences[0]
    # 112 bpm; the first bar a little slower when the music starts a few milliseconds after 0
    assert written.notes and round(written.tempos[-1].qpm, 1) == 112.0
    assert all(abs(t.qpm - 112) < 1.5 for t in written.tempos)
    raw = run("transcribe", str(wav), "-o", str(tmp_path / "raw.mid"), "--raw")
    assert raw.exit_code == 0 and [t.qpm for t in read_music_file(tmp_path / "raw.mid").sequences[0].tempos] == [120.0]
    again = run("transcribe", str(wav), "-o", str(out))
    assert again.exit_code == 1 and "exists already" in again.stderr
    wrong = run("transcribe", str(REPOSITORY / "examples" / "bantry_lasses.mid"), "-o", str(tmp_path / "x.mid"))
    assert wrong.exit_code == 2 and "a recording is one of .wav" in wrong.stderr


def test_continue_takes_a_recording_and_goes_on_at_its_last_bar_line(tmp_path: Path, model) -> None:
    """The recording's last notes ring on for most of a second after its last bar line (17.14 s):
    the continuation starts there, not a bar later."""
    import json

    from .test_cli import run

    wav = _band_recording(tmp_path)
    result = run("continue", str(wav), "-o", str(tmp_path / "more.mid"), "--bars", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["continuation_start"] == pytest.approx(8 * 4 * 60 / 112, abs=0.05)
