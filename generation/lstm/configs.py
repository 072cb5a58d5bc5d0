"""Named LSTM note-model configs (`basic_rnn`, `attention_rnn`, `drum_kit_rnn`, `polyphony_rnn`,
`performance`, `performance_with_dynamics` and their `_tiny` test versions).

Each is a JSON file in `configs/` stating what differs from `lstm.base.json`, which states what
differs from Magenta's events_rnn defaults (`LSTMHParams` below). `encoding` picks the event
encoding (`generation.lstm.encodings`) and its arguments; an unknown key anywhere is a `BadConfig`.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from generation import config_files
from generation.errors import BadConfig

FAMILY = "lstm"


@dataclass
class LSTMHParams:
    """Magenta's events_rnn hyperparameters (its defaults), and the few this implementation adds."""

    batch_size: int = 64
    rnn_layer_sizes: list[int] = field(default_factory=lambda: [128, 128])
    dropout_keep_prob: float = 1.0  # on each layer's output, as Magenta's DropoutWrapper
    attn_length: int = 0  # attend over this many previous outputs of the top layer (attention_rnn: 40)
    clip_norm: float = 3.0  # global-norm gradient clipping
    learning_rate: float = 0.001
    residual_connections: bool = False
    use_cudnn: bool = False  # Magenta's flag; the GPU path here always uses cuDNN
    # Added here:
    embedding_size: int = 128  # each input event is embedded (Magenta feeds a one-hot vector)
    binary_counter_bits: int = 0  # +-1 bits of the step of the next event (Magenta's lookback encoders)
    max_seq_len: int = 512  # events per training window (teacher forcing over truncated windows)
    decay_rate: float = 1.0  # per step; 1.0 keeps the learning rate constant, as Magenta's events_rnn
    min_learning_rate: float = 0.0

    # What the shared training loop reads (MusicVAE's names).
    clip_mode = "global_norm"
    grad_norm_clip_to_zero = float("inf")

    @property
    def grad_clip(self) -> float:
        return self.clip_norm

    def values(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_values(cls, values: Mapping[str, Any], source: str) -> LSTMHParams:
        hparams = config_files.hparams_from_values(cls, values, source)
        if not hparams.rnn_layer_sizes or any(not isinstance(s, int) or s < 1 for s in hparams.rnn_layer_sizes):
            raise BadConfig(f"{source}: rnn_layer_sizes must be a list of positive integers; got {hparams.rnn_layer_sizes!r}")
        if not 0 < hparams.dropout_keep_prob <= 1:
            raise BadConfig(f"{source}: dropout_keep_prob must be in (0, 1]; got {hparams.dropout_keep_prob!r}")
        for name in ("attn_length", "binary_counter_bits"):
            if not isinstance(getattr(hparams, name), int) or getattr(hparams, name) < 0:
                raise BadConfig(f"{source}: {name} must be an integer >= 0; got {getattr(hparams, name)!r}")
        for name in ("batch_size", "max_seq_len", "embedding_size"):
            if not isinstance(getattr(hparams, name), int) or getattr(hparams, name) < 1:
                raise BadConfig(f"{source}: {name} must be an integer >= 1; got {getattr(hparams, name)!r}")
        return hparams


@dataclass
class LSTMRunConfig:
    """A resolved LSTM config: hyperparameters and the event encoding (with what built it)."""

    hparams: LSTMHParams
    encoding: Any  # generation.lstm.encodings.Encoding
    encoding_args: dict[str, Any]
    name: str = ""
    description: str = ""
    model: str = FAMILY

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "family": FAMILY, "description": self.description,
                "hparams": self.hparams.values(), "encoding": self.encoding_args}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str) -> LSTMRunConfig:
        config_files.check_run_config(data, source, FAMILY, "encoding")
        return _build(str(data.get("name", "")), str(data.get("description", "")), dict(data.get("hparams", {})),
                      dict(data.get("encoding", {})), source)


_NAMED_KEYS = {"base", "description", "hparams", "encoding"}
_BASE_KEYS = {"family", "description", "hparams", "encoding"}


def config_names() -> list[str]:
    return config_files.names_of_family(FAMILY)


def load_config(name: str) -> LSTMRunConfig:
    """The named config, resolved: Magenta's defaults <- lstm.base.json <- NAME.json."""
    path = config_files.configs_dir() / f"{name}.json"
    if not path.is_file() or name not in config_names():
        raise BadConfig(f"unknown LSTM config {name!r}; known: {', '.join(config_names())}")
    named = config_files.read_config_file(path)
    unknown = sorted(set(named) - _NAMED_KEYS)
    if unknown:
        raise BadConfig(f"{path}: unknown keys {', '.join(unknown)}; known: {', '.join(sorted(_NAMED_KEYS))}")
    base_path = config_files.configs_dir() / f"{named.get('base', FAMILY)}.base.json"
    base = config_files.read_config_file(base_path)
    unknown = sorted(set(base) - _BASE_KEYS)
    if unknown:
        raise BadConfig(f"{base_path}: unknown keys {', '.join(unknown)}; known: {', '.join(sorted(_BASE_KEYS))}")
    hparams = {**base.get("hparams", {}), **named.get("hparams", {})}
    encoding = {**base.get("encoding", {}), **named.get("encoding", {})}
    return _build(name, str(named.get("description", "")), hparams, encoding, str(path))


def _build(name: str, description: str, hparams: dict[str, Any], encoding_args: dict[str, Any], source: str) -> LSTMRunConfig:
    from generation.lstm import encodings

    kind = encoding_args.get("type")
    classes = encodings.ENCODINGS
    if kind not in classes:
        raise BadConfig(f"{source}: encoding type {kind!r} is not one of {', '.join(classes)}")
    arguments = {k: v for k, v in encoding_args.items() if k != "type"}
    parameters = inspect.signature(classes[kind]).parameters
    unknown = sorted(set(arguments) - set(parameters))
    if unknown:
        raise BadConfig(f"{source}: unknown {kind} encoding arguments {', '.join(unknown)}; known: {', '.join(parameters)}")
    try:
        encoding = classes[kind](**arguments)
    except (TypeError, ValueError) as error:
        raise BadConfig(f"{source}: encoding: {error}") from None
    return LSTMRunConfig(hparams=LSTMHParams.from_values(hparams, source), encoding=encoding,
                         encoding_args=json.loads(json.dumps(encoding_args)), name=name, description=description)


CONFIG_MAP: Mapping[str, LSTMRunConfig] = config_files.LazyConfigMap(config_names, load_config)
