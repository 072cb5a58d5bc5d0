"""GrooVAE (groovae_4bar size) on the CPU: sampling latency, training throughput, and an LSTM-step floor.

    python benchmarks/groovae_sampling.py [--runs 30] [--warmup 5] [--train-steps 3] [--train-batch 512]

Sampling: one 4-bar groove (64 steps) at batch 1, and per groove at batch 16, for the plain loop
(`GrooVAE.decode_reference`) and the fast path (`GrooVAE.decode`), measured alternately in the same
run (median of --runs after --warmup), then both are checked to give identical outputs for the same
seed. Training: examples/s at --train-batch for forward + backward + global-norm clipping + Adam.
Floor: a bare `nn.LSTMCell` step at the model's sizes times 64 sequential steps (decoder layers for
sampling; both encoder directions and the decoder for a training forward pass). Threads: PyTorch's
default (`torch.get_num_threads()`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from generation.music_vae.model import GrooVAE, GrooVAEConfig  # noqa: E402

LENGTH = 64  # 4 bars of 16 steps


def median_ms(fn: Callable[[], object], runs: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def alternate_ms(fns: dict[str, Callable[[], object]], runs: int, warmup: int) -> dict[str, float]:
    """Median ms of each fn, measured in alternation so that drift in machine speed hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(ts) * 1e3 for name, ts in times.items()}


def cell_step_ms(input_size: int, hidden_size: int, batch: int, runs: int) -> float:
    cell = torch.nn.LSTMCell(input_size, hidden_size)
    x = torch.randn(batch, input_size)
    state = (torch.zeros(batch, hidden_size), torch.zeros(batch, hidden_size))
    with torch.inference_mode():
        return median_ms(lambda: cell(x, state), runs, warmup=max(3, runs // 10))


def sampling(model: GrooVAE, runs: int, warmup: int) -> None:
    cfg = model.config
    print(f"\nSampling one {LENGTH}-step groove (median of {runs} runs after {warmup} warm-up runs)")
    for batch in (1, 16):
        z = torch.randn(batch, cfg.z_size, generator=torch.Generator().manual_seed(batch))
        fns = {
            "reference loop": lambda: model.decode_reference(z, LENGTH, generator=torch.Generator().manual_seed(7)),
            "fast path": lambda: model.decode(z, LENGTH, generator=torch.Generator().manual_seed(7)),
        }
        result = alternate_ms(fns, runs, warmup)
        for name, ms in result.items():
            per = f"  ({ms / batch:.2f} ms per groove)" if batch > 1 else ""
            print(f"  batch {batch:>2}  {name:<15} {ms:8.2f} ms{per}")
        print(f"  batch {batch:>2}  speed-up        {result['reference loop'] / result['fast path']:8.2f}x")

    checks = []
    for batch, temperature in ((1, 1.0), (16, 1.0), (16, 0.5), (4, 2.0)):
        z = torch.randn(batch, cfg.z_size, generator=torch.Generator().manual_seed(100 + batch))
        for seed in range(5):
            a = model.decode(z, LENGTH, temperature, generator=torch.Generator().manual_seed(seed))
            b = model.decode_reference(z, LENGTH, temperature, generator=torch.Generator().manual_seed(seed))
            checks.append(torch.equal(a, b))
    same = model.sample(2, LENGTH, generator=torch.Generator().manual_seed(3))
    again = model.sample(2, LENGTH, generator=torch.Generator().manual_seed(3))
    other = model.sample(2, LENGTH, generator=torch.Generator().manual_seed(4))
    print(
        f"  identical outputs, fast vs reference, same seed: {sum(checks)}/{len(checks)} "
        f"(batches 1/16/4, temperatures 1/0.5/2, 5 seeds each)"
    )
    print(
        f"  sample() same seed identical: {torch.equal(same, again)}; "
        f"different seed differs: {not torch.equal(same, other)}"
    )


def training(model: GrooVAE, batch: int, steps: int) -> float:
    cfg = model.config
    gen = torch.Generator().manual_seed(0)
    n = cfg.num_classes
    hits = (torch.rand(batch, LENGTH, n, generator=gen) < 0.15).float()
    velocities = hits * torch.rand(batch, LENGTH, n, generator=gen)
    offsets = hits * (torch.rand(batch, LENGTH, n, generator=gen) - 0.5)
    x = torch.cat([hits, velocities, offsets], dim=-1)
    lengths = torch.full((batch,), LENGTH)
    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step(i: int) -> float:
        optimizer.zero_grad(set_to_none=True)
        out = model(x, x, lengths, step=i)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return out["loss"].item()

    step(0)  # warm-up
    times = []
    for i in range(1, steps + 1):
        started = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - started)
    model.eval()
    seconds = statistics.median(times)
    print(f"\nTraining at batch {batch} (forward + backward + clip + Adam, median of {steps} steps after 1 warm-up)")
    print(f"  {seconds:.2f} s per step, {batch / seconds:.0f} examples/s")
    return seconds


def floors(model: GrooVAE, train_batch: int, runs: int, train_seconds: float | None) -> None:
    cfg = model.config
    D, Z = cfg.output_depth, cfg.z_size
    enc_in = cfg.input_depth + cfg.control_depth
    print(f"\nFloor: bare nn.LSTMCell steps (inference mode) x {LENGTH} sequential steps")
    for batch in (1, 16):
        dec = [cell_step_ms(D + Z + cfg.control_depth, cfg.dec_rnn_size[0], batch, runs * 20)]
        dec += [cell_step_ms(a, b, batch, runs * 20) for a, b in zip(cfg.dec_rnn_size, cfg.dec_rnn_size[1:])]
        step = sum(dec)
        print(
            f"  batch {batch:>2}  decoder cell steps {' + '.join(f'{d * 1e3:.1f}' for d in dec)} us"
            f" -> sampling floor {LENGTH * step:.2f} ms per batch"
            + (f" ({LENGTH * step / batch:.2f} ms per groove)" if batch > 1 else "")
        )
    r = max(5, runs // 3)
    enc = cell_step_ms(enc_in, cfg.enc_rnn_size[0], train_batch, r)
    enc_total = 2 * enc  # forward and backward directions
    size_in = 2 * cfg.enc_rnn_size[0]
    for size in cfg.enc_rnn_size[1:]:
        enc_total += 2 * cell_step_ms(size_in, size, train_batch, r)
        size_in = 2 * size
    dec = cell_step_ms(D + Z + cfg.control_depth, cfg.dec_rnn_size[0], train_batch, r)
    dec += sum(cell_step_ms(a, b, train_batch, r) for a, b in zip(cfg.dec_rnn_size, cfg.dec_rnn_size[1:]))
    forward_ms = LENGTH * (enc_total + dec)
    print(
        f"  batch {train_batch}  encoder cell step {enc:.2f} ms (x2 directions), decoder cell steps {dec:.2f} ms"
        f" -> forward-pass floor {forward_ms:.0f} ms"
        f" ({train_batch / forward_ms * 1e3:.0f} examples/s for the forward pass alone)"
    )
    if train_seconds is not None:
        print(f"  measured training step / forward-pass floor: {train_seconds * 1e3 / forward_ms:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--train-steps", type=int, default=3, help="0 skips the training measurement")
    parser.add_argument("--train-batch", type=int, default=512)
    args = parser.parse_args()

    torch.manual_seed(0)
    cfg = GrooVAEConfig()  # groovae_4bar: z 256, enc [512], dec [256, 256], 9 classes (depth 27)
    model = GrooVAE(cfg).eval()
    print(
        f"GrooVAE groovae_4bar size: z {cfg.z_size}, enc {cfg.enc_rnn_size}, dec {cfg.dec_rnn_size}, "
        f"depth {cfg.input_depth}/{cfg.output_depth}, {sum(p.numel() for p in model.parameters()):,} parameters"
    )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    sampling(model, args.runs, args.warmup)
    seconds = training(model, args.train_batch, args.train_steps) if args.train_steps > 0 else None
    floors(model, args.train_batch, args.runs, seconds)


if __name__ == "__main__":
    main()
