"""The LSTM note models as a family of the shared training loop (`generation.training`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from generation.protos import NoteSequence


def next_event_steps(tokens: Sequence[int], token_steps: np.ndarray, first_step: int) -> np.ndarray:
    """The step on which the event after each token falls ([T] int64): the first event after the
    first token is on `first_step`, and each later token moves it on by the steps it advances."""
    steps = token_steps[np.asarray(tokens, dtype=np.int64)]
    steps[0] = 0
    return first_step + np.cumsum(steps)


def windows(tokens: list[int], positions: np.ndarray, length: int, offset: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Training windows of `length` inputs (length + 1 tokens: inputs and next-token labels), each
    overlapping the next by one token; the first starts at `offset` (random in training)."""
    tokens_array = np.asarray(tokens, dtype=np.int32)
    result = []
    for start in range(min(offset, max(0, len(tokens) - 2)), len(tokens) - 1, length):
        stop = min(start + length + 1, len(tokens))
        result.append((tokens_array[start:stop], positions[start:stop].astype(np.int64)))
    return result


class LSTMFamily:
    """Event-token windows from each NoteSequence; teacher-forced cross-entropy."""

    name = "lstm"

    def build_model(self, config: Any) -> Any:
        from generation.lstm.model import EventLSTM, EventLSTMConfig

        return EventLSTM(EventLSTMConfig.from_hparams(config.hparams, config.encoding.vocab_size))

    def examples(self, config: Any, serialized_sequence: bytes, *, training: bool, rng: np.random.Generator) -> list[Any]:
        encoding = config.encoding
        length = config.hparams.max_seq_len
        result = []
        tracks = encoding.extract(NoteSequence.FromString(serialized_sequence), Counter(), rng if training else None)
        for tokens, first_step in tracks:
            positions = next_event_steps(tokens, encoding.token_steps, first_step)
            offset = int(rng.integers(0, length)) if training and len(tokens) > length + 1 else 0
            result += windows(tokens, positions, length, offset)
        return result

    def collate(self, examples: Sequence[Any]) -> dict[str, Any]:
        import torch

        T = max(len(tokens) for tokens, _ in examples) - 1
        B = len(examples)
        inputs = np.zeros((B, T), np.int64)
        positions = np.zeros((B, T), np.int64)
        labels = np.full((B, T), -100, np.int64)
        for row, (tokens, steps) in enumerate(examples):
            n = len(tokens) - 1
            inputs[row, :n] = tokens[:-1]
            positions[row, :n] = steps[:-1]
            labels[row, :n] = tokens[1:]
        return {"tokens": torch.from_numpy(inputs),  # [B, T]
                "positions": torch.from_numpy(positions),  # [B, T] the step of each next event
                "labels": torch.from_numpy(labels)}  # [B, T] the next token, -100 where padded

    def loss(self, model: Any, batch: dict[str, Any], step: int) -> dict[str, Any]:
        # Through the module call (not .loss directly), so DistributedDataParallel syncs gradients.
        import torch.nn.functional as F

        logits = model(batch["tokens"], batch["positions"])
        labels = batch["labels"].reshape(-1)
        flat = logits.reshape(-1, logits.shape[-1]).float()
        loss = F.cross_entropy(flat, labels, ignore_index=-100)
        valid = labels != -100
        accuracy = (flat.argmax(-1)[valid] == labels[valid]).float().mean()
        return {"loss": loss, "accuracy": accuracy, "perplexity": loss.detach().exp()}
