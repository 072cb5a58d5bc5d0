"""GrooVAE model (generation/music_vae/model.py): shapes, Magenta's loss reductions, length masking,
free bits and the beta schedule, dropout modes, learning, and sampling (determinism, temperature,
ranges, controls, fast path == reference loop). A tiny config keeps the file at a few seconds."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from generation.errors import BadConfig
from generation.music_vae.model import LOG_LOSS_EPSILON, GrooVAE, GrooVAEConfig

N_CLASSES = 9
DEPTH = 3 * N_CLASSES
T = 32
TINY = GrooVAEConfig(
    input_depth=DEPTH,
    output_depth=DEPTH,
    max_seq_len=T,
    z_size=8,
    enc_rnn_size=[16],
    dec_rnn_size=[16, 16],
    dropout_keep_prob=1.0,
    free_bits=0.0,
    max_beta=0.2,
    beta_rate=0.0,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors gain nothing from threads, and OpenMP threads stall badly when another process
    busies a core of a 2-core machine (measured: 7 s vs 28-38 s for this file); restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_model(seed: int = 0, **changes) -> GrooVAE:
    torch.manual_seed(seed)
    return GrooVAE(dataclasses.replace(TINY, **changes)).eval()


def grooves(batch: int, length: int = T, seed: int = 0) -> torch.Tensor:
    """Groove-like tensors [batch, length, 27]: hits, velocities and offsets only where hits are."""
    gen = torch.Generator().manual_seed(seed)
    hits = (torch.rand(batch, length, N_CLASSES, generator=gen) < 0.3).float()
    velocities = hits * torch.rand(batch, length, N_CLASSES, generator=gen)
    offsets = hits * (torch.rand(batch, length, N_CLASSES, generator=gen) - 0.5)
    return torch.cat([hits, velocities, offsets], dim=-1)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_same_samples(model: GrooVAE, fast: torch.Tensor, reference: torch.Tensor, z: torch.Tensor,
                        temperature: float, seed: int, controls: torch.Tensor | None = None) -> None:
    """Two sampling paths drew the same grooves: the same hits and, to float32 rounding, the same
    velocities and offsets. Their logits differ by rounding (other kernels, other orders of summing),
    so a hit whose probability lies within 1e-4 of its uniform may go either way, and after it the
    rows part; each row is compared up to its first such step, and most steps must be compared."""
    B = z.shape[0]
    u = model._prepare_sampling(z, T, temperature, controls, seeded(seed))[2].transpose(0, 1)  # [B, T, classes]
    with torch.no_grad():
        full = None if controls is None else controls.expand(B, T, N_CLASSES)
        p = torch.sigmoid(model.decoder_logits(reference, z, full)[..., :N_CLASSES] / temperature)
    close = ((u - p).abs() < 1e-4).any(-1)  # [B, T] a decision a rounding could flip
    first = torch.where(close.any(1), close.float().argmax(1), torch.tensor(T))  # [B]
    for b, n in enumerate(first.tolist()):
        assert torch.equal(fast[b, :n, :N_CLASSES], reference[b, :n, :N_CLASSES])  # decided hits: exact
        # float32 rounding of two kernels' logits, carried through the LSTM's steps
        torch.testing.assert_close(fast[b, :n], reference[b, :n], rtol=1e-5, atol=1e-6)
    assert int(first.sum()) >= 0.75 * B * T, first.tolist()


# Config --------------------------------------------------------------------------------------


def test_default_config_is_groovae_4bar():
    cfg = GrooVAEConfig()
    assert (cfg.z_size, cfg.enc_rnn_size, cfg.dec_rnn_size, cfg.max_seq_len) == (256, [512], [256, 256], 64)
    assert (cfg.free_bits, cfg.max_beta, cfg.beta_rate, cfg.dropout_keep_prob) == (48.0, 0.2, 0.0, 0.3)
    assert cfg.num_classes == 9


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"output_depth": 26}, "output_depth"),
        ({"z_size": 0}, "z_size"),
        ({"enc_rnn_size": []}, "enc_rnn_size"),
        ({"dec_rnn_size": [16, 0]}, "dec_rnn_size"),
        ({"dec_rnn_size": 16}, "dec_rnn_size"),
        ({"dropout_keep_prob": 0.0}, "dropout_keep_prob"),
        ({"dropout_keep_prob": 1.5}, "dropout_keep_prob"),
        ({"free_bits": -1.0}, "free_bits"),
        ({"beta_rate": 1.5}, "beta_rate"),
        ({"max_beta": float("nan")}, "max_beta"),
        ({"control_depth": -1}, "control_depth"),
        ({"max_seq_len": 2.5}, "max_seq_len"),
    ],
)
def test_config_rejects_bad_values(changes, message):
    with pytest.raises(BadConfig, match=message):
        dataclasses.replace(TINY, **changes)


def test_config_from_magenta_hparams():
    hparams = {
        "batch_size": 512, "max_seq_len": 32, "z_size": 256, "enc_rnn_size": [512], "dec_rnn_size": [256, 256],
        "max_beta": 0.2, "free_bits": 48, "dropout_keep_prob": 0.3, "learning_rate": 0.001, "use_cudnn": False,
    }  # fmt: skip
    cfg = GrooVAEConfig.from_hparams(hparams, input_depth=27, output_depth=27, control_depth=9)
    assert (cfg.max_seq_len, cfg.control_depth, cfg.free_bits) == (32, 9, 48)
    with pytest.raises(BadConfig, match="unknown GrooVAE hparam 'z_dim'"):
        GrooVAEConfig.from_hparams({"z_dim": 3}, input_depth=27, output_depth=27)
    with pytest.raises(BadConfig, match="residual_decoder"):
        GrooVAEConfig.from_hparams({"residual_decoder": True}, input_depth=27, output_depth=27)


# Shapes and the loss -------------------------------------------------------------------------


def test_shapes():
    model = make_model()
    x = grooves(4)
    mu, sigma = model.encode(x, torch.full((4,), T))
    assert mu.shape == sigma.shape == (4, 8) and bool((sigma > 0).all())
    out = model(x, x, torch.full((4,), T), step=5, generator=seeded())
    assert set(out) == {"loss", "r_loss", "kl_loss", "kl_bits", "beta", "hits_loss", "velocities_loss", "offsets_loss"}
    assert all(v.shape == () and torch.isfinite(v) for v in out.values())
    assert model.decoder_logits(x, mu).shape == (4, T, DEPTH)
    assert model.decode(mu, 20, generator=seeded()).shape == (4, 20, DEPTH)
    assert model.sample(3, generator=seeded()).shape == (3, T, DEPTH)
    with pytest.raises(ValueError, match="lengths"):
        model.encode(x, torch.tensor([T, T, T, T + 1]))
    with pytest.raises(ValueError, match="z must be"):
        model.decode(torch.zeros(2, 7), 4)


def test_loss_reductions_match_magenta():
    """Per-sequence sums over valid steps and classes, means over the batch; per-part metrics are
    means over valid steps; KL with free bits over each example's total KL."""
    model = make_model(free_bits=2.0)
    x = grooves(3, seed=1)
    lengths = torch.tensor([T, 20, 7])
    out = model(x, x, lengths, step=3, generator=seeded(5))
    mu, sigma = model.encode(x, lengths)
    z = mu + sigma * torch.randn(mu.shape, generator=seeded(5))
    logits = model.decoder_logits(x, z)
    r_losses, parts, steps = [], torch.zeros(3), 0
    for b in range(3):
        total = 0.0
        for t in range(int(lengths[b])):
            hit_l, vel_l, off_l = logits[b, t].split(N_CLASSES)
            hit, vel, off = x[b, t].split(N_CLASSES)
            p = torch.sigmoid(hit_l)
            step_parts = torch.stack([
                -(hit * torch.log(p + LOG_LOSS_EPSILON) + (1 - hit) * torch.log(1 - p + LOG_LOSS_EPSILON)).sum(),
                ((vel - torch.sigmoid(vel_l)) ** 2).sum(),
                ((off - torch.tanh(off_l)) ** 2).sum(),
            ])  # fmt: skip
            parts += step_parts
            total = total + step_parts.sum()
            steps += 1
        r_losses.append(total)
    r_loss = torch.stack(r_losses).mean()
    kl = 0.5 * (mu**2 + sigma**2 - 1 - 2 * torch.log(sigma)).sum(-1)
    kl_cost = torch.clamp(kl - 2.0 * math.log(2), min=0).mean()
    beta = 0.2 * (1 - 0.0**3)
    # A loop of per-step sums against whole-tensor reductions: float32 rounding in a different order.
    torch.testing.assert_close(out["r_loss"], r_loss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out["kl_loss"], kl_cost, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["kl_bits"], (kl / math.log(2)).mean(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["loss"], r_loss + beta * kl_cost, rtol=1e-5, atol=1e-5)
    metrics = torch.stack([out["hits_loss"], out["velocities_loss"], out["offsets_loss"]])
    torch.testing.assert_close(metrics, parts / steps, rtol=1e-5, atol=1e-6)


def test_padding_beyond_length_changes_nothing():
    model = make_model(enc_rnn_size=[16, 12])  # two stacked bidirectional layers
    x = grooves(3, seed=2)
    lengths = torch.tensor([T, 17, 5])
    garbage = x.clone()
    for b, n in enumerate(lengths.tolist()):
        garbage[b, n:] = torch.randn(T - n, DEPTH) * 3
    # Exact on any CPU: the same kernels on the same shapes, and no valid step reads a padded one.
    for a, b in zip(model.encode(x, lengths), model.encode(garbage, lengths)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    out_a = model(x, x, lengths, generator=seeded(1))
    out_b = model(garbage, garbage, lengths, generator=seeded(1))
    for key in out_a:
        torch.testing.assert_close(out_a[key], out_b[key], rtol=0, atol=0)


def test_encoder_final_states_match_per_sequence_runs():
    """The bidirectional encoder's last states equal running each direction on x[:length] alone."""
    model = make_model()
    x = grooves(3, seed=3)
    lengths = torch.tensor([T, 11, 1])
    mu, sigma = model.encode(x, lengths)
    fw, bw = model.encoder_fw[0], model.encoder_bw[0]
    with torch.no_grad():
        for b, n in enumerate(lengths.tolist()):
            seq = x[b : b + 1, :n]
            h = torch.cat([fw(seq)[0][0, -1], bw(seq.flip(1))[0][0, -1]])
            torch.testing.assert_close(mu[b], model.encoder_mu(h), rtol=1e-5, atol=1e-6)
            sigma_b = torch.nn.functional.softplus(model.encoder_sigma(h))
            torch.testing.assert_close(sigma[b], sigma_b, rtol=1e-5, atol=1e-6)


def test_sequences_longer_than_max_seq_len_are_truncated():
    model = make_model()
    x = grooves(2, length=T + 8, seed=4)
    long = model(x, x, torch.tensor([T + 8, T + 3]), generator=seeded(2))
    short = model(x[:, :T], x[:, :T], torch.tensor([T, T]), generator=seeded(2))
    for key in long:  # the long batch is cut by a view of other strides: allow float32 rounding
        torch.testing.assert_close(long[key], short[key], rtol=1e-6, atol=1e-7)


# Free bits and beta --------------------------------------------------------------------------


def test_free_bits_below_threshold_cost_nothing():
    model = make_model(free_bits=1000.0, beta_rate=0.0)
    x = grooves(4, seed=5)
    out = model(x, x, torch.full((4,), T), step=100, generator=seeded(3))
    assert out["beta"].item() == pytest.approx(0.2)
    assert out["kl_bits"].item() < 1000.0
    assert out["kl_loss"].item() == 0.0
    assert torch.equal(out["loss"], out["r_loss"])  # exact: r_loss + beta * 0.0
    weights = [model.encoder_mu.weight, model.encoder_sigma.weight]
    grads = torch.autograd.grad(out["kl_loss"], weights, allow_unused=True)
    assert all(g is None or not g.any() for g in grads)


def test_free_bits_above_threshold_cost_the_excess():
    model = make_model(free_bits=0.0)
    x = grooves(4, seed=5)
    out = model(x, x, torch.full((4,), T), step=100, generator=seeded(3))
    # the same numbers through other operations (a mean of KL / ln 2, then * ln 2): float32 rounding
    torch.testing.assert_close(out["kl_loss"], out["kl_bits"] * math.log(2), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["loss"], out["r_loss"] + 0.2 * out["kl_loss"], rtol=1e-5, atol=1e-5)
    grad = torch.autograd.grad(out["kl_loss"], model.encoder_mu.weight)[0]
    assert grad.abs().sum() > 0


def test_beta_schedule():
    cfg = dataclasses.replace(TINY, max_beta=0.5, beta_rate=0.99)
    assert cfg.beta(0) == 0.0
    for step in (1, 10, 1000):
        assert cfg.beta(step) == pytest.approx(0.5 * (1 - 0.99**step))
    assert cfg.beta(10**6) == pytest.approx(0.5)
    assert TINY.beta(0) == 0.0 and TINY.beta(1) == TINY.beta(50) == 0.2  # beta_rate 0: full beta after step 0
    model = make_model(max_beta=0.5, beta_rate=0.99)
    x = grooves(2)
    out = model(x, x, torch.full((2,), T), step=10, generator=seeded())
    assert float(out["beta"]) == pytest.approx(0.5 * (1 - 0.99**10))


# Training behaviour --------------------------------------------------------------------------


def test_dropout_only_in_train_mode():
    x = grooves(4, seed=6)
    lengths = torch.full((4,), T)
    model = make_model(dropout_keep_prob=0.5)
    a = model(x, x, lengths, generator=seeded(1))["loss"]
    b = model(x, x, lengths, generator=seeded(1))["loss"]
    assert torch.equal(a, b)  # the same call twice: exact
    model.train()
    c = model(x, x, lengths, generator=seeded(1))["loss"]
    d = model(x, x, lengths, generator=seeded(1))["loss"]
    assert not torch.equal(c, d)
    keep_all = make_model(dropout_keep_prob=1.0).train()
    e = keep_all(x, x, lengths, generator=seeded(1))["loss"]
    assert torch.equal(e, keep_all(x, x, lengths, generator=seeded(1))["loss"])


def test_overfits_eight_examples():
    model = make_model(seed=1).train()
    x = grooves(8, length=8, seed=7).repeat(1, T // 8, 1)  # 8 one-bar-ish patterns, repeated
    lengths = torch.full((8,), T)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    first = None
    for step in range(100):
        optimizer.zero_grad()
        out = model(x, x, lengths, step=step, generator=seeded(step))
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # Magenta's grad_clip
        optimizer.step()
        first = out["r_loss"].item() if first is None else first
    model.eval()
    last = model(x, x, lengths, step=100, generator=seeded(0))["r_loss"].item()
    assert last < first / 3, (first, last)


# Sampling ------------------------------------------------------------------------------------


def test_sampling_is_deterministic_per_seed():
    model = make_model()
    a = model.sample(4, generator=seeded(11))
    b = model.sample(4, generator=seeded(11))
    c = model.sample(4, generator=seeded(12))
    assert torch.equal(a, b) and not torch.equal(a, c)  # the same call twice: exact
    same = model.sample(3, same_z=True, temperature=1e-9, generator=seeded(4))
    # Rows of one batch with the same z, but an elementwise kernel may take a row in its vector
    # body and another in its scalar tail: float32 rounding (hits at temperature ~0 stay exact).
    for row in (1, 2):
        assert torch.equal(same[row, :, :N_CLASSES], same[0, :, :N_CLASSES])
        torch.testing.assert_close(same[row], same[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch, temperature", [(1, 1.0), (5, 1.0), (5, 0.5), (3, 3.0)])
def test_fast_decode_equals_reference_loop(batch, temperature):
    model = make_model(seed=2)
    z = torch.randn(batch, 8, generator=seeded(batch)) * 2
    for seed in range(3):
        fast = model.decode(z, T, temperature, generator=seeded(seed))
        reference = model.decode_reference(z, T, temperature, generator=seeded(seed))
        assert_same_samples(model, fast, reference, z, temperature, seed)  # two paths: see its docstring


def test_sampling_agrees_with_the_teacher_forced_decoder():
    """Fed its own samples, the training-time decoder (nn.LSTM over [x, z, control]) gives the same
    velocities and offsets that sampling produced: the split of layer 0's input weight is exact."""
    model = make_model(seed=3)
    z = torch.randn(4, 8, generator=seeded(1))
    samples = model.decode(z, T, generator=seeded(2))
    with torch.no_grad():
        logits = model.decoder_logits(samples, z)
    _, vel_logits, off_logits = logits.split(N_CLASSES, dim=-1)
    torch.testing.assert_close(samples[..., N_CLASSES : 2 * N_CLASSES], torch.sigmoid(vel_logits), rtol=0, atol=1e-5)
    torch.testing.assert_close(samples[..., 2 * N_CLASSES :], torch.tanh(off_logits), rtol=0, atol=1e-5)


def test_temperature_near_zero_takes_the_likelier_hit():
    model = make_model(seed=4)
    z = torch.randn(6, 8, generator=seeded(3)) * 2
    samples = model.decode(z, T, temperature=1e-9, generator=seeded(4))
    with torch.no_grad():
        hit_logits = model.decoder_logits(samples, z)[..., :N_CLASSES]
    decided = hit_logits.abs() > 1e-4  # away from a coin flip's rounding
    assert decided.float().mean() > 0.99
    assert torch.equal(samples[..., :N_CLASSES][decided], (torch.sigmoid(hit_logits) > 0.5).float()[decided])
    again = model.decode(z, T, temperature=1e-9, generator=seeded(5))
    assert torch.equal(again[..., :N_CLASSES][decided], samples[..., :N_CLASSES][decided])  # same path: exact


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_dynamics_given_hits_rescale_only_the_hits_by_their_probability(temperature):
    """The same hits as Magenta's decoding; each hit's velocity and offset divided by its hit
    probability at temperature 1, as the teacher-forced decoder fed the raw samples computes it."""
    model = make_model(seed=3)
    z = torch.randn(4, 8, generator=seeded(1))
    raw = model.decode(z, T, temperature, generator=seeded(2))
    given = model.decode(z, T, temperature, generator=seeded(2), given_hits=True)
    n = N_CLASSES
    assert torch.equal(raw[..., :n], given[..., :n])  # the same path; given_hits only rescales after it
    with torch.no_grad():
        probability = torch.sigmoid(model.decoder_logits(raw, z)[..., :n])
    hits = raw[..., :n] > 0.5
    assert hits.any() and (~hits).any()
    torch.testing.assert_close(given[..., n : 2 * n][hits], (raw[..., n : 2 * n] / probability).clamp(0, 1)[hits],
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(given[..., 2 * n :][hits], (raw[..., 2 * n :] / probability).clamp(-1, 1)[hits],
                               rtol=1e-4, atol=1e-5)
    assert torch.equal(given[..., n:][~hits.repeat(1, 1, 2)], raw[..., n:][~hits.repeat(1, 1, 2)])  # x * 1.0: exact


def test_dynamics_given_hits_by_hand():
    from generation.music_vae.model import dynamics_given_hits

    decoded = torch.tensor([[[1.0, 0.0, 0.3, 0.3, -0.2, 0.4], [1.0, 1.0, 0.9, 0.1, 0.5, -0.05]]])  # 2 classes
    probability = torch.tensor([[[0.5, 0.2], [0.6, 0.1]]])
    expected = torch.tensor([[[1.0, 0.0, 0.6, 0.3, -0.4, 0.4], [1.0, 1.0, 1.0, 1.0, 5 / 6, -0.5]]])
    torch.testing.assert_close(dynamics_given_hits(decoded, probability, 2), expected)


def test_output_ranges():
    model = make_model(seed=5)
    with torch.no_grad():  # push logits far out so that sigmoid and tanh saturate
        model.output_projection.weight.mul_(50)
    samples = model.sample(16, temperature=2.0, generator=seeded(6))
    hits, velocities, offsets = samples.split(N_CLASSES, dim=-1)
    assert set(hits.unique().tolist()) <= {0.0, 1.0} and 0 < hits.mean() < 1
    assert velocities.min() >= 0 and velocities.max() <= 1
    assert offsets.min() >= -1 and offsets.max() <= 1


def test_samples_can_feed_training():
    model = make_model().train()
    samples = model.sample(2, generator=seeded())
    model(samples, samples, torch.full((2,), T), step=1, generator=seeded())["loss"].backward()


def test_controls_are_concatenated():
    model = make_model(seed=6, control_depth=N_CLASSES)
    assert model.encoder_fw[0].input_size == DEPTH + N_CLASSES
    assert model.decoder[0].input_size == DEPTH + 8 + N_CLASSES
    x = grooves(3, seed=8)
    controls = x[..., :N_CLASSES]  # hits_as_controls
    lengths = torch.full((3,), T)
    out = model(x, x, lengths, controls, step=2, generator=seeded())
    out["loss"].backward()
    assert model.decoder[0].weight_ih_l0.grad[:, -N_CLASSES:].abs().sum() > 0
    other = model(x, x, lengths, torch.zeros_like(controls), step=2, generator=seeded())
    assert not torch.equal(out["loss"], other["loss"])
    z = torch.randn(3, 8, generator=seeded(1))
    shared = controls[0]  # [T, classes], one control sequence for every sample (Magenta's c_input)
    a = model.decode(z, T, controls=shared, generator=seeded(2))
    # the same path with the same strides (a shared control is expanded either way): exact
    assert torch.equal(a, model.decode(z, T, controls=shared.expand(3, T, N_CLASSES), generator=seeded(2)))
    reference = model.decode_reference(z, T, controls=shared, generator=seeded(2))
    assert_same_samples(model, a, reference, z, 1.0, 2, controls=shared)  # fast path vs reference loop
    assert not torch.equal(a, model.decode(z, T, controls=controls[1], generator=seeded(2)))
    with torch.no_grad():
        logits = model.decoder_logits(a, z, shared.expand(3, T, N_CLASSES))
    velocities = slice(N_CLASSES, 2 * N_CLASSES)
    torch.testing.assert_close(a[..., velocities], torch.sigmoid(logits[..., velocities]), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="needs controls"):
        model.decode(z, T)
    with pytest.raises(ValueError, match="needs controls"):
        model.encode(x, lengths)
    with pytest.raises(ValueError, match="takes no controls"):
        make_model().decode(z, T, controls=shared)


def test_state_dict_round_trips_through_safetensors(tmp_path):
    from safetensors.torch import load_file, save_file

    model = make_model(seed=7)
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    fresh = make_model(seed=8)
    fresh.load_state_dict(load_file(tmp_path / "model.safetensors"))
    # the same weights through the same call: exact
    assert torch.equal(model.sample(2, generator=seeded(1)), fresh.sample(2, generator=seeded(1)))
    assert not any(p.requires_grad for name, p in fresh.named_parameters() if "bias_hh" in name)
