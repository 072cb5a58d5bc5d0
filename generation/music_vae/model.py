"""GrooVAE: Magenta's MusicVAE with a BidirectionalLstmEncoder and a GrooveLstmDecoder, in PyTorch.

One file, one config. What each piece mirrors in `magenta/models/music_vae`:

- `GrooVAE.encode`: `MusicVAE.encode` + `BidirectionalLstmEncoder.encode`. Controls (if any) are
  concatenated depthwise to the inputs; a stack of bidirectional LSTM layers runs over each sequence
  up to its length (`stack_bidirectional_dynamic_rnn` with `sequence_length`); the last forward and
  last backward `h` of the top layer are concatenated; `mu = dense(...)` and
  `sigma = softplus(dense(...))`.
- `GrooVAE.forward`: `MusicVAE._compute_model_loss` + `BaseLstmDecoder.reconstruction_loss` +
  `GrooveLstmDecoder._flat_reconstruction_loss`. `z ~ q(z|x)` (reparameterized, in training and in
  evaluation alike); the decoder's initial `(c, h)` of every layer is `tanh(dense(z))`; the decoder
  input at step t is `[target[t-1] (zeros at t=0), z, control[t]]` (teacher forcing). Per step and
  drum class: hits `log_loss(target, sigmoid(logit))` (TF's `tf.losses.log_loss`, epsilon 1e-7),
  velocities `(target - sigmoid(logit))**2`, offsets `(target - tanh(logit))**2`; these are summed over
  classes and over the valid steps of each sequence (`r_loss` per sequence), then averaged over the
  batch. `kl_div = KL(q || N(0, I))` summed over z; free bits apply to that total:
  `kl_cost = max(kl_div - free_bits * ln 2, 0)`; `beta = max_beta * (1 - beta_rate ** step)`;
  `loss = mean(r_loss) + beta * mean(kl_cost)`.
- Dropout: `lstm_utils.rnn_cell` wraps every LSTM layer in `DropoutWrapper(input_keep_prob=...)`, i.e.
  dropout on each layer's input, a fresh mask per time step, only when training. Here: `F.dropout`
  on each layer's input sequence when `self.training` (independent masks for the forward and backward
  encoder cells, as they are separate cells in Magenta). Sampling never drops out (Magenta builds its
  sampling graph with `is_training=False`).
- `GrooVAE.decode` / `sample`: `GrooveLstmDecoder._sample` through `BaseLstmDecoder.sample`: step by
  step, hits ~ Bernoulli(logits / temperature), velocities = sigmoid, offsets = tanh, and the sampled
  vector (with z and the next control) is the next input. Added here, off unless asked for
  (`given_hits`; the `gen` commands ask for it): each sampled hit's velocity and offset divided by
  its hit probability, i.e. as expected given the hit (`dynamics_given_hits`).

Parameters (the `state_dict` keys a safetensors checkpoint stores; all float32). They belong to
`LstmVAE`, which the melody and drum-pattern model (`categorical_model.CategoricalMusicVAE`)
shares, so both map onto Magenta's variables the same way:

    encoder_fw.{i}.{weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0}   layer i, forward cell
    encoder_bw.{i}.{...}                                                  layer i, backward cell
    encoder_mu.{weight, bias}          [z, 2 * enc[-1]]
    encoder_sigma.{weight, bias}       [z, 2 * enc[-1]]   (softplus applied)
    z_to_initial_state.{weight, bias}  [2 * sum(dec), z]  (tanh; split as c0, h0, c1, h1, ...)
    decoder.{i}.{weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0}      layer i; layer 0's input
                                       is [previous output (output_depth), z (z_size), control]
    output_projection.{weight, bias}   [output_depth, dec[-1]]

LSTM weights use PyTorch's gate order (i, f, g, o); TF's LSTMBlockCell uses (i, g, f, o) in one
kernel `[input + hidden, 4 * hidden]` and adds a constant forget bias of 1.0. Here that 1.0 lives
in `bias_ih`'s forget slice (initialized to 1.0) and `bias_hh` is fixed at zero (`requires_grad` is
off), so there is one trainable bias per gate as in TF. A converted TF checkpoint maps to
`weight_ih = kernel[:input].T`, `weight_hh = kernel[input:].T` (gates reordered),
`bias_ih = bias + [0, 1, 0, 0]` per gate block, `bias_hh = 0`.

Initialization follows TF's defaults: LSTM kernels glorot-uniform over the whole
`[input + hidden, 4 * hidden]` kernel, dense kernels glorot-uniform, biases zero, and
`encoder/mu`, `encoder/sigma`, `decoder/z_to_initial_state` kernels normal with stddev 0.001.

Sampling: `decode` steps the decoder cells directly (`torch.lstm_cell` on the same parameters) with
the loop-invariant work hoisted: the z (and control) part of layer 0's input projection is computed
once, outputs are written into a preallocated buffer, and all Bernoulli uniforms are drawn up front
from the generator. `decode_reference` is the plain loop computing the same thing step by step; the
two give bitwise-equal outputs for the same generator seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from generation.errors import BadConfig

# Epsilon of `tf.losses.log_loss`, which Magenta's GrooveLstmDecoder uses for the hits loss.
LOG_LOSS_EPSILON = 1e-7

# Magenta hparams that configure training, not the module; `GrooVAEConfig.from_hparams` accepts and
# ignores them (with their Magenta defaults, for reference).
TRAINING_HPARAMS = {
    "batch_size": 512,
    "grad_clip": 1.0,
    "clip_mode": "global_norm",
    "grad_norm_clip_to_zero": 10000,
    "learning_rate": 0.001,
    "decay_rate": 0.9999,
    "min_learning_rate": 0.00001,
}
# Magenta hparams that GrooVAE leaves at values this module implements; any other value is refused.
FIXED_HPARAMS = {
    "conditional": True,
    "use_cudnn": False,  # deprecated in Magenta; cuDNN or not, the math is the same
    "residual_encoder": False,
    "residual_decoder": False,
    "sampling_schedule": "constant",
    "sampling_rate": 0.0,  # constant 0: teacher forcing
}


@dataclass
class GrooVAEConfig:
    """Model hyperparameters; the defaults are Magenta's `groovae_4bar` (9 drum classes)."""

    input_depth: int = 27  # encoder input features per step (GrooveConverter.input_depth)
    output_depth: int = 27  # 3 * drum classes: hits, velocities, offsets
    control_depth: int = 0  # 0: no controls (hits_as_controls: = drum classes)
    max_seq_len: int = 64  # longer sequences are truncated (16 steps per bar)
    z_size: int = 256
    enc_rnn_size: list[int] = field(default_factory=lambda: [512])  # per direction, per layer
    dec_rnn_size: list[int] = field(default_factory=lambda: [256, 256])
    dropout_keep_prob: float = 0.3  # input keep probability of every LSTM layer, training only
    free_bits: float = 48.0  # bits of total KL that cost nothing
    max_beta: float = 0.2  # KL weight ...
    beta_rate: float = 0.0  # ... annealed as max_beta * (1 - beta_rate ** step)

    def __post_init__(self) -> None:
        for name in ("input_depth", "output_depth", "max_seq_len", "z_size"):
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("control_depth", self.control_depth, minimum=0)
        if self.output_depth % 3:
            raise BadConfig(
                f"output_depth must be 3 * the number of drum classes (hits, velocities, offsets); "
                f"got {self.output_depth}"
            )
        for name in ("enc_rnn_size", "dec_rnn_size"):
            sizes = getattr(self, name)
            if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (list, tuple)) or not sizes:
                raise BadConfig(f"{name} must be a non-empty list of layer sizes; got {sizes!r}")
            for size in sizes:
                _check_int(name, size, minimum=1)
            setattr(self, name, list(sizes))
        _check_float("dropout_keep_prob", self.dropout_keep_prob)
        if not 0.0 < self.dropout_keep_prob <= 1.0:
            raise BadConfig(f"dropout_keep_prob must be in (0, 1]; got {self.dropout_keep_prob}")
        _check_float("free_bits", self.free_bits)
        if self.free_bits < 0:
            raise BadConfig(f"free_bits must be >= 0; got {self.free_bits}")
        _check_float("max_beta", self.max_beta)
        if self.max_beta < 0:
            raise BadConfig(f"max_beta must be >= 0; got {self.max_beta}")
        _check_float("beta_rate", self.beta_rate)
        if not 0.0 <= self.beta_rate <= 1.0:
            raise BadConfig(f"beta_rate must be in [0, 1]; got {self.beta_rate}")

    @property
    def num_classes(self) -> int:
        return self.output_depth // 3

    def beta(self, step: int) -> float:
        """KL weight at a global step: `max_beta * (1 - beta_rate ** step)` (0 at step 0)."""
        if step < 0:
            raise ValueError(f"step must be >= 0; got {step}")
        return self.max_beta * (1.0 - self.beta_rate ** step)

    @classmethod
    def from_hparams(
        cls, hparams: Mapping[str, Any], *, input_depth: int, output_depth: int, control_depth: int = 0
    ) -> GrooVAEConfig:
        """Builds a config from Magenta-named hparams plus the data converter's depths.

        Training hparams (`TRAINING_HPARAMS`) are ignored; `FIXED_HPARAMS` must keep GrooVAE's values;
        any other unknown key is a `BadConfig`. Keys left out take this class's defaults (groovae_4bar's
        values), not the defaults of Magenta's `lstm_models.get_default_hparams()`.
        """
        model_keys = {f.name for f in fields(cls)} - {"input_depth", "output_depth", "control_depth"}
        values: dict[str, Any] = {}
        for key, value in hparams.items():
            if key in model_keys:
                values[key] = value
            elif key in TRAINING_HPARAMS:
                continue
            elif key in FIXED_HPARAMS:
                if value != FIXED_HPARAMS[key]:
                    raise BadConfig(
                        f"hparam {key}={value!r} is not supported by GrooVAE (only {FIXED_HPARAMS[key]!r})"
                    )
            else:
                known = sorted(model_keys | set(TRAINING_HPARAMS) | set(FIXED_HPARAMS))
                raise BadConfig(f"unknown GrooVAE hparam {key!r}; known: {', '.join(known)}")
        return cls(input_depth=input_depth, output_depth=output_depth, control_depth=control_depth, **values)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadConfig(f"{name} must be an integer; got {value!r}")
    if value < minimum:
        raise BadConfig(f"{name} must be >= {minimum}; got {value}")


def _check_float(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadConfig(f"{name} must be a finite number; got {value!r}")


def _lstm(input_size: int, hidden_size: int) -> nn.LSTM:
    """One LSTM layer initialized like TF's LSTMBlockCell (see the module docstring)."""
    lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
    limit = math.sqrt(6.0 / (input_size + hidden_size + 4 * hidden_size))  # glorot over the TF kernel
    with torch.no_grad():
        nn.init.uniform_(lstm.weight_ih_l0, -limit, limit)
        nn.init.uniform_(lstm.weight_hh_l0, -limit, limit)
        lstm.bias_ih_l0.zero_()
        lstm.bias_ih_l0[hidden_size : 2 * hidden_size] = 1.0  # TF's forget_bias=1.0
        lstm.bias_hh_l0.zero_()
    lstm.bias_hh_l0.requires_grad_(False)
    return lstm


def _dense(in_features: int, out_features: int, stddev: float | None = None) -> nn.Linear:
    """A dense layer initialized like tf.layers.dense (glorot-uniform, or normal(stddev) if given)."""
    linear = nn.Linear(in_features, out_features)
    with torch.no_grad():
        if stddev is None:
            nn.init.xavier_uniform_(linear.weight)
        else:
            nn.init.normal_(linear.weight, std=stddev)
        linear.bias.zero_()
    return linear


def _random(
    kind: str, shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """float32 `torch.rand`/`torch.randn` drawn on the generator's device (a CPU generator can serve
    a model on a GPU, with the same draws), then moved to `device`."""
    draw = torch.rand if kind == "uniform" else torch.randn
    source = generator.device if generator is not None else device
    return draw(shape, generator=generator, device=source, dtype=torch.float32).to(device)


def _reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`tf.reverse_sequence` on [B, T, D]: reverse x[b, :lengths[b]], keep the padding in place."""
    T = x.shape[1]
    t = torch.arange(T, device=x.device)[None, :]  # [1, T]
    index = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # [B, T]
    return x.gather(1, index[:, :, None].expand_as(x))


class LstmVAE(nn.Module):
    """What every MusicVAE here shares (`base_model.MusicVAE` with a `BidirectionalLstmEncoder` and
    a `BaseLstmDecoder`): the encoder, mu and sigma, z to the decoder's initial state, the decoder
    LSTM stack and its output projection, with the parameters named as the module docstring lists.
    `config` needs input_depth, output_depth, control_depth, z_size, enc_rnn_size, dec_rnn_size and
    dropout_keep_prob. Subclasses give the loss (`forward`) and sampling of their outputs."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        c = config
        enc_in = c.input_depth + c.control_depth
        self.encoder_fw = nn.ModuleList()
        self.encoder_bw = nn.ModuleList()
        for size in c.enc_rnn_size:
            self.encoder_fw.append(_lstm(enc_in, size))
            self.encoder_bw.append(_lstm(enc_in, size))
            enc_in = 2 * size  # the next layer reads [forward outputs, backward outputs]
        self.encoder_mu = _dense(2 * c.enc_rnn_size[-1], c.z_size, stddev=0.001)
        self.encoder_sigma = _dense(2 * c.enc_rnn_size[-1], c.z_size, stddev=0.001)
        self.z_to_initial_state = _dense(c.z_size, 2 * sum(c.dec_rnn_size), stddev=0.001)
        self.decoder = nn.ModuleList()
        dec_in = c.output_depth + c.z_size + c.control_depth
        for size in c.dec_rnn_size:
            self.decoder.append(_lstm(dec_in, size))
            dec_in = size
        self.output_projection = _dense(c.dec_rnn_size[-1], c.output_depth)

    # -- encoder --------------------------------------------------------------------------------

    def _dropout(self, x: torch.Tensor) -> torch.Tensor:
        keep = self.config.dropout_keep_prob
        return F.dropout(x, p=1.0 - keep, training=True) if self.training and keep < 1.0 else x

    def encode(
        self, inputs: torch.Tensor, lengths: torch.Tensor, controls: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters `(mu, sigma)`, each [B, z_size], of q(z | inputs[:, :lengths])."""
        B, T, _ = inputs.shape
        lengths = self._check_lengths(lengths, B, T).to(inputs.device)
        x = self._with_controls(inputs, controls, self.config.input_depth, "inputs")  # [B, T, in + ctrl]
        last = (lengths - 1).clamp(min=0)  # [B] index of each sequence's final step
        rows = torch.arange(B, device=x.device)
        for fw, bw in zip(self.encoder_fw, self.encoder_bw):
            out_fw, _ = fw(self._dropout(x))  # [B, T, H] forward outputs; valid up to length
            rev_bw, _ = bw(_reverse_within_length(self._dropout(x), lengths))  # [B, T, H] reversed time
            x = torch.cat([out_fw, _reverse_within_length(rev_bw, lengths)], dim=-1)  # [B, T, 2H]
        # The final state of each direction is its output at step length-1 (padding comes after it).
        h = torch.cat([out_fw[rows, last], rev_bw[rows, last]], dim=-1)  # [B, 2H]
        h = torch.where((lengths > 0)[:, None], h, torch.zeros_like(h))  # empty sequence: zero state
        mu = self.encoder_mu(h)  # [B, z]
        sigma = F.softplus(self.encoder_sigma(h))  # [B, z]
        return mu, sigma

    # -- decoder (teacher forcing) ----------------------------------------------------------------

    def _initial_state(self, z: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """[(h, c)] per decoder layer, each [B, H], from tanh(dense(z)) split as (c0, h0, c1, h1, ...)."""
        flat = torch.tanh(self.z_to_initial_state(z))  # [B, 2 * sum(dec)]
        sizes = [s for size in self.config.dec_rnn_size for s in (size, size)]
        parts = flat.split(sizes, dim=-1)
        layers = range(len(self.config.dec_rnn_size))
        return [(parts[2 * i + 1].contiguous(), parts[2 * i].contiguous()) for i in layers]

    def decoder_logits(
        self, outputs: torch.Tensor, z: torch.Tensor, controls: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Teacher-forced decoder: logits [B, T, output_depth] for step t given outputs[:, :t] and z."""
        B, T, D = outputs.shape
        x_prev = F.pad(outputs[:, :-1], (0, 0, 1, 0))  # [B, T, D]: zeros, then the previous target
        x = torch.cat([x_prev, z[:, None, :].expand(B, T, z.shape[-1])], dim=-1)  # [B, T, D + z]
        x = self._with_controls(x, controls, D + z.shape[-1], "outputs")  # [B, T, D + z + ctrl]
        for lstm, (h, c) in zip(self.decoder, self._initial_state(z)):
            x, _ = lstm(self._dropout(x), (h[None], c[None]))  # [B, T, H]
        return self.output_projection(x)  # [B, T, D]

    # -- helpers --------------------------------------------------------------------------------

    def _with_controls(self, x: torch.Tensor, controls: torch.Tensor | None, depth: int, name: str) -> torch.Tensor:
        c = self.config
        if x.shape[-1] != depth:
            raise ValueError(f"{name} must have depth {depth}; got {x.shape[-1]}")
        if c.control_depth == 0:
            if controls is not None and controls.shape[-1] != 0:
                raise ValueError("this model takes no controls (control_depth is 0)")
            return x
        if controls is None:
            raise ValueError(f"this model needs controls [B, T, {c.control_depth}]")
        if controls.shape != (*x.shape[:2], c.control_depth):
            expected = [x.shape[0], x.shape[1], c.control_depth]
            raise ValueError(f"controls must be {expected}; got {list(controls.shape)}")
        return torch.cat([x, controls.to(x.dtype)], dim=-1)

    @staticmethod
    def _check_lengths(lengths: torch.Tensor, B: int, T: int) -> torch.Tensor:
        lengths = torch.as_tensor(lengths)
        if lengths.shape != (B,):
            raise ValueError(f"lengths must be [{B}]; got {list(lengths.shape)}")
        if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
            raise ValueError(f"lengths must be integers; got {lengths.dtype}")
        if len(lengths) and (int(lengths.min()) < 0 or int(lengths.max()) > T):
            raise ValueError(f"lengths must be in [0, {T}]; got {lengths.tolist()}")
        return lengths.long()


class GrooVAE(LstmVAE):
    """Magenta's GrooVAE: the shared LSTM VAE with a GrooveLstmDecoder's loss and sampling."""

    config: GrooVAEConfig

    def forward(
        self,
        inputs: torch.Tensor,
        outputs: torch.Tensor,
        lengths: torch.Tensor,
        controls: torch.Tensor | None = None,
        step: int = 0,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Loss terms as Magenta computes them; every value is a scalar tensor.

        inputs [B, T, input_depth] (encoder), outputs [B, T, output_depth] (targets), lengths [B],
        controls [B, T, control_depth] or None; `step` is the global step (for beta); `generator`
        draws the reparameterization noise of z. Dropout follows `self.training`.

        loss = r_loss + beta * kl_loss. r_loss: mean over the batch of each sequence's loss summed
        over its valid steps and all output features. kl_loss: mean over the batch of
        max(KL - free_bits * ln 2, 0). kl_bits: mean KL in bits. hits_loss, velocities_loss,
        offsets_loss: Magenta's metrics, the per-step loss (summed over drum classes) averaged over
        all valid steps of the batch.
        """
        c = self.config
        B, T, _ = inputs.shape
        if outputs.shape[:2] != (B, T) or outputs.shape[2] != c.output_depth:
            raise ValueError(f"outputs must be [{B}, {T}, {c.output_depth}]; got {list(outputs.shape)}")
        lengths = self._check_lengths(lengths, B, T).to(inputs.device)
        T = min(T, c.max_seq_len)  # Magenta truncates to max_seq_len
        inputs, outputs = inputs[:, :T], outputs[:, :T]
        controls = controls[:, :T] if controls is not None else None
        lengths = lengths.clamp(max=T)

        mu, sigma = self.encode(inputs, lengths, controls)  # [B, z] each
        mu, sigma = mu.float(), sigma.float()  # losses in float32, also under bf16 autocast
        z = mu + sigma * _random("normal", tuple(mu.shape), generator, mu.device)  # [B, z]
        kl_div = 0.5 * (mu.square() + sigma.square() - 1.0 - 2.0 * torch.log(sigma)).sum(-1)  # [B] nats

        logits = self.decoder_logits(outputs, z, controls).float()  # [B, T, D]
        n = c.num_classes
        hit_logits, vel_logits, off_logits = logits.split(n, dim=-1)  # [B, T, n] each
        hits, velocities, offsets = outputs.split(n, dim=-1)  # [B, T, n] each
        p = torch.sigmoid(hit_logits)
        hits_loss = -(
            hits * torch.log(p + LOG_LOSS_EPSILON) + (1.0 - hits) * torch.log(1.0 - p + LOG_LOSS_EPSILON)
        ).sum(-1)  # [B, T]
        velocities_loss = (velocities - torch.sigmoid(vel_logits)).square().sum(-1)  # [B, T]
        offsets_loss = (offsets - torch.tanh(off_logits)).square().sum(-1)  # [B, T]
        valid = torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]  # [B, T]
        zero = logits.new_zeros(())
        hits_loss = torch.where(valid, hits_loss, zero)  # `where`: padding may hold anything
        velocities_loss = torch.where(valid, velocities_loss, zero)
        offsets_loss = torch.where(valid, offsets_loss, zero)
        r_loss = (hits_loss + velocities_loss + offsets_loss).sum(-1)  # [B]

        kl_cost = torch.clamp(kl_div - c.free_bits * math.log(2.0), min=0.0)  # [B]
        beta = c.beta(step)
        loss = r_loss.mean() + beta * kl_cost.mean()
        n_valid = valid.sum().clamp(min=1)
        return {
            "loss": loss,
            "r_loss": r_loss.mean(),
            "kl_loss": kl_cost.mean(),
            "kl_bits": (kl_div / math.log(2.0)).mean(),
            "beta": logits.new_tensor(beta),
            "hits_loss": hits_loss.sum() / n_valid,
            "velocities_loss": velocities_loss.sum() / n_valid,
            "offsets_loss": offsets_loss.sum() / n_valid,
        }

    # -- sampling -------------------------------------------------------------------------------

    def sample(
        self,
        n: int,
        length: int | None = None,
        temperature: float = 1.0,
        z: torch.Tensor | None = None,
        same_z: bool = False,
        controls: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """`n` grooves [n, length, output_depth] from z ~ N(0, I) (or the given z [n, z_size]).

        same_z: one z for all n (Magenta's TrainedModel.sample). z is drawn first, then the hits'
        uniforms, both from `generator`. length defaults to max_seq_len.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer; got {n!r}")
        length = self.config.max_seq_len if length is None else length
        if z is None:
            device = self.output_projection.weight.device
            z = _random("normal", (1 if same_z else n, self.config.z_size), generator, device).expand(n, -1)
        elif z.shape != (n, self.config.z_size):
            raise ValueError(f"z must be [{n}, {self.config.z_size}]; got {list(z.shape)}")
        return self.decode(z, length, temperature, controls, generator)

    def decode(
        self,
        z: torch.Tensor,
        length: int,
        temperature: float = 1.0,
        controls: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        given_hits: bool = False,
        hits: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Samples [B, length, output_depth] from z [B, z_size]: hits in {0, 1}, velocities in [0, 1],
        offsets in [-1, 1]. controls: [length, control_depth] (shared) or [B, length, control_depth].
        No dropout, whatever the mode. The same as `decode_reference` for the same generator state, up to
        float32 rounding (its kernels may sum in another order on another CPU).

        given_hits: the velocity and offset of each sampled hit are those expected *given* a hit
        (`dynamics_given_hits`), not Magenta's raw outputs; the same hits are drawn either way.
        hits: [B, length, num_classes] in {0, 1}: the hits to play instead of drawing them (each
        step's decoder input holds them), so only velocities and offsets are the model's: how a
        humanize model plays a part without adding or dropping a note.
        """
        hit_probabilities = [] if given_hits else None
        with torch.inference_mode():
            prepared = self._prepare_sampling(z, length, temperature, controls, generator)
            forced = None
            if hits is not None:
                if hits.shape != (z.shape[0], length, self.config.num_classes):
                    raise ValueError(f"hits must be [{z.shape[0]}, {length}, {self.config.num_classes}]; "
                                     f"got {list(hits.shape)}")
                forced = hits.to(prepared[0]).transpose(0, 1).unbind(0)  # per step [B, classes]
            result = self._decode_fast(*prepared, hit_probabilities=hit_probabilities, forced_hits=forced)
            if given_hits:
                result = dynamics_given_hits(result, torch.stack(hit_probabilities, dim=1), self.config.num_classes)
        return result.clone()  # an ordinary tensor (inference tensors cannot be saved for backward)

    def decode_reference(
        self,
        z: torch.Tensor,
        length: int,
        temperature: float = 1.0,
        controls: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The plain sampling loop (Magenta's BaseLstmDecoder.sample + GrooveLstmDecoder._sample),
        kept to check `decode` against: same arguments, same random draws, same result."""
        with torch.inference_mode():
            result = self._decode_reference(*self._prepare_sampling(z, length, temperature, controls, generator))
        return result.clone()

    def _decode_fast(
        self, z: torch.Tensor, controls: torch.Tensor | None, u: torch.Tensor, temperature: float,
        hit_probabilities: list[torch.Tensor] | None = None,
        forced_hits: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The sampling loop; appends each step's hit probabilities [B, classes] at temperature 1 to
        `hit_probabilities` when it is a list; `forced_hits` (per step [B, classes]) replace the drawn hits."""
        length = u.shape[0]
        B = z.shape[0]
        n, D = self.config.num_classes, self.config.output_depth
        w = self._step_weights()
        # Loop-invariant part of layer 0's gates: z (and the control at each step) projected once.
        bias0 = self._layer0_bias(z, w)  # [B, 4H0]
        biases = [bias0] * length if controls is None else [
            self._layer0_control_bias(bias0, controls[:, t], w) for t in range(length)
        ]
        states = self._initial_state(z)
        result = z.new_empty(length, B, D)  # time-major, so each step's slice is contiguous
        xs = result.unbind(0)  # per-step views [B, D]: each step's sample is the next step's input
        hit_out = result[:, :, :n].unbind(0)
        vel_out = result[:, :, n : 2 * n].unbind(0)
        off_out = result[:, :, 2 * n :].unbind(0)
        us = u.unbind(0)
        logits = z.new_empty(B, D)
        hit_logits, vel_logits, off_logits = logits[:, :n], logits[:, n : 2 * n], logits[:, 2 * n :]
        p = z.new_empty(B, n)
        (w_x, w_hh0, b_hh0), rest = w["layer0"], w["layers"]
        w_out_t, b_out = w["out_t"], w["out_b"]
        x = z.new_zeros(B, D)  # Magenta's start input
        for t in range(length):
            h, c = torch.lstm_cell(x, states[0], w_x, w_hh0, biases[t], b_hh0)
            states[0] = (h, c)
            for i, (w_ih, w_hh, b_ih, b_hh) in enumerate(rest, start=1):
                h, c = torch.lstm_cell(h, states[i], w_ih, w_hh, b_ih, b_hh)
                states[i] = (h, c)
            torch.addmm(b_out, h, w_out_t, out=logits)
            if temperature == 1.0:  # x / 1.0 == x exactly, so skipping the division changes nothing
                torch.sigmoid(hit_logits, out=p)
            else:
                torch.div(hit_logits, temperature, out=p)
                torch.sigmoid(p, out=p)
            torch.lt(us[t], p, out=hit_out[t])  # Bernoulli(logits / temperature)
            if forced_hits is not None:
                hit_out[t].copy_(forced_hits[t])
            if hit_probabilities is not None:
                hit_probabilities.append(p.clone() if temperature == 1.0 else torch.sigmoid(hit_logits))
            torch.sigmoid(vel_logits, out=vel_out[t])
            torch.tanh(off_logits, out=off_out[t])
            x = xs[t]
        return result.transpose(0, 1).contiguous()

    def _decode_reference(
        self, z: torch.Tensor, controls: torch.Tensor | None, u: torch.Tensor, temperature: float
    ) -> torch.Tensor:
        length = u.shape[0]
        B = z.shape[0]
        n, D = self.config.num_classes, self.config.output_depth
        w = self._step_weights()
        states = self._initial_state(z)
        x = z.new_zeros(B, D)
        samples = []
        for t in range(length):
            bias0 = self._layer0_bias(z, w)
            if controls is not None:
                bias0 = self._layer0_control_bias(bias0, controls[:, t], w)
            w_x, w_hh0, b_hh0 = w["layer0"]
            h, c = torch.lstm_cell(x, states[0], w_x, w_hh0, bias0, b_hh0)  # input [x, z, control]
            states[0] = (h, c)
            for i, (w_ih, w_hh, b_ih, b_hh) in enumerate(w["layers"], start=1):
                h, c = torch.lstm_cell(h, states[i], w_ih, w_hh, b_ih, b_hh)
                states[i] = (h, c)
            logits = torch.addmm(w["out_b"], h, w["out_t"])  # [B, D]
            hit_logits, vel_logits, off_logits = logits.split(n, dim=-1)
            hits = (u[t] < torch.sigmoid(hit_logits / temperature)).to(z.dtype)
            x = torch.cat([hits, torch.sigmoid(vel_logits), torch.tanh(off_logits)], dim=-1)  # [B, D]
            samples.append(x)
        return torch.stack(samples, dim=1)  # [B, length, D]

    def _step_weights(self) -> dict[str, Any]:
        """The decoder's parameters arranged for stepping; layer 0's input weight is split into its
        previous-output, z and control columns ([x, z, control] @ W.T == x @ Wx.T + z @ Wz.T + ...)."""
        c = self.config
        D, Z = c.output_depth, c.z_size
        first = self.decoder[0]
        w_ih0 = first.weight_ih_l0  # [4H0, D + Z + C]
        return {
            "layer0": (w_ih0[:, :D].contiguous(), first.weight_hh_l0, first.bias_hh_l0),
            "z": (w_ih0[:, D : D + Z].t(), first.bias_ih_l0),
            "control_t": w_ih0[:, D + Z :].t() if c.control_depth else None,
            "layers": [
                (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0) for lstm in self.decoder[1:]
            ],
            "out_t": self.output_projection.weight.t(),
            "out_b": self.output_projection.bias,
        }

    @staticmethod
    def _layer0_bias(z: torch.Tensor, w: dict[str, Any]) -> torch.Tensor:
        w_z_t, b_ih0 = w["z"]
        return torch.addmm(b_ih0, z, w_z_t)  # [B, 4H0]

    @staticmethod
    def _layer0_control_bias(bias0: torch.Tensor, control: torch.Tensor, w: dict[str, Any]) -> torch.Tensor:
        return torch.addmm(bias0, control, w["control_t"])  # [B, 4H0]

    def _prepare_sampling(
        self,
        z: torch.Tensor,
        length: int,
        temperature: float,
        controls: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, float]:
        """Checked (z, controls [B, length, C] or None, uniforms [length, B, classes], temperature)."""
        c = self.config
        if z.dim() != 2 or z.shape[1] != c.z_size:
            raise ValueError(f"z must be [batch, {c.z_size}]; got {list(z.shape)}")
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"length must be a positive integer; got {length!r}")
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0; got {temperature!r}")
        param = self.output_projection.weight
        z = z.to(device=param.device, dtype=param.dtype)
        B = z.shape[0]
        if controls is not None:
            if not c.control_depth:
                raise ValueError("this model takes no controls (control_depth is 0)")
            if controls.dim() == 2:
                controls = controls[None].expand(B, -1, -1)  # one control sequence for every sample
            if controls.dim() != 3 or controls.shape[0] != B or controls.shape[2] != c.control_depth:
                raise ValueError(
                    f"controls must be [{length}, {c.control_depth}] or [{B}, {length}, {c.control_depth}]; "
                    f"got {list(controls.shape)}"
                )
            if controls.shape[1] < length:
                raise ValueError(f"controls cover {controls.shape[1]} steps; sampling needs {length}")
            controls = controls.to(device=param.device, dtype=param.dtype)
        elif c.control_depth:
            raise ValueError(f"this model needs controls [{length}, {c.control_depth}]")
        u = _random("uniform", (length, B, c.num_classes), generator, param.device).to(param.dtype)
        return z, controls, u, float(temperature)


def dynamics_given_hits(decoded: torch.Tensor, hit_probabilities: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Velocities and offsets of the sampled hits as expected given a hit.

    Training targets hold velocity 0 and offset 0 wherever no drum is hit, so the squared-error
    heads learn E[velocity] = P(hit) * E[velocity | hit] (and the same for offsets): a hit the model
    is unsure of comes out quieter and closer to the grid than the model expects such a hit to be
    played. Dividing by P(hit) (the hit head's probability at temperature 1) undoes that; the results
    are clipped to [0, 1] and [-1, 1]. Magenta decodes the raw heads; a well-trained model, whose
    hits are near-certain, gives nearly the same either way.

    decoded: [B, T, 3 * classes] (hits, velocities, offsets); hit_probabilities: [B, T, classes].
    """
    n = num_classes
    hits = decoded[..., :n] > 0.5
    scale = torch.where(hits, 1.0 / hit_probabilities.clamp_min(1e-6), torch.ones_like(hit_probabilities))
    result = decoded.clone()
    result[..., n : 2 * n] = (decoded[..., n : 2 * n] * scale).clamp(0.0, 1.0)
    result[..., 2 * n :] = (decoded[..., 2 * n :] * scale).clamp(-1.0, 1.0)
    return result
