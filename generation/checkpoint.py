"""Run directory <-> (config, weights, training state): safetensors and JSON, never pickle.

A run directory holds

    config.json                          the resolved config (family, name, hparams, converter), gen version
    checkpoints/step-N.safetensors       model weights: all that sampling needs
    checkpoints/step-N.state.safetensors optimizer tensors and the torch RNG state
    checkpoints/step-N.json              step, optimizer scalars, numpy/python RNG, data position,
                                         metrics, and the SHA-256 of both .safetensors files
    checkpoints/latest                   the name of the newest complete checkpoint ("step-N")
    events.out.tfevents.*                TensorBoard scalars
    train.lock                           held (flock) by the `gen train` using the directory

Every file is written under a temporary name and renamed; `latest` moves last, so a run killed at
any moment resumes from a complete checkpoint. Loading checks the hashes first: a truncated or
altered file is a `DamagedCheckpoint`, never a traceback, and nothing is unpickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generation import __version__
from generation.errors import BadConfig, DamagedCheckpoint, RunDirInUse
from generation.io.files import atomic_output, read_json_object

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
LATEST = "latest"
LOCK_FILE = "train.lock"
_STEP_NAME = re.compile(r"^step-(\d+)$")


@dataclass
class Checkpoint:
    """One checkpoint's files; `step` is the number of optimizer steps taken."""

    directory: Path
    step: int

    @property
    def name(self) -> str:
        return f"step-{self.step}"

    @property
    def weights(self) -> Path:
        return self.directory / f"{self.name}.safetensors"

    @property
    def state(self) -> Path:
        return self.directory / f"{self.name}.state.safetensors"

    @property
    def info(self) -> Path:
        return self.directory / f"{self.name}.json"


@contextlib.contextmanager
def hold_run_dir(run_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Holds `run_dir` for one training process: a second one gets `RunDirInUse` at once instead of
    interleaving checkpoints with the first. The lock is the kernel's (flock), so a killed run never
    leaves a stale one behind."""
    import fcntl

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / LOCK_FILE, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RunDirInUse(f"{run_dir}: is being trained by {holder}; wait for it to finish, "
                              "or give this run another --run-dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()


def write_run_config(run_dir: str | os.PathLike[str], config_json: dict[str, Any]) -> None:
    """Writes the resolved config into `run_dir` (created if missing)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_output(run_dir / CONFIG_FILE) as temporary:
        temporary.write_text(json.dumps({**config_json, "version": __version__}, indent=2))


def read_run_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(run_dir) / CONFIG_FILE
    if not Path(run_dir).is_dir():
        raise BadConfig(f"{run_dir}: no such run directory")
    if not path.is_file():
        raise BadConfig(f"{run_dir}: not a run directory (no {CONFIG_FILE})")
    return read_json_object(path, error=DamagedCheckpoint, what="run config")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    run_dir: str | os.PathLike[str],
    step: int,
    weights: dict[str, Any],
    state_tensors: dict[str, Any],
    info: dict[str, Any],
    keep: int = 3,
) -> Checkpoint:
    """Writes step-N files atomically, points `latest` at them, and keeps only the newest `keep`.

    `weights` and `state_tensors` map names to torch tensors; `info` is JSON-serialisable.
    """
    from safetensors.torch import save_file

    directory = Path(run_dir) / CHECKPOINT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    checkpoint = Checkpoint(directory, step)
    tensors = {k: v.detach().contiguous().cpu() for k, v in weights.items()}
    with atomic_output(checkpoint.weights) as temporary:
        save_file(tensors, str(temporary), metadata={"step": str(step), "gen_version": __version__})
    with atomic_output(checkpoint.state) as temporary:
        save_file({k: v.contiguous().cpu() for k, v in state_tensors.items()}, str(temporary))
    record = {
        **info,
        "step": step,
        "sha256": {"weights": _sha256(checkpoint.weights), "state": _sha256(checkpoint.state)},
    }
    with atomic_output(checkpoint.info) as temporary:
        temporary.write_text(json.dumps(record, indent=1))
    with atomic_output(directory / LATEST) as temporary:
        temporary.write_text(checkpoint.name + "\n")
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        # The .json goes first: it is what makes a checkpoint listed, so a run killed while pruning
        # leaves unlisted tensors (removed on resume), never a listed checkpoint without weights.
        for path in (old.info, old.weights, old.state):
            path.unlink(missing_ok=True)
    return checkpoint


def remove_unfinished(run_dir: str | os.PathLike[str]) -> None:
    """Deletes what a killed run left behind: temporary files, and tensors of a step without its
    .json (a save or a pruning cut short); neither was ever a complete checkpoint."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    if not directory.is_dir():
        return
    for path in directory.glob(".*.tmp"):
        path.unlink(missing_ok=True)
    for path in directory.glob("step-*.safetensors"):
        name = path.name.split(".", 1)[0]
        if _STEP_NAME.match(name) and not (directory / f"{name}.json").exists():
            path.unlink(missing_ok=True)


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[Checkpoint]:
    """Complete checkpoints (their .json written last), oldest first."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    if not directory.is_dir():
        return []
    steps = sorted(
        int(match.group(1))
        for path in directory.glob("step-*.json")
        if (match := _STEP_NAME.match(path.name[: -len(".json")]))
    )
    return [Checkpoint(directory, step) for step in steps]


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Checkpoint | None:
    """The checkpoint `latest` names, or None for a run with none yet."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    pointer = directory / LATEST
    if not pointer.is_file():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    match = _STEP_NAME.match(name)
    if not match:
        raise DamagedCheckpoint(f"{pointer}: names {name!r}, not a checkpoint")
    return Checkpoint(directory, int(match.group(1)))


def resolve_checkpoint(path: str | os.PathLike[str]) -> tuple[Path, Checkpoint]:
    """(run directory, checkpoint) for a run directory (its latest), a step-N.safetensors path, or
    the name of a bundled model (`generation.bundled`)."""
    path = Path(path)
    if not path.exists():
        from generation.bundled import resolve_run

        path = resolve_run(path)
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise BadConfig(f"{path}: not a run directory (no {CONFIG_FILE})")
        checkpoint = latest_checkpoint(path)
        if checkpoint is None:
            raise DamagedCheckpoint(f"{path}: no checkpoint yet (checkpoints/{LATEST} is missing)")
        return path, checkpoint
    match = _STEP_NAME.match(path.name.removesuffix(".safetensors").removesuffix(".json"))
    if match is None or path.parent.name != CHECKPOINT_DIR:
        raise BadConfig(f"{path}: neither a run directory nor a checkpoints/step-N.safetensors file")
    return path.parent.parent, Checkpoint(path.parent, int(match.group(1)))


def read_info(checkpoint: Checkpoint) -> dict[str, Any]:
    if not checkpoint.info.is_file():
        raise DamagedCheckpoint(f"{checkpoint.info}: missing")
    info = read_json_object(checkpoint.info, error=DamagedCheckpoint, what="checkpoint record")
    if not isinstance(info.get("sha256"), dict):
        raise DamagedCheckpoint(f"{checkpoint.info}: not a readable checkpoint record: no checksums")
    return info


def _load_verified(path: Path, expected_sha256: str | None) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise DamagedCheckpoint(f"{path}: missing")
    if expected_sha256 is not None and _sha256(path) != expected_sha256:
        raise DamagedCheckpoint(f"{path}: damaged (its SHA-256 differs from the one recorded when it was written)")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise DamagedCheckpoint(f"{path}: unreadable: {error}") from None


def load_weights(checkpoint: Checkpoint) -> dict[str, Any]:
    """The model weights, verified against the hash recorded beside them."""
    info = read_info(checkpoint)
    return _load_verified(checkpoint.weights, info["sha256"].get("weights"))


def load_state(checkpoint: Checkpoint) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state tensors, info) for resuming training, verified against the recorded hashes."""
    info = read_info(checkpoint)
    return _load_verified(checkpoint.state, info["sha256"].get("state")), info
