"""One LSTM over event tokens: Magenta's melody_rnn / drums_rnn / polyphony_rnn / performance_rnn model.

Input per step: the embedding of the previous token, plus (optionally) Magenta's binary counter of
the step the next event falls on, as +-1 bits. N LSTM layers with dropout on each layer's output
(Magenta's DropoutWrapper), optional attention of the top layer's output over its last
`attn_length` outputs (as attention_rnn), then a linear layer to logits over the vocabulary.

Attention differs from Magenta's AttentionCellWrapper in one way, on purpose: the attended context
is mixed into the output instead of being fed back into the next step's input, so training runs the
fused LSTM over a whole window at once rather than one step at a time in Python.

Generation steps the same weights through `Stepper`, which folds the embedding and the counter
into layer 0's input gates (a table lookup per step instead of a matrix product) and samples with
pre-drawn uniforms, so `Stepper` and the plain loop (`plain_sample`) choose the same tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


ATTENTION_BLOCK = 128  # query steps per block of the windowed attention


@dataclass
class EventLSTMConfig:
    vocab_size: int
    rnn_layer_sizes: list[int] = field(default_factory=lambda: [128, 128])
    embedding_size: int = 128
    dropout_keep_prob: float = 1.0
    attn_length: int = 0
    binary_counter_bits: int = 0
    residual_connections: bool = False

    @classmethod
    def from_hparams(cls, hparams: Any, vocab_size: int) -> EventLSTMConfig:
        return cls(vocab_size=vocab_size, rnn_layer_sizes=list(hparams.rnn_layer_sizes),
                   embedding_size=hparams.embedding_size, dropout_keep_prob=hparams.dropout_keep_prob,
                   attn_length=hparams.attn_length, binary_counter_bits=hparams.binary_counter_bits,
                   residual_connections=hparams.residual_connections)


def counter_bits(positions: torch.Tensor, bits: int) -> torch.Tensor:
    """Magenta's binary counter: [...] integer steps -> [..., bits] of +1 / -1 (lowest bit first)."""
    powers = 2 ** torch.arange(bits, device=positions.device)
    return ((positions[..., None] // powers) % 2).float() * 2 - 1


class EventLSTM(nn.Module):
    def __init__(self, config: EventLSTMConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_size)
        sizes = c.rnn_layer_sizes
        inputs = [c.embedding_size + c.binary_counter_bits] + sizes[:-1]
        self.layers = nn.ModuleList(nn.LSTM(i, h, batch_first=True) for i, h in zip(inputs, sizes))
        top = sizes[-1]
        if c.attn_length:
            self.attn_query = nn.Linear(top, top, bias=False)
            self.attn_key = nn.Linear(top, top, bias=False)
            self.attn_mix = nn.Linear(2 * top, top)
        self.output = nn.Linear(top, c.vocab_size)
        self.dropout = nn.Dropout(1.0 - c.dropout_keep_prob)

    def _inputs(self, tokens: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor:
        x = self.embedding(tokens)  # [B, T, E]
        if self.config.binary_counter_bits:
            if positions is None:
                raise ValueError("this model needs the step of each next event (binary_counter_bits > 0)")
            x = torch.cat([x, counter_bits(positions, self.config.binary_counter_bits)], dim=-1)  # [B, T, E + bits]
        return x

    def _attend(self, outputs: torch.Tensor) -> torch.Tensor:
        """Each step's output [B, T, H] mixed with attention over itself and its `attn_length`
        predecessors. Queries go in blocks, each against only the keys its window can reach, so
        memory and work grow with T * (block + attn_length), not T * T (a long piece in `evaluate`)."""
        B, T, H = outputs.shape
        K = self.config.attn_length
        queries, keys = self.attn_query(outputs), self.attn_key(outputs)  # [B, T, H]
        contexts = []
        for start in range(0, T, ATTENTION_BLOCK):
            stop = min(start + ATTENTION_BLOCK, T)
            low = max(0, start - K)
            scores = queries[:, start:stop] @ keys[:, low:stop].transpose(1, 2) / math.sqrt(H)  # [B, b, b + K']
            t = torch.arange(start, stop, device=outputs.device)[:, None]
            s = torch.arange(low, stop, device=outputs.device)[None, :]
            window = (s <= t) & (s >= t - K)  # [b, b + K']
            weights = scores.masked_fill(~window, float("-inf")).softmax(dim=-1)
            contexts.append(weights @ outputs[:, low:stop])  # [B, b, H]
        context = torch.cat(contexts, dim=1)  # [B, T, H]
        return torch.tanh(self.attn_mix(torch.cat([outputs, context], dim=-1)))  # [B, T, H]

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """tokens [B, T] (int64), positions [B, T] (the step of each next event) -> logits [B, T, V]."""
        x = self._inputs(tokens, positions)
        for index, layer in enumerate(self.layers):
            y, _ = layer(x)  # [B, T, H_i]
            y = self.dropout(y)
            x = x + y if self.config.residual_connections and index > 0 and x.shape == y.shape else y
        if self.config.attn_length:
            x = self._attend(x)
        return self.output(x)  # [B, T, V]


# -- sampling ------------------------------------------------------------------------------------


def choose(logits: torch.Tensor, u: torch.Tensor, temperature: float, top_k: int, top_p: float,
           with_log_prob: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Tokens [B] drawn from logits [B, V] by inverse CDF with uniforms u [B] in [0, 1), and (with
    `with_log_prob`) the log-probability [B] of each under the distribution it was drawn from (after
    temperature, top-k and top-p). The same arithmetic in the fast and the plain loop, so both pick alike."""
    scaled = logits if temperature == 1.0 else logits / temperature
    if top_k and top_k < scaled.shape[-1]:
        kth = scaled.topk(top_k, dim=-1).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    if top_p < 1.0:
        ordered, order = scaled.sort(dim=-1, descending=True)
        probabilities = ordered.softmax(dim=-1)
        drop = (probabilities.cumsum(dim=-1) - probabilities) >= top_p  # keep the smallest set reaching top_p
        scaled = scaled.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    cdf = scaled.softmax(dim=-1).cumsum_(dim=-1)
    tokens = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1)).squeeze(-1).clamp_(max=scaled.shape[-1] - 1)
    if not with_log_prob:
        return tokens, None
    return tokens, scaled.log_softmax(dim=-1).gather(-1, tokens[:, None]).squeeze(-1)


@dataclass
class SamplingState:
    """Everything one row of a batch needs to go on generating (gathered together for beam search)."""

    states: list[tuple[torch.Tensor, torch.Tensor]]  # per layer (h, c): [B, H_i]
    token: torch.Tensor  # [B] the last token fed
    position: torch.Tensor  # [B] the step of the next event
    memory: torch.Tensor | None  # [B, attn_length + 1, H] the top layer's last outputs (attention)
    keys: torch.Tensor | None  # [B, attn_length + 1, H] their keys
    filled: int = 0  # how many memory slots hold real outputs

    def select(self, rows: torch.Tensor) -> SamplingState:
        pick = lambda t: None if t is None else t.index_select(0, rows)  # noqa: E731
        return SamplingState([(h.index_select(0, rows), c.index_select(0, rows)) for h, c in self.states],
                             self.token.index_select(0, rows), self.position.index_select(0, rows),
                             pick(self.memory), pick(self.keys), self.filled)


class Stepper:
    """Steps a trained `EventLSTM` one token at a time for generation, with the weights arranged once."""

    def __init__(self, model: EventLSTM, token_steps: torch.Tensor) -> None:
        c = model.config
        self.model, self.config = model, c
        self.token_steps = token_steps.to(model.output.weight.device)  # [V] steps each token advances
        with torch.no_grad():
            first = model.layers[0]
            w_ih = first.weight_ih_l0  # [4H0, E + bits]
            E = c.embedding_size
            # Layer 0's input gates for every token, bias included: embedding @ W_e.T + b_ih.
            self.token_gates = torch.addmm(first.bias_ih_l0, model.embedding.weight, w_ih[:, :E].t()).contiguous()
            self.counter_gates = None
            if c.binary_counter_bits:
                every = torch.arange(2**c.binary_counter_bits, device=w_ih.device)
                self.counter_gates = (counter_bits(every, c.binary_counter_bits) @ w_ih[:, E:].t()).contiguous()
            self.empty_input = w_ih.new_empty(w_ih.shape[0], 0)
            self.layer0 = (first.weight_hh_l0, first.bias_hh_l0)
            self.rest = [(l.weight_ih_l0, l.weight_hh_l0, l.bias_ih_l0, l.bias_hh_l0) for l in model.layers[1:]]
            self.out_t = model.output.weight.t().contiguous()
            self.out_b = model.output.bias

    def initial_state(self, batch: int) -> SamplingState:
        w = self.out_t
        states = [(w.new_zeros(batch, h), w.new_zeros(batch, h)) for h in self.config.rnn_layer_sizes]
        memory = keys = None
        if self.config.attn_length:
            H = self.config.rnn_layer_sizes[-1]
            memory = w.new_zeros(batch, self.config.attn_length + 1, H)
            keys = w.new_zeros(batch, self.config.attn_length + 1, H)
        zero = torch.zeros(batch, dtype=torch.long, device=w.device)
        return SamplingState(states, zero, zero.clone(), memory, keys)

    def step(self, state: SamplingState, token: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """Feeds tokens [B] whose next events fall on steps `position` [B]; returns logits [B, V]."""
        gates = self.token_gates.index_select(0, token)  # [B, 4H0]
        if self.counter_gates is not None:
            gates = gates + self.counter_gates.index_select(0, position % self.counter_gates.shape[0])
        B = token.shape[0]
        w_hh, b_hh = self.layer0
        h, c = torch.lstm_cell(gates.new_empty(B, 0), state.states[0], self.empty_input, w_hh, gates, b_hh)
        state.states[0] = (h, c)
        for index, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.rest, start=1):
            h_next, c = torch.lstm_cell(h, state.states[index], w_ih, w_hh, b_ih, b_hh)
            state.states[index] = (h_next, c)
            h = h + h_next if self.config.residual_connections and h.shape == h_next.shape else h_next
        if self.config.attn_length:
            h = self._attend_step(state, h)
        state.token, state.position = token, position
        return torch.addmm(self.out_b, h, self.out_t)  # [B, V]

    def _attend_step(self, state: SamplingState, h: torch.Tensor) -> torch.Tensor:
        model = self.model
        assert state.memory is not None and state.keys is not None
        # Shift the window left by one and put this step's output last.
        state.memory = torch.cat([state.memory[:, 1:], h[:, None]], dim=1)  # [B, K + 1, H]
        state.keys = torch.cat([state.keys[:, 1:], model.attn_key(h)[:, None]], dim=1)
        state.filled = min(state.filled + 1, state.memory.shape[1])
        query = model.attn_query(h)  # [B, H]
        scores = (state.keys @ query[:, :, None]).squeeze(-1) / math.sqrt(h.shape[-1])  # [B, K + 1]
        scores[:, : state.memory.shape[1] - state.filled] = float("-inf")  # slots before the first step
        context = (scores.softmax(dim=-1)[:, None, :] @ state.memory).squeeze(1)  # [B, H]
        return torch.tanh(model.attn_mix(torch.cat([h, context], dim=-1)))

    def feed(self, state: SamplingState, tokens: torch.Tensor, first_step: torch.Tensor) -> torch.Tensor:
        """Feeds a primer of tokens [B, T] (rows alike in length) whose first event after the first
        token falls on `first_step` [B]; returns the logits after its last token [B, V].

        The primer runs through the fused LSTM in one pass (a long piece primes in milliseconds,
        not one Python step per event); the states it leaves are the stepper's."""
        model, c = self.model, self.config
        steps = self.token_steps[tokens].clone()
        steps[:, 0] = 0
        positions = first_step[:, None] + steps.cumsum(dim=1)  # [B, T] the step of each next event
        x = model._inputs(tokens, positions)
        for index, layer in enumerate(model.layers):
            h0, c0 = state.states[index]
            y, (h, cell) = layer(x, (h0[None].contiguous(), c0[None].contiguous()))
            state.states[index] = (h[0], cell[0])
            x = x + y if c.residual_connections and index > 0 and x.shape == y.shape else y  # [B, T, H]
        if c.attn_length:
            keep = min(x.shape[1], c.attn_length + 1)
            recent = x[:, -keep:]  # [B, keep, H] the window the next step attends over
            assert state.memory is not None and state.keys is not None
            state.memory = torch.cat([state.memory[:, keep:], recent], dim=1)
            state.keys = torch.cat([state.keys[:, keep:], model.attn_key(recent)], dim=1)
            state.filled = min(state.filled + keep, state.memory.shape[1])
            x = model._attend(recent)  # the last step's window is all of `recent`
        state.token, state.position = tokens[:, -1], positions[:, -1]
        return model.output(x[:, -1])  # [B, V]


def plain_sample(model: EventLSTM, token_steps: torch.Tensor, primer: list[int], first_step: int, u: torch.Tensor,
                 temperature: float, top_k: int, top_p: float, banned: tuple[int, ...] = ()) -> list[list[int]]:
    """The straightforward loop (module calls, the whole input rebuilt per step) that `Stepper`
    must agree with: tokens [B][steps] sampled with uniforms u [steps, B] after the primer, never
    one of `banned`."""
    B = u.shape[1]
    model.eval()
    with torch.no_grad():
        tokens = torch.tensor(primer, dtype=torch.long)[None].repeat(B, 1)  # [B, P]
        out: list[list[int]] = [[] for _ in range(B)]
        for t in range(u.shape[0]):
            steps = token_steps[tokens].clone()
            steps[:, 0] = 0
            positions = first_step + steps.cumsum(dim=1)  # [B, T] the step of each next event
            logits = model(tokens, positions)[:, -1]  # [B, V]
            logits[:, list(banned)] = float("-inf")
            chosen, _ = choose(logits, u[t], temperature, top_k, top_p)
            for b in range(B):
                out[b].append(int(chosen[b]))
            tokens = torch.cat([tokens, chosen[:, None]], dim=1)
    return out
