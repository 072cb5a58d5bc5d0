"""How well a trained GrooVAE reconstructs held-out grooves, with baselines beside every figure.

Each test window is converted as Magenta's evaluation converts it (its eval mode: the training
pitch classes, so held-out files of the training kit are grouped as the training data was; a
humanize model sees the quantized, flat-velocity input) and decoded from its mean latent vector
with near-greedy hits. Against the window's own target drums:

- hits: precision, recall and F1 over every (step, drum class) cell;
- velocities: mean absolute error (in MIDI velocity units, 0-127) over the matched hits (cells where
  both the target and the reconstruction hit: how the hits it plays are played; F1 says which hits
  it plays), beside the baseline that predicts each drum class's mean velocity (taken from the same
  test data, which favours the baseline) on the same cells;
- offsets: mean absolute error (in steps) over the matched hits, beside the baseline that predicts 0
  (every hit on the grid) on the same cells.

For both errors, `extra` holds the 95% interval of the model's gain over its baseline (1 - error /
baseline error) from a bootstrap over the test pieces: a gain whose interval stays well above 0
is not an accident of which pieces were tested.

And the statistics users hear, for samples from the prior beside the test data: hits per bar, the
share of each drum class, velocity mean and spread, offset spread.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from generation.errors import NoExamplesError

DRUM_CLASS_NAMES = ("kick", "snare", "closed hi-hat", "open hi-hat", "low tom", "mid tom", "high tom", "crash", "ride")
NEAR_GREEDY = 1e-3  # temperature: hits follow the model's probabilities above or below one half
BOOTSTRAP_DRAWS = 2000
_DRAW_BLOCK = 250


@dataclass
class GrooveStatistics:
    """Per window of `steps` 16th-note steps: what a drummer would hear."""

    windows: int
    hits_per_bar: float
    class_share: dict[str, float]
    velocity_mean: float  # MIDI velocity units
    velocity_std: float
    offset_std: float  # in steps (a 16th note is 1)


@dataclass
class GrooVAEEvaluation:
    windows: int
    hit_precision: float
    hit_recall: float
    hit_f1: float
    velocity_mae: float  # MIDI units, at matched hits
    velocity_mae_class_mean_baseline: float
    offset_mae: float  # steps, at matched hits
    offset_mae_zero_baseline: float
    matched_hits: int
    test_statistics: GrooveStatistics
    sample_statistics: GrooveStatistics | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _split(tensors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[N, T, 3 * classes] -> hits, velocities (0-1), offsets (-1..1), each [N, T, classes]."""
    classes = tensors.shape[-1] // 3
    return tensors[..., :classes], tensors[..., classes : 2 * classes], tensors[..., 2 * classes :]


def groove_statistics(tensors: np.ndarray, steps_per_bar: int) -> GrooveStatistics:
    """Statistics of output tensors [N, T, 3 * classes] (hits, velocities, offsets)."""
    hits, velocities, offsets = _split(tensors)
    hit = hits > 0.5
    classes = hits.shape[-1]
    counts = hit.sum(axis=(0, 1)).astype(float)
    names = DRUM_CLASS_NAMES if classes == len(DRUM_CLASS_NAMES) else tuple(str(i) for i in range(classes))
    total = counts.sum()
    bars = hits.shape[0] * hits.shape[1] / steps_per_bar
    # An offset of 1 is half a step (Magenta's scale), so offsets / 2 are in steps.
    return GrooveStatistics(
        windows=int(hits.shape[0]),
        hits_per_bar=float(total / bars) if bars else 0.0,
        class_share={name: float(c / total) if total else 0.0 for name, c in zip(names, counts)},
        velocity_mean=float(velocities[hit].mean() * 127) if total else 0.0,
        velocity_std=float(velocities[hit].std() * 127) if total else 0.0,
        offset_std=float((offsets[hit] / 2).std()) if total else 0.0,
    )


def evaluate(
    model: Any,
    examples: Sequence[str | os.PathLike[str]],
    *,
    num_samples: int = 64,
    seed: int = 0,
    progress: bool = False,
) -> GrooVAEEvaluation:
    """Evaluates a `TrainedModel` on the windows of the TFRecord file(s) `examples`.

    `progress`: bars on standard error for each step (pieces windowed, windows encoded and decoded,
    bootstrap draws, prior samples decoded).
    """
    from generation.music_vae.data import pad_windows
    from generation.progress import bar
    from generation.protos import NoteSequence
    from generation.training import read_sequences

    converter = model.config.data_converter
    inputs, targets, controls, lengths, pieces = [], [], [], [], []
    rng = np.random.default_rng(seed)  # note dropout, for the configs that drop input notes
    sequences = read_sequences(examples)
    with bar(progress, total=len(sequences), unit="piece", desc="windowing") as shown:
        for piece, serialized in enumerate(sequences):
            tensors = converter.to_tensors(NoteSequence.FromString(serialized), training=True, rng=rng)
            inputs += tensors.inputs
            targets += tensors.outputs
            controls += tensors.controls
            lengths += list(tensors.lengths)
            pieces += [piece] * len(tensors.inputs)
            shown.update()
    if not inputs:
        raise NoExamplesError(f"{', '.join(map(str, examples))}: no {model.config.name} windows to evaluate")
    length = max(len(t) for t in targets)
    target = pad_windows(targets, length, converter.output_depth)
    # Duck-typed models (tests' stand-ins) need not take on_batch: it is passed only to show a bar.
    with bar(progress, total=len(inputs), unit="window", desc="encoding") as shown:
        _, mu, _ = model.encode_tensors(inputs, lengths, controls, seed=seed, **_on_batch(progress, shown))
    control_input = None
    if converter.control_depth:  # each window decodes under its own controls (hits_as_controls: its hits)
        control_input = pad_windows(controls, length, converter.control_depth)
    with bar(progress, total=len(mu), unit="window", desc="decoding") as shown:
        reconstruction = model.decode_to_tensors(mu, length, NEAR_GREEDY, control_input, seed=seed,
                                                 **_on_batch(progress, shown))

    true_hits, true_velocities, true_offsets = _split(target)
    predicted_hits, predicted_velocities, predicted_offsets = _split(reconstruction)
    truth, guess = true_hits > 0.5, predicted_hits > 0.5
    true_positives = float((truth & guess).sum())
    precision = true_positives / guess.sum() if guess.sum() else 0.0
    recall = true_positives / truth.sum() if truth.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    class_means = np.array([true_velocities[..., c][truth[..., c]].mean() if truth[..., c].any() else 0.0
                            for c in range(truth.shape[-1])])
    baseline_velocities = np.broadcast_to(class_means, true_velocities.shape)
    matched = truth & guess
    extra: dict[str, Any] = {}
    if not matched.any():  # nothing to compare timing and dynamics on
        velocity_error = baseline_velocity_error = offset_error = baseline_offset_error = float("nan")
    else:
        velocity_error = np.abs(predicted_velocities - true_velocities)[matched].mean() * 127
        baseline_velocity_error = np.abs(baseline_velocities - true_velocities)[matched].mean() * 127
        offset_error = np.abs(predicted_offsets - true_offsets)[matched].mean() / 2
        baseline_offset_error = np.abs(true_offsets)[matched].mean() / 2
        with bar(progress, total=2 * BOOTSTRAP_DRAWS, unit="draw", desc="bootstrap") as shown:
            extra["velocity_gain_interval"] = _gain_interval(
                np.abs(predicted_velocities - true_velocities), np.abs(baseline_velocities - true_velocities),
                matched, np.array(pieces), seed, on_draws=shown.update)
            extra["offset_gain_interval"] = _gain_interval(
                np.abs(predicted_offsets - true_offsets), np.abs(true_offsets), matched, np.array(pieces), seed,
                on_draws=shown.update)

    steps_per_bar = converter.steps_per_bar
    if converter.tapify:
        extra["hit_f1_position_baseline"] = _tap_baseline_f1(
            pad_windows(inputs, length, converter.input_depth)[..., :converter.num_drums] > 0.5, truth, steps_per_bar)
    samples = None
    if num_samples and not converter.control_depth:  # a control-conditioned model has no unconditional samples
        z = np.random.default_rng(seed).standard_normal((num_samples, model.config.hparams.z_size)).astype(np.float32)
        with bar(progress, total=num_samples, unit="sample", desc="sampling") as shown:
            decoded = model.decode_to_tensors(z, length, 1.0, seed=seed, **_on_batch(progress, shown))
        samples = groove_statistics(decoded, steps_per_bar)
    return GrooVAEEvaluation(
        windows=len(targets), hit_precision=float(precision), hit_recall=float(recall), hit_f1=float(f1),
        velocity_mae=float(velocity_error), velocity_mae_class_mean_baseline=float(baseline_velocity_error),
        offset_mae=float(offset_error), offset_mae_zero_baseline=float(baseline_offset_error),
        matched_hits=int(matched.sum()),
        test_statistics=groove_statistics(target, steps_per_bar), sample_statistics=samples, extra=extra,
    )


def _tap_baseline_f1(taps: np.ndarray, truth: np.ndarray, steps_per_bar: int) -> float:
    """Hit F1 of the baseline for tap-to-drums models: on each tapped step, the drums that the
    data itself hits more often than not on tapped steps at that position of the bar (taps, truth:
    [windows, T, classes] booleans; the statistics come from the same data, which favours the
    baseline)."""
    tapped = taps.any(axis=-1)  # [W, T]
    position = np.arange(truth.shape[1]) % steps_per_bar
    guess = np.zeros_like(truth)
    for p in range(steps_per_bar):
        cells = tapped & (position == p)[None, :]
        if cells.any():
            guess[cells] = truth[cells].mean(axis=0) > 0.5
    hits = float((guess & truth).sum())
    precision = hits / guess.sum() if guess.sum() else 0.0
    recall = hits / truth.sum() if truth.sum() else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _on_batch(progress: bool, shown: Any) -> dict[str, Any]:
    return {"on_batch": shown.update} if progress else {}


def _gain_interval(model_error: np.ndarray, baseline_error: np.ndarray, matched: np.ndarray, pieces: np.ndarray,
                   seed: int, draws: int = BOOTSTRAP_DRAWS, on_draws: Any = None) -> list[float]:
    """The 95% interval of 1 - model error / baseline error over the matched cells, by resampling
    whole test pieces (their windows overlap and share a drummer, so cells are not independent).

    `on_draws(n)` is told as each block of draws is summed (progress)."""
    window_model = (model_error * matched).reshape(len(matched), -1).sum(axis=1)  # [windows]
    window_baseline = (baseline_error * matched).reshape(len(matched), -1).sum(axis=1)
    count = int(pieces.max()) + 1
    piece_model = np.bincount(pieces, window_model, minlength=count)  # [pieces]
    piece_baseline = np.bincount(pieces, window_baseline, minlength=count)
    draw = np.random.default_rng(seed).integers(0, count, size=(draws, count))  # [draws, pieces]
    gains = np.empty(draws)
    for start in range(0, draws, _DRAW_BLOCK):  # blocks keep memory at [block, pieces] and let a bar move
        block = draw[start : start + _DRAW_BLOCK]
        gains[start : start + len(block)] = 1 - piece_model[block].sum(axis=1) / np.maximum(
            piece_baseline[block].sum(axis=1), 1e-12)
        if on_draws is not None:
            on_draws(len(block))
    return [float(np.percentile(gains, 2.5)), float(np.percentile(gains, 97.5))]
