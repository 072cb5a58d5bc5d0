"""The numerically sensitive tests also pass on other kernels: torch's portable (non-SIMD) CPU
kernels and one OpenMP thread, as on a CPU whose vector units or thread count differ from this one's.

Those files compare results of different computation paths (fast sampling loop vs reference loop,
stepped cells vs the fused LSTM, batched vs single); float32 rounding differs between kernels, so
they must compare with tolerances, and this test runs them again in a fresh process (the kernel
choice is made once, at import) under ATEN_CPU_CAPABILITY=default and OMP_NUM_THREADS=1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SENSITIVE = ["test_groovae_model.py", "test_lstm_model.py"]


def test_sensitive_tests_pass_on_portable_kernels_and_one_thread() -> None:
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1"}
    env.pop("GEN_THREADS", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *(str(TESTS / f) for f in SENSITIVE)]
    done = subprocess.run(command, cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=600)
    tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{tail}"
