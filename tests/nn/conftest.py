"""Fixtures for tests/nn: ``kernel_mode`` runs a test on the compiled (numba) kernels and on their NumPy twins.

Not autouse: only the tests that name it (the batch-norm kernel tests) run twice. The ``numba``
variant fails, never skips, when the kernels cannot load (numba is in the ``test`` extra).
"""
from __future__ import annotations

import pytest

from deepbox.ops import accel


def require_kernels():
    """Fail (never skip) when the compiled kernels are not there."""
    try:
        import numba  # noqa: F401
        missing = None
    except ImportError as e:
        missing = str(e)
    if missing is not None:
        pytest.fail(f"numba is not importable ({missing}); it is part of the test extra: pip install -e '.[test]'",
                    pytrace=False)
    if not accel.available():
        pytest.fail("numba is installed but deepbox's compiled kernels did not load "
                    "(is DEEPBOX_NUMBA=0 set, or does deepbox/ops/_numba_kernels.py fail to import?)", pytrace=False)


@pytest.fixture(params=["numba", "numpy"])
def kernel_mode(request):
    """``"numba"`` or ``"numpy"``: the path the ops under test take."""
    if request.param == "numba":
        require_kernels()
        with accel.compiled(True):
            assert accel.enabled()
            yield "numba"
    else:
        with accel.compiled(False):
            assert accel.kernels() is None
            yield "numpy"
