"""How well a trained LSTM note model predicts held-out music, and whether its samples degenerate.

- Negative log-likelihood per event (natural log, teacher-forced, START excluded, END included) and
  next-event accuracy over every extracted track of the test data, beside a bigram baseline: an
  interpolated bigram (add-one unigram, `BIGRAM_PRIOR` pseudo-counts) fitted on `baseline_examples`
  (the training data) or, without them, on the other test tracks (leave one track out).
- On `num_samples` unprimed samples at temperature 1.0 and on the test tracks cut to the same
  number of steps: pitch range (semitones), distinct-4-gram ratio of the events, and the longest run
  of one repeated event. Degenerate samples (the same chord forever) show as a low 4-gram ratio and
  a long repeated run next to the data's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from generation.errors import NoExamplesError

BIGRAM_PRIOR = 1.0


@dataclass
class SequenceStatistics:
    """Means over pieces, with the lowest and highest piece beside each."""

    pieces: int
    events_mean: float
    pitch_range_mean: float
    pitch_range_low: float
    pitch_range_high: float
    distinct_4gram_mean: float
    distinct_4gram_low: float
    distinct_4gram_high: float
    longest_run_mean: float
    longest_run_low: float
    longest_run_high: float


@dataclass
class LSTMEvaluation:
    tracks: int
    events: int
    nll_per_event: float  # nats
    accuracy: float
    bigram_nll_per_event: float
    bigram_fitted_on: str
    test_statistics: SequenceStatistics
    sample_statistics: SequenceStatistics | None
    sample_steps: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def distinct_ngram_ratio(tokens: Sequence[int], n: int = 4) -> float:
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 1.0


def longest_run(tokens: Sequence[int]) -> int:
    best = run = 0
    previous = None
    for token in tokens:
        run = run + 1 if token == previous else 1
        best, previous = max(best, run), token
    return best


def cut_to_steps(tokens: Sequence[int], token_steps: np.ndarray, steps: int) -> list[int]:
    """The events of `tokens` (START and END left out by the caller) within their first `steps` steps."""
    advanced, result = 0, []
    for token in tokens:
        if advanced >= steps:
            break
        result.append(int(token))
        advanced += int(token_steps[token])
    return result


def sequence_statistics(encoding: Any, token_lists: Sequence[Sequence[int]], *, shown: Any = None) -> SequenceStatistics:
    """`shown`: a progress bar, advanced by one per piece."""
    ranges, ratios, runs, lengths = [], [], [], []
    for tokens in token_lists:
        if shown is not None:
            shown.update()
        notes = encoding.decode(list(tokens)).notes
        pitches = [n.pitch for n in notes]
        ranges.append(max(pitches) - min(pitches) if pitches else 0)
        ratios.append(distinct_ngram_ratio(tokens))
        runs.append(longest_run(tokens))
        lengths.append(len(tokens))
    if not token_lists:
        raise NoExamplesError("no pieces to take statistics of")

    def trio(values: list[float]) -> tuple[float, float, float]:
        return float(np.mean(values)), float(np.min(values)), float(np.max(values))

    return SequenceStatistics(len(token_lists), float(np.mean(lengths)), *trio(ranges), *trio(ratios), *trio(runs))


class Bigram:
    """P(b | a) = (count(a, b) + prior * P(b)) / (count(a) + prior), P(b) add-one unigram."""

    def __init__(self, vocab_size: int) -> None:
        self.pairs = np.zeros((vocab_size, vocab_size))
        self.unigrams = np.zeros(vocab_size)

    def add(self, tokens: Sequence[int], sign: float = 1.0) -> None:
        a, b = np.asarray(tokens[:-1]), np.asarray(tokens[1:])
        np.add.at(self.pairs, (a, b), sign)
        np.add.at(self.unigrams, b, sign)

    def nll(self, tokens: Sequence[int]) -> float:
        """Summed negative log-likelihood of tokens[1:] given each previous token."""
        a, b = np.asarray(tokens[:-1]), np.asarray(tokens[1:])
        unigram = (self.unigrams + 1) / (self.unigrams.sum() + len(self.unigrams))
        p = (self.pairs[a, b] + BIGRAM_PRIOR * unigram[b]) / (self.pairs[a].sum(axis=1) + BIGRAM_PRIOR)
        return float(-np.log(p).sum())


def _tracks(encoding: Any, examples: Sequence[str | os.PathLike[str]], *, progress: bool = False,
            desc: str = "extracting") -> list[tuple[list[int], int]]:
    from generation.progress import bar
    from generation.protos import NoteSequence
    from generation.training import read_sequences

    result = []
    sequences = read_sequences(examples)
    with bar(progress, total=len(sequences), unit="piece", desc=desc) as shown:
        for serialized in sequences:
            result += encoding.extract(NoteSequence.FromString(serialized))
            shown.update()
    return result


def evaluate(model: Any, examples: Sequence[str | os.PathLike[str]], *,
             baseline_examples: Sequence[str | os.PathLike[str]] = (), num_samples: int = 16,
             sample_steps: int | None = None, seed: int = 0, batch_size: int = 32,
             progress: bool = False) -> LSTMEvaluation:
    """Evaluates an `LSTMModel` on the tracks extracted from the TFRecord file(s) `examples`.

    `progress`: bars on standard error for each step (pieces read, tracks scored, the bigram's
    fit and score, samples' steps, statistics).
    """
    import torch

    from generation.lstm.family import next_event_steps
    from generation.lstm.generate import SamplingOptions
    from generation.progress import bar

    encoding = model.encoding
    tracks = _tracks(encoding, examples, progress=progress)
    if not tracks:
        raise NoExamplesError(f"{', '.join(map(str, examples))}: no {encoding.kind} tracks for {model.config.name}")
    total_nll, correct, events = 0.0, 0, 0
    with torch.inference_mode(), bar(progress, total=len(tracks), unit="track", desc="NLL") as shown:
        for start in range(0, len(tracks), batch_size):
            chunk = tracks[start : start + batch_size]
            T = max(len(t) for t, _ in chunk) - 1
            inputs = torch.zeros(len(chunk), T, dtype=torch.long)
            positions = torch.zeros(len(chunk), T, dtype=torch.long)
            labels = torch.full((len(chunk), T), -100, dtype=torch.long)
            for row, (tokens, first_step) in enumerate(chunk):
                steps = next_event_steps(tokens, encoding.token_steps, first_step)
                inputs[row, : len(tokens) - 1] = torch.tensor(tokens[:-1])
                positions[row, : len(tokens) - 1] = torch.from_numpy(steps[:-1])
                labels[row, : len(tokens) - 1] = torch.tensor(tokens[1:])
            logits = model.model(inputs.to(model.device), positions.to(model.device)).float().cpu()
            valid = labels != -100
            log_probs = logits.log_softmax(-1)
            picked = log_probs.gather(-1, labels.clamp(min=0)[..., None]).squeeze(-1)
            total_nll -= float(picked[valid].sum())
            correct += int((logits.argmax(-1) == labels)[valid].sum())
            events += int(valid.sum())
            shown.update(len(chunk))

    bigram = Bigram(encoding.vocab_size)
    baseline_tracks = _tracks(encoding, baseline_examples, progress=progress, desc="baseline") if baseline_examples else tracks
    # Fit on the baseline tracks (or the test tracks), then score each test track.
    with bar(progress, total=len(baseline_tracks) + len(tracks), unit="track", desc="bigram") as shown:
        for tokens, _ in baseline_tracks:
            bigram.add(tokens)
            shown.update()
        bigram_nll = 0.0
        for tokens, _ in tracks:
            if not baseline_examples:  # leave one track out: fitted on every other test track
                bigram.add(tokens, -1.0)
            bigram_nll += bigram.nll(tokens)
            if not baseline_examples:
                bigram.add(tokens, 1.0)
            shown.update()
    fitted_on = ", ".join(map(str, baseline_examples)) if baseline_examples else "the other test tracks (leave one out)"

    steps = sample_steps or (16 * 16 if encoding.metric else 2000)  # 16 bars of 4/4, or 20 s
    inner = lambda tokens: [t for t in tokens if t not in (encoding.start_token, encoding.end_token)]  # noqa: E731
    data_pieces = [cut_to_steps(inner(tokens), encoding.token_steps, steps) for tokens, _ in tracks]
    samples = None
    if num_samples:
        generator = torch.Generator().manual_seed(seed)
        with bar(progress, total=steps, unit="step", desc=f"sampling {num_samples}") as shown:
            on_steps = (lambda done: shown.update(done - shown.n)) if progress else None
            sampled = model.sample_tokens([encoding.start_token], 0, num_samples, steps, SamplingOptions(), generator,
                                          on_steps=on_steps)
        sample_pieces = [inner(tokens) for tokens in sampled]
    with bar(progress, total=len(data_pieces) + (len(sample_pieces) if num_samples else 0), unit="piece",
             desc="statistics") as shown:
        test_statistics = sequence_statistics(encoding, data_pieces, shown=shown)
        if num_samples:
            samples = sequence_statistics(encoding, sample_pieces, shown=shown)
    return LSTMEvaluation(
        tracks=len(tracks), events=events, nll_per_event=total_nll / events, accuracy=correct / events,
        bigram_nll_per_event=bigram_nll / events, bigram_fitted_on=fitted_on,
        test_statistics=test_statistics, sample_statistics=samples, sample_steps=steps,
    )
