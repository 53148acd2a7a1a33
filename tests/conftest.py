"""Test session setup: one BLAS thread per pytest-xdist worker, so 2 workers on 2 cores don't oversubscribe.

Thread counts are set through threadpoolctl and torch.set_num_threads, never through the
environment's OpenBLAS variables.
"""
from __future__ import annotations

import os

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    try:
        from threadpoolctl import threadpool_limits

        _limits = threadpool_limits(limits=1)
    except ImportError:  # threadpoolctl is a test dependency; without it tests still run, only slower
        pass
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


try:  # in CI, hypothesis draws the same examples every run, so a red build always reproduces
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    if os.environ.get("CI"):
        settings.load_profile("ci")
except ImportError:
    pass


@pytest.fixture(autouse=True)
def _seed_everything():
    """Each test starts from the same random state, so failures reproduce."""
    import numpy as np

    import deepbox

    deepbox.manual_seed(0)
    np.random.seed(0)
    yield


@pytest.fixture(params=["numba", "numpy"])
def kernel_mode(request):
    """``"numba"`` or ``"numpy"``: a test that names this runs on the compiled kernels and on their NumPy
    twins (``kernels.switch.compiled(False)``). The ``numba`` variant fails, never skips, without the kernels."""
    from deepbox import kernels
    from tests.helpers import require_kernels

    if request.param == "numba":
        require_kernels()
        with kernels.switch.compiled(True):
            assert kernels.switch.enabled()
            yield "numba"
    else:
        with kernels.switch.compiled(False):
            assert kernels.switch.kernels() is None
            yield "numpy"
