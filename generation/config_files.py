"""The named config files in `configs/`, shared by every model family.

A named config `NAME.json` states a `base` (default: its family's name) and what differs from
`BASE.base.json`; the base file names the `family` ("groovae", "lstm") whose loader resolves it.
`load_any_config(name)` and `config_from_run(run_dir)` dispatch on that family, so `gen train`,
`gen sample` and `gen evaluate` serve every family through one entry point.
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

from generation.errors import BadConfig
from generation.io.files import read_json_object

FAMILIES = ("groovae", "lstm")


def configs_dir() -> Path:
    try:
        return Path(str(importlib.resources.files("generation.configs")))
    except ModuleNotFoundError:  # a source checkout that is not installed
        return Path(__file__).resolve().parents[1] / "configs"


def read_config_file(path: Path) -> dict[str, Any]:
    return read_json_object(path, error=BadConfig, what="config file")


def all_config_names() -> list[str]:
    """Every named config in configs/, sorted (base files excluded)."""
    return sorted(p.stem for p in configs_dir().glob("*.json") if not p.name.endswith(".base.json"))


def config_family(name: str) -> str:
    """The family of the named config, read from its base file."""
    path = configs_dir() / f"{name}.json"
    if not path.is_file():
        raise BadConfig(f"unknown config {name!r}; known: {', '.join(all_config_names())}")
    base = str(read_config_file(path).get("base", ""))
    base_path = configs_dir() / f"{base}.base.json"
    if not base or not base_path.is_file():
        raise BadConfig(f"{path}: base {base!r} has no file {base_path.name} in {configs_dir()}")
    family = read_config_file(base_path).get("family")
    if family not in FAMILIES:
        raise BadConfig(f"{base_path}: family {family!r} is not one of {', '.join(FAMILIES)}")
    return str(family)


def names_of_family(family: str) -> list[str]:
    return [name for name in all_config_names() if config_family(name) == family]


def describe_all_configs() -> list[tuple[str, str, str]]:
    """(name, family, description) per named config, from the files alone (no models built)."""
    return [
        (name, config_family(name), str(read_config_file(configs_dir() / f"{name}.json").get("description", "")))
        for name in all_config_names()
    ]


def load_any_config(name: str) -> Any:
    """The named config of any family, resolved (a GrooVAE `Config` or an LSTM `LSTMConfigSpec`)."""
    family = config_family(name)
    if family == "groovae":
        from generation.music_vae.configs import load_config

        return load_config(name)
    from generation.lstm.configs import load_config as load_lstm_config

    return load_lstm_config(name)


def config_from_json(data: Mapping[str, Any], source: str) -> Any:
    """A resolved config of any family from a run directory's config.json."""
    family = data.get("family")
    if family == "groovae":
        from generation.music_vae.configs import Config

        return Config.from_json(data, source)
    if family == "lstm":
        from generation.lstm.configs import LSTMRunConfig

        return LSTMRunConfig.from_json(data, source)
    raise BadConfig(f"{source}: family {family!r} is not one of {', '.join(FAMILIES)}")


def parse_hparams(text: str) -> dict[str, Any]:
    """Magenta's `--hparams` text, `name=value,name=value`, as a dict; values are JSON where they
    parse as JSON (`[256,256]`, `0.8`, `true`), else strings (`clip_mode=value`).

    Commas inside brackets belong to the value. A piece without `=` is a `BadConfig`.
    """
    pieces, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            pieces.append(text[start:index])
            start = index + 1
    pieces.append(text[start:])
    values: dict[str, Any] = {}
    for piece in (p.strip() for p in pieces):
        if not piece:
            continue
        name, equals, raw = piece.partition("=")
        if not equals or not name.strip():
            raise BadConfig(f"--hparams: {piece!r} is not NAME=VALUE")
        raw = raw.strip()
        try:
            value = json.loads({"True": "true", "False": "false"}.get(raw, raw))
        except json.JSONDecodeError:
            value = raw
        values[name.strip()] = value
    return values


def with_hparams(config: Any, overrides: Mapping[str, Any], source: str = "--hparams") -> Any:
    """`config` (either family) with some hyperparameters replaced, checked as a config file is:
    an unknown name, or a value of another type than the default's, is a `BadConfig` naming `source`."""
    current = config.hparams.values()
    for name, value in overrides.items():
        if name not in current:
            raise BadConfig(f"{source}: unknown hparam {name!r}; known: {', '.join(sorted(current))}")
        default = current[name]
        same_type = (isinstance(value, bool) == isinstance(default, bool)) and (
            isinstance(value, type(default))
            or (isinstance(default, float) and isinstance(value, int))
        )
        if not same_type:
            kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
                    list: "a list"}.get(type(default), type(default).__name__)
            raise BadConfig(f"{source}: {name} must be {kind} like {json.dumps(default)}; got {json.dumps(value)}")
        if isinstance(default, float):
            overrides = {**overrides, name: float(value)}
    data = config.to_json()
    data["hparams"] = {**data["hparams"], **overrides}
    return config_from_json(data, source)


def run_family(run_dir: str | Path) -> str:
    """The family of a run directory (or a checkpoint file inside one)."""
    from generation.checkpoint import read_run_config, resolve_checkpoint

    directory, _ = resolve_checkpoint(run_dir)
    family = read_run_config(directory).get("family")
    if family not in FAMILIES:
        raise BadConfig(f"{directory / 'config.json'}: family {family!r} is not one of {', '.join(FAMILIES)}")
    return str(family)


T = TypeVar("T")


class LazyConfigMap(Mapping[str, T], Generic[T]):
    """Magenta's `CONFIG_MAP`: `CONFIG_MAP[name]` builds the named config on first use (reading its files)."""

    def __init__(self, names: Callable[[], list[str]], load: Callable[[str], T]) -> None:
        self._names, self._load = names, load
        self._built: dict[str, T] = {}

    def __getitem__(self, name: str) -> T:
        if name not in self._built:
            if name not in self._names():
                raise KeyError(name)
            self._built[name] = self._load(name)
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


def hparams_from_values(cls: type[T], values: Mapping[str, Any], source: str) -> T:
    """A hyperparameter dataclass from a dict; an unknown name is a `BadConfig` naming `source`."""
    import dataclasses

    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise BadConfig(f"{source}: unknown hparams {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()})


def check_run_config(data: Mapping[str, Any], source: str, family: str, section: str) -> None:
    """A run directory's config.json as `to_json` writes it for `family`: its keys (`section` holds
    the family's data settings) and its family, or a `BadConfig` naming `source`."""
    unknown = sorted(set(data) - {"name", "family", "description", "hparams", section, "version"})
    if unknown:
        raise BadConfig(f"{source}: unknown keys {', '.join(unknown)}")
    if data.get("family") != family:
        raise BadConfig(f"{source}: family {data.get('family')!r} is not {family!r}")
