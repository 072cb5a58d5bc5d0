"""The LSTM model and its sampling: the fast stepper agrees with the model's forward pass and with
the plain loop; temperature, top-k, top-p and beam search behave; attention looks back only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generation.lstm.model import EventLSTM, EventLSTMConfig, Stepper, choose, plain_sample

VOCAB = 30


def model_with(**overrides) -> EventLSTM:
    torch.manual_seed(0)
    config = EventLSTMConfig(vocab_size=VOCAB, rnn_layer_sizes=[24, 24, 24], embedding_size=12, attn_length=5,
                             binary_counter_bits=4, residual_connections=True)
    for key, value in overrides.items():
        setattr(config, key, value)
    return EventLSTM(config).eval()


STEPS = torch.tensor([1] * (VOCAB - 2) + [0, 0])  # every token one step, the last two (START, END) none


def decided_draws(model: EventLSTM, primer: list[int], first_step: int, tokens: list[int], u: torch.Tensor,
                  temperature: float, top_k: int, top_p: float, banned: tuple[int, ...]) -> int:
    """How many of the draws that picked `tokens` after `primer` (with uniforms u [draws]) no float32
    rounding of the logits could change: the count before the first draw whose uniform lies within
    1e-4 of a boundary of the CDF, or whose top-k or top-p cut lies within 1e-4 of a logit or a
    probability. Two paths computing the logits (other kernels, other sums) agree up to there."""
    sequence = torch.tensor(primer + tokens)[None]
    steps = STEPS[sequence].clone()
    steps[:, 0] = 0
    with torch.no_grad():
        all_logits = model(sequence, first_step + steps.cumsum(dim=1))[0, len(primer) - 1 :]  # [draws + 1, V]
    for t, logits in enumerate(all_logits[: len(tokens)]):
        scaled = logits.clone()
        scaled[list(banned)] = float("-inf")
        scaled = scaled / temperature
        ordered = scaled.sort(descending=True).values
        if top_k and top_k < len(ordered):
            if ordered[top_k - 1] - ordered[top_k] < 1e-4:
                return t
            scaled = scaled.masked_fill(scaled < ordered[top_k - 1], float("-inf"))
        if top_p < 1.0:
            ordered, order = scaled.sort(descending=True)
            probabilities = ordered.softmax(-1)
            below = probabilities.cumsum(-1) - probabilities
            if (below - top_p).abs().min() < 1e-4:
                return t
            scaled = scaled.masked_fill((below >= top_p).scatter(-1, order, below >= top_p), float("-inf"))
        cdf = scaled.softmax(-1).cumsum(-1)
        if (cdf - u[t] * cdf[-1]).abs().min() < 1e-4:
            return t
    return len(tokens)


@pytest.mark.parametrize("overrides", [{}, {"attn_length": 0, "binary_counter_bits": 0, "residual_connections": False}])
def test_stepping_gives_the_forward_passs_logits(overrides) -> None:
    model = model_with(**overrides)
    tokens = torch.randint(0, VOCAB, (3, 17))
    positions = 5 + STEPS[tokens].cumsum(dim=1)
    with torch.no_grad():
        full = model(tokens, positions)  # [3, 17, V]
        stepper = Stepper(model, STEPS)
        state = stepper.initial_state(3)
        stepped = torch.stack([stepper.step(state, tokens[:, t], positions[:, t]) for t in range(17)], dim=1)
    assert torch.allclose(full, stepped, atol=1e-5)  # fused LSTM vs cells step by step: float32 rounding


def test_attention_never_looks_ahead() -> None:
    model = model_with()
    tokens = torch.randint(0, VOCAB, (1, 12))
    changed = tokens.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % VOCAB
    with torch.no_grad():
        a, b = model(tokens, torch.arange(12)[None]), model(changed, torch.arange(12)[None])
    # Exact on any CPU: the same kernels on the same shapes, and masked scores weigh exactly 0.
    assert torch.equal(a[:, :8], b[:, :8]) and not torch.allclose(a[:, 8:], b[:, 8:])


@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, 0, 1.0), (0.7, 5, 1.0), (1.3, 0, 0.9)])
def test_the_fast_loop_picks_the_plain_loops_tokens(temperature, top_k, top_p) -> None:
    from generation.lstm.generate import LSTMModel, SamplingOptions

    model = model_with()
    generator = torch.Generator().manual_seed(3)
    u = torch.rand((40, 4), generator=generator)
    primer = [VOCAB - 2, 4, 7, 9]
    expected = plain_sample(model, STEPS, primer, 2, u, temperature, top_k, top_p, banned=(VOCAB - 2,))

    fast = LSTMModel.__new__(LSTMModel)  # the sampling loop of a loaded model, around this one
    fast.model, fast.device, fast.token_steps = model, torch.device("cpu"), STEPS
    fast.stepper = Stepper(model, STEPS)
    fast.encoding = type("E", (), {"end_token": VOCAB - 1, "start_token": VOCAB - 2})()
    generator = torch.Generator().manual_seed(3)
    options = SamplingOptions(temperature, top_k, top_p, allow_end=True)
    got = fast.sample_tokens(primer, 2, 4, 40, options, generator)
    # The fast loop draws MAX_EVENTS_PER_STEP * steps uniforms up front; the first 40 rows are u.
    compared = 0
    for row, tokens in enumerate(got):
        plain = expected[row][: expected[row].index(VOCAB - 1) + 1] if VOCAB - 1 in expected[row] else expected[row]
        assert VOCAB - 2 not in tokens
        # Two paths compute the logits (stepped cells vs the whole forward pass): float32 rounding can
        # move a draw that sits on a boundary, so compare the draws no rounding could change.
        n = decided_draws(model, primer, 2, plain, u[:, row], temperature, top_k, top_p, (VOCAB - 2,))
        assert tokens[:n] == plain[:n]
        compared += n
    assert compared >= 0.75 * sum(len(row) for row in got), compared


def test_choose_follows_the_distribution_and_its_cuts() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    u = torch.linspace(0, 1, 2001)[:-1]
    picked = torch.stack([choose(logits, x[None], 1.0, 0, 1.0)[0] for x in u]).flatten()
    shares = np.bincount(picked.numpy(), minlength=4) / len(u)
    assert np.allclose(shares, [0.5, 0.3, 0.15, 0.05], atol=2e-3)
    top2 = torch.stack([choose(logits, x[None], 1.0, 2, 1.0)[0] for x in u]).flatten()
    assert set(top2.tolist()) == {0, 1}
    nucleus = torch.stack([choose(logits, x[None], 1.0, 0, 0.7)[0] for x in u]).flatten()
    assert set(nucleus.tolist()) == {0, 1}  # 0.5 + 0.3 is the smallest set reaching 0.7
    cold = torch.stack([choose(logits, x[None], 0.01, 0, 1.0)[0] for x in u]).flatten()
    assert set(cold.tolist()) == {0}
    _, log_prob = choose(logits, torch.tensor([0.0]), 1.0, 2, 1.0, with_log_prob=True)
    assert float(log_prob) == pytest.approx(np.log(0.5 / 0.8), abs=1e-6)


def test_feeding_a_primer_in_one_pass_leaves_the_stepped_state() -> None:
    model = model_with()
    tokens = torch.randint(0, VOCAB, (2, 50))
    first = torch.tensor([3, 7])
    with torch.no_grad():
        stepper = Stepper(model, STEPS)
        fed = stepper.initial_state(2)
        logits_fed = stepper.feed(fed, tokens, first)
        stepped = stepper.initial_state(2)
        position = first.clone()
        for t in range(tokens.shape[1]):
            position = position + (STEPS[tokens[:, t]] if t > 0 else 0)
            logits_stepped = stepper.step(stepped, tokens[:, t], position)
        assert torch.allclose(logits_fed, logits_stepped, atol=1e-5)  # one fused pass vs steps: float32 rounding
        next_token = torch.tensor([1, 2])
        a = stepper.step(fed, next_token, fed.position + 1)
        b = stepper.step(stepped, next_token, stepped.position + 1)
        assert torch.allclose(a, b, atol=1e-5) and torch.equal(fed.position, stepped.position)


def test_blocked_attention_equals_the_full_windowed_attention() -> None:
    import math

    model = model_with(attn_length=7)
    outputs = torch.randn(2, 300, 24)  # longer than a block
    with torch.no_grad():
        got = model._attend(outputs)
        scores = model.attn_query(outputs) @ model.attn_key(outputs).transpose(1, 2) / math.sqrt(24)
        t = torch.arange(300)
        window = (t[None, :] <= t[:, None]) & (t[None, :] >= t[:, None] - 7)
        context = scores.masked_fill(~window, float("-inf")).softmax(-1) @ outputs
        expected = torch.tanh(model.attn_mix(torch.cat([outputs, context], dim=-1)))
    assert torch.allclose(got, expected, atol=1e-5)  # blocks vs one masked product: float32 rounding


def test_a_piece_is_as_long_as_asked_unless_ending_is_allowed() -> None:
    from generation.lstm.generate import LSTMModel, SamplingOptions

    model = model_with()
    with torch.no_grad():
        model.output.bias[VOCAB - 1] = 8.0  # a model that wants to end at once
    fast = LSTMModel.__new__(LSTMModel)
    fast.model, fast.device, fast.token_steps = model, torch.device("cpu"), STEPS
    fast.stepper = Stepper(model, STEPS)
    fast.encoding = type("E", (), {"end_token": VOCAB - 1, "start_token": VOCAB - 2})()
    kept = fast.sample_tokens([VOCAB - 2], 0, 2, 30, SamplingOptions(), torch.Generator().manual_seed(1))
    assert all(len(row) == 30 and VOCAB - 1 not in row for row in kept)
    ended = fast.sample_tokens([VOCAB - 2], 0, 2, 30, SamplingOptions(allow_end=True), torch.Generator().manual_seed(1))
    assert all(row[-1] == VOCAB - 1 and len(row) < 30 for row in ended)
