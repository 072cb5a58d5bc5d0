"""Named MusicVAE configs, as `magenta.models.music_vae.configs` names them: `CONFIG_MAP['groovae_4bar']`,
`CONFIG_MAP['cat-mel_2bar_small']`.

Each name is a JSON file in the project's `configs/` folder (installed as `generation.configs`),
stating only what differs from its base file (`groovae.base.json` for GrooVAE, `cat-musicvae.base.json`
for the melody and drum-pattern models), which in turn states what differs from Magenta's defaults
(`HParams` below). All of them are the model family "groovae" of `generation.config_files` (the
family of `music_vae` models); a `data_converter` section naming a `class` other than
GrooveConverter (OneHotMelodyConverter, DrumsConverter) makes a categorical MusicVAE
(`categorical_model.CategoricalMusicVAE`), and may hold `note_sequence_augmenter` arguments. An unknown key anywhere is a `BadConfig`
naming the file, the key and the keys that exist. A run directory stores the resolved config
(`Config.to_json()`), so sampling needs nothing but the run directory.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generation import config_files
from generation.errors import BadConfig

FAMILY = "groovae"


@dataclass
class HParams:
    """Magenta's hyperparameters for MusicVAE's LSTM models, with Magenta's defaults.

    The base model's (base_model.get_default_hparams) and the LSTM models'
    (lstm_models.get_default_hparams). Mutable, as Magenta's HParams are: TrainedModel sets batch_size.
    """

    max_seq_len: int = 32  # steps; longer sequences are truncated
    z_size: int = 32  # size of the latent vector
    free_bits: float = 0.0  # nats of KL not penalised (over the whole KL of an example)
    max_beta: float = 1.0  # weight of the KL cost once annealed
    beta_rate: float = 0.0  # beta = max_beta * (1 - beta_rate ** step)
    batch_size: int = 512
    grad_clip: float = 1.0
    clip_mode: str = "global_norm"  # or "value"
    grad_norm_clip_to_zero: float = 10000.0  # a larger global norm skips the step
    learning_rate: float = 0.001
    decay_rate: float = 0.9999  # per step: lr = (lr0 - min_lr) * decay_rate ** step + min_lr
    min_learning_rate: float = 0.00001
    dec_rnn_size: list[int] = field(default_factory=lambda: [512])
    enc_rnn_size: list[int] = field(default_factory=lambda: [256])  # per direction
    dropout_keep_prob: float = 1.0
    sampling_schedule: str = "constant"  # scheduled sampling: constant, exponential, inverse_sigmoid
    sampling_rate: float = 0.0
    use_cudnn: bool = False  # Magenta's flag; the GPU path here always uses cuDNN
    residual_encoder: bool = False
    residual_decoder: bool = False
    control_preprocessing_rnn_size: list[int] = field(default_factory=lambda: [256])

    def values(self) -> dict[str, Any]:
        """Magenta's `HParams.values()`: every hyperparameter by name."""
        return dataclasses.asdict(self)

    @classmethod
    def from_values(cls, values: Mapping[str, Any], source: str) -> HParams:
        return config_files.hparams_from_values(cls, values, source)


@dataclass
class Config:
    """Magenta's `Config`: the model family, hyperparameters and data converter of a named config."""

    model: str  # the model family "groovae": GrooVAE, or CategoricalMusicVAE for categorical converters
    hparams: HParams
    note_sequence_augmenter: Any
    data_converter: Any  # generation.music_vae.data.GrooveConverter, OneHotMelodyConverter or DrumsConverter
    train_examples_path: str | None = None
    eval_examples_path: str | None = None
    tfds_name: str | None = None
    name: str = ""
    description: str = ""
    converter_args: dict[str, Any] = field(default_factory=dict)  # what built data_converter

    def values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_json(self) -> dict[str, Any]:
        """The resolved config, complete in itself: a run directory's config.json holds this."""
        return {
            "name": self.name,
            "family": self.model,
            "description": self.description,
            "hparams": self.hparams.values(),
            "data_converter": copy.deepcopy(self.converter_args),  # a copy: callers may edit what they get
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str) -> Config:
        """Rebuilds a config written by `to_json` (a run directory's config.json)."""
        config_files.check_run_config(data, source, FAMILY, "data_converter")
        return _build(data.get("name", ""), data.get("description", ""), dict(data.get("hparams", {})),
                      dict(data.get("data_converter", {})), source)


def with_hop_bars(config: Config, hop_bars: int) -> Config:
    """The config with training windows sliding by `hop_bars` bars (the converter's hop_size in steps)."""
    return _build(config.name, config.description, config.hparams.values(),
                  {**config.converter_args, "hop_size": hop_bars * config.data_converter.steps_per_bar},
                  f"config {config.name}")


def update_config(config: Config, update_dict: Mapping[str, Any]) -> Config:
    """Magenta's `update_config`: a copy of `config` with some fields replaced."""
    return dataclasses.replace(copy.deepcopy(config), **update_dict)


def _configs_dir() -> Path:
    return config_files.configs_dir()


def _read_json(path: Path) -> dict[str, Any]:
    return config_files.read_config_file(path)


_NAMED_KEYS = {"base", "description", "hparams", "data_converter"}
_BASE_KEYS = {"family", "description", "hparams", "data_converter"}


def config_names() -> list[str]:
    """Every named GrooVAE config in configs/, sorted (the LSTM configs are `generation.lstm.configs`')."""
    return config_files.names_of_family(FAMILY)


def describe_configs() -> Iterator[tuple[str, str]]:
    """(name, description) per named config, read from the files alone (no models, no converters)."""
    for name in config_names():
        yield name, str(_read_json(_configs_dir() / f"{name}.json").get("description", ""))


def load_config(name: str) -> Config:
    """The named config, resolved: Magenta's defaults <- its family's base file <- its own file."""
    directory = _configs_dir()
    path = directory / f"{name}.json"
    if not path.is_file() or name not in config_names():
        raise BadConfig(f"unknown MusicVAE config {name!r}; known: {', '.join(config_names())}")
    named = _read_json(path)
    unknown = sorted(set(named) - _NAMED_KEYS)
    if unknown:
        raise BadConfig(f"{path}: unknown keys {', '.join(unknown)}; known: {', '.join(sorted(_NAMED_KEYS))}")
    base_path = directory / f"{named.get('base', FAMILY)}.base.json"
    base = _read_json(base_path)
    unknown = sorted(set(base) - _BASE_KEYS)
    if unknown:
        raise BadConfig(f"{base_path}: unknown keys {', '.join(unknown)}; known: {', '.join(sorted(_BASE_KEYS))}")
    if base.get("family") != FAMILY:
        raise BadConfig(f"{base_path}: family {base.get('family')!r} is not {FAMILY!r}")
    hparams = {**base.get("hparams", {}), **named.get("hparams", {})}
    converter = {**base.get("data_converter", {}), **named.get("data_converter", {})}
    return _build(name, str(named.get("description", "")), hparams, converter, str(path))


# Keys of a config's `data_converter` section that are not arguments of the converter: which of
# Magenta's converter classes it is (default GrooveConverter, so GrooVAE configs need not say), and
# the arguments of its `NoteSequenceAugmenter` (Magenta's Config field of that name; a run
# directory's config.json has no other section to hold it).
CONVERTER_CLASS_KEY = "class"
AUGMENTER_KEY = "note_sequence_augmenter"


def is_categorical(config: Config) -> bool:
    """Whether the config is one of Magenta's one-hot melody or drum-pattern MusicVAEs (a
    CategoricalLstmDecoder), not a GrooVAE."""
    from generation.music_vae import data

    return not isinstance(config.data_converter, data.GrooveConverter)


def _build(name: str, description: str, hparams: dict[str, Any], converter_args: dict[str, Any], source: str) -> Config:
    from generation.music_vae import data

    converter_args = dict(converter_args)
    class_name = converter_args.pop(CONVERTER_CLASS_KEY, "GrooveConverter")
    augmenter_args = converter_args.pop(AUGMENTER_KEY, None)
    if class_name == "GrooveConverter":
        if augmenter_args is not None:
            raise BadConfig(f"{source}: data_converter: {AUGMENTER_KEY} is for the melody and drum converters")
        return _build_groove(name, description, hparams, converter_args, source)
    converter_class = data.CATEGORICAL_CONVERTERS.get(class_name)
    if converter_class is None:
        known = ", ".join(["GrooveConverter", *data.CATEGORICAL_CONVERTERS])
        raise BadConfig(f"{source}: data_converter: unknown class {class_name!r}; known: {known}")
    parameters = inspect.signature(converter_class).parameters
    unknown = sorted(set(converter_args) - set(parameters))
    if unknown:
        raise BadConfig(f"{source}: unknown {class_name} arguments {', '.join(unknown)}; known: {', '.join(parameters)}")
    try:
        converter = converter_class(**converter_args)
        augmenter = None
        if augmenter_args is not None:
            if not isinstance(augmenter_args, dict):
                raise TypeError(f"{AUGMENTER_KEY} must be an object of NoteSequenceAugmenter arguments")
            augmenter = data.NoteSequenceAugmenter(**augmenter_args)
    except (TypeError, ValueError) as error:
        raise BadConfig(f"{source}: data_converter: {error}") from None
    stored = {CONVERTER_CLASS_KEY: class_name, **converter_args}
    if augmenter_args is not None:
        stored[AUGMENTER_KEY] = augmenter_args
    config = Config(
        model=FAMILY, hparams=HParams.from_values(hparams, source), note_sequence_augmenter=augmenter,
        data_converter=converter, name=name, description=description,
        converter_args=json.loads(json.dumps(stored)),
    )
    from generation.music_vae.family import model_config

    model_config(config)  # a bad hparam value is an error naming the file now, not when training starts
    return config


def _build_groove(name: str, description: str, hparams: dict[str, Any], converter_args: dict[str, Any],
                  source: str) -> Config:
    from generation.music_vae import data

    parameters = inspect.signature(data.GrooveConverter).parameters
    unknown = sorted(set(converter_args) - set(parameters))
    if unknown:
        raise BadConfig(
            f"{source}: unknown data_converter arguments {', '.join(unknown)}; known: {', '.join(parameters)}"
        )
    resolved = {}
    for key, value in converter_args.items():
        if isinstance(value, str) and key.endswith("pitch_classes"):
            if not hasattr(data, value):
                raise BadConfig(f"{source}: {key}: no pitch classes named {value!r} in generation.music_vae.data")
            value = copy.deepcopy(getattr(data, value))
        resolved[key] = value
    try:
        converter = data.GrooveConverter(**resolved)
    except (TypeError, ValueError) as error:
        raise BadConfig(f"{source}: data_converter: {error}") from None
    return Config(
        model=FAMILY, hparams=HParams.from_values(hparams, source), note_sequence_augmenter=None,
        data_converter=converter, name=name, description=description,
        converter_args=json.loads(json.dumps(resolved)),  # plain JSON values: lists, not tuples or sets
    )


CONFIG_MAP: Mapping[str, Config] = config_files.LazyConfigMap(config_names, load_config)
