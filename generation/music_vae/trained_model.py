"""Magenta's `TrainedModel` facade over a trained MusicVAE run (a GrooVAE, or a melody or drum-pattern
model): sample, encode, decode, interpolate.

Code written against `magenta.models.music_vae.trained_model` runs after changing its imports:

    from generation.music_vae import TrainedModel, configs
    model = TrainedModel(config=configs.CONFIG_MAP['groovae_4bar'], batch_size=1, checkpoint_dir_or_path='train')
    sequences = model.sample(n=1, length=16 * 4, temperature=0.5)

`checkpoint_dir_or_path` is a run directory (its latest checkpoint) or a `checkpoints/step-N.safetensors`
file; `config=None` takes the config stored in the run. As in Magenta, z is drawn with numpy's global
random generator and the converter works in inference mode; `seed=` (ours) makes a call repeatable.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from generation.checkpoint import load_weights, read_run_config, resolve_checkpoint
from generation.errors import DamagedCheckpoint, GenError
from generation.music_vae.configs import Config
from generation.protos import NoteSequence


class NoExtractedExamplesError(GenError):
    """The data converter found no example in a NoteSequence given to `encode`."""


class ControlsNeeded(GenError):
    """A control-conditioned model asked to sample without controls."""


class MultipleExtractedExamplesError(GenError):
    """The data converter found several examples in a NoteSequence given to `encode`."""


def _slerp(p0: np.ndarray, p1: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between two latent vectors, as Magenta's `interpolate` does it."""
    omega = np.arccos(np.clip(np.dot(p0 / np.linalg.norm(p0), p1 / np.linalg.norm(p1)), -1.0, 1.0))
    if np.isclose(np.sin(omega), 0.0):  # (anti)parallel vectors: fall back to a straight line
        return (1.0 - t) * p0 + t * p1
    return np.sin((1.0 - t) * omega) / np.sin(omega) * p0 + np.sin(t * omega) / np.sin(omega) * p1


def interpolation_path(start: np.ndarray, end: np.ndarray, steps: int) -> np.ndarray:
    """`steps` latent vectors [steps, z_size] from `start` to `end`, both included, along the sphere."""
    return np.array([_slerp(start, end, t) for t in np.linspace(0, 1, steps)], dtype=np.float32)


class TrainedModel:
    """A trained MusicVAE, loaded for generation on the CPU (or `device=`)."""

    def __init__(
        self,
        config: Config | None,
        batch_size: int,
        checkpoint_dir_or_path: str | os.PathLike[str],
        var_name_substitutions: Any = None,
        session_target: str = "",
        device: str = "cpu",
        given_hits: bool = False,
        **sample_kwargs: Any,
    ) -> None:
        """Magenta's arguments; `given_hits=True` decodes each hit's velocity and offset as expected
        given that hit (`model.dynamics_given_hits`) instead of Magenta's raw outputs (GrooVAE only:
        the melody and drum-pattern models have no velocities to decode)."""
        import torch

        from generation.music_vae.configs import is_categorical
        from generation.music_vae.family import build_model

        if var_name_substitutions is not None:
            raise GenError("var_name_substitutions renames TensorFlow variables; checkpoints here are safetensors")
        run_dir, checkpoint = resolve_checkpoint(checkpoint_dir_or_path)
        if config is None:
            config = Config.from_json(read_run_config(run_dir), str(run_dir / "config.json"))
        self._run_dir = run_dir
        self._config = copy.deepcopy(config)
        self._config.hparams.batch_size = batch_size
        self._device = torch.device(device)
        if self._device.type == "cpu":
            from generation.threads import use_inference_threads

            use_inference_threads()  # a small model decoded step by step: 1 thread unless the user chose
        self._categorical = is_categorical(self._config)
        self._model = build_model(self._config)
        try:
            self._model.load_state_dict(load_weights(checkpoint))
        except RuntimeError as error:  # shapes or names differ: weights of another config
            first = str(error).splitlines()[1].strip() if len(str(error).splitlines()) > 1 else str(error)
            raise DamagedCheckpoint(
                f"{checkpoint.weights}: does not match config {self._config.name!r}: {first}"
            ) from None
        self._model.to(self._device).eval()
        self.given_hits = given_hits

    @property
    def config(self) -> Config:
        return self._config

    @property
    def categorical(self) -> bool:
        """Whether this is a melody or drum-pattern model (one-hot events), not a GrooVAE."""
        return self._categorical

    @property
    def windows_word(self) -> str:
        """What its windows are called in reports: grooves, melodies or drum patterns."""
        if not self._categorical:
            return "grooves"
        return "melodies" if hasattr(self._config.data_converter, "melody_encoding") else "drum patterns"

    def _generators(self, seed: int | None) -> tuple[Any, Any]:
        import torch

        if seed is None:
            return np.random, None  # Magenta's: numpy's and torch's global generators
        generator = torch.Generator(device=self._device).manual_seed(seed)
        return np.random.default_rng(seed), generator

    def _to_items(self, samples: np.ndarray, c_input: Any = None) -> list[NoteSequence]:
        return self._config.data_converter.from_tensors(samples, c_input, training=False)

    def sample(self, n: int | None = None, length: int | None = None, temperature: float = 1.0,
               same_z: bool = False, c_input: Any = None, *, seed: int | None = None) -> list[NoteSequence]:
        """`n` new grooves or melodies (default: one batch) of `length` steps (16 per bar), as NoteSequences."""
        batch_size = self._config.hparams.batch_size
        n = n or batch_size
        if not length and self._config.data_converter.end_token not in (None, False):
            length = self._config.hparams.max_seq_len  # Magenta's: to the end token, at most max_seq_len
        if not length:
            raise ValueError("A length must be specified when the end token is not used.")
        depth = self._config.data_converter.control_depth
        if depth and c_input is None:
            # A controlled model (hits_control, ...) decodes to the controls it is given: drawn
            # without them it has nothing to play to.
            raise ControlsNeeded(f"{self._run_dir}: {self._config.name} is conditioned on controls ({depth} per "
                                 "step) and samples only with them (c_input); for free samples use a model "
                                 "without controls (groove-4bar, groove-drums)")
        rng, _ = self._generators(seed)
        z_size = self._config.hparams.z_size
        if same_z:
            z = np.tile(rng.standard_normal(z_size).astype(np.float32), (n, 1))
        else:
            z = rng.standard_normal((n, z_size)).astype(np.float32)
        return self._to_items(self.decode_to_tensors(z, length, temperature, c_input, seed=seed), c_input)

    def encode(self, note_sequences: Sequence[NoteSequence], assert_same_length: bool = False,
               *, seed: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(z, mu, sigma), each [len(note_sequences), z_size]; each sequence must give one example."""
        inputs, controls, lengths = [], [], []
        for note_sequence in note_sequences:
            tensors = self._config.data_converter.to_tensors(note_sequence, training=False)
            if not tensors.inputs:
                raise NoExtractedExamplesError(f"No examples extracted from NoteSequence {note_sequence.filename or note_sequence.id or '(unnamed)'}")
            if len(tensors.inputs) > 1:
                raise MultipleExtractedExamplesError(
                    f"Multiple ({len(tensors.inputs)}) examples extracted from NoteSequence "
                    f"{note_sequence.filename or note_sequence.id or '(unnamed)'}"
                )
            inputs.append(tensors.inputs[0])
            controls.append(tensors.controls[0])
            lengths.append(tensors.lengths[0])
            if assert_same_length and len(inputs[0]) != len(inputs[-1]):
                raise AssertionError(
                    f"Sequences 0 and {len(inputs) - 1} have different lengths: {len(inputs[0])} vs {len(inputs[-1])}"
                )
        return self.encode_tensors(inputs, lengths, controls, seed=seed)

    def encode_tensors(self, input_tensors: Sequence[np.ndarray], lengths: Sequence[int],
                       control_tensors: Sequence[np.ndarray] | None = None, *,
                       seed: int | None = None,
                       on_batch: Callable[[int], object] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(z, mu, sigma) for converter input tensors, each [T, input_depth]; z = mu + sigma * eps.

        `on_batch(n)` is called after each batch with the number of windows it encoded (progress)."""
        import torch

        from generation.music_vae.data import pad_windows

        converter = self._config.data_converter
        longest = max(len(t) for t in input_tensors)
        inputs = pad_windows(input_tensors, longest, converter.input_depth)
        if control_tensors is not None and converter.control_depth:
            controls = pad_windows(control_tensors, longest, converter.control_depth)
        else:  # no controls given: zeros, as Magenta feeds
            controls = np.zeros((len(inputs), longest, converter.control_depth), np.float32)
        batch_size = self._config.hparams.batch_size
        mus, sigmas = [], []
        with torch.inference_mode():
            for start in range(0, len(inputs), batch_size):
                chunk = slice(start, start + batch_size)
                mu, sigma = self._model.encode(
                    torch.from_numpy(inputs[chunk]).to(self._device),
                    torch.tensor(np.asarray(lengths[chunk]), dtype=torch.int64),
                    torch.from_numpy(controls[chunk]).to(self._device) if converter.control_depth else None,
                )
                mus.append(mu.float().cpu().numpy())
                sigmas.append(sigma.float().cpu().numpy())
                if on_batch is not None:
                    on_batch(len(mus[-1]))
        mu, sigma = np.concatenate(mus), np.concatenate(sigmas)
        rng, _ = self._generators(seed)
        z = mu + sigma * rng.standard_normal(mu.shape).astype(np.float32)
        return z, mu, sigma

    def log_likelihood_tensors(self, output_tensors: Sequence[np.ndarray], lengths: Sequence[int],
                               z: np.ndarray) -> np.ndarray:
        """log p(x | z) in nats [n] of each one-hot target x [T, output_depth] under its latent vector
        z [n, z_size], teacher-forced over its first `lengths` steps (melody and drum-pattern models)."""
        import torch

        from generation.music_vae.data import pad_windows

        if not self._categorical:
            raise GenError(f"{self._config.name}: likelihoods are for the one-hot melody and drum-pattern models")
        longest = max(len(t) for t in output_tensors)
        outputs = pad_windows(output_tensors, longest, self._config.data_converter.output_depth)
        z = np.asarray(z, np.float32)
        batch_size = self._config.hparams.batch_size
        result = []
        with torch.inference_mode():
            for start in range(0, len(outputs), batch_size):
                chunk = slice(start, start + batch_size)
                result.append(self._model.log_likelihood(
                    torch.from_numpy(outputs[chunk]).to(self._device),
                    torch.tensor(np.asarray(lengths[chunk]), dtype=torch.int64),
                    torch.from_numpy(z[chunk]).to(self._device)).double().cpu().numpy())
        return np.concatenate(result)

    def decode(self, z: np.ndarray, length: int | None = None, temperature: float = 1.0, c_input: Any = None,
               *, seed: int | None = None) -> list[NoteSequence]:
        """NoteSequences decoded from latent vectors z [n, z_size]."""
        return self._to_items(self.decode_to_tensors(z, length, temperature, c_input, seed=seed), c_input)

    def decode_to_tensors(self, z: np.ndarray, length: int | None = None, temperature: float = 1.0,
                          c_input: Any = None, return_full_results: bool = False, *, seed: int | None = None,
                          hits: np.ndarray | None = None, on_batch: Callable[[int], object] | None = None) -> np.ndarray:
        """Output tensors [n, length, output_depth] decoded from z [n, z_size].

        c_input: controls [length, control_depth] shared by every z (Magenta's), or [n, length, control_depth].
        hits: [n, length, num_classes] hits to play instead of sampling them (`GrooVAE.decode`).
        on_batch(n): called after each batch with the number of latent vectors it decoded (progress).
        """
        import torch

        if return_full_results:
            raise GenError("return_full_results gives TensorFlow decoder internals; not available here")
        if not length and self._config.data_converter.end_token not in (None, False):
            length = self._config.hparams.max_seq_len
        if not length:
            raise ValueError("A length must be specified when the end token is not used.")
        _, generator = self._generators(seed)
        z = np.asarray(z, dtype=np.float32)
        controls = None if c_input is None else np.asarray(c_input, np.float32)
        batch_size = self._config.hparams.batch_size
        outputs = []
        for start in range(0, len(z), batch_size):
            chunk = slice(start, start + batch_size)
            chunk_controls = None
            if controls is not None:
                chunk_controls = torch.from_numpy(controls[chunk] if controls.ndim == 3 else controls).to(self._device)
            chunk_z = torch.from_numpy(z[chunk]).to(self._device)
            if self._categorical:
                if hits is not None:
                    raise GenError(f"{self._config.name} plays one-hot events; hits can be forced on a GrooVAE only")
                decoded = self._model.decode(chunk_z, length, temperature, chunk_controls, generator,
                                             end_token=self._config.data_converter.end_token)
            else:
                chunk_hits = None if hits is None else torch.from_numpy(np.asarray(hits[chunk], np.float32))
                decoded = self._model.decode(chunk_z, length, temperature, chunk_controls, generator,
                                             given_hits=self.given_hits, hits=chunk_hits)
            outputs.append(decoded.float().cpu().numpy())
            if on_batch is not None:
                on_batch(len(outputs[-1]))
        return np.concatenate(outputs)

    def interpolate(self, start_sequence: NoteSequence, end_sequence: NoteSequence, num_steps: int,
                    length: int | None = None, temperature: float = 1.0, assert_same_length: bool = True,
                    *, seed: int | None = None) -> list[NoteSequence]:
        """`num_steps` grooves or melodies from the start's mu to the end's, both ends included
        (spherical interpolation)."""
        _, mu, _ = self.encode([start_sequence, end_sequence], assert_same_length, seed=seed)
        return self.decode(interpolation_path(mu[0], mu[1], num_steps), length=length, temperature=temperature,
                           seed=seed)
