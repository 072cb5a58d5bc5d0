"""Models shipped inside the package, used by name wherever a run directory is taken.

Each bundled model is a folder `generation/models/NAME/` laid out as a run directory (config.json,
checkpoints/step-N.safetensors with its record and `latest`; no optimizer state) plus `card.json`
and `README.md`: what it is, the roles it serves in `gen continue`, the exact command and data that
trained it, its license and credit, the hardware and time, and its test-split figures.

`resolve_run("groove-4bar")` gives that folder; an existing path is returned as it is, so a run
directory works anywhere a name does. `python -m generation.bundled add RUN NAME ...` packs a
trained run (weights only, stored as float16 where `--half`) with its card.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generation.errors import BadConfig

# `summary` is the card in one line for `gen models`: data, license (with credit where it is owed), a figure.
CARD_FIELDS = ("name", "config", "family", "roles", "description", "summary", "data", "license", "credit", "command",
               "steps", "hardware", "training_seconds", "evaluation")


@dataclass
class BundledModel:
    name: str
    path: Path
    card: dict[str, Any]

    @property
    def roles(self) -> list[str]:
        return list(self.card.get("roles", []))

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())


def models_dir() -> Path:
    try:
        return Path(str(importlib.resources.files("generation.models")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent / "models"


def bundled_models() -> list[BundledModel]:
    """Every bundled model, by name."""
    from generation.io.files import read_json_object

    directory = models_dir()
    found = []
    for card in sorted(directory.glob("*/card.json")) if directory.is_dir() else ():
        data = read_json_object(card, error=BadConfig, what="model card")
        found.append(BundledModel(card.parent.name, card.parent, data))
    return found


def find(name: str) -> BundledModel | None:
    return next((m for m in bundled_models() if m.name == name), None)


def resolve_run(name_or_path: str | os.PathLike[str]) -> Path:
    """A run directory (or checkpoint file) as given, or the folder of the bundled model of that name."""
    path = Path(name_or_path)
    if path.exists():
        return path
    model = find(str(name_or_path))
    if model is not None:
        return model.path
    names = ", ".join(m.name for m in bundled_models()) or "none installed"
    raise BadConfig(f"{name_or_path}: no such run directory, and no bundled model of that name (bundled: {names})")


def display_name(run_dir: str | os.PathLike[str]) -> str:
    """A bundled model's name for its folder, any other run directory as given: what reports show."""
    path = Path(run_dir)
    try:
        inside = path.resolve().parent == models_dir().resolve() and (path / "card.json").is_file()
    except OSError:
        inside = False
    return path.name if inside else str(run_dir)


def defaults_by_role() -> dict[str, BundledModel]:
    """The bundled model serving each role of `gen continue` (the first listed for it)."""
    result: dict[str, BundledModel] = {}
    for model in bundled_models():
        for role in model.roles:
            result.setdefault(role, model)
    return result


def bundle(run_dir: str | os.PathLike[str], name: str, card: dict[str, Any], *, half: bool = False,
           destination: Path | None = None) -> Path:
    """Packs the latest checkpoint of `run_dir` as bundled model `name` (weights, config, card)."""
    import torch
    from safetensors.torch import save_file

    from generation.checkpoint import CHECKPOINT_DIR, load_weights, read_run_config, resolve_checkpoint
    from generation.io.files import atomic_output

    run, checkpoint = resolve_checkpoint(run_dir)
    missing = [f for f in CARD_FIELDS if f not in card and f not in ("name", "config", "family", "steps")]
    if missing:
        raise BadConfig(f"model card for {name}: missing {', '.join(missing)}")
    config = read_run_config(run)
    target = (destination or models_dir()) / name
    if target.exists():
        shutil.rmtree(target)
    (target / CHECKPOINT_DIR).mkdir(parents=True)
    weights = load_weights(checkpoint)
    if half:
        weights = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in weights.items()}
    (target / "config.json").write_text(json.dumps(config, indent=1))
    weights_path = target / CHECKPOINT_DIR / f"{checkpoint.name}.safetensors"
    with atomic_output(weights_path) as temporary:
        save_file({k: v.contiguous() for k, v in weights.items()}, str(temporary))
    from generation.checkpoint import _sha256

    record = {"step": checkpoint.step, "sha256": {"weights": _sha256(weights_path), "state": None}}
    (target / CHECKPOINT_DIR / f"{checkpoint.name}.json").write_text(json.dumps(record, indent=1))
    (target / CHECKPOINT_DIR / "latest").write_text(checkpoint.name + "\n")
    full = {"name": name, "config": config.get("name"), "family": config.get("family"), "steps": checkpoint.step, **card}
    (target / "card.json").write_text(json.dumps(full, indent=1))
    (target / "README.md").write_text(card_markdown(full))
    return target


def card_markdown(card: dict[str, Any]) -> str:
    lines = [f"# {card['name']}", "", str(card.get("description", "")), "", f"In short: {card.get('summary', '')}", "",
             f"- config: `{card.get('config')}` ({card.get('family')}), {card.get('steps')} training steps",
             f"- roles in `gen continue`: {', '.join(card.get('roles', [])) or 'none'}",
             f"- data: {card.get('data')}", f"- license: {card.get('license')}", f"- credit: {card.get('credit')}",
             f"- hardware: {card.get('hardware')}, {card.get('training_seconds')} s of training",
             "", "Trained with:", "", "```", str(card.get("command")), "```", "", "Test-split figures:", ""]
    for key, value in dict(card.get("evaluation", {})).items():
        lines.append(f"- {key}: {value}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="Pack a trained run as a bundled model.")
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add")
    add.add_argument("run_dir")
    add.add_argument("name")
    add.add_argument("--card", required=True, help="A JSON file with the card's fields.")
    add.add_argument("--half", action="store_true", help="Store the weights as float16.")
    args = parser.parse_args()
    card = json.loads(Path(args.card).read_text())
    print(bundle(args.run_dir, args.name, card, half=args.half))


if __name__ == "__main__":
    main()
