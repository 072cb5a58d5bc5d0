"""gen evaluate's metrics, and whole-piece humanize and interpolate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from generation.errors import BadInputFile
from generation.io.readers import read_music_file
from generation.music_vae import TrainedModel, configs
from generation.music_vae.evaluate import evaluate, groove_statistics
from generation.music_vae.tasks import humanize, interpolate_pieces
from generation.preprocess import preprocess
from generation.training import TrainOptions, train

from .conftest import FIXTURES
from .test_cli import run

FUNK = FIXTURES / "groove" / "drummer1" / "eval_session" / "1_funk-groove1_138_beat_4-4.mid"


@pytest.fixture(scope="module")
def data_and_run(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tasks")
    preprocess([FIXTURES / "groove"], root / "groove", jobs=1)
    train(configs.load_config("groovae_tiny"), [root / "groove.tfrecord"], root / "run",
          TrainOptions(num_steps=4, batch_size=2, workers=1, device="cpu"))
    return root / "groove.tfrecord", root / "run"


class PerfectModel:
    """Encodes each window as its index and decodes the index back to the window's own target."""

    def __init__(self, config, targets):
        self.config, self.targets = config, targets

    def encode_tensors(self, inputs, lengths, controls, seed=None):
        mu = np.arange(len(inputs), dtype=np.float32)[:, None].repeat(self.config.hparams.z_size, axis=1)
        return mu, mu, np.ones_like(mu)

    def decode_to_tensors(self, z, length, temperature, c_input=None, seed=None):
        if z.shape[0] != len(self.targets):  # prior samples: silence
            return np.zeros((len(z), length, self.config.data_converter.output_depth), np.float32)
        return np.stack([self.targets[int(row[0])] for row in z])


def test_a_perfect_reconstruction_scores_perfectly_and_baselines_do_not(data_and_run) -> None:
    examples, _ = data_and_run
    config = configs.load_config("groovae_2bar_humanize")
    funk = read_music_file(FUNK).sequences[0]
    targets = config.data_converter.to_tensors(funk, training=False).outputs
    result = evaluate(PerfectModel(config, targets), [examples], num_samples=4)
    assert result.windows == len(targets) == 8
    assert (result.hit_precision, result.hit_recall, result.hit_f1) == (1.0, 1.0, 1.0)
    assert result.velocity_mae == 0.0 and result.offset_mae == 0.0
    assert result.velocity_mae_class_mean_baseline > 5 and result.offset_mae_zero_baseline > 0.05
    assert result.extra["velocity_gain_interval"] == [1.0, 1.0] == result.extra["offset_gain_interval"]
    assert result.sample_statistics.hits_per_bar == 0.0


def test_the_gain_interval_resamples_whole_pieces() -> None:
    from generation.music_vae.evaluate import _gain_interval

    matched = np.ones((4, 2, 1), bool)  # four windows of two cells: pieces 0, 0, 1, 1
    baseline = np.ones((4, 2, 1))
    model = np.array([0.5, 0.5, 0.9, 0.9])[:, None, None] * baseline  # piece 0 halves the error, piece 1 cuts 10%
    low, high = _gain_interval(model, baseline, matched, np.array([0, 0, 1, 1]), seed=0, draws=4000)
    assert low == pytest.approx(0.1) and high == pytest.approx(0.5)  # both pieces drawn twice: the extremes
    same = _gain_interval(model, baseline, matched, np.array([0, 0, 0, 0]), seed=0)
    assert same == pytest.approx([0.3, 0.3])  # one piece: no spread


def test_groove_statistics_by_hand() -> None:
    tensors = np.zeros((1, 16, 27), np.float32)  # one bar, 9 classes
    tensors[0, [0, 8], 0] = 1  # two kicks
    tensors[0, [0, 8], 9] = [100 / 127, 60 / 127]
    tensors[0, 4, 1] = 1  # one snare, late by half a step (offset -1)
    tensors[0, 4, 10] = 80 / 127
    tensors[0, 4, 19] = -1.0
    stats = groove_statistics(tensors, steps_per_bar=16)
    assert stats.hits_per_bar == 3 and stats.class_share["kick"] == pytest.approx(2 / 3)
    assert stats.velocity_mean == pytest.approx(80.0) and stats.velocity_std == pytest.approx(np.std([100, 60, 80]))
    assert stats.offset_std == pytest.approx(np.std([0, 0, -0.5]))


def test_humanize_keeps_other_instruments_and_the_length(data_and_run) -> None:
    _, run_dir = data_and_run
    model = TrainedModel(None, batch_size=8, checkpoint_dir_or_path=run_dir)
    pop = read_music_file(FIXTURES / "multitrack" / "pop_arrangement.mid").sequences[0]
    result = humanize(model, pop, seed=0).sequence
    pitched = lambda s: sorted((n.pitch, n.start_time, n.end_time, n.program) for n in s.notes if not n.is_drum)  # noqa: E731
    assert pitched(result) == pitched(pop)
    bar = 4 * 60 / pop.tempos[0].qpm
    assert all(note.start_time < 4 * bar + bar / 16 for note in result.notes if note.is_drum)
    with pytest.raises(BadInputFile, match="plays bars of 4 quarter notes; this piece is in 6/8"):
        humanize(model, read_music_file(FIXTURES / "groove" / "drummer6" / "session1" / "3_rock_80_beat_6-8.mid").sequences[0], name="x")
    with pytest.raises(BadInputFile, match="no drum notes"):
        humanize(model, read_music_file(FIXTURES / "multitrack" / "string_quartet_type0.mid").sequences[0], name="q")


def test_interpolation_lays_the_grooves_end_to_end(data_and_run) -> None:
    _, run_dir = data_and_run
    model = TrainedModel(None, batch_size=8, checkpoint_dir_or_path=run_dir)
    funk = read_music_file(FUNK).sequences[0]
    pop = read_music_file(FIXTURES / "multitrack" / "pop_arrangement.mid").sequences[0]
    result = interpolate_pieces(model, funk, pop, 3, seed=0)
    two_bars = 2 * 4 * 60 / 138
    assert result.total_time == pytest.approx(3 * two_bars) and result.tempos[0].qpm == pytest.approx(138, rel=1e-6)
    # A one-bar fill (3.4 s at 70 bpm) is shorter than the 2-bar window: padded with silence, not refused.
    fill = read_music_file(FIXTURES / "groove" / "drummer7" / "session3" / "98_hiphop_70_fill_4-4.mid").sequences[0]
    assert interpolate_pieces(model, fill, funk, 3, seed=0).total_time == pytest.approx(3 * 2 * 4 * 60 / 70)


def test_evaluate_humanize_interpolate_commands(data_and_run, tmp_path: Path) -> None:
    examples, run_dir = data_and_run
    result = run("evaluate", str(run_dir), "--examples", str(examples), "-n", "4", "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["windows"] == 8 and 0 <= figures["hit_f1"] <= 1 and figures["sample_statistics"]["windows"] == 4
    text = run("evaluate", str(run_dir), "--examples", str(examples), "-n", "4")
    assert "velocity MAE" in text.stdout and "baseline" in text.stdout
    done = run("humanize", str(run_dir), str(FUNK), "-o", str(tmp_path / "h.mid"))
    assert done.exit_code == 0 and (tmp_path / "h.mid").is_file()
    again = run("humanize", str(run_dir), str(FUNK), "-o", str(tmp_path / "h.mid"))
    assert again.exit_code == 1 and "exists already; give --force" in again.stderr
    assert run("humanize", str(run_dir), str(FUNK), "-o", str(tmp_path / "h.mid"), "--force").exit_code == 0
    done = run("interpolate", str(run_dir), str(FUNK), str(FUNK), "--steps", "3", "-o", str(tmp_path / "i.mid"))
    assert done.exit_code == 0 and "3 grooves" in done.stdout
    bad = run("humanize", str(run_dir), str(FIXTURES / "scores" / "bwv66.6.mxl"), "-o", str(tmp_path / "x.mid"))
    assert bad.exit_code == 1 and "no drum notes" in bad.stderr and not (tmp_path / "x.mid").exists()
