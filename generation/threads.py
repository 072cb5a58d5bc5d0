"""How many torch threads inference uses on the CPU.

The bundled models are small (LSTMs of 2x128 to 3x256, GrooVAEs of about 4-8M parameters) and
generation runs them one step at a time on batches of 1 to 64: each step is a few small matrix
products, far too little work to share between threads, while every step makes the threads meet.
With torch's default (one thread per core) a thread that shares its core with another busy process
holds up every step, so generation gets many times slower on a loaded machine; one thread does not.

Measured with `python benchmarks/inference_threads.py --repeats 3 --spinners 2` (torch 2.13 CPU
build, 2-core Xeon; "idle": no spinner, load average 2.3; "busy": 2 processes spinning, both cores
taken), seconds per call min-max at 1 thread / 2 threads, and the median of 1t/2t over back-to-back
pairs (above 1: two threads faster):

    workload (LSTM: 32 steps)            idle 1 thread  idle 2 threads  1t/2t   busy 1 thread  busy 2 threads  1t/2t
    folk-melody 2x128, n=1               0.010-0.016    0.011-0.013     1.16    0.013-0.124    0.841-3.662     0.01
    folk-melody, n=16                    0.021-0.026    0.024-0.025     0.90    0.101-0.202    2.806-11.390    0.03
    chorale-polyphony 3x256, n=1         0.081-0.192    0.071-1.595     0.14    0.257-0.559    3.092-6.618     0.08
    chorale-polyphony, n=16              0.175-0.184    0.146-0.262     0.68    0.539-1.424    8.994-20.079    0.06
    groove-drums 2x256, n=1              0.019-0.026    0.015-0.022     1.23    0.078-0.286    1.195-3.513     0.15
    groove-drums, n=16                   0.043-0.045    0.037-0.074     1.13    0.245-0.366    3.622-7.126     0.06
    groove-4bar sample n=1               0.015-0.015    0.017-0.017     0.88    0.176-0.198    0.754-2.042     0.15
    groove-4bar sample n=64              0.201-0.236    0.191-0.248     1.05    0.388-1.141    2.822-5.603     0.14
    groove-4bar regroove (30 s of funk)  0.043-0.063    0.040-0.059     1.19    0.059-0.101    0.119-3.636     0.36
    groove-humanize humanize (same)      0.069-0.072    0.049-0.056     1.36    0.076-0.152    0.105-2.793     0.72

Idle, two threads gain at most 1.36x (about 20 ms) and sometimes stall (chorale, 1.6 s); with both
cores busy one thread is 1.4-100x faster. End to end (`--only-continue --continue-repeats 2
--spinners 1`: `gen continue` of benchmarks/continue_speed.py's 4-minute piece, 8 bars),
OMP_NUM_THREADS=1 took 4.5-6.5 s and =2 12.0-25.0 s (load average 3.7); with a spinner, 25.1-26.1 s
against 77.4-111.0 s, and with neither variable set (this policy) 20.0-26.5 s.

So inference uses 1 thread unless the user chose: a set OMP_NUM_THREADS or GEN_THREADS (a positive
integer; GEN_THREADS wins when both are set) is respected. Only inference calls this (the loaders
`LSTMModel` and `TrainedModel`, on the CPU); `gen train` keeps torch's default unless the user sets
OMP_NUM_THREADS.
"""

from __future__ import annotations

import os

DEFAULT_INFERENCE_THREADS = 1


def _explicit_threads() -> int | None:
    """The thread count the user asked for through GEN_THREADS or OMP_NUM_THREADS, if any."""
    for name in ("GEN_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if not value:
            continue
        try:
            threads = int(value.split(",")[0])  # OMP_NUM_THREADS may be a list per nesting level
        except ValueError:
            continue  # not a number: as if unset (OpenMP ignores it too)
        if threads >= 1:
            return threads
    return None


def inference_threads() -> int:
    """Torch threads for CPU inference: the user's choice (GEN_THREADS, then OMP_NUM_THREADS), else 1."""
    explicit = _explicit_threads()
    return explicit if explicit is not None else DEFAULT_INFERENCE_THREADS


def use_inference_threads() -> None:
    """Sets torch's intra-op thread count for CPU inference (see `inference_threads`)."""
    import torch

    threads = inference_threads()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
