"""`generation.music_vae.data.GrooveConverter` against Magenta's GrooveConverter.

The first group reproduces every GrooveConverter test of Magenta's
`magenta/models/music_vae/data_test.py` with the same inputs and expectations. Two differences, both
deliberate: note times are compared within 1e-6 s instead of exactly, because these tensors are
float32 (what Magenta's `convert_to_tensors_op` feeds its model) where Magenta's Python lists hold
float64; and Magenta's `set_mode` becomes the `training=` argument ('train' and the unset mode are
`training=True`, 'infer' is `training=False`).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from generation.io.readers import read_music_file
from generation.music_vae import data
from generation.music_vae.data import ConverterTensors, GrooveConverter
from generation.protos import NoteSequence

from .conftest import FIXTURES

LOGGER = "generation.music_vae.data"
GROOVE = FIXTURES / "groove"
FUNK_4_4 = GROOVE / "drummer1" / "eval_session" / "1_funk-groove1_138_beat_4-4.mid"
LATIN_3_4 = GROOVE / "drummer1" / "session2" / "1_latin-chacarera_157_beat_3-4.mid"
ROCK_6_8 = GROOVE / "drummer6" / "session1" / "3_rock_80_beat_6-8.mid"

KICK = data.REDUCED_DRUM_PITCH_CLASSES[0][0]
SNARE = data.REDUCED_DRUM_PITCH_CLASSES[1][0]
CLOSED_HH = data.REDUCED_DRUM_PITCH_CLASSES[2][0]
TAP = data.REDUCED_DRUM_PITCH_CLASSES[3][0]

TIME_TOLERANCE = 1e-6  # seconds; float32 offsets against Magenta's float64 (errors are ~1e-9 s)


# --- Sequences of Magenta's GrooveConverterTest.setUp -------------------------------------------


def new_sequence(qpm: float = 120, numerator: int = 4, denominator: int = 4) -> NoteSequence:
    sequence = NoteSequence()
    sequence.ticks_per_quarter = 240
    sequence.tempos.add(qpm=qpm)
    sequence.time_signatures.add(numerator=numerator, denominator=denominator)
    return sequence


def add_track(sequence: NoteSequence, instrument: int, notes: list[tuple[int, int, float, float]],
              is_drum: bool = False) -> NoteSequence:
    """note_seq's testing_lib.add_track_to_sequence: (pitch, velocity, start, end) per note."""
    for pitch, velocity, start, end in notes:
        note = sequence.notes.add(pitch=pitch, velocity=velocity, start_time=start, end_time=end,
                                  instrument=instrument, is_drum=is_drum)
        sequence.total_time = max(sequence.total_time, note.end_time)
    return sequence


# 0.125 s is a sixteenth note at 120 qpm.
TAP_NOTES = [
    (TAP, 80, 0, 0.125), (TAP, 127, 0.26125, 0.375), (TAP, 107, 0.5, 0.625), (TAP, 80, 0.75, 0.825),
    (TAP, 80, 1, 1.125), (TAP, 80, 1.25, 1.375), (TAP, 82, 1.523, 1.625), (TAP, 80, 1.75, 1.825),
]
QUANTIZED_NOTES = [
    (KICK, 0, 0, 0.125), (CLOSED_HH, 0, 0, 0.125), (CLOSED_HH, 0, 0.25, 0.375), (SNARE, 0, 0.5, 0.625),
    (CLOSED_HH, 0, 0.5, 0.625), (CLOSED_HH, 0, 0.75, 0.825), (KICK, 0, 1, 1.125), (CLOSED_HH, 0, 1, 1.125),
    (CLOSED_HH, 0, 1.25, 1.375), (SNARE, 0, 1.5, 1.625), (CLOSED_HH, 0, 1.5, 1.625),
    (CLOSED_HH, 0, 1.75, 1.825),
]
NO_CLOSED_HH_NOTES = [
    (KICK, 80, 0, 0.125), (SNARE, 103, 0.5, 0.625), (KICK, 80, 1, 1.125), (SNARE, 82, 1.523, 1.625),
]
NO_SNARE_NOTES = [
    (KICK, 80, 0, 0.125), (CLOSED_HH, 72, 0, 0.125), (CLOSED_HH, 127, 0.26125, 0.375),
    (CLOSED_HH, 107, 0.5, 0.625), (CLOSED_HH, 80, 0.75, 0.825), (KICK, 80, 1, 1.125),
    (CLOSED_HH, 80, 1, 1.125), (CLOSED_HH, 80, 1.25, 1.375), (CLOSED_HH, 80, 1.5, 1.625),
    (CLOSED_HH, 80, 1.75, 1.825),
]
ONE_BAR_NOTES = [
    (KICK, 80, 0, 0.125), (CLOSED_HH, 72, 0, 0.125), (CLOSED_HH, 127, 0.26125, 0.375),  # not on the beat
    (SNARE, 103, 0.5, 0.625), (CLOSED_HH, 107, 0.5, 0.625), (CLOSED_HH, 80, 0.75, 0.825),
    (KICK, 80, 1, 1.125), (CLOSED_HH, 80, 1, 1.125), (CLOSED_HH, 80, 1.25, 1.375),
    (SNARE, 82, 1.523, 1.625),  # not on the beat
    (CLOSED_HH, 80, 1.5, 1.625), (CLOSED_HH, 80, 1.75, 1.825),
]
TWO_BAR_NOTES = [
    (KICK, 80, 0, 0.125), (CLOSED_HH, 72, 0, 0.125), (CLOSED_HH, 127, 0.26, 0.375),  # not on the beat
    (SNARE, 103, 0.5, 0.625), (CLOSED_HH, 107, 0.5, 0.625), (CLOSED_HH, 80, 0.75, 0.825),
    (KICK, 80, 1, 1.125), (CLOSED_HH, 80, 1, 1.125), (CLOSED_HH, 80, 1.25, 1.375),
    (SNARE, 80, 1.5, 1.625), (CLOSED_HH, 80, 1.5, 1.625), (CLOSED_HH, 80, 1.75, 1.825),
    (KICK, 80, 2, 2.125), (CLOSED_HH, 72, 2, 2.125), (CLOSED_HH, 127, 2.25, 2.375),
    (SNARE, 103, 2.5, 2.625), (CLOSED_HH, 107, 2.5, 2.625), (CLOSED_HH, 80, 2.75, 2.825),
    (KICK, 80, 3.06, 3.125),  # not on the beat
    (CLOSED_HH, 109, 3, 3.125), (CLOSED_HH, 80, 3.25, 3.375), (SNARE, 80, 3.5, 3.625),
    (CLOSED_HH, 80, 3.50, 3.625), (CLOSED_HH, 90, 3.75, 3.825),
]


def one_bar() -> NoteSequence:
    return add_track(new_sequence(), 9, ONE_BAR_NOTES, is_drum=True)


def two_bar() -> NoteSequence:
    return add_track(new_sequence(), 9, TWO_BAR_NOTES, is_drum=True)


def sequence_of(notes: list[tuple[int, int, float, float]]) -> NoteSequence:
    return add_track(new_sequence(), 9, notes)


def compare_notes(expected, actual, categorical: bool = False) -> None:
    """Magenta's compare_notes, plus equal counts (Magenta zips, so it ignores extra notes)."""
    expected, actual = list(expected), list(actual)
    assert len(expected) == len(actual), (len(expected), len(actual))
    for n1, n2 in zip(expected, actual):
        assert n1.pitch == n2.pitch
        if categorical:
            assert abs(n1.start_time - n2.start_time) < 0.005
            assert abs(n1.velocity - n2.velocity) <= 4
        else:
            assert n2.start_time == pytest.approx(n1.start_time, abs=TIME_TOLERANCE)
            assert n1.velocity == n2.velocity


def compare_seqs(expected: NoteSequence, actual: NoteSequence, categorical: bool = False) -> None:
    compare_notes(expected.notes, actual.notes, categorical=categorical)


# --- Magenta's GrooveConverterTest, one test each -------------------------------------------------


def test_to_tensor_and_note_sequence() -> None:
    converter = GrooveConverter(split_bars=None, steps_per_quarter=4, quarters_per_bar=4,
                                max_tensors_per_notesequence=5)
    tensors = converter.to_tensors(one_bar())
    assert tensors.outputs[0].shape == (16, 27)
    sequences = converter.from_tensors(tensors.outputs)
    assert len(sequences) == 1
    compare_seqs(one_bar(), sequences[0])

    tensors = converter.to_tensors(two_bar())
    assert tensors.outputs[0].shape == (32, 27)
    sequences = converter.from_tensors(tensors.outputs)
    assert len(sequences) == 1
    compare_seqs(two_bar(), sequences[0])


def test_to_tensor_and_note_sequence_with_slicing() -> None:
    converter = GrooveConverter(split_bars=1, steps_per_quarter=4, quarters_per_bar=4,
                                max_tensors_per_notesequence=5)
    tensors = converter.to_tensors(one_bar())
    assert len(tensors.outputs) == 1
    assert tensors.outputs[0].shape == (16, 27)
    sequences = converter.from_tensors(tensors.outputs)
    assert len(sequences) == 1
    compare_seqs(one_bar(), sequences[0])

    source = two_bar()
    tensors = converter.to_tensors(source)
    assert tensors.outputs[0].shape == (16, 27)
    assert tensors.outputs[1].shape == (16, 27)
    sequences = converter.from_tensors(tensors.outputs)
    assert len(sequences) == 2
    notes0 = [n for n in source.notes if n.start_time < 2]
    notes1 = [n for n in source.notes if n.start_time >= 2]
    for n in notes1:  # second bar, moved back by its 2 s for comparison
        n.start_time -= 2
        n.end_time -= 2
    compare_notes(notes0, sequences[0].notes)
    compare_notes(notes1, sequences[1].notes)


def test_tapify() -> None:
    converter = GrooveConverter(split_bars=None, steps_per_quarter=4, quarters_per_bar=4,
                                max_tensors_per_notesequence=5, tapify=True)
    tensors = converter.to_tensors(one_bar())
    compare_seqs(one_bar(), converter.from_tensors(tensors.outputs)[0])  # outputs: the performance
    compare_seqs(sequence_of(TAP_NOTES), converter.from_tensors(tensors.inputs)[0])  # inputs: the taps


def test_tap_with_fixed_velocity() -> None:
    converter = GrooveConverter(split_bars=None, steps_per_quarter=4, quarters_per_bar=4,
                                max_tensors_per_notesequence=5, tapify=True, fixed_velocities=True)
    tensors = converter.to_tensors(one_bar())
    compare_seqs(one_bar(), converter.from_tensors(tensors.outputs)[0])
    taps = sequence_of([(p, 0, s, e) for p, _, s, e in TAP_NOTES])  # the taps with velocity 0
    compare_seqs(taps, converter.from_tensors(tensors.inputs)[0])


def test_tap_with_note_dropout() -> None:
    tap_converter = GrooveConverter(split_bars=None, steps_per_quarter=4, quarters_per_bar=4,
                                    max_tensors_per_notesequence=5, tapify=True, fixed_velocities=True)
    dropout_converter = GrooveConverter(split_bars=None, steps_per_quarter=4, quarters_per_bar=4,
                                        max_tensors_per_notesequence=5, tapify=True, fixed_velocities=True,
                                        max_note_dropout_probability=0.8)
    tap_inputs = tap_converter.from_tensors(tap_converter.to_tensors(one_bar()).inputs)
    dropout_tensors = dropout_converter.to_tensors(one_bar(), rng=np.random.default_rng(0))
    dropout_inputs = dropout_converter.from_tensors(dropout_tensors.inputs)
    compare_seqs(one_bar(), dropout_converter.from_tensors(dropout_tensors.outputs)[0])
    assert len(tap_inputs[0].notes) == max(len(tap_inputs[0].notes), len(dropout_inputs[0].notes))


def test_humanize() -> None:
    converter = GrooveConverter(split_bars=None, steps_per_quarter=4, quarters_per_bar=4,
                                max_tensors_per_notesequence=5, humanize=True)
    tensors = converter.to_tensors(one_bar())
    compare_seqs(one_bar(), converter.from_tensors(tensors.outputs)[0])
    compare_seqs(sequence_of(QUANTIZED_NOTES), converter.from_tensors(tensors.inputs)[0])


def test_add_instruments() -> None:
    converter = GrooveConverter(split_bars=None, steps_per_quarter=4, quarters_per_bar=4,
                                max_tensors_per_notesequence=5, add_instruments=[2])  # closed hi-hat
    tensors = converter.to_tensors(one_bar())
    compare_seqs(one_bar(), converter.from_tensors(tensors.outputs)[0])
    compare_seqs(sequence_of(NO_CLOSED_HH_NOTES), converter.from_tensors(tensors.inputs)[0])

    converter = GrooveConverter(split_bars=None, steps_per_quarter=4, quarters_per_bar=4,
                                max_tensors_per_notesequence=5, add_instruments=[1])  # snare
    tensors = converter.to_tensors(one_bar())
    compare_seqs(one_bar(), converter.from_tensors(tensors.outputs)[0])
    compare_seqs(sequence_of(NO_SNARE_NOTES), converter.from_tensors(tensors.inputs)[0])


def test_categorical() -> None:
    converter = GrooveConverter(split_bars=None, steps_per_quarter=4, quarters_per_bar=4,
                                max_tensors_per_notesequence=5, add_instruments=[3],
                                num_velocity_bins=32, num_offset_bins=32)
    tensors = converter.to_tensors(one_bar())
    assert tensors.outputs[0].shape == (16, 585)
    # All 12 notes are compared; Magenta's from_tensors decodes only 16 // 9 = 1 step of this layout
    # (and its zip-based comparison then checks 2 notes).
    compare_seqs(one_bar(), converter.from_tensors(tensors.outputs)[0], categorical=True)


def test_continuous_split_instruments() -> None:
    converter = GrooveConverter(split_bars=None, steps_per_quarter=4, quarters_per_bar=4,
                                max_tensors_per_notesequence=5, split_instruments=True)
    tensors = converter.to_tensors(one_bar())
    assert tensors.outputs[0].shape == (16 * 9, 3)
    assert tensors.controls[0].shape == (16 * 9, 9)
    for i, v in enumerate(np.argmax(tensors.controls[0], axis=-1)):
        assert v == i % 9
    compare_seqs(one_bar(), converter.from_tensors(tensors.outputs)[0], categorical=True)


def test_categorical_split_instruments() -> None:
    converter = GrooveConverter(split_bars=None, steps_per_quarter=4, quarters_per_bar=4,
                                max_tensors_per_notesequence=5, num_velocity_bins=32, num_offset_bins=32,
                                split_instruments=True)
    tensors = converter.to_tensors(one_bar())
    assert tensors.outputs[0].shape == (16 * 9, 585 // 9)
    assert tensors.controls[0].shape == (16 * 9, 9)
    for i, v in enumerate(np.argmax(tensors.controls[0], axis=-1)):
        assert v == i % 9
    compare_seqs(one_bar(), converter.from_tensors(tensors.outputs)[0], categorical=True)


def test_cycle_data() -> None:
    converter = GrooveConverter(split_bars=1, steps_per_quarter=4, quarters_per_bar=4,
                                max_tensors_per_notesequence=5, hop_size=4)
    tensors = converter.to_tensors(two_bar())
    for output in tensors.outputs:
        assert output.shape == (16, 27)
    assert len(converter.from_tensors(tensors.outputs)) == 5


def test_cycle_data_split_instruments() -> None:
    converter = GrooveConverter(split_bars=1, steps_per_quarter=4, quarters_per_bar=4,
                                max_tensors_per_notesequence=10, hop_size=4, split_instruments=True)
    tensors = converter.to_tensors(two_bar())
    output_sequences = converter.from_tensors(tensors.outputs)
    assert len(tensors.outputs) == 5
    assert len(tensors.controls) == 5
    for output in tensors.outputs:
        assert output.shape == (16 * 9, 3)
    for control in tensors.controls:
        assert control.shape == (16 * 9, 9)
    # The first window is the first bar of the two bars: compare that bar's notes.
    compare_notes(two_bar().notes[:12], output_sequences[0].notes)
    assert output_sequences[0].notes[-1].start_time == 1.75


def test_hits_as_controls() -> None:
    converter = GrooveConverter(split_bars=None, steps_per_quarter=4, quarters_per_bar=4,
                                max_tensors_per_notesequence=5, hits_as_controls=True)
    assert converter.to_tensors(one_bar()).controls[0].shape == (16, 9)


def test_hits_as_controls_split_instruments() -> None:
    converter = GrooveConverter(split_bars=None, steps_per_quarter=4, quarters_per_bar=4,
                                max_tensors_per_notesequence=5, split_instruments=True, hits_as_controls=True)
    assert converter.to_tensors(two_bar()).controls[0].shape == (32 * 9, 10)


def test_small_drum_set() -> None:
    reduced = data.REDUCED_DRUM_PITCH_CLASSES
    small_drum_set = [
        reduced[0],
        reduced[1] + reduced[4] + reduced[5] + reduced[6],
        reduced[2] + reduced[8],
        reduced[3] + reduced[7],
    ]
    converter = GrooveConverter(split_bars=None, steps_per_quarter=4, quarters_per_bar=4,
                                max_tensors_per_notesequence=5, pitch_classes=small_drum_set)
    tensors = converter.to_tensors(one_bar())
    assert tensors.outputs[0].shape == (16, 12)
    sequences = converter.from_tensors(tensors.outputs)
    assert len(sequences) == 1
    compare_seqs(one_bar(), sequences[0])


def test_mode_mappings() -> None:
    converter = GrooveConverter(split_bars=None, steps_per_quarter=4, quarters_per_bar=4,
                                max_tensors_per_notesequence=5, pitch_classes=[[0, 1], [2, 3]],
                                inference_pitch_classes=[[1, 2], [3, 0]])
    test_seq = add_track(new_sequence(), 9, [(0, 50, 0, 0), (1, 60, 0.25, 0.25), (2, 70, 0.5, 0.5),
                                             (3, 80, 0.75, 0.75)])

    # Magenta's unset ('default') mode and 'train' mode both use the training classes.
    expected_default = NoteSequence()
    expected_default.CopyFrom(test_seq)
    expected_default.notes[1].pitch = 0
    expected_default.notes[3].pitch = 2
    train_tensors = converter.to_tensors(test_seq, training=True)
    compare_seqs(expected_default, converter.from_tensors(train_tensors.outputs, training=True)[0])

    # Magenta's 'infer' mode.
    expected_infer = NoteSequence()
    expected_infer.CopyFrom(test_seq)
    expected_infer.notes[0].pitch = 3
    expected_infer.notes[2].pitch = 1
    infer_tensors = converter.to_tensors(test_seq, training=False)
    compare_seqs(expected_infer, converter.from_tensors(infer_tensors.outputs, training=False)[0])
    assert converter.to_tensors(test_seq).outputs[0].tolist() == infer_tensors.outputs[0].tolist()  # default


# --- Constants and API ------------------------------------------------------------------------------


def test_pitch_class_constants_are_magentas() -> None:
    assert data.ROLAND_DRUM_PITCH_CLASSES == [
        [36], [38, 37, 40], [42, 22, 44], [46, 26], [43, 58], [47, 45], [50, 48], [49, 52, 55, 57], [51, 53, 59]]
    assert data.REDUCED_DRUM_PITCH_CLASSES == [
        [36, 35], [38, 27, 28, 31, 32, 33, 34, 37, 39, 40, 56, 65, 66, 75, 85],
        [42, 44, 54, 68, 69, 70, 71, 73, 78, 80, 22], [46, 67, 72, 74, 79, 81, 26],
        [45, 29, 41, 43, 61, 64, 84], [48, 47, 60, 63, 77, 86, 87], [50, 30, 62, 76, 83],
        [49, 52, 55, 57, 58], [51, 53, 59, 82]]
    full = [c[0] for c in data.FULL_DRUM_PITCH_CLASSES]
    assert len(full) == 61 and len(set(full)) == 61 and all(len(c) == 1 for c in data.FULL_DRUM_PITCH_CLASSES)
    assert set(full) == set(range(27, 88))  # the 61 GM drum pitches 27..87
    assert (data.OUTPUT_VELOCITY, data.MIN_MIDI_PITCH, data.MAX_MIDI_PITCH, data.MIDI_PITCHES) == (80, 0, 127, 128)


def test_depths_dtypes_and_argument_checks() -> None:
    converter = GrooveConverter()
    assert (converter.input_depth, converter.output_depth, converter.control_depth) == (27, 27, 0)
    assert converter.end_token is False and converter.max_tensors_per_notesequence == 8
    assert converter.input_dtype == np.float32 and converter.control_dtype == np.bool_
    assert converter.pitch_classes == data.ROLAND_DRUM_PITCH_CLASSES
    assert GrooveConverter(split_instruments=True, hits_as_controls=True).control_depth == 10
    assert GrooveConverter(num_velocity_bins=8, num_offset_bins=4).output_depth == 9 * 13
    named = GrooveConverter(pitch_classes="ROLAND_DRUM_PITCH_CLASSES",
                            inference_pitch_classes="REDUCED_DRUM_PITCH_CLASSES")
    assert named.inference_pitch_classes == data.REDUCED_DRUM_PITCH_CLASSES
    with pytest.raises(ValueError, match="same number of pitch classes"):
        GrooveConverter(inference_pitch_classes=data.FULL_DRUM_PITCH_CLASSES)
    with pytest.raises(ValueError, match="only one of"):
        GrooveConverter(num_velocity_bins=8)
    with pytest.raises(ValueError, match="hop_size"):
        GrooveConverter(hop_size=4)
    empty = ConverterTensors()
    assert empty == ([], [], [], [])


# --- Hand-computed values ---------------------------------------------------------------------------


def test_tensor_values_by_hand() -> None:
    """one_bar at 120 qpm: a step is 0.125 s; hits, velocities/127, offsets 2 * (grid - onset) / step."""
    outputs = GrooveConverter().to_tensors(one_bar()).outputs[0]
    assert outputs.dtype == np.float32
    hits, velocities, offsets = outputs[:, :9], outputs[:, 9:18], outputs[:, 18:]
    assert sorted(zip(*np.nonzero(hits))) == [(0, 0), (0, 2), (2, 2), (4, 1), (4, 2), (6, 2), (8, 0), (8, 2),
                                              (10, 2), (12, 1), (12, 2), (14, 2)]
    assert velocities[0, 0] == np.float32(80 / 127) and velocities[2, 2] == np.float32(1.0)
    # Late notes, negative offsets: 0.26125 s is 0.09 step after step 2; 1.523 s is 0.184 after step 12.
    assert offsets[2, 2] == np.float32(2 * (0.25 - 0.26125) / 0.125) == np.float32(-0.18)
    assert offsets[12, 1] == np.float32(-0.368)
    assert np.count_nonzero(offsets) == 2
    # A note of velocity 0 is still a hit, as in Magenta.
    silent = GrooveConverter().to_tensors(sequence_of([(KICK, 0, 0.5, 0.6)])).outputs[0]
    assert silent[4, 0] == 1 and silent[4, 9] == 0


def test_early_note_positive_offset_and_nearest_step() -> None:
    converter = GrooveConverter()
    # 0.2 s is 1.6 steps: nearest step 2, 0.4 step early -> +0.8. 0.3125 s is 2.5 steps: halfway rounds
    # up to step 3, half a step early -> +1.0 (so offsets lie in (-1, 1]).
    outputs = converter.to_tensors(sequence_of([(KICK, 100, 0.2, 0.3), (SNARE, 100, 0.3125, 0.4)])).outputs[0]
    assert outputs[2, 0] == 1 and outputs[2, 18] == pytest.approx(0.8)
    assert outputs[3, 1] == 1 and outputs[3, 19] == pytest.approx(1.0)
    ns = converter.from_tensors([outputs])[0]
    assert [round(n.start_time, 6) for n in ns.notes] == [0.2, 0.3125]


def test_categorical_bins_by_hand() -> None:
    """Magenta's bins: np.digitize(v, linspace(lo, hi + 1e-4, n), right=True); decoding bin / n."""
    converter = GrooveConverter(num_velocity_bins=32, num_offset_bins=32)
    # Onset 0.19153125 s is step 2 less 0.46775 step: offset 0.9355, just above 0.93548 = -1 + 30 * 2/31,
    # yet inside bin 30 of Magenta's bins, whose edges are -1 + i * 2.0001/31 (bin 30 ends at 0.93558).
    outputs = converter.to_tensors(sequence_of([(KICK, 127, 0.19153125, 0.3)])).outputs[0]
    assert outputs.shape == (16, 9 * 65)
    velocity_bins, offset_bins = outputs[2, 9:9 + 32], outputs[2, 9 + 9 * 32:9 + 9 * 32 + 32]
    assert outputs[2, 0] == 1 and int(np.argmax(velocity_bins)) == 31 and int(np.argmax(offset_bins)) == 30
    assert int(np.argmax(outputs[0, 9 + 9 * 32:9 + 9 * 32 + 32])) == 16  # empty cell: offset 0 -> bin 16
    note = converter.from_tensors([outputs])[0].notes[0]
    assert note.velocity == int(31 / 32 * 127) == 123
    assert note.start_time == pytest.approx((2 - (30 / 32 - 0.5)) * 0.125)


def test_loudest_of_two_notes_in_one_cell_wins() -> None:
    converter = GrooveConverter()
    # 38 and 40 are both snare; 0.24 s and 0.26 s both quantize to step 2; the louder (late) one wins.
    outputs = converter.to_tensors(sequence_of([(SNARE, 60, 0.24, 0.3), (40, 110, 0.26, 0.3)])).outputs[0]
    assert outputs[2, 1] == 1
    assert outputs[2, 10] == np.float32(110 / 127)
    assert outputs[2, 19] == pytest.approx(2 * (0.25 - 0.26) / 0.125)
    # Equally loud: the first in the sequence wins, as Python's max() in Magenta.
    outputs = converter.to_tensors(sequence_of([(SNARE, 90, 0.26, 0.3), (SNARE, 90, 0.24, 0.3)])).outputs[0]
    assert outputs[2, 19] == pytest.approx(-0.16)


# --- Time signature and tempo filters -----------------------------------------------------------


@pytest.mark.parametrize("numerator, denominator", [(3, 4), (6, 8), (5, 4), (7, 8)])
def test_other_bar_lengths_give_no_tensors(numerator: int, denominator: int, caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    sequence = add_track(new_sequence(numerator=numerator, denominator=denominator), 9,
                         [(KICK, 100, 0.5 * i, 0.5 * i + 0.1) for i in range(16)])
    tensors = GrooveConverter(split_bars=1).to_tensors(sequence)
    assert tensors == ConverterTensors() and tensors.inputs == []
    assert f"time signature {numerator}/{denominator}" in caplog.text


def test_bars_of_sixteen_steps_pass_as_in_magenta() -> None:
    for numerator, denominator in [(4, 4), (2, 2), (8, 8)]:
        sequence = add_track(new_sequence(numerator=numerator, denominator=denominator), 9, [(KICK, 100, 0, 0.1)])
        assert len(GrooveConverter().to_tensors(sequence).inputs) == 1
    no_time_signature = add_track(new_sequence(), 9, [(KICK, 100, 0, 0.1)])
    del no_time_signature.time_signatures[:]
    assert len(GrooveConverter().to_tensors(no_time_signature).inputs) == 1  # note_seq assumes 4/4


def test_real_3_4_and_6_8_files_give_no_tensors() -> None:
    for path in (LATIN_3_4, ROCK_6_8):
        sequence = read_music_file(path).sequences[0]
        for split_bars in (None, 2, 4):
            assert GrooveConverter(split_bars=split_bars).to_tensors(sequence).inputs == []
    # The filter is on bar length: with 3 quarters per bar the 3/4 file converts.
    latin = read_music_file(LATIN_3_4).sequences[0]
    assert len(GrooveConverter(split_bars=2, quarters_per_bar=3).to_tensors(latin).inputs) > 0


def test_time_signature_change_gives_no_tensors(caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    sequence = add_track(new_sequence(), 9, [(KICK, 100, 0.5 * i, 0.5 * i + 0.1) for i in range(16)])
    sequence.time_signatures.add(time=4.0, numerator=3, denominator=4)
    assert GrooveConverter(split_bars=1).to_tensors(sequence).inputs == []
    assert "MultipleTimeSignatureError" in caplog.text


def test_tempo_change_gives_no_tensors_for_the_whole_sequence(caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    notes = [(KICK, 100, 0.5 * i, 0.5 * i + 0.1) for i in range(16)]  # 4 bars at 120 qpm
    converter = GrooveConverter(split_bars=2)
    assert len(converter.to_tensors(sequence_of(notes)).inputs) == 2

    changed_inside = sequence_of(notes)
    changed_inside.tempos.add(time=1.0, qpm=100)  # inside the first 2-bar window
    assert converter.to_tensors(changed_inside).inputs == []
    assert "MultipleTempoError" in caplog.text

    # Magenta rejects the sequence, not the window: a change at the second window's start also empties it.
    changed_between = sequence_of(notes)
    changed_between.tempos.add(time=4.0, qpm=100)
    assert converter.to_tensors(changed_between).inputs == []

    repeated = sequence_of(notes)
    repeated.tempos.add(time=4.0, qpm=120)  # same tempo again: no change
    assert len(converter.to_tensors(repeated).inputs) == 2


# --- Out-of-class pitches ---------------------------------------------------------------------------


def test_out_of_class_pitches_map_by_the_table(caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    converter = GrooveConverter()  # Roland classes for training
    # 39 hand clap -> snare (1), 41 low floor tom -> low tom (4), 54 tambourine -> closed hi-hat (2),
    # 35 bass drum -> kick (0), 82 shaker -> ride (8), 67 high agogo -> open hi-hat (3).
    expected = {39: 1, 41: 4, 54: 2, 35: 0, 82: 8, 67: 3, 60: 5, 76: 6}
    for pitch, drum in expected.items():
        assert converter.class_of_pitch(pitch, training=True) == drum
    sequence = sequence_of([(p, 100, 0.125 * i, 0.125 * i + 0.1) for i, p in enumerate(expected)])
    outputs = converter.to_tensors(sequence, training=True).outputs[0]
    assert [int(np.argmax(outputs[i, :9])) for i in range(len(expected))] == list(expected.values())
    assert "8 notes with out-of-class pitches mapped" in caplog.text and "39->1 x1" in caplog.text
    # With the reduced (inference) classes the same pitches are in a class, by Magenta's own grouping.
    inference = GrooveConverter(inference_pitch_classes=data.REDUCED_DRUM_PITCH_CLASSES)
    assert [inference.class_of_pitch(p, training=False) for p in (39, 41, 54)] == [1, 4, 2]


def test_every_gm_drum_pitch_maps_under_roland_classes() -> None:
    converter = GrooveConverter()
    for pitch in list(range(27, 88)) + [22, 26]:
        drum = converter.class_of_pitch(pitch, training=True)
        reduced_category = next(i for i, c in enumerate(data.REDUCED_DRUM_PITCH_CLASSES) if pitch in c)
        roland = next((i for i, c in enumerate(data.ROLAND_DRUM_PITCH_CLASSES) if pitch in c), None)
        assert drum == (roland if roland is not None else reduced_category), pitch


def test_pitches_in_no_class_never_crash(caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    converter = GrooveConverter(split_bars=1)
    sequence = sequence_of([(KICK, 100, 0, 0.1), (100, 100, 0.5, 0.6), (0, 100, 1.0, 1.1), (39, 90, 1.5, 1.6)])
    outputs = converter.to_tensors(sequence, training=True).outputs[0]
    assert np.count_nonzero(outputs[:, :9]) == 2  # kick and the clap (as snare); 100 and 0 dropped
    assert "2 notes dropped" in caplog.text and "100 x1" in caplog.text
    only_unknown = sequence_of([(100, 100, 0, 0.1), (120, 100, 0.5, 0.6)])
    assert converter.to_tensors(only_unknown).inputs == []
    # Custom classes without any GM category candidate: GM pitches are dropped, not a KeyError.
    custom = GrooveConverter(pitch_classes=[[0, 1], [2, 3]])
    assert custom.to_tensors(one_bar(), training=True).inputs == []


# --- Input options change inputs only -------------------------------------------------------------


def test_input_options_keep_outputs_and_change_inputs() -> None:
    source = two_bar()
    plain = GrooveConverter(split_bars=2).to_tensors(source)
    performance = plain.outputs[0]
    np.testing.assert_array_equal(plain.inputs[0], performance)
    hits, velocities, offsets = performance[:, :9], performance[:, 9:18], performance[:, 18:]
    options = {
        "humanize": dict(humanize=True),
        "tapify": dict(tapify=True),
        "fixed_velocities": dict(fixed_velocities=True),
        "add_instruments": dict(add_instruments=[0, 2]),
        "hits_as_controls": dict(hits_as_controls=True),
        "dropout": dict(max_note_dropout_probability=1.0),
    }
    tensors = {name: GrooveConverter(split_bars=2, **kwargs).to_tensors(source, rng=np.random.default_rng(1))
               for name, kwargs in options.items()}
    for name, result in tensors.items():
        np.testing.assert_array_equal(result.outputs[0], performance, err_msg=name)

    humanized = tensors["humanize"].inputs[0]
    np.testing.assert_array_equal(humanized[:, :9], hits)
    assert not humanized[:, 9:].any()

    tapped = tensors["tapify"].inputs[0]
    loudest = np.argmax(velocities, axis=1)
    rows = np.arange(len(tapped))
    np.testing.assert_array_equal(tapped[:, 3], hits[rows, loudest])
    np.testing.assert_array_equal(tapped[:, 12], velocities[rows, loudest])
    np.testing.assert_array_equal(tapped[:, 21], offsets[rows, loudest])
    assert np.count_nonzero(np.delete(tapped, [3, 12, 21], axis=1)) == 0

    fixed = tensors["fixed_velocities"].inputs[0]
    np.testing.assert_array_equal(fixed[:, :9], hits)
    np.testing.assert_array_equal(fixed[:, 18:], offsets)
    assert not fixed[:, 9:18].any()

    added = tensors["add_instruments"].inputs[0]
    for column in (0, 2, 9, 11, 18, 20):
        assert not added[:, column].any()
    np.testing.assert_array_equal(np.delete(added, [0, 2, 9, 11, 18, 20], axis=1),
                                  np.delete(performance, [0, 2, 9, 11, 18, 20], axis=1))

    controlled = tensors["hits_as_controls"]
    np.testing.assert_array_equal(controlled.inputs[0], performance)
    np.testing.assert_array_equal(controlled.controls[0], hits.astype(bool))
    # The controls are the output hits, whatever the inputs lost.
    controlled = GrooveConverter(split_bars=2, hits_as_controls=True, add_instruments=[2]).to_tensors(source)
    np.testing.assert_array_equal(controlled.controls[0], hits.astype(bool))

    dropped = tensors["dropout"].inputs[0]
    kept = dropped[:, :9].astype(bool)
    assert np.all(hits[kept] == 1) and 0 < kept.sum() < hits.sum()
    np.testing.assert_array_equal(dropped[:, 9:18], velocities * kept)
    np.testing.assert_array_equal(dropped[:, 18:], offsets * kept)


def test_note_dropout_draws_from_rng_as_magenta() -> None:
    converter = GrooveConverter(max_note_dropout_probability=0.8)
    source = two_bar()
    first = converter.to_tensors(source, rng=np.random.default_rng(7)).inputs[0]
    again = converter.to_tensors(source, rng=7).inputs[0]
    np.testing.assert_array_equal(first, again)
    # Magenta's draws, in its order, from the same generator: p ~ U(0, max), then one Bernoulli per cell
    # with probability p * max(0.2, 1 - velocity).
    performance = GrooveConverter().to_tensors(source).outputs[0].astype(np.float64)
    velocities = np.asarray([[n / 127 for n in row] for row in np.rint(performance[:, 9:18] * 127)])
    for seed in range(30):
        rng = np.random.default_rng(seed)
        p = rng.uniform(0.0, 0.8)
        keep = 1 - rng.binomial(1, np.maximum(0.2, 1 - velocities) * p)
        inputs = converter.to_tensors(source, rng=seed).inputs[0]
        np.testing.assert_array_equal(inputs[:, :9], performance[:, :9] * keep)
    assert GrooveConverter(max_note_dropout_probability=0.0).to_tensors(source, rng=3).inputs[0].tolist() == \
        GrooveConverter().to_tensors(source).inputs[0].tolist()


def test_training_flag_switches_pitch_classes_only() -> None:
    converter = GrooveConverter(split_bars=2, max_note_dropout_probability=0.5,
                                pitch_classes=data.ROLAND_DRUM_PITCH_CLASSES,
                                inference_pitch_classes=data.REDUCED_DRUM_PITCH_CLASSES)
    # 45 is a mid tom for Roland, a low tom in GM/reduced; 48 a high tom for Roland, a mid tom in GM.
    sequence = sequence_of([(45, 100, 0, 0.1), (48, 100, 0.5, 0.6), (KICK, 100, 3.75, 3.8)])
    train = converter.to_tensors(sequence, training=True, rng=0)
    infer = converter.to_tensors(sequence, training=False, rng=0)
    assert int(np.argmax(train.outputs[0][0, :9])) == 5 and int(np.argmax(infer.outputs[0][0, :9])) == 4
    assert int(np.argmax(train.outputs[0][4, :9])) == 6 and int(np.argmax(infer.outputs[0][4, :9])) == 5
    # Same dropout draws in both modes (Magenta applies dropout in every mode), same windows.
    assert len(train.inputs) == len(infer.inputs) == 1
    # Output pitches: each class's first pitch in the classes of the mode (toms differ: 43/47 vs 45/48).
    toms = np.zeros((32, 27), np.float32)
    toms[0, 4] = toms[1, 5] = 1
    assert [n.pitch for n in converter.from_tensors([toms], training=True)[0].notes] == [43, 47]
    assert [n.pitch for n in converter.from_tensors([toms], training=False)[0].notes] == [45, 48]


def test_max_tensors_per_notesequence_limits_nothing_as_in_magenta() -> None:
    long_sequence = sequence_of([(KICK, 100, 0.5 * i, 0.6 * i + 0.1) for i in range(80)])  # 20 bars
    for training in (True, False):
        assert len(GrooveConverter(split_bars=1, max_tensors_per_notesequence=3).to_tensors(
            long_sequence, training=training).inputs) == 20
    items = list(range(10))
    assert data.maybe_sample_items(items, 3, randomize=False) == [0, 1, 2]
    sampled = data.maybe_sample_items(items, 3, randomize=True, rng=np.random.default_rng(0))
    assert sampled == data.maybe_sample_items(items, 3, randomize=True, rng=np.random.default_rng(0))
    assert len(sampled) == 3 and sampled == sorted(sampled) and data.maybe_sample_items(items, None, True) == items


# --- Round trip and a real Groove file --------------------------------------------------------------


def test_from_tensors_writes_tempo_and_time_signature() -> None:
    converter = GrooveConverter()
    outputs = converter.to_tensors(one_bar()).outputs
    default = converter.from_tensors(outputs)[0]
    assert [t.qpm for t in default.tempos] == [120]
    assert [(t.numerator, t.denominator) for t in default.time_signatures] == [(4, 4)]
    slow = converter.from_tensors(outputs, qpm=60)[0]
    assert [t.qpm for t in slow.tempos] == [60]
    assert slow.notes[2].start_time == pytest.approx(2 * default.notes[2].start_time)
    assert slow.total_time == pytest.approx(max(n.end_time for n in slow.notes))
    batch = np.stack(outputs)  # a [B, T, D] array works too
    assert len(converter.from_tensors(batch)) == 1


def test_round_trip_of_a_real_groove_file_within_one_step() -> None:
    source = read_music_file(FUNK_4_4).sequences[0]
    qpm = source.tempos[0].qpm
    step = 60 / qpm / 4
    converter = GrooveConverter(inference_pitch_classes=data.REDUCED_DRUM_PITCH_CLASSES)
    tensors = converter.to_tensors(source, training=True)
    decoded = converter.from_tensors(tensors.outputs, training=True, qpm=qpm)[0]
    by_class: dict[int, list] = {}
    for note in decoded.notes:
        by_class.setdefault(converter.class_of_pitch(note.pitch, training=True), []).append(note)
    exact = 0
    for note in source.notes:
        drum = converter.class_of_pitch(note.pitch, training=True)
        nearest = min(by_class[drum], key=lambda n: abs(n.start_time - note.start_time))
        assert abs(nearest.start_time - note.start_time) < step  # onset within one step
        if abs(nearest.start_time - note.start_time) < 1e-6:  # survivors (loudest per cell) come back exactly
            assert nearest.velocity == note.velocity  # within 1/127: the same MIDI velocity
            exact += 1
    assert exact == len(decoded.notes) <= len(source.notes)
    assert len(decoded.notes) > 0.9 * len(source.notes)


def test_real_groove_file_window_counts() -> None:
    """The funk groove: 138 qpm, 4/4, last onset 27.77 s = step 255.48, quantized to step 255 -> 16 bars
    (256 steps). Windows start every hop while a whole window fits: (256 - window) / hop + 1."""
    source = read_music_file(FUNK_4_4).sequences[0]
    whole = GrooveConverter().to_tensors(source).outputs
    assert [w.shape for w in whole] == [(256, 27)]
    expected = {(2, None): 8, (4, None): 4, (2, 16): 15, (4, 16): 13, (2, 4): 57, (1, None): 16}
    for (split_bars, hop_size), count in expected.items():
        tensors = GrooveConverter(split_bars=split_bars, hop_size=hop_size).to_tensors(source, training=True)
        assert len(tensors.inputs) == len(tensors.outputs) == len(tensors.controls) == count
        assert set(tensors.lengths) == {16 * split_bars}
        assert all(w.shape == (16 * split_bars, 27) and w.dtype == np.float32 for w in tensors.inputs)
    two_bars = GrooveConverter(split_bars=2).to_tensors(source).outputs
    np.testing.assert_array_equal(np.concatenate(two_bars), whole[0])
    hopped = GrooveConverter(split_bars=4, hop_size=16).to_tensors(source).outputs
    np.testing.assert_array_equal(hopped[5], whole[0][80:144])


def test_sequence_shorter_than_a_window_and_empty_sequence(caplog) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert GrooveConverter(split_bars=4).to_tensors(two_bar()).inputs == []
    assert "shorter than one 4-bar window" in caplog.text
    assert GrooveConverter().to_tensors(new_sequence()).inputs == []
    assert "no drum notes" in caplog.text
