"""``deepbox.linalg``: PyTorch's ``torch.linalg``, the public face of ``deepbox/ops/linalg.py``."""
from __future__ import annotations

from deepbox.ops.linalg import (  # noqa: F401
    EighResult,
    InvExResult,
    LinAlgError,
    LstsqResult,
    QrResult,
    SlogdetResult,
    SvdResult,
    cholesky,
    cond,
    cross,
    det,
    eigh,
    eigvalsh,
    inv,
    inv_ex,
    lstsq,
    matrix_norm,
    matrix_power,
    matrix_rank,
    norm,
    pinv,
    qr,
    slogdet,
    solve,
    solve_triangular,
    svd,
    svdvals,
    vector_norm,
)

__all__ = ["solve", "inv", "inv_ex", "det", "slogdet", "cholesky", "lstsq", "norm", "vector_norm", "matrix_norm",
           "svd", "svdvals", "eigh", "eigvalsh", "qr", "pinv", "matrix_rank", "cond", "solve_triangular",
           "matrix_power", "cross", "LinAlgError"]
