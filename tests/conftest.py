"""Test-wide set-up.

CUDA kernels are exercised on CPU through Numba's CUDA simulator. The switch must be
set before anything imports numba, so it is done here with plain `os.environ` (no
numba import). Set SYMDISTILL_REAL_CUDA=1 on a GPU machine to test the real device.
"""
import os

if os.environ.get("SYMDISTILL_REAL_CUDA") != "1":
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
