"""MusicVAE for melodies and drum patterns: Magenta's categorical converters, the model, the CLI.

The converter tests reproduce the OneHotMelodyConverter, DrumsConverter (one-hot, roll inputs,
roll outputs) and NoteSequenceAugmenter cases of Magenta's `magenta/models/music_vae/data_test.py`
with the same inputs and expectations. Deliberate differences: Magenta's `set_mode('train')` is
`training=True`; its TensorFlow variants (`testTf*`, `convert_to_tensors_op`) become the same
windows padded into one batch by the training family's `collate`; the chord- and key-conditioned
cases are left out, because chord and key conditioning is not implemented here.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from generation.music_vae import data
from generation.protos import NoteSequence

NO_EVENT = -2  # note_seq.MELODY_NO_EVENT
NOTE_OFF = -1  # note_seq.MELODY_NOTE_OFF
NO_DRUMS = 0


def add_track(sequence: NoteSequence, instrument: int, notes: list[tuple[int, int, float, float]],
              is_drum: bool = False) -> None:
    """note_seq's `testing_lib.add_track_to_sequence`: (pitch, velocity, start, end) notes."""
    for pitch, velocity, start, end in notes:
        note = sequence.notes.add(pitch=pitch, velocity=velocity, start_time=start, end_time=end,
                                  instrument=instrument, is_drum=is_drum)
        sequence.total_time = max(sequence.total_time, note.end_time)


def only_instrument(sequence: NoteSequence, instrument: int) -> NoteSequence:
    filtered = NoteSequence()
    filtered.CopyFrom(sequence)
    del filtered.notes[:]
    filtered.notes.extend(n for n in sequence.notes if n.instrument == instrument)
    return filtered


def assert_array_sets_equal(lhs, rhs) -> None:
    """Magenta's `assertArraySetsEqual`: the same arrays in any order (one-hots compared as argmaxes)."""
    def ordered(arrays):
        return sorted((np.asarray(a) for a in arrays), key=lambda a: a.astype(int).tobytes())

    assert len(lhs) == len(rhs)
    for a, b in zip(ordered(lhs), ordered(rhs)):
        a, b = a.astype(int), b.astype(int)
        if (a.shape[-1] == b.shape[-1] and a.min() >= 0 and b.min() >= 0 and np.all(a.max(-1) == 1)
                and np.all(b.max(-1) == 1) and np.all(a.sum(-1) == 1) and np.all(b.sum(-1) == 1)):
            a, b = a.argmax(-1), b.argmax(-1)
        np.testing.assert_array_equal(a, b)


def onehot_inputs(labels, converter):
    return [data.np_onehot(l, converter.input_depth, converter.input_dtype) for l in labels]


def padded_batch(tensors, converter):
    """What Magenta's `convert_to_tensors_op` feeds: windows padded to the longest, with lengths."""
    from generation.music_vae.family import GrooVAEFamily

    examples = list(zip(tensors.inputs, tensors.outputs, tensors.controls, tensors.lengths))
    batch = GrooVAEFamily().collate(examples)
    return batch["inputs"].numpy(), batch["outputs"].numpy(), batch["lengths"].numpy()


# --- Magenta's OneHotMelodyConverterTest.setUp --------------------------------------------------

def melody_sequence() -> NoteSequence:
    sequence = NoteSequence()
    sequence.tempos.add(qpm=60)
    add_track(sequence, 0, [(32, 100, 2, 4), (33, 1, 6, 11), (34, 1, 11, 13), (35, 1, 17, 19)])
    add_track(sequence, 1, [(35, 127, 2, 4), (36, 50, 6, 8), (71, 100, 33, 37), (73, 100, 34, 37),
                            (33, 1, 50, 55), (34, 1, 55, 56)])
    return sequence


# Pitches minus the minimum pitch (21); + 2 for the two special events.
MELODY_UNSLICED = [np.array(e) + 2 for e in [
    (NO_EVENT, NO_EVENT, 11, NO_EVENT, NOTE_OFF, NO_EVENT, 12, NO_EVENT,
     NO_EVENT, NO_EVENT, NO_EVENT, 13, NO_EVENT, NOTE_OFF, NO_EVENT, NO_EVENT),
    (NO_EVENT, 14, NO_EVENT, NOTE_OFF),
    (NO_EVENT, NO_EVENT, 14, NO_EVENT, NOTE_OFF, NO_EVENT, 15, NO_EVENT),
    (NO_EVENT, 50, 52, NO_EVENT, NO_EVENT, NOTE_OFF, NO_EVENT, NO_EVENT),
    (NO_EVENT, NO_EVENT, 12, NO_EVENT, NO_EVENT, NO_EVENT, NO_EVENT, 13),
]]
MELODY_SLICED = [np.array(e) + 2 for e in [
    (NO_EVENT, NO_EVENT, 11, NO_EVENT, NOTE_OFF, NO_EVENT, 12, NO_EVENT),
    (NO_EVENT, NO_EVENT, 12, NO_EVENT, NO_EVENT, NO_EVENT, NO_EVENT, 13),
    (NO_EVENT, NO_EVENT, NO_EVENT, 13, NO_EVENT, NOTE_OFF, NO_EVENT, NO_EVENT),
    (NO_EVENT, NO_EVENT, 14, NO_EVENT, NOTE_OFF, NO_EVENT, 15, NO_EVENT),
    (NO_EVENT, 50, 52, NO_EVENT, NO_EVENT, NOTE_OFF, NO_EVENT, NO_EVENT),
]]


# --- Magenta's OneHotDrumsConverterTest.setUp ---------------------------------------------------

def drums_sequence() -> NoteSequence:
    sequence = NoteSequence()
    sequence.tempos.add(qpm=60)
    add_track(sequence, 0, [(35, 100, 0, 10), (44, 55, 1, 2), (40, 45, 4, 5), (35, 45, 9, 10), (40, 45, 13, 13),
                            (55, 120, 16, 18), (60, 100, 16, 17), (53, 99, 19, 20)], is_drum=True)
    add_track(sequence, 1, [(35, 55, 1, 2), (40, 45, 25, 26), (55, 120, 28, 30), (60, 100, 28, 29),
                            (53, 99, 31, 33)], is_drum=True)
    return sequence


DRUMS_UNSLICED = [np.array(e) for e in [
    (1, 5, NO_DRUMS, NO_DRUMS, 2, NO_DRUMS, NO_DRUMS, NO_DRUMS),
    (NO_DRUMS, 1, NO_DRUMS, NO_DRUMS, NO_DRUMS, 2, NO_DRUMS, NO_DRUMS, 160, NO_DRUMS, NO_DRUMS, 256),
    (NO_DRUMS, 2, NO_DRUMS, NO_DRUMS, 160, NO_DRUMS, NO_DRUMS, 256),
]]
DRUMS_SLICED = [np.array(e) for e in [
    (1, 5, NO_DRUMS, NO_DRUMS, 2, NO_DRUMS, NO_DRUMS, NO_DRUMS),
    (NO_DRUMS, 1, NO_DRUMS, NO_DRUMS, NO_DRUMS, 2, NO_DRUMS, NO_DRUMS),
    (NO_DRUMS, 2, NO_DRUMS, NO_DRUMS, 160, NO_DRUMS, NO_DRUMS, 256),
]]


def roll_inputs(labels, converter):
    """Magenta's RollInputsOneHotDrumsConverterTest.labels_to_inputs: class bits, end token, NOR bit."""
    inputs = []
    for label_arr in labels:
        rows = np.zeros((len(label_arr), converter.input_depth), converter.input_dtype)
        for i, label in enumerate(label_arr):
            if label == converter.end_token:
                rows[i, -2] = 1
            elif label == 0:
                rows[i, -1] = 1
            else:
                j = 0
                while label:
                    rows[i, j] = label % 2
                    label >>= 1
                    j += 1
        inputs.append(rows)
    return inputs


ONE_HOT_CASES = {
    "melody": (data.OneHotMelodyConverter, melody_sequence, MELODY_UNSLICED, MELODY_SLICED, onehot_inputs),
    "drums": (data.DrumsConverter, drums_sequence, DRUMS_UNSLICED, DRUMS_SLICED, onehot_inputs),
    "drums_roll_input": (functools.partial(data.DrumsConverter, roll_input=True), drums_sequence, DRUMS_UNSLICED,
                         DRUMS_SLICED, roll_inputs),
}


@pytest.mark.parametrize("case", ONE_HOT_CASES)
def test_unsliced(case):
    converter_class, sequence, unsliced, _, to_inputs = ONE_HOT_CASES[case]
    converter = converter_class(steps_per_quarter=1, slice_bars=None)
    tensors = converter.to_tensors(sequence())
    assert_array_sets_equal(to_inputs(unsliced, converter), tensors.inputs)
    assert_array_sets_equal(unsliced, [np.argmax(t, axis=-1) for t in tensors.outputs])


@pytest.mark.parametrize("case", ONE_HOT_CASES)
def test_unsliced_padded_batch(case):
    """Magenta's testTfUnsliced: the same windows through the padded batch the model is fed."""
    converter_class, sequence, unsliced, _, to_inputs = ONE_HOT_CASES[case]
    converter = converter_class(steps_per_quarter=1, slice_bars=None)
    inputs, outputs, lengths = padded_batch(converter.to_tensors(sequence()), converter)
    assert_array_sets_equal(to_inputs(unsliced, converter), [t[:l] for t, l in zip(inputs, lengths)])
    assert_array_sets_equal(unsliced, [np.argmax(t, axis=-1)[:l] for t, l in zip(outputs, lengths)])


@pytest.mark.parametrize("case", ONE_HOT_CASES)
def test_unsliced_end_token(case):
    converter_class, sequence, unsliced, _, to_inputs = ONE_HOT_CASES[case]
    plain = converter_class(steps_per_quarter=1, slice_bars=None)
    assert plain.end_token is None
    converter = converter_class(steps_per_quarter=1, slice_bars=None, add_end_token=True)
    assert converter.input_depth == plain.input_depth + 1
    assert converter.end_token == plain.output_depth
    assert converter.output_depth == plain.output_depth + 1
    expected = [np.append(l, [converter.end_token]) for l in unsliced]
    tensors = converter.to_tensors(sequence())
    assert_array_sets_equal(to_inputs(expected, converter), tensors.inputs)
    assert_array_sets_equal(expected, [np.argmax(t, axis=-1) for t in tensors.outputs])


@pytest.mark.parametrize("case", ONE_HOT_CASES)
def test_sliced(case):
    converter_class, sequence, _, sliced, to_inputs = ONE_HOT_CASES[case]
    converter = converter_class(steps_per_quarter=1, slice_bars=2, max_tensors_per_notesequence=None)
    tensors = converter.to_tensors(sequence())
    assert_array_sets_equal(to_inputs(sliced, converter), tensors.inputs)
    assert_array_sets_equal(sliced, [np.argmax(t, axis=-1) for t in tensors.outputs])
    inputs, outputs, lengths = padded_batch(tensors, converter)  # Magenta's testTfSliced
    assert_array_sets_equal(to_inputs(sliced, converter), list(inputs))
    assert_array_sets_equal(sliced, [np.argmax(t, axis=-1)[:l] for t, l in zip(outputs, lengths)])


@pytest.mark.parametrize("converter_class, sequence, slice_bars, total", [
    (data.OneHotMelodyConverter, melody_sequence, 2, 5), (data.DrumsConverter, drums_sequence, 1, 5)])
def test_max_outputs_per_note_sequence(converter_class, sequence, slice_bars, total):
    converter = converter_class(steps_per_quarter=1, slice_bars=slice_bars, max_tensors_per_notesequence=2)
    assert len(converter.to_tensors(sequence()).inputs) == 2
    converter.max_tensors_per_notesequence = 3
    assert len(converter.to_tensors(sequence()).inputs) == 3
    converter.max_tensors_per_notesequence = 100
    assert len(converter.to_tensors(sequence()).inputs) == total


@pytest.mark.parametrize("converter_class, sequence, slice_bars, total", [
    (data.OneHotMelodyConverter, melody_sequence, 2, 5), (data.DrumsConverter, drums_sequence, 1, 5)])
def test_is_training(converter_class, sequence, slice_bars, total):
    converter = converter_class(steps_per_quarter=1, slice_bars=slice_bars, max_tensors_per_notesequence=2)
    assert len(converter.to_tensors(sequence(), training=True, rng=0).inputs) == 2
    converter.max_tensors_per_notesequence = None
    assert len(converter.to_tensors(sequence(), training=True, rng=0).inputs) == total


def test_training_cap_draws_from_the_generator_and_inference_keeps_the_first_windows():
    converter = data.OneHotMelodyConverter(steps_per_quarter=1, slice_bars=2, max_tensors_per_notesequence=2)
    drawn = {tuple(np.argmax(converter.to_tensors(melody_sequence(), training=True, rng=seed).outputs[0], -1))
             for seed in range(20)}
    assert len(drawn) > 1  # different seeds, different windows
    first = converter.to_tensors(melody_sequence()).outputs
    again = converter.to_tensors(melody_sequence()).outputs
    assert [np.argmax(t, -1).tolist() for t in first] == [np.argmax(t, -1).tolist() for t in again]
    np.testing.assert_array_equal(np.argmax(first[0], -1), MELODY_SLICED[0])  # the earliest window first


def expected_sequence(notes, instrument=0, is_drum=False) -> NoteSequence:
    sequence = NoteSequence(ticks_per_quarter=220)
    sequence.tempos.add(qpm=120)
    add_track(sequence, instrument, notes, is_drum=is_drum)
    return sequence


def test_melody_to_note_sequence():
    converter = data.OneHotMelodyConverter(steps_per_quarter=1, slice_bars=4, max_tensors_per_notesequence=1)
    tensors = converter.to_tensors(only_instrument(melody_sequence(), 0))
    sequences = converter.from_tensors(tensors.outputs)
    assert len(sequences) == 1
    assert sequences[0] == expected_sequence([(32, 80, 1.0, 2.0), (33, 80, 3.0, 5.5), (34, 80, 5.5, 6.5)])


def test_drums_to_note_sequence():
    converter = data.DrumsConverter(steps_per_quarter=1, slice_bars=2, max_tensors_per_notesequence=1)
    tensors = converter.to_tensors(only_instrument(drums_sequence(), 1))
    sequences = converter.from_tensors(tensors.outputs)
    assert len(sequences) == 1
    assert sequences[0] == expected_sequence(
        [(38, 80, 0.5, 1.0), (48, 80, 2.0, 2.5), (49, 80, 2.0, 2.5), (51, 80, 3.5, 4.0)], 9, is_drum=True)


@pytest.mark.parametrize("case", ["drums", "drums_roll_input"])
def test_drums_to_note_sequence_roll_inputs_too(case):
    converter_class = ONE_HOT_CASES[case][0]
    converter = converter_class(steps_per_quarter=1, slice_bars=2, max_tensors_per_notesequence=1)
    sequences = converter.from_tensors(converter.to_tensors(only_instrument(drums_sequence(), 1)).outputs)
    assert [(n.pitch, n.start_time) for n in sequences[0].notes] == [(38, 0.5), (48, 2.0), (49, 2.0), (51, 3.5)]


# --- Magenta's RollOutputsDrumsConverterTest -------------------------------------------------------

def roll_outputs_sequence() -> NoteSequence:
    sequence = NoteSequence()
    sequence.tempos.add(qpm=60)
    add_track(sequence, 0, [(35, 100, 0, 10), (35, 55, 1, 2), (44, 55, 1, 2), (40, 45, 4, 5), (35, 45, 9, 10),
                            (40, 45, 13, 13), (55, 120, 16, 18), (60, 100, 16, 17), (53, 99, 19, 20),
                            (40, 45, 33, 34), (55, 120, 36, 37), (60, 100, 36, 37), (53, 99, 39, 42)],
              is_drum=True)
    add_track(sequence, 1, [(35, 100, 5, 10), (35, 55, 6, 8), (44, 55, 7, 9)], is_drum=False)
    return sequence


def test_roll_outputs_sliced():
    events = [([0], [0, 2], [], [], [1], [], [], []),
              ([], [0], [], [], [], [1], [], []),
              ([], [1], [], [], [5, 7], [], [], [8])]
    silent = np.array([[0, 0, 1, 1, 0, 1, 1, 1], [1, 0, 1, 1, 1, 0, 1, 1], [1, 0, 1, 1, 0, 1, 1, 0]])
    expected = np.zeros((len(events), 8, len(data.REDUCED_DRUM_PITCH_CLASSES)), bool)
    for i, window in enumerate(events):
        for j, classes in enumerate(window):
            expected[i, j, classes] = 1
    converter = data.DrumsConverter(pitch_classes=data.REDUCED_DRUM_PITCH_CLASSES, slice_bars=2, steps_per_quarter=1,
                                    roll_input=True, roll_output=True, max_tensors_per_notesequence=None)
    assert converter.input_depth == 10 and converter.output_depth == 9
    tensors = converter.to_tensors(roll_outputs_sequence())
    assert_array_sets_equal(np.append(expected, silent[:, :, None], axis=2), tensors.inputs)
    assert_array_sets_equal(expected, tensors.outputs)


def test_roll_outputs_to_note_sequence():
    converter = data.DrumsConverter(pitch_classes=data.REDUCED_DRUM_PITCH_CLASSES, slice_bars=None, gap_bars=None,
                                    steps_per_quarter=1, roll_input=True, roll_output=True,
                                    max_tensors_per_notesequence=None)
    sequences = converter.from_tensors(converter.to_tensors(roll_outputs_sequence()).outputs)
    assert len(sequences) == 1
    expected = expected_sequence(
        [(36, 80, 0, 0.5), (42, 80, 0.5, 1.0), (36, 80, 0.5, 1.0), (38, 80, 2.0, 2.5), (36, 80, 4.5, 5.0),
         (38, 80, 6.5, 7.0), (48, 80, 8.0, 8.5), (49, 80, 8.0, 8.5), (51, 80, 9.5, 10.0), (38, 80, 16.5, 17.0),
         (48, 80, 18.0, 18.5), (49, 80, 18.0, 18.5), (51, 80, 19.5, 20.0)], 9, is_drum=True)
    assert sequences[0] == expected


# --- Magenta's NoteSequenceAugmenterTest (chords left out: no chord symbols here) -----------------

def augmenter_sequence(qpm=60.0, notes=((32, 100, 2, 4), (33, 100, 6, 11), (34, 100, 11, 13), (35, 100, 17, 18)),
                       drums=((57, 80, 4, 4.1), (58, 80, 12, 12.1))) -> NoteSequence:
    sequence = NoteSequence()
    sequence.tempos.add(qpm=qpm)
    add_track(sequence, 0, list(notes))
    add_track(sequence, 1, list(drums), is_drum=True)
    return sequence


def test_augment_transpose():
    augmented = data.NoteSequenceAugmenter(transpose_range=(2, 2)).augment(augmenter_sequence())
    assert augmented == augmenter_sequence(notes=((34, 100, 2, 4), (35, 100, 6, 11), (36, 100, 11, 13),
                                                  (37, 100, 17, 18)))


def test_augment_stretch():
    augmented = data.NoteSequenceAugmenter(stretch_range=(0.5, 0.5)).augment(augmenter_sequence())
    assert augmented == augmenter_sequence(qpm=120, notes=((32, 100, 1, 2), (33, 100, 3, 5.5), (34, 100, 5.5, 6.5),
                                                           (35, 100, 8.5, 9)),
                                           drums=((57, 80, 2, 2.05), (58, 80, 6, 6.05)))


def test_augment_both_and_the_original_is_kept():
    original = augmenter_sequence()
    augmented = data.NoteSequenceAugmenter(transpose_range=(-3, -3), stretch_range=(2.0, 2.0)).augment(original)
    assert augmented == augmenter_sequence(qpm=30, notes=((29, 100, 4, 8), (30, 100, 12, 22), (31, 100, 22, 26),
                                                          (32, 100, 34, 36)),
                                           drums=((57, 80, 8, 8.2), (58, 80, 24, 24.2)))
    assert original == augmenter_sequence()


def test_augment_draws_transpositions_from_the_whole_range():
    augmenter = data.NoteSequenceAugmenter(transpose_range=(-5, 5))
    rng = np.random.default_rng(0)
    shifts = {augmenter.augment(augmenter_sequence(), rng).notes[0].pitch - 32 for _ in range(200)}
    assert shifts == set(range(-5, 6))


# --- Our own converter checks ----------------------------------------------------------------------

def test_default_depths_are_magentas():
    melody = data.OneHotMelodyConverter()
    assert (melody.input_depth, melody.output_depth, melody.control_depth) == (90, 90, 0)
    drums = data.DrumsConverter(roll_input=True)
    assert (drums.input_depth, drums.output_depth) == (10, 512)
    assert data.DrumsConverter().input_depth == 512


def test_melody_programs_pitch_range_and_meter():
    sequence = NoteSequence()
    sequence.tempos.add(qpm=120)
    sequence.time_signatures.add(numerator=4, denominator=4)
    add_track(sequence, 0, [(60 + i, 90, i * 0.5, i * 0.5 + 0.5) for i in range(8)])  # 2 bars of 8ths
    sequence.notes[3].program = 40  # a violin note: not a MEL_PROGRAMS program
    sequence.notes[5].pitch = 110  # above 108: dropped
    converter = data.OneHotMelodyConverter(valid_programs="MEL_PROGRAMS", slice_bars=2)
    (window,) = converter.to_tensors(sequence).outputs
    events = converter.labels_to_events(np.argmax(window, -1))
    onsets = [e for e in events if e >= 0]
    assert onsets == [60, 61, 62, 64, 66, 67]
    sequence.time_signatures[0].numerator = 3  # 3/4: 12 steps a bar, not this converter's 16
    assert not converter.to_tensors(sequence).inputs


def test_melody_chords_keep_the_highest_note():
    sequence = NoteSequence()
    sequence.tempos.add(qpm=120)
    add_track(sequence, 0, [(60, 90, 0, 1), (64, 90, 0, 1), (67, 90, 1, 2), (62, 90, 2, 4)])
    converter = data.OneHotMelodyConverter(slice_bars=2)
    (window,) = converter.to_tensors(sequence).outputs
    assert [e for e in converter.labels_to_events(np.argmax(window, -1)) if e >= 0] == [64, 67, 62]
    skip = data.OneHotMelodyConverter(slice_bars=2, skip_polyphony=True)
    assert not skip.to_tensors(sequence).inputs


# --- Configs and the model -----------------------------------------------------------------------

def test_magentas_configs_resolve_to_magentas_values():
    from generation.music_vae import configs

    small = configs.CONFIG_MAP["cat-mel_2bar_small"]
    h = small.hparams
    assert (h.batch_size, h.max_seq_len, h.z_size, h.enc_rnn_size, h.dec_rnn_size) == (512, 32, 256, [512], [256, 256])
    assert (h.free_bits, h.max_beta, h.beta_rate, h.sampling_schedule, h.sampling_rate) == (
        0.0, 0.2, 0.99999, "inverse_sigmoid", 1000.0)
    converter = small.data_converter
    assert isinstance(converter, data.OneHotMelodyConverter) and converter.slice_bars == 2
    assert converter.steps_per_quarter == 4 and converter.max_tensors_per_notesequence == 5
    assert small.note_sequence_augmenter.transpose_range == (-5, 5)
    big = configs.CONFIG_MAP["cat-mel_2bar_big"].hparams
    assert (big.z_size, big.enc_rnn_size, big.dec_rnn_size, big.max_beta) == (512, [2048], [2048] * 3, 0.5)
    drums = configs.CONFIG_MAP["cat-drums_2bar_small"]
    assert isinstance(drums.data_converter, data.DrumsConverter) and drums.note_sequence_augmenter is None
    assert (drums.data_converter.input_depth, drums.data_converter.output_depth) == (10, 512)
    assert (drums.hparams.free_bits, drums.hparams.beta_rate) == (48.0, 0.0)


def test_a_config_round_trips_through_its_run_json_and_bad_keys_name_the_file(tmp_path):
    from generation.errors import BadConfig
    from generation.music_vae import configs

    config = configs.CONFIG_MAP["cat-mel_2bar_small"]
    again = configs.Config.from_json(json.loads(json.dumps(config.to_json())), "config.json")
    assert again.to_json() == config.to_json()
    broken = config.to_json()
    broken["data_converter"]["slice_bar"] = 2
    with pytest.raises(BadConfig, match="config.json: unknown OneHotMelodyConverter arguments slice_bar"):
        configs.Config.from_json(broken, "config.json")
    broken = config.to_json()
    broken["data_converter"]["class"] = "TrioConverter"
    with pytest.raises(BadConfig, match="unknown class 'TrioConverter'"):
        configs.Config.from_json(broken, "config.json")
    broken = config.to_json()
    broken["hparams"]["sampling_schedule"] = "linear"
    with pytest.raises(BadConfig, match="sampling_schedule must be one of"):
        configs.Config.from_json(broken, "config.json")


def tiny_model(**changes):
    from generation.music_vae.categorical_model import CategoricalMusicVAE, CategoricalVAEConfig

    values = dict(input_depth=90, output_depth=90, z_size=8, enc_rnn_size=[16], dec_rnn_size=[16, 12])
    values.update(changes)
    return CategoricalMusicVAE(CategoricalVAEConfig(**values))


def one_hot_batch(B=4, T=32, D=90, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.nn.functional.one_hot(torch.randint(0, D, (B, T), generator=generator), D).float()


def test_parameters_keep_the_shared_layout():
    model = tiny_model()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["encoder_fw.0.weight_ih_l0"] == (64, 90) and shapes["encoder_bw.0.weight_hh_l0"] == (64, 16)
    assert shapes["encoder_mu.weight"] == (8, 32) and shapes["encoder_sigma.weight"] == (8, 32)
    assert shapes["z_to_initial_state.weight"] == (2 * (16 + 12), 8)
    assert shapes["decoder.0.weight_ih_l0"] == (64, 90 + 8) and shapes["decoder.1.weight_ih_l0"] == (48, 16)
    assert shapes["output_projection.weight"] == (90, 12)


def test_loss_is_magentas_cross_entropy_plus_beta_kl():
    model = tiny_model(beta_rate=0.5, max_beta=0.4, free_bits=1.0, sampling_schedule="constant", sampling_rate=0.0)
    model.eval()
    x = one_hot_batch()
    lengths = torch.tensor([32, 20, 32, 5])
    with torch.no_grad():
        check_loss(model, x, lengths)


def check_loss(model, x, lengths):
    out = model(x, x, lengths, step=3, generator=torch.Generator().manual_seed(1))
    mu, sigma = model.encode(x, lengths)
    z = mu + sigma * torch.randn(mu.shape, generator=torch.Generator().manual_seed(1))
    logits = model.decoder_logits(x, z)
    per_step = torch.nn.functional.cross_entropy(logits.transpose(1, 2), x.argmax(-1), reduction="none")
    mask = torch.arange(32)[None] < lengths[:, None]
    r_loss = (per_step * mask).sum(-1)
    kl = 0.5 * (mu ** 2 + sigma ** 2 - 1 - 2 * torch.log(sigma)).sum(-1)
    beta = 0.4 * (1 - 0.5 ** 3)
    expected = r_loss.mean() + beta * torch.clamp(kl - 1.0 * np.log(2), min=0).mean()
    assert float(out["loss"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(out["r_loss"]) == pytest.approx(float(r_loss.mean()), rel=1e-5)
    np.testing.assert_allclose(model.log_likelihood(x, lengths, z).numpy(), -r_loss.numpy(), rtol=1e-5)


def test_sampling_schedules_are_magentas():
    from generation.music_vae.categorical_model import CategoricalVAEConfig

    inverse = CategoricalVAEConfig(sampling_schedule="inverse_sigmoid", sampling_rate=1000.0)
    assert inverse.sampling_probability(0) == pytest.approx(1 - 1000 / 1001)
    assert inverse.sampling_probability(5000) == pytest.approx(1 - 1000 / (1000 + np.exp(5)))
    assert inverse.sampling_probability(10 ** 7) == 1.0
    assert CategoricalVAEConfig(sampling_schedule="exponential", sampling_rate=0.9).sampling_probability(2) == \
        pytest.approx(0.19)
    assert CategoricalVAEConfig(sampling_schedule="constant", sampling_rate=0.3).sampling_probability(99) == 0.3


def test_scheduled_sampling_feeds_the_models_own_draws():
    x = one_hot_batch(B=3, T=12)
    lengths = torch.full((3,), 12)
    always = tiny_model(sampling_schedule="constant", sampling_rate=1.0, dropout_keep_prob=1.0)
    never = tiny_model(sampling_schedule="constant", sampling_rate=0.0, dropout_keep_prob=1.0)
    never.load_state_dict(always.state_dict())
    always.train(), never.train()
    seed = torch.Generator().manual_seed
    sampled = always(x, x, lengths, generator=seed(2))
    forced = never(x, x, lengths, generator=seed(2))
    assert float(sampled["sampling_probability"]) == 1.0 and float(forced["sampling_probability"]) == 0.0
    assert float(sampled["r_loss"].detach()) != pytest.approx(float(forced["r_loss"].detach()))
    sampled["loss"].backward()
    assert always.decoder[0].weight_ih_l0.grad is not None
    always.eval()  # evaluation is teacher-forced whatever the schedule
    with torch.no_grad():
        assert float(always(x, x, lengths, generator=seed(2))["r_loss"]) == pytest.approx(
            float(never.eval()(x, x, lengths, generator=seed(2))["r_loss"]), rel=1e-6)


def test_decode_draws_one_hots_repeatably_and_greedy_follows_the_logits():
    model = tiny_model().eval()
    z = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    first = model.decode(z, 16, 1.0, generator=torch.Generator().manual_seed(3))
    again = model.decode(z, 16, 1.0, generator=torch.Generator().manual_seed(3))
    assert first.shape == (5, 16, 90) and torch.equal(first, again)
    assert torch.all(first.sum(-1) == 1)
    greedy = model.decode(z, 16, 1e-6, generator=torch.Generator().manual_seed(4))
    logits = model.decoder_logits(greedy, z)  # teacher-forced on its own greedy choices
    assert torch.equal(greedy.argmax(-1), logits.argmax(-1))


def test_decode_stops_at_the_end_token():
    model = tiny_model(output_depth=91, input_depth=91).eval()
    with torch.no_grad():
        model.output_projection.bias[90] = 50.0  # the end token, always
    out = model.decode(torch.zeros(2, 8), 6, 1.0, generator=torch.Generator().manual_seed(0), end_token=90)
    assert out[:, 0].argmax(-1).tolist() == [90, 90] and float(out[:, 1:].abs().sum()) == 0.0


def test_statistics_of_a_known_melody():
    from generation.music_vae.evaluate_categorical import melody_window_values

    events = [60, -2, 60, -2, 60, -1, -2, -2, 62, -2, -2, -2, 67, -2, -1, -2]  # one bar of 16 steps
    values = melody_window_values(events, 16)
    assert values == {"distinct pitches": 3.0, "notes per bar": 5.0, "longest repeated-pitch run": 3.0,
                      "pitch range": 7.0, "silence share": 5 / 16}


# --- The commands, on a tiny config trained here -------------------------------------------------

def synthetic_tune(rng: np.random.Generator, bars: int = 6) -> NoteSequence:
    """A 4/4 line of 16th to quarter notes stepping around middle C, at 120 qpm."""
    sequence = NoteSequence()
    sequence.tempos.add(qpm=120)
    sequence.time_signatures.add(numerator=4, denominator=4)
    t, pitch = 0.0, 60 + int(rng.integers(-5, 6))
    while t < bars * 2.0:
        duration = float(rng.choice([0.125, 0.25, 0.25, 0.5]))
        pitch = int(np.clip(pitch + rng.integers(-3, 4), 50, 80))
        sequence.notes.add(pitch=pitch, velocity=90, start_time=t, end_time=t + duration)
        t += duration
    sequence.total_time = t
    return sequence


@pytest.fixture(scope="module")
def tunes(tmp_path_factory) -> Path:
    from generation.io.tfrecord import TFRecordWriter
    from generation.io.writers import write_midi

    folder = tmp_path_factory.mktemp("tunes")
    rng = np.random.default_rng(0)
    sequences = [synthetic_tune(rng) for _ in range(10)]
    writer = TFRecordWriter(folder / "tunes.tfrecord")
    for sequence in sequences:
        writer.write(sequence.SerializeToString())
    writer.close()
    write_midi(sequences[0], folder / "a.mid")
    write_midi(sequences[1], folder / "b.mid")
    return folder


def run(*args: str):
    from cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def tiny_run(tunes: Path) -> Path:
    result = run("train", "--config", "cat-mel_2bar_tiny", "--examples", tunes / "tunes.tfrecord", "--run-dir",
                 tunes / "run", "--num-steps", "6", "--checkpoint-every", "3", "--workers", "1", "-q")
    assert result.exit_code == 0, result.output
    assert "Trained cat-mel_2bar_tiny to step 6" in result.output
    return tunes / "run"


def test_train_sample_interpolate_evaluate_through_the_cli(tiny_run: Path, tunes: Path) -> None:
    from generation.io.readers import read_music_file

    started = time.perf_counter()
    stored = json.loads((tiny_run / "config.json").read_text())
    assert stored["data_converter"]["class"] == "OneHotMelodyConverter"
    result = run("sample", tiny_run, "-n", "3", "--bars", "2", "--seed", "1", "-o", tunes / "samples")
    assert result.exit_code == 0, result.output
    for path in sorted((tunes / "samples").glob("*.mid")):
        notes = read_music_file(path).sequences[0].notes
        assert all(21 <= n.pitch <= 108 and not n.is_drum for n in notes)
        assert max((n.end_time for n in notes), default=0.0) <= 4.0 + 1e-6  # two bars at 120 qpm
    result = run("interpolate", tiny_run, tunes / "a.mid", tunes / "b.mid", "--steps", "5", "-o", tunes / "i.mid")
    assert result.exit_code == 0, result.output
    assert "5 melodies" in result.output and "20.0 s" in result.output
    distances = result.output.splitlines()[1]
    assert distances.startswith("  per point, share of grid steps unlike START's window: ")
    assert len(distances.split("; unlike END's: ")[1].split()) == 5
    result = run("evaluate", tiny_run, "--examples", tunes / "tunes.tfrecord", "--baseline-examples",
                 tunes / "tunes.tfrecord", "-n", "4", "--json", "-q")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["windows"] > 0 and report["events"] == 32 * report["windows"]
    assert report["nll_iwae_per_event"] <= report["nll_elbo_per_event"] + 1e-9  # the tighter bound
    assert 0 < report["bigram_nll_per_event"] < np.log(90)
    assert set(report["sample_statistics"]["values"]) == {
        "distinct pitches", "notes per bar", "longest repeated-pitch run", "pitch range", "silence share"}
    assert len(report["interpolation"]["distance_to_start"]) == 5
    assert time.perf_counter() - started < 120  # seconds on an idle CPU; generous for a shared one


def test_sample_and_interpolate_are_repeatable_with_a_seed(tiny_run: Path) -> None:
    from generation.music_vae import TrainedModel

    model = TrainedModel(None, batch_size=4, checkpoint_dir_or_path=tiny_run)
    first = model.sample(n=3, length=32, temperature=1.0, seed=5)
    again = model.sample(n=3, length=32, temperature=1.0, seed=5)
    assert [s.SerializeToString() for s in first] == [s.SerializeToString() for s in again]
    z, mu, sigma = model.encode([synthetic_tune(np.random.default_rng(1), bars=2)])
    assert z.shape == mu.shape == sigma.shape == (1, 8)


def test_interpolating_a_file_without_a_melody_is_one_line(tiny_run: Path, tunes: Path, tmp_path: Path) -> None:
    from generation.io.writers import write_midi

    waltz = synthetic_tune(np.random.default_rng(2))
    waltz.time_signatures[0].numerator = 3
    write_midi(waltz, tmp_path / "waltz.mid")
    result = CliRunner().invoke(__import__("cli").cli, ["interpolate", str(tiny_run), str(tmp_path / "waltz.mid"),
                                                        str(tunes / "b.mid"), "-o", str(tmp_path / "x.mid")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith(f"Error: {tmp_path / 'waltz.mid'}: no 2-bar melody")
    assert not (tmp_path / "x.mid").exists()


def test_the_drum_pattern_config_trains_and_samples(tmp_path: Path) -> None:
    from generation.io.tfrecord import TFRecordWriter
    from generation.music_vae import TrainedModel

    writer = TFRecordWriter(tmp_path / "drums.tfrecord")
    rng = np.random.default_rng(0)
    for _ in range(6):
        sequence = NoteSequence()
        sequence.tempos.add(qpm=120)
        for step in range(64):
            for pitch, chance in ((36, 0.3), (38, 0.2), (42, 0.6)):
                if rng.random() < chance:
                    sequence.notes.add(pitch=pitch, velocity=90, start_time=step * 0.125,
                                       end_time=step * 0.125 + 0.1, is_drum=True, instrument=9)
        sequence.total_time = 8.0  # note_seq splits on time changes up to total_time: without it, nothing
        writer.write(sequence.SerializeToString())
    writer.close()
    result = run("train", "--config", "cat-drums_2bar_tiny", "--examples", tmp_path / "drums.tfrecord", "--run-dir",
                 tmp_path / "run", "--num-steps", "3", "--workers", "1", "-q")
    assert result.exit_code == 0, result.output
    model = TrainedModel(None, batch_size=2, checkpoint_dir_or_path=tmp_path / "run")
    (pattern,) = model.sample(n=1, length=32, seed=0)
    assert all(n.is_drum and n.pitch in {c[0] for c in data.REDUCED_DRUM_PITCH_CLASSES} for n in pattern.notes)


# --- The bundled model -----------------------------------------------------------------------------

def test_the_bundled_melody_model_loads_samples_and_interpolates(tmp_path: Path) -> None:
    from generation import bundled
    from generation.io.readers import read_music_file
    from generation.music_vae import TrainedModel

    model = bundled.find("melody-2bar")
    assert model is not None, "melody-2bar is not bundled"
    card = model.card
    assert card["config"] == "cat-mel_2bar_small" and "O'Neill" in card["data"]
    assert model.size_bytes < 10e6
    result = run("sample", "melody-2bar", "-n", "4", "--seed", "2", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    melodies = [read_music_file(p).sequences[0] for p in sorted((tmp_path / "out").glob("*.mid"))]
    assert len(melodies) == 4 and all(m.notes for m in melodies)
    for melody in melodies:  # a tune, not one note held or one pitch repeated
        assert len({n.pitch for n in melody.notes}) >= 3
    loaded = TrainedModel(None, batch_size=8, checkpoint_dir_or_path="melody-2bar")
    assert loaded.categorical and loaded.windows_word == "melodies"
    up, down = NoteSequence(), NoteSequence()
    for sequence, pitches in ((up, range(60, 76)), (down, range(84, 68, -1))):
        sequence.tempos.add(qpm=120)
        for i, pitch in enumerate(pitches):  # 16 eighth notes: two bars
            sequence.notes.add(pitch=pitch, velocity=90, start_time=i * 0.25, end_time=i * 0.25 + 0.25)
        sequence.total_time = 4.0
    path = loaded.interpolate(up, down, num_steps=3, length=32, temperature=1e-3, seed=0)
    assert len(path) == 3 and all(melody.notes for melody in path)
    mean_pitches = [np.mean([n.pitch for n in melody.notes]) for melody in path]
    assert mean_pitches[0] < mean_pitches[-1]  # from the low scale to the high one
