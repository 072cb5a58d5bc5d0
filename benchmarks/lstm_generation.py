"""Generation speed and training throughput of the LSTM note models (default: `performance`, 3x512).

Prints events per second at batch 1 and batch 16 for
- the reference: one nn.LSTM of all layers stepped a token at a time with torch.multinomial (the
  loop the issue timed before any code, about 350 events/s at batch 1 on the 2-core CPU),
- the plain loop: the model's nn.LSTM modules stepped one token at a time with their state, softmax
  and inverse-CDF sampling in Python (what one writes first), and
- `LSTMModel.sample_tokens`: the `Stepper` (layer 0's input gates looked up per token, fused cells),
checks that both choose the same tokens for the same uniforms, and prints training throughput
(examples and events per second) at the config's batch size and window length.

    python benchmarks/lstm_generation.py [--config performance] [--events 600] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch


def plain_loop(model, token_steps, primer: int, u: torch.Tensor, temperature: float) -> torch.Tensor:
    from generation.lstm.model import choose

    B = u.shape[1]
    states = [None] * len(model.layers)
    token = torch.full((B,), primer, dtype=torch.long, device=u.device)
    position = torch.zeros(B, dtype=torch.long, device=u.device)
    out = []
    with torch.inference_mode():
        for t in range(u.shape[0]):
            x = model._inputs(token[:, None], position[:, None])  # [B, 1, E]
            for i, layer in enumerate(model.layers):
                x, states[i] = layer(x, states[i])
            token, _ = choose(model.output(x[:, 0]), u[t], temperature, 0, 1.0)
            position = position + token_steps[token]
            out.append(token)
    return torch.stack(out, 1)


def reference_loop(vocab: int, embedding: int, sizes: list[int], steps: int, batch: int) -> float:
    """The loop one writes first (the figure the issue measured before any code): one nn.LSTM of all
    layers stepped a token at a time, softmax and torch.multinomial. Returns seconds for `steps`."""
    torch.manual_seed(0)
    embed = torch.nn.Embedding(vocab, embedding)
    lstm = torch.nn.LSTM(embedding, sizes[0], num_layers=len(sizes), batch_first=True)
    output = torch.nn.Linear(sizes[-1], vocab)
    token = torch.zeros(batch, 1, dtype=torch.long)
    state = None
    started = time.perf_counter()
    with torch.inference_mode():
        for _ in range(steps):
            y, state = lstm(embed(token), state)
            token = torch.multinomial(output(y[:, -1]).softmax(-1), 1)
    return time.perf_counter() - started


def fast_loop(stepper, primer: int, u: torch.Tensor, temperature: float) -> torch.Tensor:
    from generation.lstm.model import choose

    B = u.shape[1]
    state = stepper.initial_state(B)
    token = torch.full((B,), primer, dtype=torch.long, device=u.device)
    position = torch.zeros(B, dtype=torch.long, device=u.device)
    out = []
    with torch.inference_mode():
        for t in range(u.shape[0]):
            logits = stepper.step(state, token, position)
            token, _ = choose(logits, u[t], temperature, 0, 1.0)
            position = position + stepper.token_steps[token]
            out.append(token)
    return torch.stack(out, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="performance")
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from generation.lstm.configs import load_config
    from generation.lstm.family import LSTMFamily
    from generation.lstm.model import Stepper

    torch.manual_seed(0)
    device = torch.device(args.device)
    config = load_config(args.config)
    model = LSTMFamily().build_model(config).to(device).eval()
    token_steps = torch.from_numpy(config.encoding.token_steps).to(device)
    stepper = Stepper(model, token_steps)
    primer = config.encoding.start_token
    print(f"{args.config}: layers {config.hparams.rnn_layer_sizes}, vocabulary {config.encoding.vocab_size}, "
          f"device {device}, torch threads {torch.get_num_threads()}")
    for batch in (1, 16):
        generator = torch.Generator().manual_seed(batch)
        u = torch.rand((args.events, batch), generator=generator).to(device)
        fast_loop(stepper, primer, u[:20], 1.0)  # warm up
        plain_loop(model, token_steps, primer, u[:20], 1.0)
        timings = {}
        results = {}
        for name, run in (("plain loop", lambda: plain_loop(model, token_steps, primer, u, 1.0)),
                          ("Stepper", lambda: fast_loop(stepper, primer, u, 1.0))):
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                results[name] = run()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                best = min(best, time.perf_counter() - started)
            timings[name] = best
        same = torch.equal(results["plain loop"], results["Stepper"])
        reference = min(reference_loop(config.encoding.vocab_size, config.hparams.embedding_size,
                                       config.hparams.rnn_layer_sizes, args.events, batch) for _ in range(3))
        timings = {"reference": reference, **timings}
        for name, seconds in timings.items():
            rate = args.events * batch / seconds
            print(f"  batch {batch:>2}  {name:<11} {rate:>9,.0f} events/s  ({seconds / args.events * 1e3:.3f} ms per step)")
        print(f"  batch {batch:>2}  Stepper vs reference {timings['reference'] / timings['Stepper']:.2f}x, "
              f"vs plain loop {timings['plain loop'] / timings['Stepper']:.2f}x; same tokens as the plain loop: {same}")

    # Training throughput at the config's batch size and window length (random tokens: the arithmetic is the same).
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    B, T = config.hparams.batch_size, config.hparams.max_seq_len
    family = LSTMFamily()
    tokens = torch.randint(0, config.encoding.vocab_size, (B, T + 1))
    examples = [(row.numpy(), torch.arange(T + 1).numpy()) for row in tokens]
    batch = {k: v.to(device) for k, v in family.collate(examples).items()}
    for step in range(args.train_steps + 1):
        if step == 1:
            started = time.perf_counter()
        loss = family.loss(model, batch, step)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - started) / args.train_steps
    print(f"  training: batch {B} x {T} events: {seconds:.2f} s per step, {B / seconds:,.1f} examples/s, "
          f"{B * T / seconds:,.0f} events/s")


if __name__ == "__main__":
    main()
