"""Every test in tests/conv runs twice: on the compiled (numba) kernels and on their NumPy twins.

``kernel_mode`` (tests/conftest.py) is made autouse here; its ``numba`` variant fails when the kernels
cannot load. Both variants compare against PyTorch.
"""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _both_kernel_paths(kernel_mode):
    yield kernel_mode
