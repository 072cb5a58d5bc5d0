"""Magenta's trained MusicVAE checkpoints as gen run directories: `gen import-magenta`.

Reads a TensorFlow checkpoint (`model.ckpt-N.index` + `.data-*`, as `music_vae_train` writes them,
or the tar archive Magenta publishes them in) or a magenta.js checkpoint folder
(`weights_manifest.json` + shards + `config.json`, as the Magenta Studio models shipped), without
TensorFlow, and writes a run directory that `gen sample`, `TrainedModel` and the other commands
read, and `gen train` resumes (fine-tuning from the checkpoint's step with a fresh Adam).

Magenta's variables (the scopes `lstm_utils`, `lstm_models.BidirectionalLstmEncoder`,
`BaseLstmDecoder` and `base_model.MusicVAE.encode` create) and what they become here:

    encoder/cell_{i}/bidirectional_rnn/{fw,bw}/multi_rnn_cell/cell_0/lstm_cell/{kernel,bias}
                                          -> encoder_{fw,bw}.{i}   (layer i of the bidirectional stack)
    encoder/mu/{kernel,bias}              -> encoder_mu            (dense: kernel [in, out] = weight.T)
    encoder/sigma/{kernel,bias}           -> encoder_sigma
    decoder/z_to_initial_state/{kernel,bias} -> z_to_initial_state (tanh; split as c0, h0, c1, h1, ... in both)
    decoder/multi_rnn_cell/cell_{k}/lstm_cell/{kernel,bias} -> decoder.{k}
    decoder/output_projection/{kernel,bias}  -> output_projection

An LSTMBlockCell keeps one kernel [input + units, 4 * units] whose column blocks are the gates
(i, j, f, o) (j: the cell input), applied to [x, h], and one bias, and adds forget_bias = 1.0 at run
time. PyTorch's LSTM keeps weight_ih [4H, input] and weight_hh [4H, H] with gates (i, f, g, o) and two
biases; so weight_ih = kernel[:input].T and weight_hh = kernel[input:].T with the blocks reordered,
bias_ih = bias (reordered) + 1.0 on the forget gate, and bias_hh = 0 (the model keeps it at zero).

Optimizer state in a training checkpoint (`global_step`, Adam's `.../Adam` and `.../Adam_1` slots,
`beta1_power`, `beta2_power`) is skipped; global_step becomes the run's step. Any other variable
the config does not explain, a missing one, or one of another shape, refuses the import with a
message naming them: a checkpoint of another config (or trained with other --hparams).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from generation.errors import BadConfig, BadInputFile, GenError, OutputError

# What TensorFlow's training adds to a checkpoint besides the model: skipped without a word.
OPTIMIZER_VARIABLE = re.compile(r"^global_step$|^beta[12]_power(_\d+)?$|/Adam(_\d+)?$")
# PyTorch's gate blocks (i, f, g, o), as TensorFlow block numbers of (i, j, f, o).
_TORCH_FROM_TF_GATES = (0, 2, 1, 3)
_FORGET_BIAS = 1.0
_LISTED = 8  # variables named in a refusal before "and N more"
_EXTRA_LAYER = re.compile(r"^(encoder/cell_\d+/bidirectional_rnn/[fb]w|decoder)/multi_rnn_cell/cell_\d+/lstm_cell/")


# -- the mapping ----------------------------------------------------------------------------------


def lstm_from_tf(kernel: np.ndarray, bias: np.ndarray, input_size: int) -> dict[str, np.ndarray]:
    """One LSTMBlockCell's kernel [input_size + H, 4H] and bias [4H] as nn.LSTM layer-0 parameters."""
    hidden = kernel.shape[1] // 4
    if kernel.shape != (input_size + hidden, 4 * hidden) or bias.shape != (4 * hidden,):
        raise ValueError(f"an LSTM kernel {list(kernel.shape)} and bias {list(bias.shape)} for input {input_size}")

    def torch_order(columns: np.ndarray) -> np.ndarray:
        return np.concatenate([columns[..., k * hidden : (k + 1) * hidden] for k in _TORCH_FROM_TF_GATES], axis=-1)

    weights = torch_order(kernel.astype(np.float32))
    bias_ih = torch_order(bias.astype(np.float32))
    bias_ih[hidden : 2 * hidden] += _FORGET_BIAS
    return {
        "weight_ih_l0": np.ascontiguousarray(weights[:input_size].T),
        "weight_hh_l0": np.ascontiguousarray(weights[input_size:].T),
        "bias_ih_l0": bias_ih,
        "bias_hh_l0": np.zeros(4 * hidden, np.float32),
    }


def _dense(tensors: Mapping[str, np.ndarray], scope: str) -> dict[str, np.ndarray]:
    return {"weight": np.ascontiguousarray(tensors[f"{scope}/kernel"].astype(np.float32).T),
            "bias": tensors[f"{scope}/bias"].astype(np.float32)}


def _encoder_cell(i: int, direction: str) -> str:
    return f"encoder/cell_{i}/bidirectional_rnn/{direction}/multi_rnn_cell/cell_0/lstm_cell"


def _decoder_cell(k: int) -> str:
    return f"decoder/multi_rnn_cell/cell_{k}/lstm_cell"


def encoder_variables(input_size: int, enc_rnn_size: list[int], z_size: int) -> dict[str, tuple[int, ...]]:
    """Magenta's BidirectionalLstmEncoder + encoder/mu, encoder/sigma variables: {name: TF shape}."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i, size in enumerate(enc_rnn_size):
        for direction in ("fw", "bw"):
            shapes[f"{_encoder_cell(i, direction)}/kernel"] = (input_size + size, 4 * size)
            shapes[f"{_encoder_cell(i, direction)}/bias"] = (4 * size,)
        input_size = 2 * size
    for scope in ("encoder/mu", "encoder/sigma"):
        shapes[f"{scope}/kernel"] = (2 * enc_rnn_size[-1], z_size)
        shapes[f"{scope}/bias"] = (z_size,)
    return shapes


def decoder_variables(input_size: int, dec_rnn_size: list[int], z_size: int, output_size: int) -> dict[str, tuple[int, ...]]:
    """Magenta's BaseLstmDecoder variables: {name: TF shape}; `input_size` is layer 0's input."""
    shapes: dict[str, tuple[int, ...]] = {
        "decoder/z_to_initial_state/kernel": (z_size, 2 * sum(dec_rnn_size)),
        "decoder/z_to_initial_state/bias": (2 * sum(dec_rnn_size),),
    }
    for k, size in enumerate(dec_rnn_size):
        shapes[f"{_decoder_cell(k)}/kernel"] = (input_size + size, 4 * size)
        shapes[f"{_decoder_cell(k)}/bias"] = (4 * size,)
        input_size = size
    shapes["decoder/output_projection/kernel"] = (dec_rnn_size[-1], output_size)
    shapes["decoder/output_projection/bias"] = (output_size,)
    return shapes


def encoder_state_dict(tensors: Mapping[str, np.ndarray], input_size: int, enc_rnn_size: list[int]) -> dict[str, np.ndarray]:
    """encoder_fw.*, encoder_bw.*, encoder_mu.*, encoder_sigma.* from Magenta's encoder variables."""
    state: dict[str, np.ndarray] = {}
    for i, size in enumerate(enc_rnn_size):
        for direction in ("fw", "bw"):
            cell = _encoder_cell(i, direction)
            for key, value in lstm_from_tf(tensors[f"{cell}/kernel"], tensors[f"{cell}/bias"], input_size).items():
                state[f"encoder_{direction}.{i}.{key}"] = value
        input_size = 2 * size
    for ours, scope in (("encoder_mu", "encoder/mu"), ("encoder_sigma", "encoder/sigma")):
        for key, value in _dense(tensors, scope).items():
            state[f"{ours}.{key}"] = value
    return state


def decoder_state_dict(tensors: Mapping[str, np.ndarray], input_size: int, dec_rnn_size: list[int]) -> dict[str, np.ndarray]:
    """z_to_initial_state.*, decoder.{k}.*, output_projection.* from Magenta's decoder variables."""
    state = {f"z_to_initial_state.{key}": value for key, value in _dense(tensors, "decoder/z_to_initial_state").items()}
    for k, size in enumerate(dec_rnn_size):
        cell = _decoder_cell(k)
        for key, value in lstm_from_tf(tensors[f"{cell}/kernel"], tensors[f"{cell}/bias"], input_size).items():
            state[f"decoder.{k}.{key}"] = value
        input_size = size
    for key, value in _dense(tensors, "decoder/output_projection").items():
        state[f"output_projection.{key}"] = value
    return state


@dataclass(frozen=True)
class FamilyMapping:
    """How one model family's Magenta checkpoint maps onto its module here."""

    converter_types: tuple[str, ...]  # magenta.js dataConverter types it accepts
    variables: Callable[[Any], dict[str, tuple[int, ...]]]  # model config -> {Magenta name: shape}
    state_dict: Callable[[Mapping[str, np.ndarray], Any], dict[str, np.ndarray]]
    build_model: Callable[[Any], Any]  # resolved config -> module
    model_config: Callable[[Any], Any]  # resolved config -> the module's config
    converter_checks: Callable[[Any, Mapping[str, Any]], list[str]]  # (config, js args) -> disagreements


def _groovae_variables(c: Any) -> dict[str, tuple[int, ...]]:
    return {
        **encoder_variables(c.input_depth + c.control_depth, c.enc_rnn_size, c.z_size),
        **decoder_variables(c.output_depth + c.z_size + c.control_depth, c.dec_rnn_size, c.z_size, c.output_depth),
    }


def _groovae_state_dict(tensors: Mapping[str, np.ndarray], c: Any) -> dict[str, np.ndarray]:
    return {
        **encoder_state_dict(tensors, c.input_depth + c.control_depth, c.enc_rnn_size),
        **decoder_state_dict(tensors, c.output_depth + c.z_size + c.control_depth, c.dec_rnn_size),
    }


def _groove_converter_checks(config: Any, args: Mapping[str, Any]) -> list[str]:
    """Where a magenta.js GrooveConverter's arguments contradict the config's converter."""
    ours = config.converter_args
    pairs = {
        "numSteps": config.hparams.max_seq_len,
        "stepsPerQuarter": ours.get("steps_per_quarter", 4),
        "humanize": bool(ours.get("humanize", False)),
        "tapify": bool(ours.get("tapify", False)),
        "splitInstruments": bool(ours.get("split_instruments", False)),
    }
    return [f"{key} {args[key]!r} (the config's: {value!r})"
            for key, value in pairs.items() if key in args and args[key] != value]


def _groovae_mapping() -> FamilyMapping:
    from generation.music_vae.family import GrooVAEFamily, model_config

    return FamilyMapping(
        converter_types=("GrooveConverter",), variables=_groovae_variables, state_dict=_groovae_state_dict,
        build_model=GrooVAEFamily().build_model, model_config=model_config, converter_checks=_groove_converter_checks,
    )


MAPPINGS: dict[str, Callable[[], FamilyMapping]] = {"groovae": _groovae_mapping}


# -- reading --------------------------------------------------------------------------------------


class _Source:
    """A checkpoint of either format: variable shapes first, values on demand. A tar archive's
    checkpoint is extracted into `folder`, which must outlive the reading; errors then name the
    archive and the file in it."""

    def __init__(self, path: str | os.PathLike[str], folder: Path) -> None:
        from generation.io import tf_checkpoint

        self.path = Path(path)
        self.spec: dict[str, Any] | None = None
        self._archive: Path | None = None
        self._bundle: Any = None
        if tf_checkpoint.is_tar_archive(self.path):
            self.format = "TensorFlow"
            self._archive = self.path
            with self._errors_naming_the_archive(folder):
                self._bundle = tf_checkpoint.TensorBundle(tf_checkpoint.extract_checkpoint_tar(self.path, folder))
            self._folder = folder
        elif tf_checkpoint.is_tfjs_checkpoint(self.path):
            self.format = "magenta.js"
            self._tensors = tf_checkpoint.read_tfjs_checkpoint(self.path)
            self.spec = tf_checkpoint.read_tfjs_spec(self.path)
        else:
            self.format = "TensorFlow"
            self._bundle = tf_checkpoint.TensorBundle(self.path)
            self.path = self._bundle.index_path
        if self._bundle is not None:
            self.shapes = {name: entry.shape for name, entry in self._bundle.entries.items()}
        else:
            self.shapes = {name: tuple(value.shape) for name, value in self._tensors.items()}

    @contextlib.contextmanager
    def _errors_naming_the_archive(self, folder: Path) -> Iterator[None]:
        try:
            yield
        except BadInputFile as error:
            if self._archive is None or Path(error.path).parent != folder:
                raise
            raise BadInputFile(f"{self._archive}: {Path(error.path).name}", error.reason) from None

    def read(self, names: list[str]) -> dict[str, np.ndarray]:
        if self._bundle is None:
            return {name: self._tensors[name] for name in names}
        if self._archive is None:
            return self._bundle.read(names)
        with self._errors_naming_the_archive(self._folder):
            return self._bundle.read(names)

    def global_step(self) -> int:
        if "global_step" not in self.shapes:
            return 0
        step = self.read(["global_step"])["global_step"]
        if step.shape != () or step.dtype.kind not in "iu" or int(step) < 0:
            raise BadInputFile(self.path, f"global_step is {step!r}, not a step number")
        return int(step)


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def _check_variables(source: _Source, expected: Mapping[str, tuple[int, ...]], config_name: str) -> int:
    """Refuses a checkpoint whose variables are not exactly the config's; returns how many were skipped."""
    present = source.shapes
    unknown = sorted(n for n in present if n not in expected and not OPTIMIZER_VARIABLE.search(n))
    if unknown:
        layers = all(_EXTRA_LAYER.match(n) for n in unknown)  # the same model with more layers
        hint = " (trained with more layers: give its --hparams?)" if layers else ""
        raise BadInputFile(source.path, f"not a checkpoint of config {config_name}{hint}: it holds variables the "
                                        f"config does not have: {_listed(unknown)}")
    missing = [n for n in expected if n not in present]
    if missing:
        raise BadInputFile(source.path, f"not a checkpoint of config {config_name}: it lacks {_listed(missing)}")
    wrong = [f"{n} is {list(present[n])}, the config's {list(shape)}"
             for n, shape in expected.items() if tuple(present[n]) != shape]
    if wrong:
        raise BadInputFile(source.path, f"not a checkpoint of config {config_name} (another size, or trained with "
                                        f"other --hparams?): {_listed(wrong)}")
    return sum(1 for n in present if n not in expected)


def _check_spec(source: _Source, mapping: FamilyMapping, config: Any) -> None:
    spec = source.spec
    if spec is None:
        return
    where = source.path / "config.json"
    if spec.get("type") != "MusicVAE":
        raise BadInputFile(where, f"a magenta.js {spec.get('type')!r} model, not a MusicVAE")
    converter = spec.get("dataConverter") if isinstance(spec.get("dataConverter"), dict) else {}
    kind = converter.get("type")
    if kind not in mapping.converter_types:
        raise BadInputFile(where, f"a model of magenta.js's {kind!r} data; config {config.name} reads "
                                  f"{' or '.join(mapping.converter_types)} data")
    args = converter.get("args") if isinstance(converter.get("args"), dict) else {}
    disagreements = mapping.converter_checks(config, args)
    if disagreements:
        raise BadInputFile(where, f"not a model of config {config.name}: its {kind} has {', '.join(disagreements)}")


# -- writing --------------------------------------------------------------------------------------


def _training_record(model: Any, config: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state tensors, info) of a checkpoint `gen train` can resume from: a fresh Adam (Magenta's
    slots are not carried over), this process's RNG, the start of the data, seed 0 and the config's
    batch size (what `gen train` uses unless told otherwise)."""
    import torch

    groups = torch.optim.Adam(model.parameters(), lr=config.hparams.learning_rate).state_dict()["param_groups"]
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()} for group in groups]
    version, state, gauss = random.getstate()
    info = {
        "optimizer": groups,
        "rng": {"python": [version, list(state), gauss]},
        "data": {"epoch": 0, "batch": 0, "batch_size": config.hparams.batch_size, "seed": 0, "world": 1},
        "metrics": {},
        "eval_metrics": {},
    }
    return {"rng.torch": torch.get_rng_state()}, info


def _check_target(run_dir: Path, force: bool) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputError(f"{run_dir}: cannot write a run directory: a file is there")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if not force:
            raise OutputError(f"{run_dir}: exists already; give --force to replace it")
        if not (run_dir / "config.json").is_file():  # --force replaces a run, never any other folder
            raise OutputError(f"{run_dir}: holds files but no run (no config.json); give another folder")


def _write_run_dir(run_dir: Path, force: bool, write: Callable[[Path], None]) -> None:
    """Calls `write(folder)` on a temporary folder beside `run_dir`, then puts it in place: a run
    directory appears complete or not at all, and one that was there stays until the new one is whole."""
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        temporary = run_dir.parent / f".{run_dir.name}.{secrets.token_hex(6)}.tmp"
        temporary.mkdir()
    except OSError as error:
        raise OutputError(f"{run_dir}: cannot write: {(error.strerror or str(error)).lower()}") from None
    old = None
    try:
        write(temporary)
        if run_dir.is_dir() and any(run_dir.iterdir()):
            old = run_dir.parent / f".{run_dir.name}.{secrets.token_hex(6)}.old"
            os.rename(run_dir, old)
        os.replace(temporary, run_dir)  # onto nothing, or onto an empty folder
    except OSError as error:
        shutil.rmtree(temporary, ignore_errors=True)
        if old is not None and not run_dir.exists():
            os.rename(old, run_dir)
        raise OutputError(f"{run_dir}: cannot write: {(error.strerror or str(error)).lower()}") from None
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@dataclass(frozen=True)
class MagentaModel:
    """A Magenta checkpoint loaded into its module here."""

    model: Any  # the torch module, in training mode as built
    source_format: str  # "TensorFlow" or "magenta.js"
    source: Path  # the checkpoint's .index, folder or archive
    step: int  # its global_step (0 if it holds none)
    variables: int  # model variables read
    skipped: int  # optimizer and step variables left out


def load_magenta_checkpoint(checkpoint: str | os.PathLike[str], config: Any) -> MagentaModel:
    """The module of `config` (a resolved MusicVAE-family config) with a Magenta checkpoint's weights.

    checkpoint: a TensorFlow checkpoint prefix (`model.ckpt-2721`), its `.index` or `.data-*` file,
    a folder holding one, a tar archive of one (as Magenta publishes them), or a magenta.js
    checkpoint folder. A checkpoint whose variables are not exactly the config's is refused.
    """
    import torch

    family = getattr(config, "model", None)
    if family not in MAPPINGS:
        raise BadConfig(f"{config.name}: an {family} config; import-magenta reads MusicVAE checkpoints of the "
                        f"{', '.join(MAPPINGS)} configs")
    mapping = MAPPINGS[family]()
    model_config = mapping.model_config(config)
    with tempfile.TemporaryDirectory(prefix="gen-import-") as extracted:
        source = _Source(checkpoint, Path(extracted))
        _check_spec(source, mapping, config)
        expected = mapping.variables(model_config)
        skipped = _check_variables(source, expected, config.name)
        step = source.global_step()
        tensors = source.read(list(expected))
    for name, value in tensors.items():
        if value.dtype.kind != "f" or not np.isfinite(value).all():
            raise BadInputFile(source.path, f"{name}: {'not finite' if value.dtype.kind == 'f' else value.dtype} "
                                            "values; a float32 variable expected")
    model = mapping.build_model(config)
    try:
        model.load_state_dict({k: torch.from_numpy(v) for k, v in mapping.state_dict(tensors, model_config).items()})
    except RuntimeError as error:  # a mapping that does not fill the module exactly: a bug here
        raise GenError(f"{source.path}: the mapped weights do not fit the model: {error}") from None
    return MagentaModel(model=model, source_format=source.format, source=source.path, step=step,
                        variables=len(expected), skipped=skipped)


def import_checkpoint(
    checkpoint: str | os.PathLike[str], config: Any, run_dir: str | os.PathLike[str], *, force: bool = False
) -> MagentaModel:
    """Writes `run_dir` (config.json + checkpoints/step-N) from a Magenta checkpoint of `config`
    (see `load_magenta_checkpoint`). An existing non-empty `run_dir` needs `force`, and must be a run.
    Nothing is written unless every variable maps, and a run directory appears whole or not at all."""
    from generation.checkpoint import save_checkpoint, write_run_config

    run_dir = Path(run_dir)
    _check_target(run_dir, force)
    loaded = load_magenta_checkpoint(checkpoint, config)
    state_tensors, info = _training_record(loaded.model, config)
    info["imported_from"] = {"checkpoint": str(loaded.source), "format": loaded.source_format,
                             "global_step": loaded.step}

    def write(folder: Path) -> None:
        write_run_config(folder, config.to_json())
        save_checkpoint(folder, loaded.step, loaded.model.state_dict(), state_tensors, info, keep=1)

    _write_run_dir(run_dir, force, write)
    return loaded
