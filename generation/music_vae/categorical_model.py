"""MusicVAE for melodies and drum patterns: Magenta's `MusicVAE(BidirectionalLstmEncoder(),
CategoricalLstmDecoder())`, the model of its `cat-mel_2bar_*` and `cat-drums_2bar_*` configs.

The encoder, latent layers, decoder stack and parameter names are `model.LstmVAE`'s (see
`model.py` for the layout and how it maps onto Magenta's TensorFlow variables). What is categorical:

- Loss (`forward`): Magenta's `MusicVAE._compute_model_loss` with `CategoricalLstmDecoder`. Inputs
  and targets are truncated to `max_seq_len`; z ~ q(z|x) reparameterized; the decoder's input at
  step t is [target[t-1] (zeros at t = 0), z]; per valid step the loss is softmax cross entropy
  (`tf.nn.softmax_cross_entropy_with_logits`) of the one-hot target, summed over each sequence's
  valid steps (`r_loss`); `kl_cost = max(KL - free_bits * ln 2, 0)`;
  `beta = max_beta * (1 - beta_rate ** step)`; `loss = mean(r_loss) + beta * mean(kl_cost)`.
  `accuracy` is Magenta's metric: argmax prediction against the target over valid steps.
- Scheduled sampling (`lstm_utils.get_sampling_probability` with `ScheduledOutputTrainingHelper`):
  when training, each decoder input after the first is, with probability p(step), a one-hot drawn
  from the model's own previous output (softmax at temperature 1; no gradient through the draw)
  instead of the previous target. p is `sampling_rate` for "constant", `1 - rate ** step` for
  "exponential" and `1 - k / (k + exp(step / k))` (k = rate) for "inverse_sigmoid". Sequences that
  draw no such input in a batch are decoded teacher-forced in one pass (the same computation);
  the rest step by step. In evaluation (`model.eval()`) inputs are always the targets: the loss is
  the data's likelihood. (Magenta's eval job instead feeds the model's own samples at every step
  when a schedule is set.)
- Sampling (`decode`, `sample`): step by step, the next event drawn from softmax(logits /
  temperature) (`OneHotCategorical`), its one-hot the next input; with `end_token`, a sequence
  that draws it stops and its later steps are zeros (Magenta's `end_fn`).
- `log_likelihood`: log p(x | z) per sequence, teacher-forced, for held-out NLL bounds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F

from generation.errors import BadConfig
from generation.music_vae.model import LstmVAE, _check_float, _check_int, _random

SAMPLING_SCHEDULES = ("constant", "exponential", "inverse_sigmoid")

# Magenta hparams that configure training, not the module (read by the training loop).
TRAINING_HPARAMS = ("batch_size", "grad_clip", "clip_mode", "grad_norm_clip_to_zero", "learning_rate",
                    "decay_rate", "min_learning_rate")
# Magenta hparams this module implements at one value only.
FIXED_HPARAMS = {"conditional": True, "use_cudnn": False, "residual_encoder": False, "residual_decoder": False}
# Magenta hparams of decoders this model does not have.
UNUSED_HPARAMS = ("control_preprocessing_rnn_size",)


@dataclass
class CategoricalVAEConfig:
    """Model hyperparameters; the defaults are Magenta's `cat-mel_2bar_small` (90 melody classes)."""

    input_depth: int = 90  # encoder input features per step (the converter's input_depth)
    output_depth: int = 90  # classes of one step's event
    control_depth: int = 0
    max_seq_len: int = 32  # steps; longer sequences are truncated
    z_size: int = 256
    enc_rnn_size: list[int] = field(default_factory=lambda: [512])  # per direction, per layer
    dec_rnn_size: list[int] = field(default_factory=lambda: [256, 256])
    dropout_keep_prob: float = 1.0
    free_bits: float = 0.0  # bits of total KL that cost nothing
    max_beta: float = 0.2
    beta_rate: float = 0.99999  # beta = max_beta * (1 - beta_rate ** step)
    sampling_schedule: str = "inverse_sigmoid"
    sampling_rate: float = 1000.0

    def __post_init__(self) -> None:
        for name in ("input_depth", "output_depth", "max_seq_len", "z_size"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("control_depth", self.control_depth, minimum=0)
        if self.output_depth < 2:
            raise BadConfig(f"output_depth must be at least 2 classes; got {self.output_depth}")
        for name in ("enc_rnn_size", "dec_rnn_size"):
            sizes = getattr(self, name)
            if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (list, tuple)) or not sizes:
                raise BadConfig(f"{name} must be a non-empty list of layer sizes; got {sizes!r}")
            for size in sizes:
                _check_int(name, size, minimum=1)
            setattr(self, name, list(sizes))
        for name in ("dropout_keep_prob", "free_bits", "max_beta", "beta_rate", "sampling_rate"):
            _check_float(name, getattr(self, name))
        if not 0.0 < self.dropout_keep_prob <= 1.0:
            raise BadConfig(f"dropout_keep_prob must be in (0, 1]; got {self.dropout_keep_prob}")
        if self.free_bits < 0 or self.max_beta < 0:
            raise BadConfig(f"free_bits and max_beta must be >= 0; got {self.free_bits} and {self.max_beta}")
        if not 0.0 <= self.beta_rate <= 1.0:
            raise BadConfig(f"beta_rate must be in [0, 1]; got {self.beta_rate}")
        if self.sampling_schedule not in SAMPLING_SCHEDULES:
            raise BadConfig(f"sampling_schedule must be one of {', '.join(SAMPLING_SCHEDULES)}; "
                            f"got {self.sampling_schedule!r}")
        rate = self.sampling_rate
        if self.sampling_schedule == "constant" and not 0.0 <= rate <= 1.0:
            raise BadConfig(f"a constant sampling_rate must be in [0, 1]; got {rate}")
        if self.sampling_schedule == "exponential" and not 0.0 < rate < 1.0:
            raise BadConfig(f"an exponential sampling_rate must be in (0, 1); got {rate}")
        if self.sampling_schedule == "inverse_sigmoid" and rate < 1.0:
            raise BadConfig(f"an inverse_sigmoid sampling_rate must be at least 1; got {rate}")

    def beta(self, step: int) -> float:
        """KL weight at a global step: `max_beta * (1 - beta_rate ** step)`."""
        if step < 0:
            raise ValueError(f"step must be >= 0; got {step}")
        return self.max_beta * (1.0 - self.beta_rate ** step)

    def sampling_probability(self, step: int) -> float:
        """Probability, at a global training step, that a decoder input is the model's own sample."""
        rate = self.sampling_rate
        if self.sampling_schedule == "constant":
            return float(rate)
        if self.sampling_schedule == "exponential":
            return 1.0 - rate ** step
        exponent = step / rate
        return 1.0 if exponent > 700 else 1.0 - rate / (rate + math.exp(exponent))  # exp overflows past 709

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any], *, input_depth: int, output_depth: int,
                     control_depth: int = 0) -> CategoricalVAEConfig:
        """From Magenta-named hparams plus the converter's depths; training hparams are skipped, the
        fixed ones must keep their value, anything else unknown is a `BadConfig`."""
        model_keys = {f.name for f in fields(cls)} - {"input_depth", "output_depth", "control_depth"}
        values: dict[str, Any] = {}
        for key, value in hparams.items():
            if key in model_keys:
                values[key] = value
            elif key in TRAINING_HPARAMS or key in UNUSED_HPARAMS:
                continue
            elif key in FIXED_HPARAMS:
                if value != FIXED_HPARAMS[key]:
                    raise BadConfig(f"hparam {key}={value!r} is not supported (only {FIXED_HPARAMS[key]!r})")
            else:
                known = sorted(model_keys | set(TRAINING_HPARAMS) | set(FIXED_HPARAMS) | set(UNUSED_HPARAMS))
                raise BadConfig(f"unknown MusicVAE hparam {key!r}; known: {', '.join(known)}")
        return cls(input_depth=input_depth, output_depth=output_depth, control_depth=control_depth, **values)


class CategoricalMusicVAE(LstmVAE):
    """A bidirectional LSTM encoder and a categorical LSTM decoder (see the module docstring)."""

    config: CategoricalVAEConfig

    def _truncated(self, inputs: torch.Tensor, outputs: torch.Tensor, lengths: torch.Tensor,
                   controls: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        c = self.config
        B, T, _ = inputs.shape
        if outputs.shape[:2] != (B, T) or outputs.shape[2] != c.output_depth:
            raise ValueError(f"outputs must be [{B}, {T}, {c.output_depth}]; got {list(outputs.shape)}")
        lengths = self._check_lengths(lengths, B, T).to(inputs.device)
        T = min(T, c.max_seq_len)
        controls = controls[:, :T] if controls is not None else None
        return inputs[:, :T].float(), outputs[:, :T].float(), lengths.clamp(max=T), controls

    def forward(self, inputs: torch.Tensor, outputs: torch.Tensor, lengths: torch.Tensor,
                controls: torch.Tensor | None = None, step: int = 0,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Loss terms as Magenta computes them; every value is a scalar tensor.

        inputs [B, T, input_depth], outputs [B, T, output_depth] one-hot targets, lengths [B];
        `step` is the global step (beta and the sampling schedule); `generator` draws z's noise
        and the scheduled-sampling draws. r_loss: mean over the batch of each sequence's summed
        cross entropy (nats); kl_loss: mean of max(KL - free_bits * ln 2, 0); kl_bits: mean KL in
        bits; accuracy: share of valid steps whose likeliest class is the target's;
        sampling_probability: p(step) (0 when not training).
        """
        c = self.config
        inputs, outputs, lengths, controls = self._truncated(inputs, outputs, lengths, controls)
        mu, sigma = self.encode(inputs, lengths, controls)
        mu, sigma = mu.float(), sigma.float()
        z = mu + sigma * _random("normal", tuple(mu.shape), generator, mu.device)  # [B, z]
        kl_div = 0.5 * (mu.square() + sigma.square() - 1.0 - 2.0 * torch.log(sigma)).sum(-1)  # [B] nats
        p = c.sampling_probability(step) if self.training else 0.0
        logits = self._training_logits(outputs, z, controls, p, generator).float()  # [B, T, D]
        valid = torch.arange(outputs.shape[1], device=lengths.device)[None, :] < lengths[:, None]  # [B, T]
        step_loss = -(outputs * F.log_softmax(logits, dim=-1)).sum(-1)  # [B, T]
        step_loss = torch.where(valid, step_loss, step_loss.new_zeros(()))
        r_loss = step_loss.sum(-1)  # [B]
        kl_cost = torch.clamp(kl_div - c.free_bits * math.log(2.0), min=0.0)
        beta = c.beta(step)
        n_valid = valid.sum().clamp(min=1)
        correct = (logits.argmax(-1) == outputs.argmax(-1)) & valid
        return {
            "loss": r_loss.mean() + beta * kl_cost.mean(),
            "r_loss": r_loss.mean(),
            "kl_loss": kl_cost.mean(),
            "kl_bits": (kl_div / math.log(2.0)).mean(),
            "beta": logits.new_tensor(beta),
            "accuracy": correct.sum() / n_valid,
            "sampling_probability": logits.new_tensor(p),
        }

    def _training_logits(self, outputs: torch.Tensor, z: torch.Tensor, controls: torch.Tensor | None, p: float,
                         generator: torch.Generator | None) -> torch.Tensor:
        """Decoder logits [B, T, D]: teacher-forced, or with scheduled sampling at probability p."""
        B, T, _ = outputs.shape
        if p <= 0.0 or T < 2:
            return self.decoder_logits(outputs, z, controls)
        sampled = _random("uniform", (B, T), generator, outputs.device) < p  # [B, T]
        sampled[:, 0] = False  # the first input is always the zero start input
        rows = sampled.any(dim=1)
        if not bool(rows.any()):
            return self.decoder_logits(outputs, z, controls)
        logits = outputs.new_empty(B, T, self.config.output_depth)
        plain = ~rows
        if bool(plain.any()):
            logits[plain] = self.decoder_logits(outputs[plain], z[plain],
                                                controls[plain] if controls is not None else None).to(logits.dtype)
        logits[rows] = self._scheduled_logits(outputs[rows], z[rows], controls[rows] if controls is not None else None,
                                              sampled[rows], generator).to(logits.dtype)
        return logits

    def _scheduled_logits(self, outputs: torch.Tensor, z: torch.Tensor, controls: torch.Tensor | None,
                          sampled: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Step-by-step decoding where input t is the model's own draw from step t-1 wherever
        `sampled[:, t]`, else the target of step t-1. outputs [B, T, D], sampled [B, T] -> [B, T, D]."""
        B, T, D = outputs.shape
        states = [(h[None], c[None]) for h, c in self._initial_state(z)]
        u = _random("uniform", (T, B), generator, outputs.device)
        x = outputs.new_zeros(B, D)
        steps = []
        for t in range(T):
            if t:
                with torch.no_grad():
                    drawn = _draw(steps[-1], u[t - 1], 1.0)
                x = torch.where(sampled[:, t, None], drawn, outputs[:, t - 1])
            layer_input = torch.cat([x, z] + ([controls[:, t]] if controls is not None else []), dim=-1)[:, None]
            for i, lstm in enumerate(self.decoder):
                layer_input, states[i] = lstm(self._dropout(layer_input), states[i])
            steps.append(self.output_projection(layer_input[:, 0]))
        return torch.stack(steps, dim=1)

    def log_likelihood(self, outputs: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor,
                       controls: torch.Tensor | None = None) -> torch.Tensor:
        """log p(outputs | z) per sequence [B], in nats, teacher-forced over each valid step
        (outputs [B, T, D] one-hot, T at most max_seq_len). No dropout: call in eval mode."""
        B, T, _ = outputs.shape
        lengths = self._check_lengths(lengths, B, T).to(outputs.device)
        logits = self.decoder_logits(outputs.float(), z.float(), controls).float()
        step = (outputs * F.log_softmax(logits, dim=-1)).sum(-1)  # [B, T]
        valid = torch.arange(T, device=outputs.device)[None, :] < lengths[:, None]
        return torch.where(valid, step, step.new_zeros(())).sum(-1)

    # -- sampling -------------------------------------------------------------------------------

    def sample(self, n: int, length: int | None = None, temperature: float = 1.0, z: torch.Tensor | None = None,
               same_z: bool = False, generator: torch.Generator | None = None,
               end_token: int | None = None) -> torch.Tensor:
        """`n` one-hot sequences [n, length, output_depth] from z ~ N(0, I) (or the given z [n, z_size]);
        `same_z`: one z for all. z is drawn first, then the events, from `generator`."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer; got {n!r}")
        length = self.config.max_seq_len if length is None else length
        if z is None:
            device = self.output_projection.weight.device
            z = _random("normal", (1 if same_z else n, self.config.z_size), generator, device).expand(n, -1)
        elif z.shape != (n, self.config.z_size):
            raise ValueError(f"z must be [{n}, {self.config.z_size}]; got {list(z.shape)}")
        return self.decode(z, length, temperature, generator=generator, end_token=end_token)

    def decode(self, z: torch.Tensor, length: int, temperature: float = 1.0, controls: torch.Tensor | None = None,
               generator: torch.Generator | None = None, end_token: int | None = None) -> torch.Tensor:
        """One-hot samples [B, length, output_depth] (float) from z [B, z_size], each step's event
        drawn from softmax(logits / temperature), uniforms [length, B] drawn up front from
        `generator`. No dropout, whatever the mode. After a sampled `end_token` a row is zeros."""
        c = self.config
        if z.dim() != 2 or z.shape[1] != c.z_size:
            raise ValueError(f"z must be [batch, {c.z_size}]; got {list(z.shape)}")
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"length must be a positive integer; got {length!r}")
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0; got {temperature!r}")
        if controls is not None or c.control_depth:
            raise ValueError("this model takes no controls")
        param = self.output_projection.weight
        with torch.inference_mode():
            z = z.to(device=param.device, dtype=param.dtype)
            B = z.shape[0]
            u = _random("uniform", (length, B), generator, param.device).to(param.dtype)
            states = self._initial_state(z)
            cells = [(lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0) for lstm in self.decoder]
            x = z.new_zeros(B, c.output_depth)
            finished = torch.zeros(B, dtype=torch.bool, device=z.device)
            result = z.new_zeros(length, B, c.output_depth)
            for t in range(length):
                h = torch.cat([x, z], dim=-1)
                for i, (w_ih, w_hh, b_ih, b_hh) in enumerate(cells):
                    h, cell = torch.lstm_cell(h, states[i], w_ih, w_hh, b_ih, b_hh)
                    states[i] = (h, cell)
                x = _draw(torch.addmm(self.output_projection.bias, h, self.output_projection.weight.t()), u[t],
                          temperature)
                result[t] = torch.where(finished[:, None], torch.zeros_like(x), x)
                if end_token is not None:
                    finished |= x[:, end_token] > 0.5
        return result.transpose(0, 1).contiguous().clone()


def _draw(logits: torch.Tensor, u: torch.Tensor, temperature: float) -> torch.Tensor:
    """One-hot draws [B, D] from softmax(logits / temperature), by inverting the CDF at u [B]."""
    probabilities = torch.softmax(logits.float() / temperature, dim=-1)
    cdf = probabilities.cumsum(dim=-1)
    index = (cdf < u[:, None].float() * cdf[:, -1:]).sum(dim=-1).clamp(max=logits.shape[-1] - 1)
    return F.one_hot(index, logits.shape[-1]).to(logits.dtype)
