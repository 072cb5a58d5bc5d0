"""`gen render`: General MIDI playback of a piece to WAV or FLAC, offline.

The synthesizer is midirenderer (MIT; a Rust SoundFont player, `pip install 'gen-music[audio]'`),
playing a SoundFont: by default TimGM6mb.sf2, the 6 MB General MIDI SoundFont that pretty_midi
installs with itself (Tim Brechbill's, distributed under the GNU GPL v2, as MuseScore and Debian's
timgm6mb-soundfont ship it; gen does not ship it), or any .sf2 given (FluidR3_GM, MIT; MuseScore
General, MIT). The last notes ring out (RELEASE_SECONDS at most, then the audio ends where the
sound has died away), and the audio is brought to one loudness: RMS at TARGET_RMS_DBFS, but never
louder than a peak of PEAK_DBFS, so nothing clips.

Audio arrays are int16 samples [frames, channels]; rates in Hz.
"""

from __future__ import annotations

import io
import os
import wave
from pathlib import Path

import numpy as np

from generation.errors import GenError
from generation.protos import NoteSequence

TARGET_RMS_DBFS = -18.0  # loudness of the written file (a quiet piano and a full band alike)
RELEASE_SECONDS = 2.0  # the last notes ring out this long at most after the file's end
SILENCE_DBFS = -70.0  # below this the ringing has died away: the audio ends there
PEAK_DBFS = -1.0  # the ceiling: the gain stops where the loudest sample reaches it
FORMATS = (".wav", ".flac")
AUDIO_EXTRA = "pip install 'gen-music[audio]' (from a checkout: pip install '.[audio]')"


def default_soundfont() -> Path:
    """pretty_midi's own General MIDI SoundFont, TimGM6mb.sf2 (GNU GPL v2)."""
    import pretty_midi

    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


class Unplayable(Exception):
    """A MIDI file that the synthesizer's own reading would not play as gen reads it."""


def with_release(midi_bytes: bytes, until: float, seconds: float = RELEASE_SECONDS) -> bytes:
    """The MIDI file with a silent event (an undefined controller, 110) `seconds` after its end:
    the synthesizer renders up to the last event, so the last notes ring out instead of stopping.
    `Unplayable` when mido cannot read or write it back (a file gen's reader repairs: a meta event
    of the wrong length, a realtime byte in a track ...) or when its events run on well past
    `until` (the last note's end, in seconds): the synthesizer would render all that silence."""
    import mido

    try:
        midi = mido.MidiFile(file=io.BytesIO(midi_bytes))
        if midi.length > until + 2 * seconds:
            raise Unplayable(f"its events run on to {midi.length:.0f} s")
        tempo, tempo_tick = 500_000, 0  # microseconds per quarter note in force at the end (MIDI's default)
        for track in midi.tracks:
            tick = 0
            for message in track:
                tick += message.time
                if message.type == "set_tempo" and tick >= tempo_tick:
                    tempo, tempo_tick = message.tempo, tick
        track = midi.tracks[-1]
        end = track.pop() if track and track[-1].type == "end_of_track" else None
        delay = int(round(seconds * 1e6 / tempo * midi.ticks_per_beat))
        track.append(mido.Message("control_change", channel=15, control=110, value=0,
                                  time=delay + (end.time if end else 0)))
        track.append(mido.MetaMessage("end_of_track", time=0))
        written = io.BytesIO()
        midi.save(file=written)
    except (ValueError, IndexError, KeyError, TypeError, EOFError, OSError) as error:
        raise Unplayable(str(error)) from None
    return written.getvalue()


def playable_midi(sequence: NoteSequence, midi_bytes: bytes | None = None) -> bytes:
    """What the synthesizer plays: the MIDI file as written (`midi_bytes`: every event it holds),
    or, when there is none or it is `Unplayable`, the sequence as gen read it, without the events
    after its last note; with the release event either way."""
    from generation.io.writers import to_pretty_midi

    until = max((n.end_time for n in sequence.notes), default=0.0)
    if midi_bytes is not None:
        try:
            return with_release(midi_bytes, until)
        except Unplayable:
            pass
    trimmed = NoteSequence()
    trimmed.CopyFrom(sequence)
    for events in (trimmed.tempos, trimmed.time_signatures, trimmed.key_signatures, trimmed.control_changes,
                   trimmed.pitch_bends, trimmed.text_annotations):
        kept = [e for e in events if e.time <= until]
        del events[:]
        events.extend(kept)
    written = io.BytesIO()
    to_pretty_midi(trimmed).write(written)
    return with_release(written.getvalue(), until)


BLOCK_FRAMES = 1 << 20  # frames per block of the gain and write passes: memory stays bounded


def _blocks(length: int) -> range:
    return range(0, length, BLOCK_FRAMES)


def _trim_silence(samples: np.ndarray, rate: int) -> np.ndarray:
    """The samples (a view) up to 50 ms after the last one above SILENCE_DBFS."""
    threshold = 10 ** (SILENCE_DBFS / 20) * 32768
    for begin in reversed(_blocks(len(samples))):
        loud = np.flatnonzero(np.abs(samples[begin:begin + BLOCK_FRAMES].astype(np.float32)).max(axis=1) > threshold)
        if len(loud):
            return samples[: begin + int(loud[-1]) + rate // 20]
    return samples


def synthesize(midi_bytes: bytes, soundfont: Path, name: str = "the piece") -> tuple[np.ndarray, int]:
    """(samples [frames, channels] int16, rate) of a standard MIDI file played on `soundfont`;
    `name` (the file) goes into error messages. The samples are a view of the synthesizer's own
    output, not a copy: an hour of stereo is 635 MB."""
    try:
        import midirenderer
    except ImportError:
        raise GenError(f"rendering audio needs midirenderer: {AUDIO_EXTRA}") from None
    try:
        data = soundfont.read_bytes()
    except OSError as error:
        raise GenError(f"{soundfont}: cannot read the SoundFont ({error.strerror or error})") from None
    if data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        raise GenError(f"{soundfont}: not a SoundFont 2 file (an .sf2 starts with RIFF....sfbk)")
    try:
        rendered = midirenderer.render_wave_from(data, midi_bytes)
    except (ValueError, RuntimeError) as error:
        raise GenError(f"{name}: the synthesizer could not play it: {error}") from None
    with wave.open(io.BytesIO(rendered)) as reader:
        channels, width, rate, frames = (reader.getnchannels(), reader.getsampwidth(), reader.getframerate(),
                                         reader.getnframes())
    if width != 2:
        raise GenError(f"the synthesizer wrote {8 * width}-bit audio; 16-bit expected")
    offset = _data_offset(rendered)
    return np.frombuffer(rendered, dtype="<i2", count=frames * channels, offset=offset).reshape(-1, channels), rate


def _data_offset(wav: bytes) -> int:
    """Where the sample bytes of a RIFF WAVE file begin (after the 'data' chunk's header)."""
    position = 12
    while position + 8 <= len(wav):
        size = int.from_bytes(wav[position + 4:position + 8], "little")
        if wav[position:position + 4] == b"data":
            return position + 8
        position += 8 + size + (size & 1)
    raise GenError("the synthesizer wrote a WAV file without samples")


def loudness_gain(samples: np.ndarray) -> float:
    """The gain in dB that brings int16 `samples` to TARGET_RMS_DBFS RMS, capped so the peak is at
    most PEAK_DBFS; 0 for silence. Computed block by block."""
    peak = squares = 0.0
    for begin in _blocks(len(samples)):
        block = samples[begin:begin + BLOCK_FRAMES].astype(np.float64) / 32768.0
        if block.size:
            peak = max(peak, float(np.abs(block).max()))
            squares += float(np.square(block).sum())
    rms = np.sqrt(squares / samples.size) if samples.size else 0.0
    if peak <= 0 or rms <= 0:
        return 0.0
    return float(min(TARGET_RMS_DBFS - 20 * np.log10(rms), PEAK_DBFS - 20 * np.log10(peak)))


def with_gain(samples: np.ndarray, gain_db: float) -> np.ndarray:
    """int16 samples [frames, channels] -> the same at `gain_db` (rounded, clipped to 16 bits)."""
    factor = np.float32(10 ** (gain_db / 20))
    return np.clip(np.round(samples.astype(np.float32) * factor), -32768, 32767).astype("<i2")


def write_audio(samples: np.ndarray, rate: int, path: str | os.PathLike[str], gain_db: float = 0.0) -> None:
    """int16 samples [frames, channels] at `gain_db`, as 16-bit WAV or FLAC (by the suffix), block by
    block under a temporary name and then renamed, so an interrupted write leaves no half file."""
    from generation.io.files import atomic_output

    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise GenError(f"{path}: audio is written as {' or '.join(FORMATS)}; got {suffix or 'no suffix'}")
    if suffix == ".flac":
        try:
            import soundfile
        except ImportError:
            raise GenError(f"writing FLAC needs soundfile: {AUDIO_EXTRA}") from None
    with atomic_output(path) as temporary:
        if suffix == ".wav":
            with wave.open(str(temporary), "wb") as writer:
                writer.setnchannels(samples.shape[1])
                writer.setsampwidth(2)
                writer.setframerate(rate)
                for begin in _blocks(len(samples)):
                    writer.writeframes(with_gain(samples[begin:begin + BLOCK_FRAMES], gain_db).tobytes())
        else:
            with soundfile.SoundFile(str(temporary), "w", samplerate=rate, channels=samples.shape[1], format="FLAC",
                                     subtype="PCM_16") as writer:
                for begin in _blocks(len(samples)):
                    writer.write(with_gain(samples[begin:begin + BLOCK_FRAMES], gain_db))


def render_file(midi_bytes: bytes | None, output: str | os.PathLike[str], soundfont: Path | None = None,
                name: str = "the piece", sequence: NoteSequence | None = None) -> tuple[float, int, float]:
    """Plays a MIDI file (`midi_bytes`; or `sequence`, as gen read it, where the file cannot be
    played as written: `playable_midi`) on `soundfont` (default: `default_soundfont()`), normalizes
    and writes `output`; returns (seconds of audio, rate, gain in dB)."""
    if sequence is None:
        from generation.io.midi import midi_to_note_sequence

        sequence = midi_to_note_sequence(midi_bytes, name)
    samples, rate = synthesize(playable_midi(sequence, midi_bytes), soundfont or default_soundfont(), name)
    samples = _trim_silence(samples, rate)
    gain_db = loudness_gain(samples)
    write_audio(samples, rate, output, gain_db)
    return len(samples) / rate, rate, gain_db
