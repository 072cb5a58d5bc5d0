"""The MusicVAE models (GrooVAE; melodies and drum patterns) as one model family of the shared
training loop (`generation.training`), its name "groovae"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from generation.protos import NoteSequence


def model_config(config: Any) -> Any:
    """The model's own config from a resolved `Config`: its hparams plus the converter's depths
    (a `GrooVAEConfig`, or a `CategoricalVAEConfig` for the melody and drum-pattern converters)."""
    from generation.music_vae.configs import is_categorical

    converter = config.data_converter
    depths = {"input_depth": converter.input_depth, "output_depth": converter.output_depth,
              "control_depth": converter.control_depth}
    if is_categorical(config):
        from generation.music_vae.categorical_model import CategoricalVAEConfig

        return CategoricalVAEConfig.from_hparams(config.hparams.values(), **depths)
    from generation.music_vae.model import GrooVAEConfig

    hparams = {k: v for k, v in config.hparams.values().items() if k not in _CONVERTER_SIDE_HPARAMS}
    return GrooVAEConfig.from_hparams(hparams, **depths)


def build_model(config: Any) -> Any:
    """The untrained module a resolved `Config` describes: `GrooVAE` or `CategoricalMusicVAE`."""
    from generation.music_vae.configs import is_categorical

    if is_categorical(config):
        from generation.music_vae.categorical_model import CategoricalMusicVAE

        return CategoricalMusicVAE(model_config(config))
    from generation.music_vae.model import GrooVAE

    return GrooVAE(model_config(config))


# Magenta hparams that GrooVAE's model does not read.
_CONVERTER_SIDE_HPARAMS = {"control_preprocessing_rnn_size"}


class GrooVAEFamily:
    """Every MusicVAE (GrooVAE, and the melody and drum-pattern models): windows of converter
    tensors from each NoteSequence, Magenta's MusicVAE loss. When training, a config's
    `note_sequence_augmenter` first transposes (and stretches) each sequence at random, drawn from
    the example's generator, as Magenta's training input pipeline does."""

    name = "groovae"

    def build_model(self, config: Any) -> Any:
        return build_model(config)

    def examples(self, config: Any, serialized_sequence: bytes, *, training: bool, rng: np.random.Generator) -> list[Any]:
        sequence = NoteSequence.FromString(serialized_sequence)
        if training and config.note_sequence_augmenter is not None:
            sequence = config.note_sequence_augmenter.augment(sequence, rng)
        tensors = config.data_converter.to_tensors(sequence, training=training, rng=rng)
        limit = config.hparams.max_seq_len  # Magenta truncates longer windows
        return [
            (inputs[:limit], outputs[:limit], controls[:limit], min(int(length), limit))
            for inputs, outputs, controls, length in zip(tensors.inputs, tensors.outputs, tensors.controls, tensors.lengths)
        ]

    def collate(self, examples: Sequence[Any]) -> dict[str, Any]:
        import torch

        from generation.music_vae.data import pad_windows

        longest = max(len(inputs) for inputs, _, _, _ in examples)

        def stacked(index: int) -> torch.Tensor:
            windows = [example[index] for example in examples]
            return torch.from_numpy(pad_windows(windows, longest, np.shape(windows[0])[-1]))

        controls = stacked(2)
        return {
            "inputs": stacked(0),  # [B, T, input_depth]
            "outputs": stacked(1),  # [B, T, output_depth]
            "controls": controls if controls.shape[-1] else None,  # [B, T, control_depth]
            "lengths": torch.tensor([length for *_, length in examples], dtype=torch.int64),  # [B]
        }

    def loss(self, model: Any, batch: dict[str, Any], step: int) -> dict[str, Any]:
        return model(batch["inputs"], batch["outputs"], batch["lengths"], batch["controls"], step=step)
