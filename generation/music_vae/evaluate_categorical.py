"""How well a melody or drum-pattern MusicVAE models held-out music, beside a bigram, and whether
its samples and interpolations behave.

Every window of the test data is converted as the model's converter does at inference (no
augmentation), with no cap on windows per piece. On those windows:

- Negative log-likelihood per event (nats, every step of every window counted), as two upper
  bounds on the model's true NLL, since a VAE's likelihood has no closed form: the negative ELBO,
  E_q[-log p(x|z)] + KL(q(z|x) || N(0, I)), and the tighter importance-weighted bound
  -log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x) with K draws z_k ~ q(z|x) (Burda et al., 2016).
  Beside them, a bigram's NLL on the same events (the first event of a window given a start
  token): `generation.lstm.evaluate.Bigram`, fitted on the windows of `baseline_examples` (the
  training data) or, without them, on the other test pieces (one piece left out at a time).
  Also the reconstruction NLL alone (E_q[-log p(x|z)], which z makes easy: not comparable with
  the bigram) and the KL, and the reconstruction accuracy: each window decoded near-greedily from
  its mean latent vector, the share of steps whose event is the window's.
- Non-degeneracy statistics per window, for the test windows and for `num_samples` samples from the
  prior at temperature 1: for melodies, distinct pitches, notes per bar, the longest run of one
  repeated pitch (consecutive onsets), pitch range (semitones) and the share of silent steps; for
  drum patterns, hits per bar, distinct drum classes, the share of empty steps and the longest run
  of one repeated step. Each as mean, 5th-95th percentile and extremes; `in_range` says whether
  the samples' mean lies within the test windows' 5th-95th percentile range.
- Interpolation: for `pairs` pairs of test windows from different pieces, the `steps` points of
  `TrainedModel.interpolate` (slerp between the two means). Two distances of each point to each
  end window: what is heard, the share of steps whose event differs between the point decoded
  near-greedily (as `gen interpolate` decodes) and the end window; and what the point's latent
  vector says, the end window's NLL per event under the decoder at that point (teacher-forced).
  A pair moves from one to the other, by a distance, when its distance to the start never falls
  and its distance to the end never rises from point to point, and both change from the first
  point to the last (a path that stays put is not counted); for the NLL, strictly at every point.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from generation.errors import NoExamplesError

NEAR_GREEDY = 1e-3  # temperature: each step's likeliest event (what `gen interpolate` decodes with)
IMPORTANCE_SAMPLES = 16


@dataclass
class Summary:
    """One statistic over windows: mean, 5th-95th percentile range and extremes."""

    mean: float
    low: float  # 5th percentile
    high: float  # 95th percentile
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        v = np.asarray(values, dtype=float)
        if not len(v):
            return cls(float("nan"), float("nan"), float("nan"), float("nan"), float("nan"))
        return cls(float(v.mean()), float(np.percentile(v, 5)), float(np.percentile(v, 95)), float(v.min()),
                   float(v.max()))

    def words(self, digits: int = 2) -> str:
        return f"{self.mean:.{digits}f} ({self.low:.{digits}f}-{self.high:.{digits}f})"


@dataclass
class WindowStatistics:
    """Per-window statistics (`statistics` of the module docstring) of one set of windows."""

    windows: int
    values: dict[str, Summary]


@dataclass
class InterpolationCheck:
    pairs: int
    steps: int
    distance_to_start: list[float]  # mean over pairs, per point (share of steps differing)
    distance_to_end: list[float]
    monotone_share: float  # pairs whose distances both move monotonically, and do move
    example_to_start: list[float]  # the first pair's own distances
    example_to_end: list[float]
    nll_to_start: list[float] = field(default_factory=list)  # mean over pairs, per point (nats per event)
    nll_to_end: list[float] = field(default_factory=list)
    nll_monotone_share: float = float("nan")  # pairs whose two NLLs move strictly monotonically


@dataclass
class CategoricalEvaluation:
    name: str
    windows: int
    events: int
    nll_elbo_per_event: float  # -ELBO, an upper bound of the NLL
    nll_iwae_per_event: float  # importance-weighted bound (IMPORTANCE_SAMPLES draws), tighter
    importance_samples: int
    reconstruction_nll_per_event: float  # E_q[-log p(x|z)]: the KL excluded, not a likelihood of x
    kl_nats_per_window: float
    bigram_nll_per_event: float
    bigram_fitted_on: str
    reconstruction_accuracy: float
    test_statistics: WindowStatistics
    sample_statistics: WindowStatistics | None = None
    in_range: dict[str, bool] = field(default_factory=dict)
    interpolation: InterpolationCheck | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self, examples: Sequence[str]) -> list[str]:
        """The report `gen evaluate` prints."""
        lines = [f"{self.name} on {self.windows:,} windows ({self.events:,} events) of {', '.join(map(str, examples))}",
                 f"  NLL per event  {self.nll_iwae_per_event:.3f} nats (importance-weighted bound, "
                 f"{self.importance_samples} draws; -ELBO {self.nll_elbo_per_event:.3f})  "
                 f"(bigram baseline: {self.bigram_nll_per_event:.3f}, fitted on {self.bigram_fitted_on})",
                 f"  given z        reconstruction NLL {self.reconstruction_nll_per_event:.3f} nats per event, "
                 f"KL {self.kl_nats_per_window:.1f} nats per window, reconstruction accuracy "
                 f"{self.reconstruction_accuracy:.3f} (decoded from each window's mean z)"]
        rows = [("test data", self.test_statistics)]
        if self.sample_statistics is not None:
            rows.append((f"{self.sample_statistics.windows} samples", self.sample_statistics))
        lines.append("  per window: mean (5th-95th percentile)")
        for label, stats in rows:
            shown = "  ".join(f"{name} {summary.words()}" for name, summary in stats.values.items())
            lines.append(f"  {label:<11} {shown}")
        if self.in_range:
            outside = [name for name, inside in self.in_range.items() if not inside]
            lines.append("  samples' means within the test data's 5th-95th percentile range: "
                         + ("all" if not outside else f"all but {', '.join(outside)}"))
        if self.interpolation is not None:
            i = self.interpolation
            lines.append(f"  interpolation over {i.pairs} pairs of test windows, {i.steps} points, mean per point:")
            lines.append("    share of steps unlike the start " + " ".join(f"{d:.2f}" for d in i.distance_to_start)
                         + ", unlike the end " + " ".join(f"{d:.2f}" for d in i.distance_to_end)
                         + f"; monotone in {i.monotone_share:.0%} of pairs")
            lines.append("    NLL per event of the start " + " ".join(f"{d:.2f}" for d in i.nll_to_start)
                         + ", of the end " + " ".join(f"{d:.2f}" for d in i.nll_to_end)
                         + f"; strictly monotone in {i.nll_monotone_share:.0%} of pairs")
        return lines


# -- statistics ---------------------------------------------------------------------------------

def melody_window_values(events: Sequence[int], steps_per_bar: int) -> dict[str, float]:
    """Statistics of one window of melody events (-2 NO_EVENT, -1 NOTE_OFF, else a MIDI pitch)."""
    onsets = [e for e in events if e >= 0]
    longest = run = 0
    for index, pitch in enumerate(onsets):
        run = run + 1 if index and pitch == onsets[index - 1] else 1
        longest = max(longest, run)
    silent, sounding = 0, False
    for event in events:
        if event >= 0:
            sounding = True
        elif event == -1:
            sounding = False
        silent += not sounding
    bars = len(events) / steps_per_bar
    return {
        "distinct pitches": float(len(set(onsets))),
        "notes per bar": len(onsets) / bars if bars else 0.0,
        "longest repeated-pitch run": float(longest),
        "pitch range": float(max(onsets) - min(onsets)) if onsets else 0.0,
        "silence share": silent / len(events) if len(events) else 0.0,
    }


def drum_window_values(events: Sequence[frozenset[int]], steps_per_bar: int) -> dict[str, float]:
    """Statistics of one window of drum events (sets of drum class indices)."""
    longest = run = 0
    for index, event in enumerate(events):
        run = run + 1 if index and event == events[index - 1] else 1
        longest = max(longest, run)
    bars = len(events) / steps_per_bar
    return {
        "hits per bar": sum(len(e) for e in events) / bars if bars else 0.0,
        "distinct classes": float(len(set().union(*events))) if events else 0.0,
        "empty-step share": sum(not e for e in events) / len(events) if len(events) else 0.0,
        "longest repeated-step run": float(longest),
    }


def window_statistics(converter: Any, label_windows: Sequence[Sequence[int]]) -> WindowStatistics:
    """Statistics of windows of class indices (melody or drum events, by the converter)."""
    from generation.music_vae.data import OneHotMelodyConverter

    per_window = melody_window_values if isinstance(converter, OneHotMelodyConverter) else drum_window_values
    values = [per_window(converter.labels_to_events(labels), converter.steps_per_bar) for labels in label_windows]
    names = list(values[0]) if values else []
    return WindowStatistics(len(values), {name: Summary.of([v[name] for v in values]) for name in names})


# -- likelihoods --------------------------------------------------------------------------------

def _labels(one_hot: np.ndarray) -> np.ndarray:
    return np.argmax(np.asarray(one_hot), axis=-1)


def bigram_nll(train_windows: Sequence[np.ndarray], test_windows: Sequence[np.ndarray], test_pieces: Sequence[int],
               depth: int) -> tuple[float, str]:
    """Summed bigram NLL of the test windows' events (each after a start token, class `depth`),
    fitted on `train_windows`, or leaving each test piece out when there are none."""
    from generation.lstm.evaluate import Bigram

    bigram = Bigram(depth + 1)
    tokens = [[depth, *labels.tolist()] for labels in test_windows]
    if train_windows:
        for labels in train_windows:
            bigram.add([depth, *labels.tolist()])
        return sum(bigram.nll(t) for t in tokens), "the baseline examples"
    for t in tokens:
        bigram.add(t)
    total = 0.0
    pieces = np.asarray(test_pieces)
    for piece in np.unique(pieces):
        held = [tokens[i] for i in np.flatnonzero(pieces == piece)]
        for t in held:
            bigram.add(t, -1.0)
        total += sum(bigram.nll(t) for t in held)
        for t in held:
            bigram.add(t, 1.0)
    return total, "the other test pieces, one left out at a time"


def _windows(converter: Any, examples: Sequence[str | os.PathLike[str]], progress: bool, what: str
             ) -> tuple[list[np.ndarray], list[np.ndarray], list[int], list[int]]:
    """(inputs, outputs, lengths, piece index) of every window of the examples, uncapped."""
    from generation.progress import bar
    from generation.protos import NoteSequence
    from generation.training import read_sequences

    inputs, outputs, lengths, pieces = [], [], [], []
    sequences = read_sequences(examples)
    with bar(progress, total=len(sequences), unit="piece", desc=what) as shown:
        for piece, serialized in enumerate(sequences):
            tensors = converter.to_tensors(NoteSequence.FromString(serialized), training=False)
            inputs += tensors.inputs
            outputs += tensors.outputs
            lengths += list(tensors.lengths)
            pieces += [piece] * len(tensors.inputs)
            shown.update()
    return inputs, outputs, lengths, pieces


def evaluate(model: Any, examples: Sequence[str | os.PathLike[str]], *,
             baseline_examples: Sequence[str | os.PathLike[str]] = (), num_samples: int = 64, pairs: int = 32,
             interpolation_steps: int = 5, importance_samples: int = IMPORTANCE_SAMPLES, seed: int = 0,
             progress: bool = False) -> CategoricalEvaluation:
    """Evaluates a melody or drum-pattern `TrainedModel` on every window of the TFRecord file(s)
    `examples` (see the module docstring); `progress` shows bars on standard error."""
    from generation.music_vae.trained_model import interpolation_path

    converter = copy.deepcopy(model.config.data_converter)
    converter.max_tensors_per_notesequence = None  # every window of every test piece
    limit = model.config.hparams.max_seq_len
    inputs, outputs, lengths, pieces = _windows(converter, examples, progress, "windowing")
    if not inputs:
        raise NoExamplesError(f"{', '.join(map(str, examples))}: no {model.config.name} windows to evaluate")
    inputs, outputs = [t[:limit] for t in inputs], [t[:limit] for t in outputs]
    lengths = [min(int(n), limit) for n in lengths]
    events = int(sum(lengths))
    _, mu, sigma = model.encode_tensors(inputs, lengths, seed=seed)
    mu, sigma = mu.astype(np.float64), sigma.astype(np.float64)
    kl = 0.5 * (mu ** 2 + sigma ** 2 - 1.0 - 2.0 * np.log(sigma)).sum(axis=1)  # [W] nats

    rng = np.random.default_rng(seed)
    log_weights, reconstruction = [], []
    for _ in range(importance_samples):
        eps = rng.standard_normal(mu.shape)
        z = mu + sigma * eps
        log_px = model.log_likelihood_tensors(outputs, lengths, z.astype(np.float32))  # [W]
        log_pz = -0.5 * (z ** 2 + np.log(2 * np.pi)).sum(axis=1)
        log_qz = -0.5 * (eps ** 2 + np.log(2 * np.pi)).sum(axis=1) - np.log(sigma).sum(axis=1)
        reconstruction.append(log_px)
        log_weights.append(log_px + log_pz - log_qz)
    log_px_mean = np.mean(reconstruction, axis=0)
    weights = np.stack(log_weights)  # [K, W]
    top = weights.max(axis=0)
    iwae = top + np.log(np.exp(weights - top).mean(axis=0))  # [W] log (1/K) sum_k w_k

    targets = [_labels(t) for t in outputs]
    baseline_windows: list[np.ndarray] = []
    if baseline_examples:
        _, train_outputs, train_lengths, _ = _windows(converter, baseline_examples, progress, "bigram data")
        baseline_windows = [_labels(t[:n]) for t, n in zip(train_outputs, train_lengths)]
    bigram_total, fitted_on = bigram_nll(baseline_windows, [t[:n] for t, n in zip(targets, lengths)], pieces,
                                         converter.output_depth)

    length = max(lengths)
    decoded = model.decode_to_tensors(mu.astype(np.float32), length, NEAR_GREEDY, seed=seed)
    correct = sum(int((_labels(d[:n]) == t[:n]).sum()) for d, t, n in zip(decoded, targets, lengths))

    test_statistics = window_statistics(converter, [t[:n] for t, n in zip(targets, lengths)])
    sample_statistics, in_range = None, {}
    if num_samples:
        z = np.random.default_rng(seed).standard_normal((num_samples, mu.shape[1])).astype(np.float32)
        samples = model.decode_to_tensors(z, limit, 1.0, seed=seed)
        sample_statistics = window_statistics(converter, [_labels(s) for s in samples])
        in_range = {name: bool(test_statistics.values[name].low <= summary.mean <= test_statistics.values[name].high)
                    for name, summary in sample_statistics.values.items()}

    interpolation = None
    if pairs and len(set(pieces)) > 1:
        chosen = _pairs(np.asarray(pieces), pairs, np.random.default_rng(seed + 1))
        to_start, to_end, nll_start, nll_end = [], [], [], []
        k = interpolation_steps
        for a, b in chosen:
            path = interpolation_path(mu[a].astype(np.float32), mu[b].astype(np.float32), k)
            points = [_labels(p[:lengths[a]]) for p in model.decode_to_tensors(path, lengths[a], NEAR_GREEDY, seed=seed)]
            to_start.append([float(np.mean(p != targets[a][:len(p)])) for p in points])
            to_end.append([float(np.mean(p != targets[b][:len(p)])) for p in points])
            nll_start.append((-model.log_likelihood_tensors([outputs[a]] * k, [lengths[a]] * k, path) / lengths[a]).tolist())
            nll_end.append((-model.log_likelihood_tensors([outputs[b]] * k, [lengths[b]] * k, path) / lengths[b]).tolist())
        monotone = [bool(np.all(np.diff(s) >= 0) and np.all(np.diff(e) <= 0) and s[-1] > s[0] and e[-1] < e[0])
                    for s, e in zip(to_start, to_end)]
        nll_monotone = [bool(np.all(np.diff(s) > 0) and np.all(np.diff(e) < 0)) for s, e in zip(nll_start, nll_end)]
        interpolation = InterpolationCheck(
            pairs=len(chosen), steps=interpolation_steps, distance_to_start=np.mean(to_start, axis=0).tolist(),
            distance_to_end=np.mean(to_end, axis=0).tolist(), monotone_share=float(np.mean(monotone)),
            example_to_start=to_start[0], example_to_end=to_end[0], nll_to_start=np.mean(nll_start, axis=0).tolist(),
            nll_to_end=np.mean(nll_end, axis=0).tolist(), nll_monotone_share=float(np.mean(nll_monotone)))

    return CategoricalEvaluation(
        name=model.config.name, windows=len(inputs), events=events,
        nll_elbo_per_event=float((kl - log_px_mean).sum() / events),
        nll_iwae_per_event=float(-iwae.sum() / events), importance_samples=importance_samples,
        reconstruction_nll_per_event=float(-log_px_mean.sum() / events), kl_nats_per_window=float(kl.mean()),
        bigram_nll_per_event=bigram_total / events, bigram_fitted_on=fitted_on,
        reconstruction_accuracy=correct / events, test_statistics=test_statistics,
        sample_statistics=sample_statistics, in_range=in_range, interpolation=interpolation)


def _pairs(pieces: np.ndarray, count: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Up to `count` distinct pairs of window indices from different pieces."""
    chosen: list[tuple[int, int]] = []
    seen = set()
    for _ in range(count * 20):
        a, b = (int(i) for i in rng.integers(0, len(pieces), size=2))
        if pieces[a] != pieces[b] and (a, b) not in seen:
            seen.add((a, b))
            chosen.append((a, b))
            if len(chosen) == count:
                break
    return chosen
