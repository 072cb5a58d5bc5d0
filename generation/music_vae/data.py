"""MusicVAE data conversion, mirroring `magenta.models.music_vae.data`.

What is here: Magenta's pitch-class constants (`ROLAND_DRUM_PITCH_CLASSES`,
`REDUCED_DRUM_PITCH_CLASSES`, `FULL_DRUM_PITCH_CLASSES` and the MIDI constants defined beside them),
`ConverterTensors`, `BaseNoteSequenceConverter`, `maybe_sample_items`, `np_onehot` and
`GrooveConverter`, whose `to_tensors` / `from_tensors` give the values Magenta's give (Magenta 2.x,
`note_seq` based), stored as float32 as Magenta's `convert_to_tensors_op` feeds them to the model.
The categorical converters of Magenta's melody and drum-pattern configs, `OneHotMelodyConverter`
and `DrumsConverter`, and `NoteSequenceAugmenter` follow at the end of the module (see
`OneHotMelodyConverter` for where they differ from Magenta's).

Where this module differs from Magenta on purpose:

* Training versus inference is an argument (`training=`) of `to_tensors` / `from_tensors`, not
  converter state set by `set_mode`; randomness (note dropout) draws from an explicit `rng=`.
  See `GrooveConverter` for exactly what `training` changes.
* A drum pitch in none of the active pitch classes does not raise `KeyError` (Magenta's
  `pitch_class_map[note.pitch]`); it is mapped by the rule below, or dropped, and both are logged.
* `from_tensors` takes `qpm=` (Magenta always writes 120 qpm, still the default), also writes a
  `quarters_per_bar`/4 time signature and `total_time` (Magenta leaves both unset), and decodes every
  step of a categorical, not split-by-instrument tensor (Magenta decodes only the first T // 9 steps
  of those, because it divides the length by the drum count whenever outputs are categorical).

Out-of-class drum pitches
-------------------------
Rule: a pitch that no active pitch class contains is given its General MIDI drum category from
Magenta's own 9-way grouping of the 61 GM drum pitches plus Roland's 22/26,
`REDUCED_DRUM_PITCH_CLASSES` (kick, snare, closed hi-hat, open hi-hat, low tom, mid tom, high tom,
crash, ride; the grouping Magenta's drum models use and GrooVAE uses at inference). The note then goes
to the active class that holds that category's first candidate pitch, candidates being the category's
`ROLAND_DRUM_PITCH_CLASSES` pitches and then its `REDUCED_DRUM_PITCH_CLASSES` pitches, in order. A
pitch with no GM drum category (below 27 other than 22 and 26, above 87), or whose category has no
candidate among the active classes, is dropped. Each `to_tensors` call logs (logger
`generation.music_vae.data`) the mapped pitches at INFO and the dropped ones at WARNING, with counts.

With the default (Roland) classes, used for training, the rule gives this table; every other GM drum
pitch is in a Roland class already. With the reduced classes (GrooVAE's inference classes) every GM
drum pitch is in a class, so nothing is remapped.

    class (Roland)      out-of-class GM pitches mapped to it
    0 kick          36  35 acoustic bass drum
    1 snare         38  27 high Q, 28 slap, 31 sticks, 32 square click, 33 metronome click,
                        34 metronome bell, 39 hand clap, 56 cowbell, 65 high timbale,
                        66 low timbale, 75 claves, 85 castanets
    2 closed hi-hat 42  54 tambourine, 68 low agogo, 69 cabasa, 70 maracas, 71 short whistle,
                        73 short guiro, 78 mute cuica, 80 mute triangle
    3 open hi-hat   46  67 high agogo, 72 long whistle, 74 long guiro, 79 open cuica,
                        81 open triangle
    4 low tom       43  29 scratch push, 41 low floor tom, 61 low bongo, 64 low conga, 84 belltree
    5 mid tom       47  60 high bongo, 63 open high conga, 77 low wood block, 86 mute surdo,
                        87 open surdo
    6 high tom      50  30 scratch pull, 62 mute high conga, 76 high wood block, 83 jingle bell
    7 crash         49  (none)
    8 ride          51  82 shaker

Time signature and tempo
------------------------
As in Magenta, a sequence gives no tensors at all (the reason is logged at INFO) when
`note_seq.sequences_lib.quantize_note_sequence` rejects it (a tempo change anywhere in the sequence,
a time-signature change, a bad time signature, a negative time) or when its bar is not
`steps_per_quarter * quarters_per_bar` steps long: with the defaults, 3/4 (12 steps) and 6/8 (12 steps)
give nothing, while 2/2 and 8/8 (16 steps) pass, as in Magenta. The check is on the whole sequence,
not per window: Magenta's GrooveConverter does not split sequences at tempo changes
(`presplit_on_time_changes=False`). Repeated tempo or time-signature events with the same value are
not changes.
"""

from __future__ import annotations

import abc
import collections
import logging
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from generation.protos import NoteSequence

with warnings.catch_warnings():
    # note_seq imports pydub, which warns at import when ffmpeg is absent; nothing here decodes audio.
    warnings.simplefilter("ignore", RuntimeWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from note_seq import drums_encoder_decoder, sequences_lib
    from note_seq.chord_symbols_lib import ChordSymbolError

__all__ = [
    "BASS_PROGRAMS",
    "BaseNoteSequenceConverter",
    "ConverterTensors",
    "DrumsConverter",
    "ELECTRIC_BASS_PROGRAM",
    "FULL_DRUM_PITCH_CLASSES",
    "GrooveConverter",
    "NoteSequenceAugmenter",
    "OneHotMelodyConverter",
    "MAX_INSTRUMENT_NUMBER",
    "MAX_MIDI_PITCH",
    "MEL_PROGRAMS",
    "MIDI_PITCHES",
    "MIN_MIDI_PITCH",
    "OUTPUT_VELOCITY",
    "PIANO_MAX_MIDI_PITCH",
    "PIANO_MIN_MIDI_PITCH",
    "REDUCED_DRUM_PITCH_CLASSES",
    "ROLAND_DRUM_PITCH_CLASSES",
    "maybe_sample_items",
    "np_onehot",
]

logger = logging.getLogger("generation.music_vae.data")

PIANO_MIN_MIDI_PITCH = 21
PIANO_MAX_MIDI_PITCH = 108
MIN_MIDI_PITCH = 0
MAX_MIDI_PITCH = 127
MIDI_PITCHES = 128

MAX_INSTRUMENT_NUMBER = 127

MEL_PROGRAMS = range(0, 32)  # piano, chromatic percussion, organ, guitar
BASS_PROGRAMS = range(32, 40)
ELECTRIC_BASS_PROGRAM = 33

# 9 classes: kick, snare, closed hi-hat, open hi-hat, low tom, mid tom, high tom, crash, ride.
# Magenta takes them from note_seq, so they follow whatever note_seq version is installed.
REDUCED_DRUM_PITCH_CLASSES: list[list[int]] = [
    list(pitches) for pitches in drums_encoder_decoder.DEFAULT_DRUM_TYPE_PITCHES
]
# 61 classes, one per General MIDI drum pitch (Magenta's literal list, which predates 22/26).
FULL_DRUM_PITCH_CLASSES: list[list[int]] = [
    [p] for p in
    [36, 35, 38, 27, 28, 31, 32, 33, 34, 37, 39, 40, 56, 65, 66, 75, 85, 42, 44,
     54, 68, 69, 70, 71, 73, 78, 80, 46, 67, 72, 74, 79, 81, 45, 29, 41, 61, 64,
     84, 48, 47, 60, 63, 77, 86, 87, 50, 30, 43, 62, 76, 83, 49, 55, 57, 58, 51,
     52, 53, 59, 82]
]
# The Roland TD-11 pitches of the Groove MIDI Dataset, in the same 9 classes.
ROLAND_DRUM_PITCH_CLASSES: list[list[int]] = [
    [36],  # kick drum
    [38, 37, 40],  # snare drum
    [42, 22, 44],  # closed hi-hat
    [46, 26],  # open hi-hat
    [43, 58],  # low tom
    [47, 45],  # mid tom
    [50, 48],  # high tom
    [49, 52, 55, 57],  # crash cymbal
    [51, 53, 59],  # ride cymbal
]

OUTPUT_VELOCITY = 80

DEFAULT_QPM = 120.0

_NAMED_PITCH_CLASSES: dict[str, list[list[int]]] = {
    "ROLAND_DRUM_PITCH_CLASSES": ROLAND_DRUM_PITCH_CLASSES,
    "REDUCED_DRUM_PITCH_CLASSES": REDUCED_DRUM_PITCH_CLASSES,
    "FULL_DRUM_PITCH_CLASSES": FULL_DRUM_PITCH_CLASSES,
}

# GM drum category (index into REDUCED_DRUM_PITCH_CLASSES) of every pitch that has one.
_GM_DRUM_CATEGORY: dict[int, int] = {
    pitch: category for category, pitches in enumerate(REDUCED_DRUM_PITCH_CLASSES) for pitch in pitches
}
# Per category, the pitches whose class an out-of-class note of that category joins, first found wins.
_CATEGORY_CANDIDATES: list[list[int]] = [
    list(roland) + [p for p in reduced if p not in roland]
    for roland, reduced in zip(ROLAND_DRUM_PITCH_CLASSES, REDUCED_DRUM_PITCH_CLASSES)
]

_QUANTIZATION_ERRORS = (
    sequences_lib.BadTimeSignatureError,
    sequences_lib.MultipleTempoError,
    sequences_lib.MultipleTimeSignatureError,
    sequences_lib.NegativeTimeError,
)

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]
PitchClasses = Sequence[Sequence[int]]

_T = TypeVar("_T")


def pad_windows(windows: Sequence[npt.ArrayLike], length: int, depth: int) -> npt.NDArray[np.float32]:
    """Windows, each [T_i, depth], stacked into one float32 array [N, length, depth], zeros after each
    window's end: the batch layout the model takes, with each window's own length beside it."""
    padded = np.zeros((len(windows), length, depth), dtype=np.float32)
    for row, window in enumerate(windows):
        window = np.asarray(window, dtype=np.float32)
        padded[row, : len(window)] = window
    return padded


def np_onehot(indices: Sequence[int] | npt.NDArray[np.integer], depth: int,
              dtype: npt.DTypeLike = np.bool_) -> np.ndarray:
    """One-hot rows: [len(indices), depth], row i set at indices[i]."""
    indices = np.asarray(indices, dtype=np.int64)
    onehot = np.zeros((len(indices), depth), dtype=dtype)
    onehot[np.arange(len(indices)), indices] = 1
    return onehot


def maybe_sample_items(seq: Sequence[_T], sample_size: int | None, randomize: bool, *,
                       rng: np.random.Generator | None = None) -> list[_T]:
    """Magenta's `maybe_sample_items`: at most `sample_size` items of `seq`.

    Without a limit, or with no more items than it, all items. Otherwise, when `randomize`, a sample
    without replacement drawn from `rng` (a fresh unseeded generator when None), kept in the original
    order; when not, the first `sample_size` items. GrooveConverter does not call this (Magenta's does
    not either); it is here for training pipelines that want a per-sequence cap.
    """
    items = list(seq)
    if not sample_size or len(items) <= sample_size:
        return items
    if not randomize:
        return items[:sample_size]
    rng = rng if rng is not None else np.random.default_rng()
    chosen = np.sort(rng.choice(len(items), size=sample_size, replace=False))
    return [items[i] for i in chosen]


class ConverterTensors(collections.namedtuple("ConverterTensors", ["inputs", "outputs", "controls", "lengths"])):
    """What `to_tensors` returns: one entry per extracted window, in the same order in every field.

    Attributes:
      inputs: encoder inputs, each [T, input_depth].
      outputs: decoder targets, each [T, output_depth].
      controls: control inputs for encoder and decoder, each [T, control_depth] (depth may be 0).
      lengths: T of each window.

    As in Magenta, omitted fields default to empty lists, lengths to the inputs' lengths and controls
    to [T, 0] arrays.
    """

    inputs: list[np.ndarray]
    outputs: list[np.ndarray]
    controls: list[np.ndarray]
    lengths: list[int]

    def __new__(cls, inputs: Sequence[np.ndarray] | None = None, outputs: Sequence[np.ndarray] | None = None,
                controls: Sequence[np.ndarray] | None = None,
                lengths: Sequence[int] | None = None) -> ConverterTensors:
        inputs = list(inputs) if inputs is not None else []
        outputs = list(outputs) if outputs is not None else []
        lengths = list(lengths) if lengths is not None else [len(i) for i in inputs]
        controls = (list(controls) if controls is not None and len(controls)
                    else [np.zeros((length, 0), np.bool_) for length in lengths])
        return super().__new__(cls, inputs, outputs, controls, lengths)


class BaseNoteSequenceConverter(abc.ABC):
    """Converts NoteSequences to model tensors and model samples back, as Magenta's base class.

    Subclasses implement `to_tensors(note_sequence, *, training, ...)` and
    `from_tensors(samples, controls=None, *, training, ...)`; whether a call is for training or for
    inference is an argument of each call, never converter state.
    """

    def __init__(self, input_depth: int, input_dtype: npt.DTypeLike, output_depth: int,
                 output_dtype: npt.DTypeLike, control_depth: int = 0, control_dtype: npt.DTypeLike = np.bool_,
                 end_token: int | bool | None = None, max_tensors_per_notesequence: int | None = None,
                 length_shape: tuple[int, ...] = (), presplit_on_time_changes: bool = True) -> None:
        self._input_depth = input_depth
        self._input_dtype = np.dtype(input_dtype)
        self._output_depth = output_depth
        self._output_dtype = np.dtype(output_dtype)
        self._control_depth = control_depth
        self._control_dtype = np.dtype(control_dtype)
        self._end_token = end_token
        self._max_tensors_per_notesequence = max_tensors_per_notesequence
        self._length_shape = length_shape
        self._presplit_on_time_changes = presplit_on_time_changes

    @property
    def input_depth(self) -> int:
        """Size of the last dimension of encoder inputs."""
        return self._input_depth

    @property
    def input_dtype(self) -> np.dtype:
        return self._input_dtype

    @property
    def output_depth(self) -> int:
        """Size of the last dimension of decoder outputs."""
        return self._output_depth

    @property
    def output_dtype(self) -> np.dtype:
        return self._output_dtype

    @property
    def control_depth(self) -> int:
        """Size of the last dimension of control tensors; 0 when the model takes no controls."""
        return self._control_depth

    @property
    def control_dtype(self) -> np.dtype:
        return self._control_dtype

    @property
    def end_token(self) -> int | bool | None:
        """End token, or None (False for GrooveConverter, as in Magenta)."""
        return self._end_token

    @property
    def max_tensors_per_notesequence(self) -> int | None:
        return self._max_tensors_per_notesequence

    @max_tensors_per_notesequence.setter
    def max_tensors_per_notesequence(self, value: int | None) -> None:
        self._max_tensors_per_notesequence = value

    @property
    def length_shape(self) -> tuple[int, ...]:
        """Shape of one entry of `ConverterTensors.lengths`."""
        return self._length_shape

    @property
    def presplit_on_time_changes(self) -> bool:
        return self._presplit_on_time_changes

    @property
    def str_to_item_fn(self) -> Callable[[bytes], NoteSequence]:
        """Parses a serialized NoteSequence (a TFRecord record)."""
        return NoteSequence.FromString

    @abc.abstractmethod
    def to_tensors(self, note_sequence: NoteSequence, *, training: bool = False) -> ConverterTensors:
        """Converts one NoteSequence into windows of model tensors."""

    @abc.abstractmethod
    def from_tensors(self, samples: Iterable[np.ndarray], controls: Iterable[np.ndarray] | None = None, *,
                     training: bool = False) -> list[NoteSequence]:
        """Converts model samples (each [T, output_depth]) back to NoteSequences."""


def _resolve_pitch_classes(classes: PitchClasses | str | None) -> list[list[int]] | None:
    if classes is None or (not isinstance(classes, str) and len(classes) == 0):
        return None  # Magenta's `pitch_classes or default`
    if isinstance(classes, str):
        try:
            classes = _NAMED_PITCH_CLASSES[classes]
        except KeyError:
            raise ValueError(f"unknown pitch classes {classes!r}; named ones: "
                             f"{', '.join(_NAMED_PITCH_CLASSES)}") from None
    resolved = [[int(p) for p in pitches] for pitches in classes]
    if not resolved or any(not pitches for pitches in resolved):
        raise ValueError("pitch classes must be a non-empty list of non-empty pitch lists")
    return resolved


def _classes_to_map(classes: list[list[int]]) -> dict[int, int]:
    # A pitch listed in two classes goes to the later one, as Magenta's dict updates do.
    return {pitch: index for index, pitches in enumerate(classes) for pitch in pitches}


def _to_categorical(values: np.ndarray, min_value: float, max_value: float, num_bins: int) -> np.ndarray:
    """[T, D] values -> [T, D * num_bins] one-hots, Magenta's binning (right-closed, top edge + 1e-4)."""
    bins = np.linspace(min_value, max_value + 0.0001, num_bins)
    # Magenta would raise IndexError past the top bin; values here never exceed it, clip for safety.
    indices = np.minimum(np.digitize(values, bins, right=True), num_bins - 1)
    onehot = np.eye(num_bins, dtype=np.float64)[indices]
    return onehot.reshape(values.shape[0], -1)


def _windows(tensor: np.ndarray, window_size: int, hop_size: int) -> list[np.ndarray]:
    return [tensor[i:i + window_size].copy() for i in range(0, len(tensor) - window_size + 1, hop_size)]


class GrooveConverter(BaseNoteSequenceConverter):
    """Drum performances <-> (hit, velocity, offset) per drum class per grid step, as Magenta's.

    Each step of the grid (16th notes by default) holds, for each of the D drum classes, a hit
    (0 or 1), a velocity (MIDI velocity / 127, in [0, 1]) and an offset: how far the hit lies from its
    grid step, 2 * (grid time - onset time) / step length, in (-1, 1]. The sign follows Magenta's
    code: a late note (played after its grid step) has a negative offset, an early one a positive
    offset; notes are assigned to the nearest step, halfway rounding to the later step. When several
    notes of one class fall in one step, the loudest wins (the first of equally loud ones, in the
    order of `note_sequence.notes`). Every note counts as a drum hit whatever its `is_drum` or
    program, as in Magenta: pass drum tracks only.

    Continuous tensors are [T, 3 * D]: D hits, D velocities, D offsets. With `num_velocity_bins` and
    `num_offset_bins` they are [T, D * (1 + num_velocity_bins + num_offset_bins)]: D hits, then
    D one-hots of velocity bins, then D one-hots of offset bins. With `split_instruments` each step
    becomes D rows, one per drum: [T * D, 3] or [T * D, 1 + num_velocity_bins + num_offset_bins].
    All inputs and outputs are float32; controls are bool. T is `split_bars` bars of steps, or, without
    `split_bars`, the whole sequence padded to whole bars.

    Outputs (decoder targets) always hold the performance; the options below change only the inputs
    (encoder), in this order: note dropout, tapify, humanize, fixed velocities, add_instruments.

    Training versus inference (`training=` of `to_tensors` and `from_tensors`), as Magenta's modes:
      * Pitch classes: `training=True` (Magenta's 'train' and 'eval' modes, and its unset mode) uses
        `pitch_classes`; `training=False` (Magenta's 'infer' mode, which its TrainedModel sets) uses
        `inference_pitch_classes`, both to group input pitches and to pick each class's output pitch
        (its first pitch) in `from_tensors`.
      * Nothing else differs. Note dropout, when `max_note_dropout_probability` is set, applies in
        both (Magenta applies it in every mode, including inference). `max_tensors_per_notesequence`
        is accepted and kept but limits nothing: Magenta's GrooveConverter returns every window in
        every mode (use `maybe_sample_items` to cap windows in a pipeline).

    Args:
      split_bars: Window length in bars; None for one window over the whole sequence.
      steps_per_quarter: Grid steps per quarter note.
      quarters_per_bar: Quarter notes per bar; sequences whose bar has another length give no tensors.
      max_tensors_per_notesequence: Kept for Magenta compatibility; not applied (see above).
      pitch_classes: Drum classes for training, each a list of MIDI pitches whose first pitch is the
        class's output pitch; default ROLAND_DRUM_PITCH_CLASSES. A name of one of this module's pitch
        class constants is accepted too.
      inference_pitch_classes: Drum classes for inference; default `pitch_classes`. Must have as many
        classes as `pitch_classes`.
      humanize: Inputs keep hits only (velocities and offsets zeroed).
      tapify: Inputs keep one hit per step, on the open hi-hat class (index 3): the hit, velocity and
        offset of that step's loudest class (class 0's when dropout emptied the step, as in
        Magenta, whose argmax picks index 0 then).
      add_instruments: Class indices removed from the inputs (hits, velocities and offsets zeroed), for
        models that learn to add those drums.
      num_velocity_bins: Velocity as one-hots over this many bins instead of a value; needs
        `num_offset_bins`.
      num_offset_bins: Offset as one-hots over this many bins instead of a value; needs
        `num_velocity_bins`.
      split_instruments: One row per drum per step (T * D rows) and a one-hot control naming the drum
        of each row.
      hop_size: Steps between window starts; default `split_bars` bars (no overlap). Needs `split_bars`.
      hits_as_controls: Controls also hold the output hits ([T, D], or [T * D, 1] when split).
      fixed_velocities: Input velocities zeroed.
      max_note_dropout_probability: When set, input hits are dropped at random: per sequence a
        probability p is drawn uniformly from [0, this value], and each cell is dropped with
        probability p * max(0.2, 1 - velocity), so quieter notes go more often.
    """

    def __init__(self, split_bars: int | None = None, steps_per_quarter: int = 4, quarters_per_bar: int = 4,
                 max_tensors_per_notesequence: int | None = 8, pitch_classes: PitchClasses | str | None = None,
                 inference_pitch_classes: PitchClasses | str | None = None, humanize: bool = False,
                 tapify: bool = False, add_instruments: Sequence[int] | None = None,
                 num_velocity_bins: int | None = None, num_offset_bins: int | None = None,
                 split_instruments: bool = False, hop_size: int | None = None, hits_as_controls: bool = False,
                 fixed_velocities: bool = False, max_note_dropout_probability: float | None = None) -> None:
        self._split_bars = split_bars
        self._steps_per_quarter = steps_per_quarter
        self._quarters_per_bar = quarters_per_bar
        self._steps_per_bar = steps_per_quarter * quarters_per_bar

        self._humanize = humanize
        self._tapify = tapify
        self._add_instruments = list(add_instruments) if add_instruments else []
        self._fixed_velocities = fixed_velocities

        self._num_velocity_bins = num_velocity_bins
        self._num_offset_bins = num_offset_bins
        self._categorical_outputs = bool(num_velocity_bins and num_offset_bins)
        self._split_instruments = split_instruments
        self._hop_size = hop_size
        self._hits_as_controls = hits_as_controls

        self._pitch_classes = _resolve_pitch_classes(pitch_classes) or [list(c) for c in ROLAND_DRUM_PITCH_CLASSES]
        self._infer_pitch_classes = _resolve_pitch_classes(inference_pitch_classes) or self._pitch_classes
        self._pitch_class_map = _classes_to_map(self._pitch_classes)
        self._infer_pitch_class_map = _classes_to_map(self._infer_pitch_classes)
        if len(self._pitch_classes) != len(self._infer_pitch_classes):
            raise ValueError("Training and inference must have the same number of pitch classes. "
                             f"Got: {len(self._pitch_classes)} vs {len(self._infer_pitch_classes)}.")
        self._num_drums = len(self._pitch_classes)

        if bool(num_velocity_bins) ^ bool(num_offset_bins):
            raise ValueError("Cannot define only one of num_velocity_bins and num_offset_bins.")
        if split_bars is None and hop_size is not None:
            raise ValueError("Cannot set hop_size without setting split_bars")
        if tapify and self._num_drums < 4:
            raise ValueError(f"tapify puts taps on class 3 (open hi-hat); got only {self._num_drums} classes")
        bad = [i for i in self._add_instruments if not 0 <= i < self._num_drums]
        if bad:
            raise ValueError(f"add_instruments {bad} are not class indices (0..{self._num_drums - 1})")
        if max_note_dropout_probability is not None and not 0.0 <= max_note_dropout_probability <= 1.0:
            raise ValueError(f"max_note_dropout_probability must be in [0, 1], got {max_note_dropout_probability}")

        drums_per_output = 1 if split_instruments else self._num_drums
        if self._categorical_outputs:
            assert num_velocity_bins and num_offset_bins
            output_depth = drums_per_output * (1 + num_velocity_bins + num_offset_bins)
        else:
            output_depth = drums_per_output * 3

        control_depth = 0
        if hits_as_controls:
            control_depth += 1 if split_instruments else self._num_drums
        if split_instruments:
            control_depth += self._num_drums

        self._max_note_dropout_probability = max_note_dropout_probability

        super().__init__(
            input_depth=output_depth, input_dtype=np.float32, output_depth=output_depth,
            output_dtype=np.float32, control_depth=control_depth, control_dtype=np.bool_, end_token=False,
            max_tensors_per_notesequence=max_tensors_per_notesequence, presplit_on_time_changes=False)

    @property
    def pitch_classes(self) -> list[list[int]]:
        """Classes used when `training=True` (Magenta's `pitch_classes` outside 'infer' mode)."""
        return self._pitch_classes

    @property
    def inference_pitch_classes(self) -> list[list[int]]:
        """Classes used when `training=False` (Magenta's `pitch_classes` in 'infer' mode)."""
        return self._infer_pitch_classes

    def classes_for(self, *, training: bool) -> list[list[int]]:
        return self._pitch_classes if training else self._infer_pitch_classes

    @property
    def tapify(self) -> bool:
        """Whether the inputs are taps (one hit per step, Magenta's tap-to-drums configs)."""
        return self._tapify

    @property
    def split_bars(self) -> int | None:
        """Window length in bars (None: one window over the whole sequence)."""
        return self._split_bars

    @property
    def quarters_per_bar(self) -> int:
        return self._quarters_per_bar

    @property
    def rows_per_step(self) -> int:
        """Tensor rows per grid step: one, or one per drum with `split_instruments`."""
        return self._num_drums if self._split_instruments else 1

    @property
    def num_drums(self) -> int:
        """D, the number of drum classes."""
        return self._num_drums

    @property
    def steps_per_quarter(self) -> int:
        return self._steps_per_quarter

    @property
    def steps_per_bar(self) -> int:
        return self._steps_per_bar

    def class_of_pitch(self, pitch: int, *, training: bool = False) -> int | None:
        """Class index of a MIDI pitch: its own class, else by the out-of-class rule; None if dropped."""
        class_map = self._pitch_class_map if training else self._infer_pitch_class_map
        if pitch in class_map:
            return class_map[pitch]
        category = _GM_DRUM_CATEGORY.get(pitch)
        if category is None:
            return None
        for candidate in _CATEGORY_CANDIDATES[category]:
            if candidate in class_map:
                return class_map[candidate]
        return None

    def to_tensors(self, note_sequence: NoteSequence, *, training: bool = False,
                   rng: np.random.Generator | int | None = None) -> ConverterTensors:
        """Converts a NoteSequence (unquantized, in seconds) into windows of tensors.

        Args:
          note_sequence: The performance; not modified.
          training: Pitch classes to use: `pitch_classes` if True, `inference_pitch_classes` if False.
          rng: Generator (or seed) for note dropout; a fresh unseeded generator when None. Unused
            without `max_note_dropout_probability`.

        Returns:
          ConverterTensors with one entry per window: inputs and outputs float32 [T, input_depth],
          controls bool [T, control_depth], lengths T. Empty when the sequence is rejected (see the
          module docstring; the reason is logged), has no usable notes, or is shorter than one window.
        """
        whole = self.whole_tensors(note_sequence, training=training, rng=rng)
        if not whole.inputs or not self._split_bars:
            return whole
        inputs, outputs, controls = whole.inputs[0], whole.outputs[0], whole.controls[0]
        window = self.rows_per_step * self._steps_per_bar * self._split_bars
        hop = self.rows_per_step * (self._hop_size or self._steps_per_bar * self._split_bars)
        if len(inputs) < window:
            logger.info("%s: no tensors: %d bars, shorter than one %d-bar window", _name(note_sequence),
                        len(inputs) // (self.rows_per_step * self._steps_per_bar), self._split_bars)
            return ConverterTensors()
        return ConverterTensors(inputs=_windows(inputs, window, hop), outputs=_windows(outputs, window, hop),
                                controls=_windows(controls, window, hop))

    def whole_tensors(self, note_sequence: NoteSequence, *, training: bool = False,
                      rng: np.random.Generator | int | None = None) -> ConverterTensors:
        """The whole sequence as one entry, unwindowed: inputs and outputs [S * rows_per_step, depth]
        and controls over S steps, S a whole number of bars from bar 0 to the bar of the last hit.
        Empty when `to_tensors` would reject the sequence for anything but its length. Whole-piece
        jobs (`generation.music_vae.tasks`) cut their own windows from it at the piece's bar lines."""
        try:
            quantized = sequences_lib.quantize_note_sequence(note_sequence, self._steps_per_quarter)
        except _QUANTIZATION_ERRORS as error:
            logger.info("%s: no tensors: %s: %s", _name(note_sequence), type(error).__name__, error)
            return ConverterTensors()
        steps_per_bar = sequences_lib.steps_per_bar_in_quantized_sequence(quantized)
        if steps_per_bar != self._steps_per_bar:
            ts = quantized.time_signatures[0]
            logger.info("%s: no tensors: time signature %d/%d gives %g steps per bar, this converter needs %d "
                        "(%d quarters per bar)", _name(note_sequence), ts.numerator, ts.denominator,
                        steps_per_bar, self._steps_per_bar, self._quarters_per_bar)
            return ConverterTensors()

        hits, velocities, offsets = self._grid(quantized, training=training)
        if hits is None:
            return ConverterTensors()
        assert velocities is not None and offsets is not None
        max_step = len(hits)

        in_hits, in_velocities, in_offsets = hits.copy(), velocities.copy(), offsets.copy()

        if self._max_note_dropout_probability is not None:
            generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
            dropout_probability = generator.uniform(0.0, self._max_note_dropout_probability)
            drop_weights = np.maximum(0.2, 1 - in_velocities)
            keep = 1 - generator.binomial(1, drop_weights * dropout_probability)
            in_hits *= keep
            in_velocities *= keep
            in_offsets *= keep

        if self._tapify:
            # Taps copy the undropped values of the loudest surviving class, as Magenta's do.
            loudest = np.argmax(in_velocities, axis=1)
            rows = np.arange(max_step)
            in_hits[:] = 0
            in_velocities[:] = 0
            in_offsets[:] = 0
            in_hits[:, 3] = hits[rows, loudest]
            in_velocities[:, 3] = velocities[rows, loudest]
            in_offsets[:, 3] = offsets[rows, loudest]

        if self._humanize:
            in_velocities[:] = 0
            in_offsets[:] = 0

        if self._fixed_velocities:
            in_velocities[:] = 0

        if self._add_instruments:
            for tensor in (in_hits, in_velocities, in_offsets):
                tensor[:, self._add_instruments] = 0

        if self._categorical_outputs:
            assert self._num_velocity_bins and self._num_offset_bins
            velocities = _to_categorical(velocities, 0.0, 1.0, self._num_velocity_bins)
            in_velocities = _to_categorical(in_velocities, 0.0, 1.0, self._num_velocity_bins)
            offsets = _to_categorical(offsets, -1.0, 1.0, self._num_offset_bins)
            in_offsets = _to_categorical(in_offsets, -1.0, 1.0, self._num_offset_bins)

        if self._split_instruments:
            total_length = max_step * self._num_drums
            hits, velocities, offsets, in_hits, in_velocities, in_offsets = (
                t.reshape(total_length, -1) for t in (hits, velocities, offsets, in_hits, in_velocities, in_offsets))
        else:
            total_length = max_step

        outputs = np.concatenate([hits, velocities, offsets], axis=1).astype(np.float32)
        inputs = np.concatenate([in_hits, in_velocities, in_offsets], axis=1).astype(np.float32)

        control_parts = []
        if self._hits_as_controls:
            control_parts.append(hits.astype(np.bool_))
        if self._split_instruments:
            control_parts.append(np.tile(np.eye(self._num_drums, dtype=np.bool_), (max_step, 1)))
        controls = (np.concatenate(control_parts, axis=1) if control_parts
                    else np.zeros((total_length, 0), np.bool_))

        return ConverterTensors(inputs=[inputs], outputs=[outputs], controls=[controls])

    def _grid(self, quantized: NoteSequence, *, training: bool
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | tuple[None, None, None]:
        """[S, D] float64 hits, velocities and offsets over whole bars, S a multiple of steps_per_bar."""
        steps, classes, velocities, starts, order = [], [], [], [], []
        mapped: collections.Counter[tuple[int, int]] = collections.Counter()
        dropped: collections.Counter[int] = collections.Counter()
        class_map = self._pitch_class_map if training else self._infer_pitch_class_map
        for index, note in enumerate(quantized.notes):
            drum = class_map.get(note.pitch)
            if drum is None:
                drum = self.class_of_pitch(note.pitch, training=training)
                if drum is None:
                    dropped[note.pitch] += 1
                    continue
                mapped[(note.pitch, drum)] += 1
            steps.append(note.quantized_start_step)
            classes.append(drum)
            velocities.append(note.velocity)
            starts.append(note.start_time)
            order.append(index)
        if mapped:
            logger.info("%s: %d notes with out-of-class pitches mapped (pitch->class x count): %s",
                        _name(quantized), sum(mapped.values()),
                        ", ".join(f"{p}->{c} x{n}" for (p, c), n in sorted(mapped.items())))
        if dropped:
            logger.warning("%s: %d notes dropped, their pitches in no drum class or GM drum category "
                           "(pitch x count): %s", _name(quantized), sum(dropped.values()),
                           ", ".join(f"{p} x{n}" for p, n in sorted(dropped.items())))
        if not steps:
            logger.info("%s: no tensors: no drum notes", _name(quantized))
            return None, None, None

        step = np.asarray(steps, np.int64)
        drum = np.asarray(classes, np.int64)
        velocity = np.asarray(velocities, np.int64)
        start = np.asarray(starts, np.float64)
        order_arr = np.asarray(order, np.int64)

        total_bars = int(np.ceil((step.max() + 1) / self._steps_per_bar))
        max_step = self._steps_per_bar * total_bars

        # Loudest note per (step, class); among equals the earliest in the sequence (Python's max()).
        ranked = np.lexsort((order_arr, -velocity, drum, step))
        step, drum, velocity, start = step[ranked], drum[ranked], velocity[ranked], start[ranked]
        first = np.ones(len(step), bool)
        first[1:] = (step[1:] != step[:-1]) | (drum[1:] != drum[:-1])
        step, drum, velocity, start = step[first], drum[first], velocity[first], start[first]

        # Magenta's arithmetic, operation for operation, so the float64 values match its own.
        step_length = 60.0 / quantized.tempos[0].qpm / quantized.quantization_info.steps_per_quarter
        offset = (step_length * step - start) / step_length * 2

        hits = np.zeros((max_step, self._num_drums))
        velocities_grid = np.zeros((max_step, self._num_drums))
        offsets = np.zeros((max_step, self._num_drums))
        hits[step, drum] = 1.0
        velocities_grid[step, drum] = velocity / 127.0
        offsets[step, drum] = offset
        return hits, velocities_grid, offsets

    def from_tensors(self, samples: Iterable[np.ndarray], controls: Iterable[np.ndarray] | None = None, *,
                     training: bool = False, qpm: float = DEFAULT_QPM) -> list[NoteSequence]:
        """Converts model samples or `to_tensors` tensors back to NoteSequences.

        Args:
          samples: Arrays (numpy, or anything `np.asarray` takes), each [T, output_depth], or one
            [B, T, output_depth] array.
          controls: Ignored, as in Magenta.
          training: Output pitch of each class: the first pitch of the class in `pitch_classes` if
            True, in `inference_pitch_classes` if False.
          qpm: Tempo written into each sequence and used to place its notes (Magenta: always 120).

        Returns:
          One NoteSequence per sample: a drum note (instrument 9) per hit above 0.5 at time
          (step - offset / 2) * step length, lasting one step, velocity round(127 * v) clipped to
          [0, 127] (categorical: int(127 * bin / bins), offset bin / bins - 0.5 steps), a tempo of
          `qpm`, a `quarters_per_bar`/4 time signature, and total_time the last note's end.
        """
        del controls
        classes = self.classes_for(training=training)
        step_length = 60.0 / qpm / self._steps_per_quarter
        num_drums = self._num_drums
        sequences = []
        for sample in samples:
            sample = np.asarray(sample)
            n_steps = sample.shape[0] // num_drums if self._split_instruments else sample.shape[0]
            ns = NoteSequence()
            ns.tempos.add(qpm=qpm)
            ns.time_signatures.add(numerator=self._quarters_per_bar, denominator=4)
            for i in range(n_steps):
                if self._split_instruments:
                    rows = sample[i * num_drums:(i + 1) * num_drums]
                    if self._categorical_outputs:
                        assert self._num_velocity_bins
                        hits = rows[:, 0]
                        velocity_parts = list(rows[:, 1:1 + self._num_velocity_bins])
                        offset_parts = list(rows[:, 1 + self._num_velocity_bins:])
                    else:
                        hits, velocity_parts, offset_parts = rows[:, 0], rows[:, 1], rows[:, 2]
                else:
                    row = sample[i]
                    if self._categorical_outputs:
                        assert self._num_velocity_bins
                        split = num_drums * (1 + self._num_velocity_bins)
                        hits = row[:num_drums]
                        velocity_parts = np.split(row[num_drums:split], num_drums)
                        offset_parts = np.split(row[split:], num_drums)
                    else:
                        hits, velocity_parts, offset_parts = np.split(row, 3)
                for j in range(num_drums):
                    if not hits[j] > 0.5:
                        continue
                    if self._categorical_outputs:
                        velocity = int(np.argmax(velocity_parts[j]) / len(velocity_parts[j]) * 127)
                        offset = float(np.argmax(offset_parts[j]) / len(offset_parts[j])) - 0.5
                    else:
                        velocity = int(np.clip(int(np.round(float(velocity_parts[j]) * 127)), 0, 127))
                        offset = float(np.clip(float(offset_parts[j]) / 2, -0.5, 0.5))
                    note = ns.notes.add()
                    note.instrument = 9
                    note.is_drum = True
                    note.pitch = classes[j][0]
                    note.velocity = velocity
                    note.start_time = (i - offset) * step_length
                    note.end_time = note.start_time + step_length
            ns.total_time = max((n.end_time for n in ns.notes), default=0.0)
            sequences.append(ns)
        return sequences


def _name(note_sequence: NoteSequence) -> str:
    return note_sequence.filename or note_sequence.id or "<NoteSequence>"


# -- Categorical converters: melodies and drum patterns (Magenta's cat-mel_* and cat-drums_* configs) --

MEL_PROGRAMS_NAME = "MEL_PROGRAMS"
_NAMED_PROGRAMS: dict[str, range] = {"MEL_PROGRAMS": MEL_PROGRAMS, "BASS_PROGRAMS": BASS_PROGRAMS}


class NoteSequenceAugmenter:
    """Magenta's `NoteSequenceAugmenter`: a random time stretch, then a random transposition.

    `augment` draws the stretch factor uniformly from `stretch_range` and the transposition (in
    semitones) uniformly from the integers of `transpose_range`, both inclusive, in that order and
    only when the sequence has notes, as note_seq's `augment_note_sequence` does; transposed notes
    that leave MIDI's 0-127 are deleted (Magenta's `delete_out_of_range_notes=True`), drums are not
    transposed, chord symbols are (and dropped when one cannot be parsed, where note_seq raises).
    The draws come from `rng` instead of Python's global `random`.
    """

    def __init__(self, transpose_range: Sequence[int] | None = None,
                 stretch_range: Sequence[float] | None = None) -> None:
        for name, value in (("transpose_range", transpose_range), ("stretch_range", stretch_range)):
            if value is not None and (len(value) != 2 or value[0] > value[1]):
                raise ValueError(f"{name} must be [low, high] with low <= high; got {list(value)}")
        self._transpose_range = (int(transpose_range[0]), int(transpose_range[1])) if transpose_range else None
        self._stretch_range = (float(stretch_range[0]), float(stretch_range[1])) if stretch_range else None

    @property
    def transpose_range(self) -> tuple[int, int] | None:
        return self._transpose_range

    @property
    def stretch_range(self) -> tuple[float, float] | None:
        return self._stretch_range

    def augment(self, note_sequence: NoteSequence, rng: np.random.Generator | None = None) -> NoteSequence:
        """A randomly stretched and transposed copy of `note_sequence` (which is left unchanged)."""
        rng = rng if rng is not None else np.random.default_rng()
        low_t, high_t = self._transpose_range or (0, 0)
        low_s, high_s = self._stretch_range or (1.0, 1.0)
        augmented = NoteSequence()
        augmented.CopyFrom(note_sequence)
        if not augmented.notes:
            return augmented
        augmented = sequences_lib.stretch_note_sequence(augmented, float(rng.uniform(low_s, high_s)), in_place=True)
        amount = int(rng.integers(low_t, high_t + 1))
        try:
            transposed, _ = sequences_lib.transpose_note_sequence(augmented, amount, MIN_MIDI_PITCH, MAX_MIDI_PITCH)
        except ChordSymbolError:
            # A text annotation marked as a chord that is none ("D.C." in ABC tunebooks): note_seq
            # cannot transpose it, so the chord symbols go (no converter here reads them).
            transposed, _ = sequences_lib.transpose_note_sequence(augmented, amount, MIN_MIDI_PITCH, MAX_MIDI_PITCH,
                                                                  transpose_chords=False)
        return transposed


def _quantize_for_events(note_sequence: NoteSequence, steps_per_quarter: int,
                         steps_per_bar: int) -> NoteSequence | None:
    """The sequence quantized, or None (logged) when Magenta's event converters give it no tensors."""
    from note_seq import NonIntegerStepsPerBarError

    try:
        quantized = sequences_lib.quantize_note_sequence(note_sequence, steps_per_quarter)
    except (*_QUANTIZATION_ERRORS, NonIntegerStepsPerBarError) as error:
        logger.info("%s: no tensors: %s: %s", _name(note_sequence), type(error).__name__, error)
        return None
    found = sequences_lib.steps_per_bar_in_quantized_sequence(quantized)
    if found != steps_per_bar:
        logger.info("%s: no tensors: %g steps per bar, this converter needs %d", _name(note_sequence), found,
                    steps_per_bar)
        return None
    return quantized


def extract_melodies(quantized: NoteSequence, *, min_bars: int = 7, max_steps_truncate: int | None = None,
                     gap_bars: float = 1.0, min_unique_pitches: int = 5, ignore_polyphonic_notes: bool = True,
                     pad_end: bool = False, filter_drums: bool = True) -> list:
    """Magenta's `melody_pipelines.extract_melodies` (searching from step 0): `note_seq.Melody`s.

    Per instrument, in increasing instrument number: a melody starts at the bar of the next note
    and ends after `gap_bars` bars of silence; the next search starts at the bar after it. A melody
    shorter than `min_bars` bars, or with fewer than `min_unique_pitches` pitch classes, is dropped;
    a longer one than `max_steps_truncate` is cut (to whole bars with `pad_end`). An instrument with
    two notes starting together stops there unless `ignore_polyphonic_notes` (then the highest
    note of each onset is kept).
    """
    from note_seq import Melody, PolyphonicMelodyError

    melodies = []
    steps_per_bar = int(sequences_lib.steps_per_bar_in_quantized_sequence(quantized))
    for instrument in sorted({n.instrument for n in quantized.notes}):
        search_start = 0
        while True:
            melody = Melody()
            try:
                melody.from_quantized_sequence(quantized, instrument=instrument, search_start_step=search_start,
                                               gap_bars=gap_bars, ignore_polyphonic_notes=ignore_polyphonic_notes,
                                               pad_end=pad_end, filter_drums=filter_drums)
            except PolyphonicMelodyError:
                break
            search_start = melody.end_step + (-melody.end_step) % steps_per_bar
            if not melody:
                break
            if len(melody) < melody.steps_per_bar * min_bars:
                continue
            if max_steps_truncate is not None and len(melody) > max_steps_truncate:
                length = max_steps_truncate - (max_steps_truncate % melody.steps_per_bar if pad_end else 0)
                melody.set_length(length)
            if np.count_nonzero(melody.get_note_histogram()) < min_unique_pitches:
                continue
            melodies.append(melody)
    return melodies


def extract_drum_tracks(quantized: NoteSequence, *, min_bars: int = 7, max_steps_truncate: int | None = None,
                        gap_bars: float = 1.0, pad_end: bool = False) -> list:
    """Magenta's `drum_pipelines.extract_drum_tracks` (searching from step 0): `note_seq.DrumTrack`s,
    each starting at the bar of its first drum note and ending after `gap_bars` bars without one."""
    from note_seq import DrumTrack

    tracks = []
    steps_per_bar = int(sequences_lib.steps_per_bar_in_quantized_sequence(quantized))
    search_start = 0
    while True:
        track = DrumTrack()
        track.from_quantized_sequence(quantized, search_start_step=search_start, gap_bars=gap_bars, pad_end=pad_end)
        search_start = track.end_step + (-track.end_step) % steps_per_bar
        if not track:
            break
        if len(track) < track.steps_per_bar * min_bars:
            continue
        if max_steps_truncate is not None and len(track) > max_steps_truncate:
            track.set_length(max_steps_truncate - (max_steps_truncate % track.steps_per_bar if pad_end else 0))
        tracks.append(track)
    return tracks


def _slices(event_lists: Sequence, slice_steps: int | None, steps_per_bar: int) -> list[tuple]:
    """Every `slice_steps`-long window of each note_seq event sequence, starting on each bar, as a
    tuple of events; whole sequences without `slice_steps`. The windows are note_seq's own slices,
    so a melody window that opens with NOTE_OFFs before its first note has NO_EVENTs there, as
    Magenta's do (which makes such a window a repeat of the same notes heard from silence)."""
    if not slice_steps:
        return [tuple(events) for events in event_lists]
    return [tuple(events[end - slice_steps:end]) for events in event_lists
            for end in range(slice_steps, len(events) + 1, steps_per_bar)]


def _unique(items: Iterable[_T]) -> list[_T]:
    """The items without repeats, in order of first appearance (Magenta's `set` leaves the order to
    hashing, so which windows its inference mode keeps under a cap is arbitrary; here, the first)."""
    return list(dict.fromkeys(items))


def _resolve_programs(programs: Iterable[int] | str | None) -> frozenset[int] | None:
    if programs is None:
        return None
    if isinstance(programs, str):
        if programs not in _NAMED_PROGRAMS:
            raise ValueError(f"unknown programs {programs!r}; named ones: {', '.join(_NAMED_PROGRAMS)}")
        programs = _NAMED_PROGRAMS[programs]
    return frozenset(int(p) for p in programs)


class _EventConverter(BaseNoteSequenceConverter):
    """What Magenta's one-hot event converters share: split on time changes, convert each part,
    cap the windows per sequence (`split_process_and_combine`)."""

    _steps_per_quarter: int
    _steps_per_bar: int
    _quarters_per_bar: int
    _slice_bars: int | None

    @property
    def steps_per_quarter(self) -> int:
        return self._steps_per_quarter

    @property
    def steps_per_bar(self) -> int:
        return self._steps_per_bar

    @property
    def quarters_per_bar(self) -> int:
        return self._quarters_per_bar

    @property
    def slice_bars(self) -> int | None:
        """Window length in bars (None: whole extracted event lists)."""
        return self._slice_bars

    def to_tensors(self, note_sequence: NoteSequence, *, training: bool = False,
                   rng: np.random.Generator | int | None = None) -> ConverterTensors:
        """One-hot windows of `note_sequence` (unquantized, in seconds; not modified).

        `training`: Magenta's 'train' mode, where windows beyond `max_tensors_per_notesequence` are
        dropped at random (drawn from `rng`, a generator or a seed); otherwise the first ones are kept.
        Inputs, outputs and controls are bool arrays [T, depth], as Magenta's.
        """
        generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        cap = self.max_tensors_per_notesequence
        parts = (sequences_lib.split_note_sequence_on_time_changes(note_sequence)
                 if self.presplit_on_time_changes else [note_sequence])
        windows: list[tuple] = []
        for part in parts:
            tensors = self._part_tensors(part, training=training, rng=generator)
            windows += maybe_sample_items(list(zip(*tensors)), cap, training, rng=generator)
        windows = maybe_sample_items(windows, cap, training, rng=generator)
        return ConverterTensors(*zip(*windows)) if windows else ConverterTensors()

    @abc.abstractmethod
    def _part_tensors(self, note_sequence: NoteSequence, *, training: bool,
                      rng: np.random.Generator) -> ConverterTensors:
        """The windows of one part of constant tempo and meter."""


class OneHotMelodyConverter(_EventConverter):
    """Monophonic melodies <-> one-hot melody events per grid step, as Magenta's converter.

    Each step (a 16th note by default) is one event of `note_seq.MelodyOneHotEncoding(min_pitch,
    max_pitch + 1)`: class 0 NO_EVENT (nothing starts; a sounding note goes on), class 1 NOTE_OFF,
    class 2 + p - min_pitch the onset of pitch p; 90 classes for the default range 21-108, plus an
    end token when asked for. Inputs and outputs are the same one-hot arrays.

    Extraction, as Magenta's: notes of other programs than `valid_programs` and outside
    [min_pitch, max_pitch] are dropped, the sequence is split on tempo and time-signature changes,
    each part quantized (a part whose bar is not `steps_per_quarter * quarters_per_bar` steps long
    gives nothing), and melodies are extracted per instrument (`extract_melodies` with min_bars=1,
    min_unique_pitches=1, pad_end=True; the highest note of a chord unless `skip_polyphony`, which
    drops a polyphonic instrument instead), cut to `max_bars`, then sliced into every `slice_bars`
    window starting on a bar line. Repeated windows are kept once (`dedupe_event_lists`), then at
    most `max_tensors_per_notesequence` are kept per part and per sequence.

    Where this differs from Magenta's: training versus inference is `to_tensors(training=...)`,
    randomness comes from `rng=`; windows keep the order of the music (Magenta's `set` loses it),
    so an inference-mode cap keeps the first windows; chord and key conditioning
    (`chord_encoding`, `condition_on_key`) are not implemented; `from_tensors` takes `qpm=`.
    """

    def __init__(self, min_pitch: int = PIANO_MIN_MIDI_PITCH, max_pitch: int = PIANO_MAX_MIDI_PITCH,
                 valid_programs: Iterable[int] | str | None = None, skip_polyphony: bool = False,
                 max_bars: int | None = None, slice_bars: int | None = None, gap_bars: float | None = 1.0,
                 steps_per_quarter: int = 4, quarters_per_bar: int = 4, add_end_token: bool = False,
                 pad_to_total_time: bool = False, max_tensors_per_notesequence: int | None = 5,
                 presplit_on_time_changes: bool = True, dedupe_event_lists: bool = True) -> None:
        from note_seq import MelodyOneHotEncoding

        if not MIN_MIDI_PITCH <= min_pitch <= max_pitch <= MAX_MIDI_PITCH:
            raise ValueError(f"need 0 <= min_pitch <= max_pitch <= 127; got {min_pitch} and {max_pitch}")
        for name, value in (("steps_per_quarter", steps_per_quarter), ("quarters_per_bar", quarters_per_bar)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if slice_bars is not None and (isinstance(slice_bars, bool) or not isinstance(slice_bars, int)
                                       or slice_bars < 1):
            raise ValueError(f"slice_bars must be a positive integer or null; got {slice_bars!r}")
        self._min_pitch, self._max_pitch = int(min_pitch), int(max_pitch)
        self._valid_programs = _resolve_programs(valid_programs)
        self._skip_polyphony = skip_polyphony
        self._steps_per_quarter = steps_per_quarter
        self._quarters_per_bar = quarters_per_bar
        self._steps_per_bar = steps_per_quarter * quarters_per_bar
        self._max_steps_truncate = self._steps_per_bar * max_bars if max_bars else None
        self._slice_bars = slice_bars
        self._slice_steps = self._steps_per_bar * slice_bars if slice_bars else None
        self._gap_bars = gap_bars or float("inf")
        self._pad_to_total_time = pad_to_total_time
        self._dedupe = dedupe_event_lists
        self._encoding = MelodyOneHotEncoding(self._min_pitch, self._max_pitch + 1)
        depth = self._encoding.num_classes + bool(add_end_token)
        super().__init__(input_depth=depth, input_dtype=np.bool_, output_depth=depth, output_dtype=np.bool_,
                         end_token=self._encoding.num_classes if add_end_token else None,
                         max_tensors_per_notesequence=max_tensors_per_notesequence,
                         presplit_on_time_changes=presplit_on_time_changes)

    @property
    def min_pitch(self) -> int:
        return self._min_pitch

    @property
    def max_pitch(self) -> int:
        return self._max_pitch

    @property
    def melody_encoding(self):  # type: ignore[no-untyped-def]
        """The `note_seq.MelodyOneHotEncoding` of single events."""
        return self._encoding

    def melody_fn(self):  # type: ignore[no-untyped-def]
        """An empty `note_seq.Melody` on this converter's grid."""
        from note_seq import Melody

        return Melody(steps_per_bar=self._steps_per_bar, steps_per_quarter=self._steps_per_quarter)

    def _part_tensors(self, note_sequence: NoteSequence, *, training: bool,
                      rng: np.random.Generator) -> ConverterTensors:
        kept = NoteSequence()
        kept.CopyFrom(note_sequence)
        del kept.notes[:]
        kept.notes.extend(n for n in note_sequence.notes
                          if (self._valid_programs is None or n.program in self._valid_programs)
                          and self._min_pitch <= n.pitch <= self._max_pitch)
        quantized = _quantize_for_events(kept, self._steps_per_quarter, self._steps_per_bar)
        if quantized is None:
            return ConverterTensors()
        melodies = extract_melodies(quantized, min_bars=1, gap_bars=self._gap_bars,
                                    max_steps_truncate=self._max_steps_truncate, min_unique_pitches=1,
                                    ignore_polyphonic_notes=not self._skip_polyphony, pad_end=True)
        if self._pad_to_total_time:
            for melody in melodies:
                melody.set_length(len(melody) + melody.start_step, from_left=True)
                melody.set_length(quantized.total_quantized_steps)
        windows = _slices(melodies, self._slice_steps, self._steps_per_bar)
        windows = _unique(windows) if self._dedupe else windows
        windows = maybe_sample_items(windows, self.max_tensors_per_notesequence, training, rng=rng)
        end = [] if self.end_token is None else [self.end_token]
        seqs = [np_onehot([self._encoding.encode_event(e) for e in w] + end, self.output_depth, np.bool_)
                for w in windows]
        return ConverterTensors(inputs=seqs, outputs=seqs)

    def labels_to_events(self, labels: Iterable[int]) -> list[int]:
        """Class indices -> melody events (note_seq's: -2 NO_EVENT, -1 NOTE_OFF, else a MIDI pitch),
        stopping at the end token."""
        events = []
        for label in labels:
            if self.end_token is not None and int(label) == self.end_token:
                break
            events.append(int(self._encoding.decode_event(int(label))))
        return events

    def from_tensors(self, samples: Iterable[np.ndarray], controls: Iterable[np.ndarray] | None = None, *,
                     training: bool = False, qpm: float = DEFAULT_QPM) -> list[NoteSequence]:
        """One NoteSequence per sample [T, output_depth] (each step's argmax; up to an end token):
        `Melody.to_sequence` at velocity 80 and `qpm` (Magenta: always 120), instrument 0.
        `controls` and `training` change nothing (no conditioning, one output vocabulary)."""
        del controls, training
        sequences = []
        for sample in samples:
            melody = self.melody_fn()
            for event in self.labels_to_events(np.argmax(np.asarray(sample), axis=-1)):
                melody.append(event)
            sequences.append(melody.to_sequence(velocity=OUTPUT_VELOCITY, qpm=qpm))
        return sequences


class DrumsConverter(_EventConverter):
    """Drum tracks <-> one-hot drum patterns per grid step, as Magenta's converter.

    Each step is the set of drum classes hit there (`pitch_classes`, default Magenta's 9 reduced
    classes: kick, snare, closed hi-hat, open hi-hat, low, mid and high tom, crash, ride), as one of
    2 ** 9 = 512 classes (`note_seq.MultiDrumOneHotEncoding`: the sum of 2 ** class), plus an end
    token when asked for. `roll_input`: encoder inputs are the multi-hot roll of the classes (plus
    the end token's column) and a last "nothing hit" bit, 9 + 1 columns by default; `roll_output`:
    decoder outputs are the multi-hot roll instead of the one-hot.

    Extraction, as Magenta's: split on tempo and time-signature changes, quantize (a bar of another
    length gives nothing), keep the drum notes (`is_drum`) whose pitch is in a class, extract drum
    tracks (`extract_drum_tracks`, min_bars=1, pad_end=True), cut to `max_bars`, slice into every
    `slice_bars` window starting on a bar line, drop repeated windows, keep at most
    `max_tensors_per_notesequence`. Differences as for `OneHotMelodyConverter`.
    """

    def __init__(self, max_bars: int | None = None, slice_bars: int | None = None, gap_bars: float | None = 1.0,
                 pitch_classes: PitchClasses | str | None = None, add_end_token: bool = False,
                 steps_per_quarter: int = 4, quarters_per_bar: int = 4, pad_to_total_time: bool = False,
                 roll_input: bool = False, roll_output: bool = False,
                 max_tensors_per_notesequence: int | None = 5, presplit_on_time_changes: bool = True) -> None:
        from note_seq import MultiDrumOneHotEncoding

        for name, value in (("steps_per_quarter", steps_per_quarter), ("quarters_per_bar", quarters_per_bar)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        self._pitch_classes = _resolve_pitch_classes(pitch_classes) or [list(c) for c in REDUCED_DRUM_PITCH_CLASSES]
        self._pitch_class_map = _classes_to_map(self._pitch_classes)
        self._steps_per_quarter = steps_per_quarter
        self._quarters_per_bar = quarters_per_bar
        self._steps_per_bar = steps_per_quarter * quarters_per_bar
        self._slice_bars = slice_bars
        self._slice_steps = self._steps_per_bar * slice_bars if slice_bars else None
        self._max_steps_truncate = self._steps_per_bar * max_bars if max_bars else None
        self._gap_bars = gap_bars or float("inf")
        self._pad_to_total_time = pad_to_total_time
        self._roll_input, self._roll_output = roll_input, roll_output
        num_classes = len(self._pitch_classes)
        self._roll_size = num_classes + bool(add_end_token)  # Magenta's PianorollEncoderDecoder input_size
        # The classes are the pitches once notes are mapped, hence one "pitch" per class.
        self._one_hot = MultiDrumOneHotEncoding(drum_type_pitches=[(i,) for i in range(num_classes)])
        output_depth = self._roll_size if roll_output else self._one_hot.num_classes + bool(add_end_token)
        input_depth = num_classes + 1 + bool(add_end_token) if roll_input else self._one_hot.num_classes + bool(add_end_token)
        super().__init__(input_depth=input_depth, input_dtype=np.bool_, output_depth=output_depth,
                         output_dtype=np.bool_, end_token=output_depth - 1 if add_end_token else None,
                         max_tensors_per_notesequence=max_tensors_per_notesequence,
                         presplit_on_time_changes=presplit_on_time_changes)

    @property
    def pitch_classes(self) -> list[list[int]]:
        return self._pitch_classes

    @property
    def num_drums(self) -> int:
        return len(self._pitch_classes)

    @property
    def roll_output(self) -> bool:
        return self._roll_output

    def _part_tensors(self, note_sequence: NoteSequence, *, training: bool,
                      rng: np.random.Generator) -> ConverterTensors:
        quantized = _quantize_for_events(note_sequence, self._steps_per_quarter, self._steps_per_bar)
        if quantized is None:
            return ConverterTensors()
        drums = []
        for note in quantized.notes:
            if note.is_drum and note.pitch in self._pitch_class_map:
                note.pitch = self._pitch_class_map[note.pitch]
                drums.append(note)
        del quantized.notes[:]
        quantized.notes.extend(drums)
        tracks = extract_drum_tracks(quantized, min_bars=1, gap_bars=self._gap_bars,
                                     max_steps_truncate=self._max_steps_truncate, pad_end=True)
        if self._pad_to_total_time:
            for track in tracks:
                track.set_length(len(track) + track.start_step, from_left=True)
                track.set_length(quantized.total_quantized_steps)
        windows = _unique(_slices(tracks, self._slice_steps, self._steps_per_bar))
        windows = maybe_sample_items(windows, self.max_tensors_per_notesequence, training, rng=rng)
        inputs, outputs = [], []
        for window in windows:
            roll = one_hot = None
            if self._roll_input or self._roll_output:
                events = list(window) + ([frozenset([self._roll_size - 1])] if self.end_token is not None else [])
                roll = np.zeros((len(events), self._roll_size), np.bool_)
                for step, event in enumerate(events):
                    roll[step, list(event)] = True
            if not (self._roll_input and self._roll_output):
                labels = [self._one_hot.encode_event(e) for e in window]
                if self.end_token is not None:
                    labels.append(self._one_hot.num_classes)
                one_hot = np_onehot(labels, self._one_hot.num_classes + (self.end_token is not None), np.bool_)
            if self._roll_input:
                assert roll is not None
                inputs.append(np.concatenate([roll, ~roll.any(axis=1, keepdims=True)], axis=1))
            else:
                inputs.append(one_hot)
            outputs.append(roll if self._roll_output else one_hot)
        return ConverterTensors(inputs=inputs, outputs=outputs)

    def labels_to_events(self, labels: Iterable[int]) -> list[frozenset[int]]:
        """One-hot class indices -> sets of drum class indices, stopping at the end token."""
        events = []
        for label in labels:
            if self.end_token is not None and int(label) == self.end_token:
                break
            events.append(frozenset(self._one_hot.decode_event(int(label))))
        return events

    def from_tensors(self, samples: Iterable[np.ndarray], controls: Iterable[np.ndarray] | None = None, *,
                     training: bool = False, qpm: float = DEFAULT_QPM) -> list[NoteSequence]:
        """One NoteSequence per sample: each class hit plays the first pitch of its class, velocity
        80, one step long, on instrument 9 (`DrumTrack.to_sequence`) at `qpm` (Magenta: 120).
        `controls` and `training` change nothing."""
        from note_seq import DrumTrack

        del controls, training
        sequences = []
        for sample in samples:
            sample = np.asarray(sample)
            if self._roll_output:
                if self.end_token is not None:
                    ends = np.flatnonzero(sample[:, self.end_token] > 0.5)
                    sample = sample[:ends[0]] if len(ends) else sample
                events = [frozenset(int(i) for i in np.flatnonzero(row > 0.5)) for row in sample]
            else:
                events = self.labels_to_events(np.argmax(sample, axis=-1))
            events = [frozenset(self._pitch_classes[c][0] for c in event) for event in events]
            track = DrumTrack(events=events, steps_per_bar=self._steps_per_bar,
                              steps_per_quarter=self._steps_per_quarter)
            sequences.append(track.to_sequence(velocity=OUTPUT_VELOCITY, qpm=qpm))
        return sequences


CATEGORICAL_CONVERTERS: dict[str, type[_EventConverter]] = {
    "OneHotMelodyConverter": OneHotMelodyConverter,
    "DrumsConverter": DrumsConverter,
}
