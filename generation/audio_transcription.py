"""`gen transcribe`: a recording (WAV, FLAC, OGG, MP3; mono or stereo, any sample rate) to notes, offline.

The model is Spotify's Basic Pitch (Bittner et al., "A Lightweight Instrument-Agnostic Model for
Polyphonic Note Transcription and Multipitch Estimation", ICASSP 2022; Apache-2.0): its ONNX file
ships in `generation/models/transcriber/` with its license and NOTICE, and runs on onnxruntime
(`pip install 'gen-music[transcribe]'`). Nothing is downloaded and the basic-pitch package (which
pulls TensorFlow) is not used: the audio front end, the windowing and the note decoding below are
this project's own code, written to behave as basic-pitch 0.4.0's `predict()` does with its
defaults (onset threshold 0.5, frame threshold 0.3, notes longer than 11 frames (~128 ms), onsets
also inferred from rises of the note activation, the "melodia trick" on, no pitch bends).

The pipeline, with its shapes:
  file -> `read_audio`: mono float32 [frames] at the file's rate (`to_mono`: the channels' mean)
       -> `resample` to 22050 Hz: float32 [samples] (`load_audio` does both)
       -> `activations`: the model on 2-second windows, stitched: note and onset [frames, 88] in 0..1,
          frames 256 samples (11.6 ms) apart, 142 per 2-second window (`frame_seconds`), key k =
          MIDI pitch 21 + k (A0..C8)
       -> `note_events`: (start frame, end frame, pitch, amplitude) -> `to_note_sequence`.

What it cannot do: it hears pitches, not instruments. Every note goes to one piano track (program
0, Acoustic Grand Piano): no instrument separation, no drums (drum hits give no notes or stray
pitched ones), no pitch bends, no tempo or meter (the sequence is in real seconds, written at 120
bpm in 4/4 with 220 ticks per quarter as MT3 writes, so `gen tidy` estimates the tempo and meter).
Velocities are the mean note activation over the note, 0..1 scaled to 1..127 as basic-pitch does:
a confidence rather than a loudness.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generation.errors import BadInputFile, GenError
from generation.limits import MAX_TRANSCRIBE_MINUTES
from generation.protos import NoteSequence

TRANSCRIBE_EXTRA = "pip install 'gen-music[transcribe]' (from a checkout: pip install '.[transcribe]')"
MODEL_PATH = Path(__file__).resolve().parent / "models" / "transcriber" / "nmp.onnx"

# The model's fixed geometry (basic-pitch's icassp_2022 model).
SAMPLE_RATE = 22050  # Hz: the model hears mono audio at this rate
HOP = 256  # samples per activation frame
WINDOW = 2 * SAMPLE_RATE - HOP  # 43844 samples per model input: 172 frames out
WINDOW_FRAMES = 172
EDGE_FRAMES = 15  # frames dropped at each end of a window: they lack context (basic-pitch drops 15 too)
KEPT_FRAMES = WINDOW_FRAMES - 2 * EDGE_FRAMES  # 142 frames kept per window
# Windows start WINDOW_STEP samples apart: 141.27 frames, so the 142 frames each keeps overlap the
# next window's by 0.73 frame. That is basic-pitch's tiling; with it the activations are the ones
# basic-pitch computes (a step of a whole 142 frames shifts every window's context and changes
# notes near the thresholds: onset F1 between the two fell to 0.76 on a string quartet).
WINDOW_STEP = WINDOW - 2 * EDGE_FRAMES * HOP  # 36164 samples
LOWEST_PITCH = 21  # MIDI pitch of key 0 (A0); 88 keys up to 108 (C8)
KEYS = 88
BATCH_WINDOWS = 1  # windows per model call: 1, 4 and 16 took the same time here; memory grows with it
INPUT_NAME = "serving_default_input_2:0"
NOTE_OUTPUT, ONSET_OUTPUT = "StatefulPartitionedCall:1", "StatefulPartitionedCall:2"  # :0 is the pitch contour

# Note decoding (basic-pitch's defaults for predict()).
ONSET_THRESHOLD = 0.5  # an onset peak at least this strong starts a note
FRAME_THRESHOLD = 0.3  # a note sounds while its activation is at least this
MIN_NOTE_SECONDS = 0.1277  # notes must last longer than this (11 frames)
GAP_FRAMES = 11  # a note ends once its activation stays below FRAME_THRESHOLD this many frames

# Resampling: a Kaiser-windowed sinc low-pass at RESAMPLE_CUTOFF of the lower Nyquist frequency.
RESAMPLE_CUTOFF = 0.9
RESAMPLE_ZEROS = 24  # zero crossings of the sinc on each side: sharper with more
RESAMPLE_BETA = 8.0  # Kaiser window shape: about 80 dB of stop-band rejection

READ_BLOCK = 1 << 18  # frames per block read from the file
SILENCE_PEAK = 10 ** (-90 / 20)  # below -90 dBFS a recording is taken for silence
MIDI_TICKS_PER_QUARTER = 220  # MT3's: `gen tidy` then knows the grid means nothing


@dataclass
class Activations:
    """The model's output over a whole recording: note and onset [frames, 88] in 0..1."""

    note: np.ndarray
    onset: np.ndarray

    @property
    def frames(self) -> int:
        return len(self.note)


def frame_seconds(frame: int | np.ndarray) -> float | np.ndarray:
    """The time in seconds of activation frame `frame` (its centre): the frames of window w are
    142 w to 142 w + 141, from w * WINDOW_STEP samples on, HOP samples apart. (basic-pitch takes
    f * HOP and corrects the drift in steps every 172 frames, within ~10 ms of this.)"""
    window, inside = np.divmod(frame, KEPT_FRAMES)
    return (window * WINDOW_STEP + inside * HOP) / SAMPLE_RATE


def frame_count(samples: int) -> int:
    """How many activation frames lie inside `samples` samples at 22050 Hz (frame times < the end)."""
    windows = max(1, -(-samples // WINDOW_STEP))
    in_last = -(-(samples - (windows - 1) * WINDOW_STEP) // HOP)
    return (windows - 1) * KEPT_FRAMES + min(max(in_last, 1), KEPT_FRAMES)


# --- reading ------------------------------------------------------------------------------------

def _soundfile(path: str | os.PathLike[str]):
    try:
        import soundfile
    except ImportError:
        raise GenError(f"{os.fspath(path)}: reading audio needs soundfile: {TRANSCRIBE_EXTRA}") from None
    return soundfile


def read_audio(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """(mono samples float32 [frames] in -1..1, rate in Hz) of an audio file libsndfile reads: WAV,
    FLAC, OGG Vorbis/Opus, MP3 (libsndfile 1.1+), AIFF ... Read block by block and mixed down to
    mono as it goes (`to_mono`), so an hour of 48 kHz stereo peaks at its mono copy, 0.7 GB.
    A file it cannot read, an empty one, or one longer than MAX_TRANSCRIBE_MINUTES is a
    BadInputFile naming it."""
    soundfile = _soundfile(path)
    if not Path(path).exists():
        raise BadInputFile(path, "no such file")
    if Path(path).is_dir():
        raise BadInputFile(path, "is a folder, not an audio file")
    if Path(path).stat().st_size == 0:
        raise BadInputFile(path, "the file is empty")
    try:
        with soundfile.SoundFile(os.fspath(path)) as audio:
            rate = audio.samplerate
            if rate <= 0:
                raise BadInputFile(path, f"a sample rate of {rate} Hz")
            minutes = audio.frames / rate / 60
            if minutes > MAX_TRANSCRIBE_MINUTES.value:
                raise MAX_TRANSCRIBE_MINUTES.refuse(os.fspath(path), f"{minutes:,.1f} minutes of audio",
                                                    "cut it into parts")
            mono = _read_mono(audio)
    except (RuntimeError, OSError, ValueError, TypeError) as error:  # LibsndfileError is a RuntimeError
        raise BadInputFile(path, _unreadable(path, error, soundfile)) from None
    if not len(mono):
        raise BadInputFile(path, "the audio has no samples")
    return mono, rate


def _read_mono(audio) -> np.ndarray:
    """All of an open soundfile.SoundFile, mixed to mono: float32 [frames]. Its frame count (an
    estimate for some MP3s) sizes the array; the blocks read decide the length."""
    mono = np.empty(max(audio.frames, 0), np.float32)
    filled = 0
    while True:  # not SoundFile.blocks: past a truncated file's end it yields the header's length in zeros
        block = audio.read(READ_BLOCK, dtype="float32", always_2d=True)
        if not len(block):
            break
        block = to_mono(block)
        if filled + len(block) > len(mono):
            mono = np.concatenate([mono[:filled], np.empty(filled + len(block) - len(mono) + READ_BLOCK, np.float32)])
        mono[filled:filled + len(block)] = block
        filled += len(block)
    return mono[:filled]


def _unreadable(path: str | os.PathLike[str], error: BaseException, soundfile) -> str:
    """One line on why libsndfile could not read `path` (its own message names the path: dropped)."""
    text = " ".join(str(getattr(error, "error_string", "") or error).split()) or type(error).__name__
    text = text.replace(f"Error opening {os.fspath(path)!r}: ", "").removeprefix("Error : ").rstrip(".")
    suffix = Path(path).suffix.lower()
    if suffix == ".mp3" and "MP3" not in soundfile.available_formats():
        text += f" (MP3 needs libsndfile 1.1 or later; this one is {soundfile.__libsndfile_version__})"
    return f"cannot read it as audio: {text}"


def to_mono(samples: np.ndarray) -> np.ndarray:
    """[frames, channels] -> float32 [frames], the mean of the channels (as librosa's to_mono)."""
    if samples.ndim == 1:
        return samples.astype(np.float32, copy=False)
    if samples.shape[1] == 1:
        return samples[:, 0].astype(np.float32, copy=False)
    return samples.mean(axis=1, dtype=np.float32)


# --- resampling ---------------------------------------------------------------------------------

def _lowpass_taps(fraction: float, offsets: np.ndarray, cutoff: float, half_width: float) -> np.ndarray:
    """float32 [taps]: the low-pass (cutoff: a fraction of the input's Nyquist frequency; a Kaiser-
    windowed sinc `half_width` input samples to each side) at the distances fraction - offsets,
    scaled to sum to 1 so that DC passes unchanged."""
    distance = fraction - offsets
    inside = np.clip(1 - (distance / half_width) ** 2, 0, None)
    taps = cutoff * np.sinc(cutoff * distance) * np.i0(RESAMPLE_BETA * np.sqrt(inside))
    taps[np.abs(distance) > half_width] = 0
    return (taps / taps.sum()).astype(np.float32)


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Mono samples [n] at `rate` Hz -> float32 [ceil(n * target / rate)] at `target` Hz.

    A polyphase windowed-sinc resampler in numpy: the band above RESAMPLE_CUTOFF of the lower
    Nyquist frequency is removed, so nothing aliases, and what lies below keeps its pitch and level.
    With target / rate = up / down in lowest terms, output sample n lies at input position
    n * down / up; the outputs n0, n0 + up, n0 + 2 up ... all lie the same fraction past an input
    sample, so each of these `up` phases is one filter slid over the input in steps of `down`."""
    samples = np.asarray(samples, dtype=np.float32)
    if rate == target:
        return samples
    common = math.gcd(int(rate), int(target))
    up, down = int(target) // common, int(rate) // common
    cutoff = RESAMPLE_CUTOFF * min(1.0, up / down)
    half_width = RESAMPLE_ZEROS / cutoff  # input samples to each side
    reach = math.ceil(half_width)
    offsets = np.arange(-reach + 1, reach + 1)  # taps, relative to the input sample at or before
    padded = np.concatenate([np.zeros(reach, np.float32), samples, np.zeros(reach + 1, np.float32)])
    rows = np.lib.stride_tricks.sliding_window_view(padded, len(offsets))  # row r: padded[r:r + taps], no copy
    count = -(-len(samples) * up // down)
    result = np.empty(count, np.float32)
    for first in range(min(up, count)):
        base, remainder = divmod(first * down, up)
        outputs = len(range(first, count, up))
        window = rows[base + 1:base + 2 + (outputs - 1) * down:down]  # row base + 1: input sample base - reach + 1
        taps = _lowpass_taps(remainder / up, offsets, cutoff, half_width)
        result[first::up] = np.einsum("ij,j->i", window, taps)
    return result


def load_audio(path: str | os.PathLike[str]) -> np.ndarray:
    """The recording at `path` as the model hears it: mono float32 [samples] at 22050 Hz.
    Digital silence (peak below -90 dBFS) is a BadInputFile: there is nothing to transcribe."""
    mono, rate = read_audio(path)
    peak = max(float(mono.max()), -float(mono.min()))  # no copy of an hour of audio
    if not np.isfinite(peak):
        raise BadInputFile(path, "the audio holds samples that are not numbers (NaN or infinite)")
    if peak < SILENCE_PEAK:
        raise BadInputFile(path, f"the audio ({len(mono) / rate:.1f} s) is silent: nothing to transcribe")
    return resample(mono, rate)


# --- the model ----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=2)
def load_model(threads: int | None = None):
    """The ONNX Runtime session of the bundled model (cached: loading takes ~0.1 s). `threads`:
    intra-op threads, by default `generation.threads.inference_threads()` (1 unless GEN_THREADS
    or OMP_NUM_THREADS says otherwise: a shared CPU stays fast)."""
    try:
        import onnxruntime
    except ImportError:
        raise GenError(f"transcribing audio needs onnxruntime: {TRANSCRIBE_EXTRA}") from None
    from generation.threads import inference_threads

    if not MODEL_PATH.is_file():
        raise GenError(f"{MODEL_PATH}: the transcription model is missing from this installation; reinstall gen-music")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or inference_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # its warnings are about graph details, not the user's input
    return onnxruntime.InferenceSession(str(MODEL_PATH), options, providers=["CPUExecutionProvider"])


def windows(audio: np.ndarray) -> np.ndarray:
    """Mono audio [samples] -> model inputs [windows, WINDOW] float32 (a strided view).

    The audio is delayed by EDGE_FRAMES frames (zeros), so that the first frame a window keeps (its
    15th) is centred on the sample where the window's audio starts: window w starts at sample
    w * WINDOW_STEP of the recording. The last window is padded with zeros."""
    count = max(1, -(-len(audio) // WINDOW_STEP))
    lead = EDGE_FRAMES * HOP
    padded = np.zeros((count - 1) * WINDOW_STEP + WINDOW, np.float32)
    usable = min(len(audio), len(padded) - lead)
    padded[lead:lead + usable] = audio[:usable]
    return np.lib.stride_tricks.sliding_window_view(padded, WINDOW)[::WINDOW_STEP]


def activations(audio: np.ndarray, session=None) -> Activations:
    """Mono float32 audio [samples] at 22050 Hz -> Activations [frame_count(samples), 88]; frame f
    at frame_seconds(f). The model runs on BATCH_WINDOWS windows at a time."""
    session = session or load_model()
    inputs = windows(audio)
    notes, onsets = [], []
    for begin in range(0, len(inputs), BATCH_WINDOWS):
        batch = np.ascontiguousarray(inputs[begin:begin + BATCH_WINDOWS])[:, :, None]
        note, onset = session.run([NOTE_OUTPUT, ONSET_OUTPUT], {INPUT_NAME: batch})
        notes.append(note[:, EDGE_FRAMES:EDGE_FRAMES + KEPT_FRAMES].reshape(-1, KEYS))
        onsets.append(onset[:, EDGE_FRAMES:EDGE_FRAMES + KEPT_FRAMES].reshape(-1, KEYS))
    frames = frame_count(len(audio))
    return Activations(np.concatenate(notes)[:frames], np.concatenate(onsets)[:frames])


# --- notes --------------------------------------------------------------------------------------

Event = tuple[int, int, int, float]  # start frame, end frame (exclusive), MIDI pitch, amplitude 0..1


def onset_strength(note: np.ndarray, onset: np.ndarray) -> np.ndarray:
    """[frames, 88]: the onset activation, or where larger the rise of the note activation over
    the last one and two frames (the smaller of the two), scaled to the onset activation's peak:
    a re-struck note whose onset the model missed still starts a note (basic-pitch's infer_onsets)."""
    previous = np.zeros((2, note.shape[1]), note.dtype)
    padded = np.concatenate([previous, note])
    rise = np.minimum(note - padded[1:-1], note - padded[:-2])
    rise[:2] = 0
    rise = np.clip(rise, 0, None)
    if rise.max() > 0:
        rise *= onset.max() / rise.max()
    return np.maximum(onset, rise)


def onset_peaks(strength: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(frames, keys) of onsets: strict local maxima in time (never the first or last frame) of at
    least `threshold`, latest first and, at one frame, highest key first (the order notes claim
    their frames in)."""
    middle = strength[1:-1]
    peak = (middle > strength[:-2]) & (middle > strength[2:]) & (middle >= threshold)
    frames, keys = np.nonzero(peak)
    return frames[::-1] + 1, keys[::-1]


def _walk(energy: np.ndarray, key: int, start: int, step: int, threshold: float, clear: bool) -> int:
    """Walks key `key` of energy [frames, 88] from frame `start` by `step` (+1 or -1) until it has
    stayed below `threshold` for GAP_FRAMES frames or reached the edge; returns the frame past the
    last one at or above it. With `clear`, every frame walked is zeroed there and on the keys a
    semitone either side (so a neighbour's leakage makes no note of its own)."""
    frames = len(energy)
    below, i = 0, start
    while below < GAP_FRAMES and (i < frames - 1 if step > 0 else i > 0):
        below = below + 1 if energy[i, key] < threshold else 0
        if clear:
            energy[i, max(key - 1, 0):key + 2] = 0
        i += step
    return i - step * below


def _silence(energy: np.ndarray, begin: int, end: int, key: int) -> None:
    energy[begin:end, max(key - 1, 0):key + 2] = 0


def note_events(acts: Activations, *, onset_threshold: float = ONSET_THRESHOLD,
                frame_threshold: float = FRAME_THRESHOLD, min_note_seconds: float = MIN_NOTE_SECONDS,
                melodia: bool = True) -> list[Event]:
    """(start frame, end frame (exclusive), MIDI pitch, amplitude 0..1) of each note heard.

    First every onset peak starts a note that lasts while its key's activation holds (gaps shorter
    than GAP_FRAMES bridged); notes are taken latest first, each claiming its frames. Then, with
    `melodia`, the strongest frame still unclaimed above `frame_threshold` grows into a note both
    ways, repeatedly, catching notes whose onset was too soft. Notes not longer than
    `min_note_seconds` are dropped. Amplitude: the mean note activation over the note."""
    note = acts.note
    frames = len(note)
    shortest = int(round(min_note_seconds * SAMPLE_RATE / HOP))
    energy = note.astype(np.float32, copy=True)  # what is left unclaimed
    events = []
    for start, key in zip(*onset_peaks(onset_strength(note, acts.onset), onset_threshold)):
        start, key = int(start), int(key)
        if start >= frames - 1:
            continue
        end = _walk(energy, key, start + 1, 1, frame_threshold, clear=False)
        if end - start <= shortest:
            continue
        _silence(energy, start, end, key)
        events.append((start, end, key + LOWEST_PITCH, float(note[start:end, key].mean())))
    if melodia:
        events.extend(_grow_notes(note, energy, frame_threshold, shortest))
    return events


def _grow_notes(note: np.ndarray, energy: np.ndarray, threshold: float, shortest: int) -> list[Event]:
    """The melodia pass: the strongest unclaimed frame grows into a note, until none is left above
    `threshold`. Frames are only ever zeroed, so the strongest left is the first frame of the list
    sorted once (strongest first, ties in frame-major order) that is still unzeroed."""
    flat = energy.reshape(-1)
    candidates = np.flatnonzero(flat > threshold)
    candidates = candidates[np.argsort(-flat[candidates], kind="stable")]
    events = []
    for index in candidates.tolist():
        if flat[index] <= threshold:  # claimed since the sort
            continue
        middle, key = divmod(index, KEYS)
        flat[index] = 0
        end = _walk(energy, key, middle + 1, 1, threshold, clear=True) - 1  # basic-pitch ends these a frame sooner
        start = _walk(energy, key, middle - 1, -1, threshold, clear=True) + 1
        if end - start > shortest:
            events.append((start, end, key + LOWEST_PITCH, float(note[start:end, key].mean())))
    return events


def to_note_sequence(events: list[Event], seconds: float) -> NoteSequence:
    """Note events -> a NoteSequence in real seconds: one piano (instrument 0, program 0), notes in
    time order, velocity round(127 * amplitude) (1..127), 220 ticks per quarter at 120 bpm (MT3's
    grid, which `gen tidy` re-estimates); total_time is the recording's length, `seconds`."""
    from generation.protos import music_pb2

    sequence = music_pb2.NoteSequence()
    sequence.ticks_per_quarter = MIDI_TICKS_PER_QUARTER
    sequence.tempos.add(time=0.0, qpm=120.0)
    sequence.source_info.encoding_type = music_pb2.NoteSequence.SourceInfo.MIDI
    for start, end, pitch, amplitude in sorted(events):
        sequence.notes.add(pitch=pitch, velocity=int(np.clip(round(127 * amplitude), 1, 127)),
                           start_time=float(frame_seconds(start)), end_time=float(frame_seconds(end)),
                           instrument=0, program=0, is_drum=False)
    sequence.total_time = max([seconds] + [n.end_time for n in sequence.notes])
    return sequence


def transcribe(audio_path: str | os.PathLike[str], *, onset_threshold: float = ONSET_THRESHOLD,
               frame_threshold: float = FRAME_THRESHOLD, min_note_seconds: float = MIN_NOTE_SECONDS,
               melodia: bool = True) -> NoteSequence:
    """The notes heard in the recording at `audio_path`, as a NoteSequence in real seconds (see the
    module docstring). An unreadable, empty or silent file is a BadInputFile naming it; a missing
    onnxruntime or soundfile a GenError giving the pip command. A sound with no pitched notes gives
    a sequence without notes."""
    audio = load_audio(audio_path)
    acts = activations(audio)
    events = note_events(acts, onset_threshold=onset_threshold, frame_threshold=frame_threshold,
                         min_note_seconds=min_note_seconds, melodia=melodia)
    return to_note_sequence(events, len(audio) / SAMPLE_RATE)
