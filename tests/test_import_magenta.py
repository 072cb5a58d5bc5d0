"""`gen import-magenta`: Magenta's TensorFlow and magenta.js checkpoints read without TensorFlow,
mapped onto GrooVAE, checked against TensorFlow's own outputs (tests/fixtures/magenta_checkpoint,
written by tests/fixtures/make_magenta_checkpoint.py with real TensorFlow)."""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import generation.music_vae.model as groovae_model
from cli import cli
from generation.checkpoint import latest_checkpoint, load_weights, read_run_config
from generation.config_files import load_any_config, parse_hparams, with_hparams
from generation.errors import BadConfig, BadInputFile, OutputError
from generation.io.tf_checkpoint import (
    TensorBundle,
    bundle_prefix,
    read_tensor_bundle,
    read_tfjs_checkpoint,
    snappy_decompress,
)
from generation.music_vae import import_magenta
from generation.music_vae.family import model_config
from generation.music_vae.import_magenta import import_checkpoint, lstm_from_tf
from generation.music_vae.trained_model import TrainedModel

from .conftest import FIXTURES

MAGENTA = FIXTURES / "magenta_checkpoint"
TOLERANCE = 1e-5  # the bound on |ours - TensorFlow's|
# (fixture folder, the TF fixture its reference outputs come from)
TF_FIXTURES = ["groovae_tiny", "hits_control"]


def spec(name: str) -> dict:
    return json.loads((MAGENTA / name / "spec.json").read_text())


def fixture_config(name: str):
    """The config (with --hparams) the fixture checkpoint was written for."""
    info = spec(name)
    config = load_any_config(info["config"])
    return with_hparams(config, parse_hparams(info["hparams"])) if info["hparams"] else config


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def no_leftovers(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")], list(folder.iterdir())


# -- the reader -------------------------------------------------------------------------------


def test_reader_gives_tensorflows_names_shapes_and_values() -> None:
    bundle = TensorBundle(MAGENTA / "groovae_tiny")
    model_variables = spec("groovae_tiny")["variables"]
    slots = {f"{name}/{slot}" for name in model_variables for slot in ("Adam", "Adam_1")}
    assert set(bundle.entries) == set(model_variables) | slots | {"global_step", "beta1_power", "beta2_power"}
    for name, shape in model_variables.items():
        assert bundle.entries[name].shape == tuple(shape) and bundle.entries[name].dtype_name == "float32"
    tensors = bundle.read()
    assert tensors["global_step"].dtype == np.int64 and int(tensors["global_step"]) == 1234
    assert tensors["beta1_power"] == np.float32(0.9) and tensors["beta2_power"] == np.float32(0.999)
    # The same weights, written by TensorFlow's Saver and by tensorflowjs: equal to the bit.
    js = read_tfjs_checkpoint(MAGENTA / "groovae_tiny_js")
    assert set(js) == set(model_variables)
    for name, value in js.items():
        assert value.dtype == np.float32 and np.array_equal(value, tensors[name]), name
    assert not np.any(tensors["encoder/mu/kernel/Adam"])  # zero slots: a fresh Adam's


def test_reader_decodes_every_dtype_tensorflow_saved(tmp_path: Path) -> None:
    expected = json.loads((MAGENTA / "dtypes" / "expected.json").read_text())
    tensors = read_tensor_bundle(MAGENTA / "dtypes" / "dtypes")
    assert set(tensors) == set(expected)
    for name, value in tensors.items():
        dtype, values = expected[name]["dtype"], expected[name]["values"]
        if dtype == "string":
            assert value.dtype == object and [v.decode() for v in value] == values
            continue
        want = np.array(values, dtype=np.float32 if dtype == "bfloat16" else dtype)
        assert value.dtype == want.dtype and value.shape == want.shape and np.array_equal(value, want), name
    entry = TensorBundle(MAGENTA / "dtypes" / "dtypes").entries["string"]
    shutil.copytree(MAGENTA / "dtypes", tmp_path / "dtypes")
    data = tmp_path / "dtypes" / "dtypes.data-00000-of-00001"
    data.write_bytes(flip(entry.offset + entry.size - 1)(data.read_bytes()))
    with pytest.raises(BadInputFile, match="string: a damaged string tensor: its bytes do not match their checksum"):
        read_tensor_bundle(tmp_path / "dtypes" / "dtypes", ["string"])
    assert read_tensor_bundle(tmp_path / "dtypes" / "dtypes", ["int8"])["int8"].tolist() == [-128, 127]


def test_every_way_of_naming_a_checkpoint_finds_the_same_bundle(tmp_path: Path) -> None:
    folder = MAGENTA / "groovae_tiny"
    prefix = folder / "model.ckpt-1234"
    for path in (folder, prefix, Path(f"{prefix}.index"), Path(f"{prefix}.data-00000-of-00001")):
        assert bundle_prefix(path) == prefix
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "/elsewhere/model.ckpt-1234"\n')
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(f"{prefix}{suffix}", tmp_path / f"model.ckpt-1234{suffix}")
        shutil.copy(f"{prefix}{suffix}", tmp_path / f"model.ckpt-99{suffix}")
    assert bundle_prefix(tmp_path) == tmp_path / "model.ckpt-1234"  # the pointer's name, in this folder
    (tmp_path / "checkpoint").unlink()
    with pytest.raises(BadInputFile, match="holds 2 checkpoints"):
        bundle_prefix(tmp_path)
    with pytest.raises(BadInputFile, match="neither a folder, nor a prefix"):
        bundle_prefix(tmp_path / "model.ckpt-5")
    assert read_tensor_bundle(tmp_path / "model.ckpt-99", ["global_step"])["global_step"] == 1234


def test_snappy_blocks_decode() -> None:
    # TensorFlow's pip builds write uncompressed blocks (the fixtures have none), others snappy ones.
    assert snappy_decompress(bytes([12, 0x08]) + b"abc" + bytes([0x15, 3])) == b"abc" * 4  # overlapping copy-1
    assert snappy_decompress(bytes([8, 0x0C]) + b"wxyz" + bytes([0x0E, 4, 0])) == b"wxyz" * 2  # copy-2
    assert snappy_decompress(bytes([7, 0x18]) + b"abcdefg") == b"abcdefg"
    long_literal = bytes(range(256)) * 2
    assert snappy_decompress(bytes([0x80, 0x04, 0xF4, 0xFF, 0x01]) + long_literal) == long_literal  # 2-byte length
    for broken in (bytes([5, 0x08]) + b"abc", bytes([9, 0x15, 3]), bytes([4, 0x0C]) + b"ab", bytes([0x80])):
        with pytest.raises(ValueError):
            snappy_decompress(broken)


# -- the mapping, against TensorFlow ----------------------------------------------------------


def test_expected_variables_are_the_ones_tensorflow_created() -> None:
    for name in TF_FIXTURES:
        mapping = import_magenta.MAPPINGS["groovae"]()
        expected = mapping.variables(model_config(fixture_config(name)))
        assert {k: list(v) for k, v in expected.items()} == spec(name)["variables"]


@pytest.mark.parametrize("name", ["groovae_tiny", "hits_control", "cat_mel", "cat_drums"])
def test_variable_names_and_shapes_follow_from_the_sizes(name: str) -> None:
    """MusicVAE's encoder and LSTM decoder variables, whatever the decoder's output (GrooVAE's or
    a categorical one), are what TensorFlow created for those sizes."""
    sizes = spec(name)["sizes"]
    expected = {
        **import_magenta.encoder_variables(sizes["input_depth"] + sizes["control_depth"], sizes["enc"], sizes["z_size"]),
        **import_magenta.decoder_variables(sizes["output_depth"] + sizes["z_size"] + sizes["control_depth"],
                                           sizes["dec"], sizes["z_size"], sizes["output_depth"]),
    }
    assert {k: list(v) for k, v in expected.items()} == spec(name)["variables"]


def test_a_categorical_checkpoint_maps_exactly_onto_the_same_lstm_vae(monkeypatch) -> None:
    """A melody checkpoint (CategoricalLstmDecoder) through the shared encoder and decoder math:
    mu, sigma and the teacher-forced logits are TensorFlow's, as are the greedy samples."""
    sizes = spec("cat_mel")["sizes"]
    config = groovae_model.GrooVAEConfig(
        input_depth=sizes["input_depth"], output_depth=sizes["output_depth"], z_size=sizes["z_size"],
        enc_rnn_size=sizes["enc"], dec_rnn_size=sizes["dec"])
    tensors = read_tensor_bundle(MAGENTA / "cat_mel")
    model = groovae_model.GrooVAE(config)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in {
        **import_magenta.encoder_state_dict(tensors, config.input_depth, config.enc_rnn_size),
        **import_magenta.decoder_state_dict(tensors, config.output_depth + config.z_size, config.dec_rnn_size),
    }.items()})
    model.eval()  # no dropout
    expected = np.load(MAGENTA / "cat_mel" / "reference.npz")
    lengths = torch.from_numpy(expected["lengths"]).long()
    z = torch.from_numpy(expected["z"])
    with torch.no_grad():
        mu, sigma = model.encode(torch.from_numpy(expected["inputs"]), lengths)
        logits = model.decoder_logits(torch.from_numpy(expected["targets"]), z)
        x = torch.zeros(z.shape[0], config.output_depth)
        states, greedy = model._initial_state(z), []
        for _ in range(expected["samples"].shape[1]):  # argmax fed back, as the reference does
            h = torch.cat([x, z], dim=-1)
            for k, lstm in enumerate(model.decoder):
                states[k] = torch.lstm_cell(h, states[k], lstm.weight_ih_l0, lstm.weight_hh_l0,
                                            lstm.bias_ih_l0, lstm.bias_hh_l0)
                h = states[k][0]
            x = torch.nn.functional.one_hot(model.output_projection(h).argmax(-1), config.output_depth).float()
            greedy.append(x)
    ours = {"mu": mu.numpy(), "sigma": sigma.numpy(), "logits": logits.numpy(), "samples": torch.stack(greedy, 1).numpy()}
    worst = differences(ours, expected)
    assert max(worst.values()) < TOLERANCE, worst
    assert len(set(expected["samples"].argmax(-1).ravel().tolist())) > 3  # not one class throughout


def imported_model(source: str, tmp_path: Path, config=None):
    config = config or fixture_config(source if source in TF_FIXTURES else "groovae_tiny")
    import_checkpoint(MAGENTA / source, config, tmp_path / source)
    return TrainedModel(None, 1, tmp_path / source)._model


def outputs_of(model, reference, monkeypatch) -> dict[str, np.ndarray]:
    """mu, sigma, teacher-forced logits and samples of `model` on the reference inputs; the
    samples' Bernoulli uniforms are TensorFlow's, fed in where the model draws them."""
    controls = torch.from_numpy(reference["controls"]) if reference["controls"].shape[-1] else None
    lengths = torch.from_numpy(reference["lengths"]).long()
    z = torch.from_numpy(reference["z"])
    with torch.no_grad():
        mu, sigma = model.encode(torch.from_numpy(reference["inputs"]), lengths, controls)
        logits = model.decoder_logits(torch.from_numpy(reference["targets"]), z, controls)
    drawn = groovae_model._random

    def tensorflows_uniforms(kind, shape, generator, device):
        if kind == "uniform":
            assert tuple(shape) == reference["uniforms"].shape
            return torch.from_numpy(reference["uniforms"])
        return drawn(kind, shape, generator, device)

    monkeypatch.setattr(groovae_model, "_random", tensorflows_uniforms)
    samples = model.decode(z, reference["samples"].shape[1], float(reference["temperature"]), controls)
    monkeypatch.setattr(groovae_model, "_random", drawn)
    return {"mu": mu.numpy(), "sigma": sigma.numpy(), "logits": logits.numpy(), "samples": samples.numpy()}


def differences(ours: dict[str, np.ndarray], reference) -> dict[str, float]:
    valid = np.arange(reference["logits"].shape[1])[None, :] < reference["lengths"][:, None]  # [B, T]
    return {
        "mu": float(np.abs(ours["mu"] - reference["mu"]).max()),
        "sigma": float(np.abs(ours["sigma"] - reference["sigma"]).max()),
        # TensorFlow's dynamic_rnn emits zeros past each length; only the valid steps are outputs
        "logits": float(np.abs(ours["logits"] - reference["logits"])[valid].max()),
        "samples": float(np.abs(ours["samples"] - reference["samples"]).max()),
    }


@pytest.mark.parametrize("source,reference", [("groovae_tiny", "groovae_tiny"), ("hits_control", "hits_control"),
                                              ("groovae_tiny_js", "groovae_tiny")])
def test_imported_model_reproduces_tensorflows_outputs(source: str, reference: str, tmp_path: Path,
                                                       monkeypatch) -> None:
    expected = np.load(MAGENTA / reference / "reference.npz")
    ours = outputs_of(imported_model(source, tmp_path), expected, monkeypatch)
    worst = differences(ours, expected)
    assert max(worst.values()) < TOLERANCE, worst
    hits = expected["samples"].shape[-1] // 3
    assert np.array_equal(ours["samples"][..., :hits], expected["samples"][..., :hits])
    assert 0.05 < expected["samples"][..., :hits].mean() < 0.95  # hits both drawn and not: the test can tell
    assert expected["lengths"].min() < expected["logits"].shape[1]  # sequences shorter than the batch's


def test_the_comparison_catches_a_wrong_mapping(tmp_path: Path, monkeypatch) -> None:
    """The fixture's weights are such that each plausible mistake moves the outputs far past 1e-5."""
    expected = np.load(MAGENTA / "hits_control" / "reference.npz")
    right = imported_model("hits_control", tmp_path, fixture_config("hits_control")).state_dict()

    def worst_with(change) -> float:
        model = TrainedModel(None, 1, tmp_path / "hits_control")._model
        state = {k: v.clone() for k, v in right.items()}
        change(state)
        model.load_state_dict(state)
        return max(differences(outputs_of(model, expected, monkeypatch), expected).values())

    def no_forget_bias(state):
        for key in ("encoder_fw.0.bias_ih_l0", "encoder_bw.1.bias_ih_l0", "decoder.0.bias_ih_l0"):
            hidden = state[key].shape[0] // 4
            state[key][hidden : 2 * hidden] -= 1.0

    def tensorflows_gate_order(state):
        for key in [k for k in state if k.endswith(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0"))]:
            g, f = state[key].chunk(4)[1:3]  # treat TF's (i, j, f, o) as PyTorch's (i, f, g, o)
            state[key] = torch.cat([state[key].chunk(4)[0], f, g, state[key].chunk(4)[3]])

    def h_and_c_swapped(state):
        weight, bias = state["z_to_initial_state.weight"], state["z_to_initial_state.bias"]
        for tensor in (weight, bias):
            c0, h0, c1, h1 = tensor.split([12, 12, 8, 8])
            tensor.copy_(torch.cat([h0, c0, h1, c1]))

    for change in (no_forget_bias, tensorflows_gate_order, h_and_c_swapped):
        assert worst_with(change) > 1e-3, change.__name__


def test_quantized_magentajs_weights_are_within_half_a_step(tmp_path: Path, monkeypatch) -> None:
    manifest = json.loads((MAGENTA / "groovae_tiny_js_q2" / "weights_manifest.json").read_text())
    tensorflow = read_tensor_bundle(MAGENTA / "groovae_tiny")
    quantized = read_tfjs_checkpoint(MAGENTA / "groovae_tiny_js_q2")
    for entry in manifest[0]["weights"]:
        assert entry["quantization"]["dtype"] == "uint16"
        error = np.abs(quantized[entry["name"]] - tensorflow[entry["name"]]).max()
        assert error <= entry["quantization"]["scale"] / 2 + 1e-7, entry["name"]
    expected = np.load(MAGENTA / "groovae_tiny" / "reference.npz")
    worst = differences(outputs_of(imported_model("groovae_tiny_js_q2", tmp_path), expected, monkeypatch), expected)
    assert max(worst.values()) < 1e-3, worst


def test_lstm_conversion_layout() -> None:
    """One block cell step by hand, TF's equations (i, j, f, o; forget_bias 1.0) against torch.lstm_cell."""
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(5 + 3, 12)).astype(np.float32)
    bias = rng.normal(size=12).astype(np.float32)
    x, h, c = (rng.normal(size=(2, n)).astype(np.float32) for n in (5, 3, 3))
    i, j, f, o = np.split(np.concatenate([x, h], 1) @ kernel + bias, 4, axis=1)
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    c_tf = sigmoid(f + 1.0) * c + sigmoid(i) * np.tanh(j)
    h_tf = sigmoid(o) * np.tanh(c_tf)
    p = {k: torch.from_numpy(v) for k, v in lstm_from_tf(kernel, bias, 5).items()}
    h_ours, c_ours = torch.lstm_cell(torch.from_numpy(x), (torch.from_numpy(h), torch.from_numpy(c)),
                                     p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"])
    assert np.abs(h_ours.numpy() - h_tf).max() < 1e-6 and np.abs(c_ours.numpy() - c_tf).max() < 1e-6


# -- the command --------------------------------------------------------------------------------


def test_import_then_sample(tmp_path: Path) -> None:
    result = run("import-magenta", MAGENTA / "groovae_tiny", "--config", "groovae_tiny", "-o", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert "Imported 16 variables (TensorFlow, step 1,234) as groovae_tiny" in result.output
    assert "left out 35 training-state variables" in result.output
    stored = read_run_config(tmp_path / "run")
    assert stored["family"] == "groovae" and stored["name"] == "groovae_tiny"
    checkpoint = latest_checkpoint(tmp_path / "run")
    assert checkpoint is not None and checkpoint.step == 1234
    weights = load_weights(checkpoint)
    tensorflow = read_tensor_bundle(MAGENTA / "groovae_tiny", ["encoder/mu/kernel"])
    assert torch.equal(weights["encoder_mu.weight"], torch.from_numpy(tensorflow["encoder/mu/kernel"].T.copy()))
    sampled = run("sample", tmp_path / "run", "-n", "2", "--seed", "3", "-o", tmp_path / "samples")
    assert sampled.exit_code == 0, sampled.output
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["sample-001.mid", "sample-002.mid"]
    assert [int(n) > 0 for n in re.findall(r"(\d+) notes", sampled.output)] == [True, True]
    no_leftovers(tmp_path)


def test_import_from_a_tar_archive_as_magenta_publishes_them(tmp_path: Path, monkeypatch) -> None:
    with tarfile.open(tmp_path / "groovae_tiny.tar", "w") as tar:
        for path in sorted((MAGENTA / "groovae_tiny").glob("model.ckpt-*")):
            tar.add(path, arcname=f"groovae_tiny/{path.name}")
        tar.add(MAGENTA / "groovae_tiny" / "spec.json", arcname="groovae_tiny/model.ckpt-1234.meta")
    result = run("import-magenta", tmp_path / "groovae_tiny.tar", "--config", "groovae_tiny", "-o", tmp_path / "run")
    assert result.exit_code == 0, result.output
    expected = np.load(MAGENTA / "groovae_tiny" / "reference.npz")
    model = TrainedModel(None, 1, tmp_path / "run")._model
    assert max(differences(outputs_of(model, expected, monkeypatch), expected).values()) < TOLERANCE
    with tarfile.open(tmp_path / "damaged.tar", "w") as tar:
        tar.add(damaged_copy(tmp_path, ".data-00000-of-00001", lambda d: d[:1000]), arcname="ckpt")
    line = one_line_error(run("import-magenta", tmp_path / "damaged.tar", "--config", "groovae_tiny",
                              "-o", tmp_path / "run2"))
    assert f"{tmp_path / 'damaged.tar'}: model.ckpt-1234.data-00000-of-00001: " in line and "past the end" in line
    with tarfile.open(tmp_path / "two.tar", "w") as tar:
        tar.add(MAGENTA / "groovae_tiny", arcname="a")
        tar.add(MAGENTA / "hits_control", arcname="b")
    line = one_line_error(run("import-magenta", tmp_path / "two.tar", "--config", "groovae_tiny", "-o", tmp_path / "r"))
    assert "holds 2 TensorFlow checkpoints" in line


def test_import_with_hparams_and_of_magentajs(tmp_path: Path) -> None:
    hparams = spec("hits_control")["hparams"]
    result = run("import-magenta", MAGENTA / "hits_control" / "model.ckpt-77.index", "--config",
                 "groovae_2bar_hits_control", "--hparams", hparams, "-o", tmp_path / "controls")
    assert result.exit_code == 0, result.output
    assert read_run_config(tmp_path / "controls")["hparams"]["enc_rnn_size"] == [12, 10]
    result = run("import-magenta", MAGENTA / "groovae_tiny_js", "--config", "groovae_tiny", "-o", tmp_path / "js")
    assert result.exit_code == 0, result.output
    assert "(magenta.js, step 0)" in result.output and "left out" not in result.output


def test_a_run_of_another_shape_is_refused_naming_variables(tmp_path: Path) -> None:
    line = one_line_error(run("import-magenta", MAGENTA / "hits_control", "--config", "groovae_tiny",
                              "-o", tmp_path / "run"))
    assert "not a checkpoint of config groovae_tiny (trained with more layers: give its --hparams?)" in line
    assert "encoder/cell_1/bidirectional_rnn/fw/multi_rnn_cell/cell_0/lstm_cell/kernel" in line
    line = one_line_error(run("import-magenta", MAGENTA / "groovae_tiny", "--config", "groovae_2bar_humanize",
                              "-o", tmp_path / "run"))
    assert "encoder/mu/kernel is [32, 8], the config's [1024, 256]" in line
    assert not (tmp_path / "run").exists()
    no_leftovers(tmp_path)


def copy_js(tmp_path: Path, name: str = "groovae_tiny_js") -> Path:
    folder = tmp_path / name
    shutil.copytree(MAGENTA / name, folder)
    return folder


def test_unknown_variables_are_named(tmp_path: Path) -> None:
    folder = copy_js(tmp_path)
    manifest_path = folder / "weights_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest.append({"paths": ["extra.bin"], "weights": [
        {"name": "decoder/attention/kernel", "shape": [2, 2], "dtype": "float32"},
        {"name": "encoder/mu/kernel/Adam", "shape": [2], "dtype": "float32"}]})  # skipped silently
    manifest_path.write_text(json.dumps(manifest))
    (folder / "extra.bin").write_bytes(np.zeros(6, np.float32).tobytes())
    line = one_line_error(run("import-magenta", folder, "--config", "groovae_tiny", "-o", tmp_path / "run"))
    assert line.endswith("it holds variables the config does not have: decoder/attention/kernel")
    assert not (tmp_path / "run").exists()


def test_other_families_and_other_converters_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BadConfig, match="import-magenta reads MusicVAE checkpoints"):
        import_checkpoint(MAGENTA / "groovae_tiny", load_any_config("basic_rnn"), tmp_path / "run")
    folder = copy_js(tmp_path)
    for converter, message in (({"type": "MelodyConverter", "args": {}}, "'MelodyConverter' data"),
                               ({"type": "GrooveConverter", "args": {"numSteps": 64, "tapify": True}},
                                "numSteps 64 (the config's: 32), tapify True (the config's: False)")):
        (folder / "config.json").write_text(json.dumps({"type": "MusicVAE", "dataConverter": converter}))
        line = one_line_error(run("import-magenta", folder, "--config", "groovae_tiny", "-o", tmp_path / "run"))
        assert message in line and "config.json" in line
    assert not (tmp_path / "run").exists()


def damaged_copy(tmp_path: Path, suffix: str, damage) -> Path:
    folder = tmp_path / "damaged"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(MAGENTA / "groovae_tiny", folder)
    path = folder / f"model.ckpt-1234{suffix}"
    path.write_bytes(damage(path.read_bytes()))
    return folder


def flip(offset: int):
    return lambda data: data[:offset] + bytes([data[offset] ^ 0x40]) + data[offset + 1 :]


@pytest.mark.parametrize("suffix,damage,message", [
    (".index", lambda d: d[: len(d) // 2], "bad magic number; truncated"),
    (".index", lambda d: b"", "too short for a table footer"),
    (".index", flip(40), "block's checksum does not match (corrupt)"),
    (".index", lambda d: b"\x00" * 48 + d[48:], "block's checksum does not match"),
    (".data-00000-of-00001", lambda d: d[:1000], "past the end of the file"),
    (".data-00000-of-00001", "encoder/mu/kernel", "encoder/mu/kernel: its bytes do not match their checksum"),
])
def test_damaged_checkpoints_give_one_line_and_no_run(tmp_path: Path, suffix, damage, message) -> None:
    if isinstance(damage, str):  # a byte inside that tensor
        damage = flip(TensorBundle(MAGENTA / "groovae_tiny").entries[damage].offset + 10)
    folder = damaged_copy(tmp_path, suffix, damage)
    line = one_line_error(run("import-magenta", folder, "--config", "groovae_tiny", "-o", tmp_path / "run"))
    assert message in line and "damaged/model.ckpt-1234" in line
    assert not (tmp_path / "run").exists()
    no_leftovers(tmp_path)


def test_damaged_magentajs_folders_give_one_line(tmp_path: Path) -> None:
    folder = copy_js(tmp_path)
    shard = folder / json.loads((folder / "weights_manifest.json").read_text())[0]["paths"][-1]
    shard.write_bytes(shard.read_bytes()[:-8])
    line = one_line_error(run("import-magenta", folder, "--config", "groovae_tiny", "-o", tmp_path / "run"))
    assert "run past the end of its shards (truncated?)" in line
    shard.unlink()
    line = one_line_error(run("import-magenta", folder, "--config", "groovae_tiny", "-o", tmp_path / "run"))
    assert f"{shard.name}: missing: weights_manifest.json lists it" in line
    (folder / "weights_manifest.json").write_text("[{")
    line = one_line_error(run("import-magenta", folder, "--config", "groovae_tiny", "-o", tmp_path / "run"))
    assert "not a readable weights manifest" in line
    line = one_line_error(run("import-magenta", tmp_path / "nothing", "--config", "groovae_tiny", "-o", tmp_path / "run"))
    assert "not a TensorFlow checkpoint" in line


def test_a_failed_write_leaves_no_run_and_keeps_the_old_one(tmp_path: Path, monkeypatch) -> None:
    config = load_any_config("groovae_tiny")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("generation.checkpoint.save_checkpoint", disk_full)
    with pytest.raises(OutputError, match="no space left on device"):
        import_checkpoint(MAGENTA / "groovae_tiny", config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    no_leftovers(tmp_path)
    monkeypatch.undo()
    import_checkpoint(MAGENTA / "groovae_tiny", config, tmp_path / "run")
    before = load_weights(latest_checkpoint(tmp_path / "run"))
    with pytest.raises(OutputError, match="exists already; give --force"):
        import_checkpoint(MAGENTA / "groovae_tiny_js_q2", config, tmp_path / "run")
    monkeypatch.setattr("generation.checkpoint.save_checkpoint", disk_full)
    with pytest.raises(OutputError):
        import_checkpoint(MAGENTA / "groovae_tiny_js_q2", config, tmp_path / "run", force=True)
    assert torch.equal(load_weights(latest_checkpoint(tmp_path / "run"))["encoder_mu.weight"], before["encoder_mu.weight"])
    no_leftovers(tmp_path)
    monkeypatch.undo()
    import_checkpoint(MAGENTA / "groovae_tiny_js_q2", config, tmp_path / "run", force=True)
    after = load_weights(latest_checkpoint(tmp_path / "run"))
    assert not torch.equal(after["encoder_mu.weight"], before["encoder_mu.weight"])  # the quantized one now
    assert latest_checkpoint(tmp_path / "run").step == 0
    no_leftovers(tmp_path)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(OutputError, match="holds files but no run"):
        import_checkpoint(MAGENTA / "groovae_tiny", config, tmp_path / "notes", force=True)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"


def test_gen_train_resumes_an_imported_run(tmp_path: Path) -> None:
    """Fine-tuning a Magenta checkpoint: training goes on from its global step with a fresh Adam."""
    from generation.preprocess import preprocess

    preprocess([FIXTURES / "groove"], tmp_path / "groove", jobs=1)
    assert run("import-magenta", MAGENTA / "groovae_tiny", "--config", "groovae_tiny", "-o", tmp_path / "run").exit_code == 0
    imported = load_weights(latest_checkpoint(tmp_path / "run"))
    trained = run("train", "--config", "groovae_tiny", "--examples", tmp_path / "groove.tfrecord", "--run-dir",
                  tmp_path / "run", "--num-steps", "1236", "--workers", "1", "--device", "cpu", "-q")
    assert trained.exit_code == 0, trained.output
    assert "to step 1,236 (resumed at step 1,234)" in trained.output
    weights = load_weights(latest_checkpoint(tmp_path / "run"))
    change = (weights["encoder_mu.weight"] - imported["encoder_mu.weight"]).abs().max()
    assert 0 < change < 0.1


def test_full_size_groovae_4bar_reproduces_tensorflow(tmp_path: Path, monkeypatch) -> None:
    """Magenta's groovae_4bar sizes (z 256, encoder 512, decoder 256 x 2); its 49 MB checkpoint is
    written on demand, not committed: make_magenta_checkpoint.py --full DIR, then GEN_MAGENTA_FULL=DIR."""
    folder = os.environ.get("GEN_MAGENTA_FULL")
    if not folder:
        pytest.skip("GEN_MAGENTA_FULL is not set (write the checkpoint with make_magenta_checkpoint.py --full DIR)")
    result = run("import-magenta", Path(folder) / "groovae_4bar", "--config", "groovae_4bar", "-o", tmp_path / "run")
    assert result.exit_code == 0, result.output
    expected = np.load(Path(folder) / "groovae_4bar" / "reference.npz")
    worst = differences(outputs_of(TrainedModel(None, 1, tmp_path / "run")._model, expected, monkeypatch), expected)
    assert max(worst.values()) < TOLERANCE, worst


def test_a_controlled_model_asked_to_sample_freely_is_a_one_line_error(tmp_path) -> None:
    """groovae_2bar_hits_control decodes to the hits it is given: `gen sample` has none to give."""
    import_checkpoint(MAGENTA / "hits_control", fixture_config("hits_control"), tmp_path / "run")
    result = run("sample", tmp_path / "run", "-n", "1", "-o", tmp_path / "samples")
    assert "conditioned on controls (9 per step)" in one_line_error(result)
    assert not (tmp_path / "samples").exists()
