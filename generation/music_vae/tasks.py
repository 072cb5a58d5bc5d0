"""Whole-piece GrooVAE jobs: humanize a drum part window by window, interpolate between two grooves.

A piece is cut into the model's windows (2 or 4 bars) at its own tempo; each window is encoded and
decoded, and the decoded windows are laid end to end at that tempo. Tracks other than drums are
copied unchanged. The piece must be in 4/4 with one tempo, as the converter requires.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from generation.errors import BadInputFile
from generation.protos import NoteSequence


def _tempo(sequence: NoteSequence) -> float:
    return sequence.tempos[0].qpm if sequence.tempos else 120.0


def _drum_windows(model: Any, sequence: NoteSequence, name: str) -> tuple[list[np.ndarray], list[int], list[np.ndarray], float]:
    drums = copy.deepcopy(sequence)
    del drums.notes[:]
    drums.notes.extend(note for note in sequence.notes if note.is_drum)
    if not drums.notes:
        raise BadInputFile(name, "no drum notes (MIDI channel 10) to work on")
    tensors = model.config.data_converter.to_tensors(drums, training=False)
    if not tensors.inputs:
        signatures = ", ".join(f"{t.numerator}/{t.denominator}" for t in sequence.time_signatures) or "none"
        raise BadInputFile(
            name, f"no {model.config.name} windows: the piece must be 4/4 with one tempo "
                  f"(time signatures: {signatures}; tempos: {len(sequence.tempos)})"
        )
    window_seconds = len(tensors.outputs[0]) * 60.0 / (_tempo(sequence) * model.config.data_converter.steps_per_quarter)
    return tensors.inputs, list(tensors.lengths), tensors.controls, window_seconds


def _lay_end_to_end(model: Any, decoded: np.ndarray, qpm: float, window_seconds: float,
                    controls: Any = None) -> list[NoteSequence]:
    windows = model.config.data_converter.from_tensors(decoded, controls, training=False, qpm=qpm)
    for number, window in enumerate(windows):
        for note in window.notes:
            note.start_time += number * window_seconds
            note.end_time += number * window_seconds
    return windows


def humanize(model: Any, sequence: NoteSequence, *, temperature: float = 1e-3, seed: int | None = 0,
             name: str = "<sequence>") -> NoteSequence:
    """The piece with its drum part re-played by a humanize model; other instruments unchanged.

    temperature: for the decoder's hits (near 0 keeps the hits the model is sure of).
    """
    inputs, lengths, controls, window_seconds = _drum_windows(model, sequence, name)
    _, mu, _ = model.encode_tensors(inputs, lengths, controls, seed=seed)
    length = max(len(t) for t in inputs)
    control_input = np.stack([np.asarray(c, np.float32) for c in controls]) if model.config.data_converter.control_depth else None
    decoded = model.decode_to_tensors(mu, length, temperature, control_input, seed=seed)
    windows = _lay_end_to_end(model, decoded, _tempo(sequence), window_seconds)
    result = copy.deepcopy(sequence)
    del result.notes[:]
    result.notes.extend(note for note in sequence.notes if not note.is_drum)
    for window in windows:
        result.notes.extend(window.notes)
    result.total_time = max((note.end_time for note in result.notes), default=0.0)
    return result


def regroove(model: Any, sequence: NoteSequence, *, temperature: float = 1.0, hit_temperature: float = 1e-3,
             seed: int | None = 0, name: str = "<sequence>") -> NoteSequence:
    """The piece with its drum part re-grooved: each window encoded, a latent vector drawn near it
    (mu + temperature * sigma * noise: 1.0 samples the posterior, 0 reconstructs), and decoded."""
    inputs, lengths, controls, window_seconds = _drum_windows(model, sequence, name)
    _, mu, sigma = model.encode_tensors(inputs, lengths, controls, seed=seed)
    noise = np.random.default_rng(seed).standard_normal(mu.shape).astype(np.float32)
    z = (mu + temperature * sigma * noise).astype(np.float32)
    length = max(len(t) for t in inputs)
    control_input = np.stack([np.asarray(c, np.float32) for c in controls]) if model.config.data_converter.control_depth else None
    decoded = model.decode_to_tensors(z, length, hit_temperature, control_input, seed=seed)
    result = copy.deepcopy(sequence)
    del result.notes[:]
    result.notes.extend(note for note in sequence.notes if not note.is_drum)
    for window in _lay_end_to_end(model, decoded, _tempo(sequence), window_seconds):
        result.notes.extend(window.notes)
    result.total_time = max((note.end_time for note in result.notes), default=0.0)
    return result


def interpolate_pieces(model: Any, start: NoteSequence, end: NoteSequence, steps: int, *, temperature: float = 1e-3,
                       seed: int | None = 0, names: tuple[str, str] = ("<start>", "<end>")) -> NoteSequence:
    """`steps` grooves from the first window of `start` to the first window of `end` (both included),
    end to end in one sequence at `start`'s tempo."""
    first_inputs, first_lengths, first_controls, window_seconds = _drum_windows(model, start, names[0])
    last_inputs, last_lengths, last_controls, _ = _drum_windows(model, end, names[1])
    _, mu, _ = model.encode_tensors([first_inputs[0], last_inputs[0]], [first_lengths[0], last_lengths[0]],
                                    [first_controls[0], last_controls[0]], seed=seed)
    from generation.music_vae.trained_model import interpolation_path

    decoded = model.decode_to_tensors(interpolation_path(mu[0], mu[1], steps), len(first_inputs[0]), temperature,
                                      seed=seed)
    result = NoteSequence()
    result.ticks_per_quarter = start.ticks_per_quarter or 220
    result.tempos.add(qpm=_tempo(start))
    result.time_signatures.add(numerator=4, denominator=4)
    for window in _lay_end_to_end(model, decoded, _tempo(start), window_seconds):
        result.notes.extend(window.notes)
    result.total_time = steps * window_seconds
    return result
