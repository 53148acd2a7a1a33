"""``deepbox.linalg``: PyTorch's ``torch.linalg`` on NumPy's LAPACK bindings, with gradients.

Every function takes batched inputs (``(*, m, n)``) like PyTorch. Each differentiable routine is a
``Function`` whose backward is the matrix-calculus rule written next to its forward:

==============  =====================================================================================
``solve``       X = A⁻¹B:           gB = A⁻ᵀG,  gA = -gB Xᵀ
``inv``         Y = A⁻¹:            gA = -Yᵀ G Yᵀ
``det``         d = det A:          gA = g · adj(A)ᵀ  (= g·d·A⁻ᵀ when A is invertible; via the SVD otherwise)
``slogdet``     log|det A|:         gA = g · A⁻ᵀ
``cholesky``    A = LLᵀ:            gA = L⁻ᵀ Φ(Lᵀ G) L⁻¹,  Φ = symmetric part of the lower triangle
``svdvals``     σ(A):               gA = U diag(g) Vᵀ
``svd``         A = U S Vᵀ:         the reduced-SVD rule (distinct singular values)
``eigh``        A = V diag(λ) Vᵀ:   gA = V (diag(gλ) + (VᵀgV)/E) Vᵀ,  E_ij = λ_j - λ_i
``lstsq``       X = A⁺B (full rank): see ``Lstsq.backward``
==============  =====================================================================================

Norms are built from differentiable primitives (absolute value, sums, maxima, singular values), so
their gradients come from the rules above. Results keep their input's dtype (float32 stays float32).
"""
from __future__ import annotations

from collections import namedtuple

from deepbox import backend
from deepbox.autograd.function import Function
from deepbox.ops import elementwise as ew
from deepbox.ops import reduction as red
from deepbox.ops._common import _TORCH_NAMES, _as_tensor, cast, no_out
from deepbox.ops.matmul import matmul
from deepbox.ops.movement import movedim, select, squeeze, stack, unsqueeze
from deepbox.tensor import Tensor, _make

xp = backend.xp
_INF = float("inf")

__all__ = ["solve", "inv", "inv_ex", "det", "slogdet", "cholesky", "lstsq", "norm", "vector_norm", "matrix_norm",
           "svd", "svdvals", "eigh", "eigvalsh", "qr", "pinv", "matrix_rank", "cond", "solve_triangular",
           "matrix_power", "cross", "LinAlgError"]

LinAlgError = xp.linalg.LinAlgError

SlogdetResult = namedtuple("linalg_slogdet", ["sign", "logabsdet"])
SvdResult = namedtuple("linalg_svd", ["U", "S", "Vh"])
EighResult = namedtuple("linalg_eigh", ["eigenvalues", "eigenvectors"])
QrResult = namedtuple("linalg_qr", ["Q", "R"])
LstsqResult = namedtuple("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])
InvExResult = namedtuple("linalg_inv_ex", ["inverse", "info"])


# ----------------------------------------------------------------------------- checks
def _float_tensor(x, fn: str) -> Tensor:
    t = _as_tensor(x)
    if t._data.dtype.kind != "f":
        raise RuntimeError(f"linalg.{fn}: expected a floating point tensor (float32 or float64), got {t.dtype}")
    if t._data.dtype == xp.float16:
        raise RuntimeError(f"linalg.{fn}: float16 is not supported by LAPACK; use float32 or float64")
    return t


def _check_matrix(t: Tensor, fn: str, square: bool = False) -> None:
    s = t._data.shape
    if len(s) < 2:
        raise RuntimeError(f"linalg.{fn}: the input tensor A must have at least 2 dimensions, got shape {tuple(s)}")
    if square and s[-1] != s[-2]:
        raise RuntimeError(f"linalg.{fn}: A must be batches of square matrices, but they are {s[-2]} by {s[-1]} "
                           "matrices")


def _T(a):
    return xp.swapaxes(a, -1, -2)


def _eye_like(a):
    return xp.broadcast_to(xp.eye(a.shape[-1], dtype=a.dtype), a.shape)


def _linalg_call(fn: str, f, *args):
    """Run a NumPy linalg routine, turning its errors into PyTorch-style messages."""
    try:
        with xp.errstate(all="ignore"):
            return f(*args)
    except xp.linalg.LinAlgError as e:
        msg = str(e)
        if "positive definite" in msg.lower():
            raise LinAlgError(f"linalg.{fn}: The factorization could not be completed because the input is not "
                              "positive-definite.") from None
        raise LinAlgError(f"linalg.{fn}: The solver failed because the input matrix is singular "
                          f"({msg}).") from None


# ----------------------------------------------------------------------------- solve, inv
def _is_vector_rhs(A, B) -> bool:
    # PyTorch's rule: B is a (batch of) vector(s) when it has one dimension fewer than A and matches A's batch
    return B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape == A.shape[:-1])


class Solve(Function):
    @staticmethod
    def forward(ctx, A, B, vector, left):
        if not left:  # X A = B  <=>  Aᵀ Xᵀ = Bᵀ
            A, B = _T(A), _T(B)
        Bm = B[..., None] if vector else B
        X = _linalg_call("solve", xp.linalg.solve, A, Bm)
        ctx.save_for_backward(A, X)
        ctx.vector, ctx.left = vector, left
        X = X[..., 0] if vector else X
        return X if left else _T(X)

    @staticmethod
    def backward(ctx, grad):
        # for the solved system A X = B (A already transposed when left=False)
        A, X = ctx.saved_tensors
        G = grad if ctx.left else _T(grad)
        if ctx.vector:
            G = G[..., None]
        gB = xp.linalg.solve(_T(A), G)
        gA = -gB @ _T(X) if ctx.needs_input_grad[0] else None
        if ctx.vector:
            gB = gB[..., 0]
        if not ctx.left:
            gB = _T(gB)
            gA = _T(gA) if gA is not None else None
        return gA, (gB if ctx.needs_input_grad[1] else None)


def solve(A, B, *, left: bool = True, out=None) -> Tensor:
    """The solution X of ``A X = B`` (``X A = B`` when ``left=False``).

    Shape: A ``(*, n, n)``; B ``(*, n, k)`` or a vector ``(*, n)``; X has B's shape (batch broadcast).
    Raises ``LinAlgError`` for a singular A.
    """
    no_out(out, "linalg.solve")
    if out is not None:
        raise NotImplementedError("linalg.solve: out= is not supported by deepbox")
    A, B = _float_tensor(A, "solve"), _float_tensor(B, "solve")
    _check_matrix(A, "solve", square=True)
    if A._data.dtype != B._data.dtype:
        raise RuntimeError(f"linalg.solve: expected A and B to have the same dtype, but got {A.dtype} and {B.dtype}")
    vector = left and _is_vector_rhs(A._data, B._data)
    n = A._data.shape[-1]
    if vector:
        if B._data.shape[-1] != n:
            raise RuntimeError(f"linalg.solve: incompatible shapes of A {tuple(A.shape)} and B {tuple(B.shape)}")
    else:
        if B._data.ndim < 2:
            raise RuntimeError(f"linalg.solve: B must have at least 2 dimensions when left=False, got "
                               f"{tuple(B.shape)}")
        if B._data.shape[-2 if left else -1] != n:
            side = "rows" if left else "columns"
            raise RuntimeError(f"linalg.solve: incompatible shapes of A {tuple(A.shape)} and B {tuple(B.shape)}: "
                               f"B needs {n} {side}")
    return Solve.apply(A, B, vector, left)


class Inv(Function):
    @staticmethod
    def forward(ctx, A):
        Y = _linalg_call("inv", xp.linalg.inv, A)
        ctx.save_for_backward(Y)
        return Y

    @staticmethod
    def backward(ctx, grad):
        (Y,) = ctx.saved_tensors
        Yt = _T(Y)
        return -(Yt @ grad @ Yt)


def inv(A, *, out=None) -> Tensor:
    """The inverse of each square matrix in ``A`` (shape ``(*, n, n)``). Raises ``LinAlgError`` if singular."""
    no_out(out, "linalg.inv")
    if out is not None:
        raise NotImplementedError("linalg.inv: out= is not supported by deepbox")
    A = _float_tensor(A, "inv")
    _check_matrix(A, "inv", square=True)
    return Inv.apply(A)


def inv_ex(A, *, check_errors: bool = False) -> InvExResult:
    """``inv`` that reports singular matrices in ``info`` (int32, nonzero where singular) instead of raising."""
    A = _float_tensor(A, "inv_ex")
    _check_matrix(A, "inv_ex", square=True)
    try:
        return InvExResult(Inv.apply(A), _make(xp.zeros(A._data.shape[:-2], xp.int32)))
    except LinAlgError:
        if check_errors:
            raise
        a = A._data
        s = xp.linalg.svd(a, compute_uv=False)
        info = (s[..., -1] == 0).astype(xp.int32) * a.shape[-1]
        return InvExResult(_make(xp.full_like(a, xp.nan)), _make(info))


# ----------------------------------------------------------------------------- determinants
class Det(Function):
    @staticmethod
    def forward(ctx, A):
        d = xp.linalg.det(A)
        ctx.save_for_backward(A, d)
        return xp.asarray(d, dtype=A.dtype)

    @staticmethod
    def backward(ctx, grad):
        A, d = ctx.saved_tensors
        g = xp.asarray(grad)[..., None, None]
        out = xp.empty_like(A)
        ok = d != 0
        if xp.all(ok):
            return g * d[..., None, None] * _T(xp.linalg.inv(A))
        # d det / dA = adj(A)ᵀ; with A = U S Vᵀ that is det(U) det(V) U diag(prod_{j≠i} s_j) Vᵀ, which stays
        # finite (and correct) at singular A where d·A⁻ᵀ is 0·∞
        U, s, Vh = xp.linalg.svd(A)
        n = s.shape[-1]
        others = xp.stack([xp.prod(xp.delete(s, i, axis=-1), axis=-1) for i in range(n)], axis=-1)
        sign = xp.linalg.det(U) * xp.linalg.det(Vh)
        adjT = (U * others[..., None, :]) @ Vh * sign[..., None, None]
        out[...] = adjT
        if xp.any(ok):
            out[ok] = (d[ok][..., None, None] * _T(xp.linalg.inv(A[ok])))
        return g * out


def det(A, *, out=None) -> Tensor:
    """The determinant of each square matrix in ``A``: shape ``(*, n, n)`` → ``(*)``."""
    no_out(out, "linalg.det")
    if out is not None:
        raise NotImplementedError("linalg.det: out= is not supported by deepbox")
    A = _float_tensor(A, "det")
    _check_matrix(A, "det", square=True)
    return Det.apply(A)


class Slogdet(Function):
    @staticmethod
    def forward(ctx, A):
        sign, logabs = xp.linalg.slogdet(A)
        ctx.save_for_backward(A)
        return xp.asarray(sign, dtype=A.dtype), xp.asarray(logabs, dtype=A.dtype)

    @staticmethod
    def backward(ctx, gsign, glog):
        (A,) = ctx.saved_tensors
        # the sign is piecewise constant: only log|det| carries a gradient
        return xp.asarray(glog)[..., None, None] * _T(_linalg_call("slogdet", xp.linalg.inv, A))


def slogdet(A, *, out=None) -> SlogdetResult:
    """``(sign, logabsdet)`` of each square matrix: det A = sign · exp(logabsdet), without overflow."""
    no_out(out, "linalg.slogdet")
    if out is not None:
        raise NotImplementedError("linalg.slogdet: out= is not supported by deepbox")
    A = _float_tensor(A, "slogdet")
    _check_matrix(A, "slogdet", square=True)
    return SlogdetResult(*Slogdet.apply(A))


# ----------------------------------------------------------------------------- Cholesky
class Cholesky(Function):
    @staticmethod
    def forward(ctx, A, upper):
        L = _linalg_call("cholesky", xp.linalg.cholesky, A)
        ctx.save_for_backward(L)
        ctx.upper = upper
        return _T(L).copy() if upper else L

    @staticmethod
    def backward(ctx, grad):
        (L,) = ctx.saved_tensors
        gL = _T(grad) if ctx.upper else grad
        # Φ(LᵀgL): the lower triangle of LᵀgL made symmetric with a halved diagonal; tril(LᵀgL) only sees
        # tril(gL) because Lᵀ triu(gL, 1) is strictly upper triangular
        P = xp.tril(_T(L) @ gL)
        P = 0.5 * (P + _T(xp.tril(P, -1)))
        # gA = L⁻ᵀ P L⁻¹, as two triangular solves (NumPy has no triangular solver; its LU handles them)
        X = xp.linalg.solve(_T(L), P)
        return _T(xp.linalg.solve(_T(L), _T(X)))


def cholesky(A, *, upper: bool = False, out=None) -> Tensor:
    """The Cholesky factor L (lower, or U = Lᵀ with ``upper=True``) of symmetric positive-definite matrices.

    Only the lower triangle of A is read. Raises ``LinAlgError`` if A is not positive-definite.
    """
    no_out(out, "linalg.cholesky")
    if out is not None:
        raise NotImplementedError("linalg.cholesky: out= is not supported by deepbox")
    A = _float_tensor(A, "cholesky")
    _check_matrix(A, "cholesky", square=True)
    return Cholesky.apply(A, upper)


class SolveTriangular(Function):
    @staticmethod
    def forward(ctx, A, B, upper, left, unitriangular):
        T = xp.triu(A) if upper else xp.tril(A)
        if unitriangular:
            T = T * (1 - _eye_like(T)) + _eye_like(T)
        X = _linalg_call("solve_triangular", xp.linalg.solve, T, B) if left else \
            _T(_linalg_call("solve_triangular", xp.linalg.solve, _T(T), _T(B)))
        ctx.save_for_backward(T, X)
        ctx.flags = (upper, left, unitriangular)
        return X

    @staticmethod
    def backward(ctx, grad):
        T, X = ctx.saved_tensors
        upper, left, unit = ctx.flags
        if left:
            gB = xp.linalg.solve(_T(T), grad)
            gA = -gB @ _T(X)
        else:
            gB = _T(xp.linalg.solve(T, _T(grad)))
            gA = -_T(X) @ gB
        gA = xp.triu(gA, 1 if unit else 0) if upper else xp.tril(gA, -1 if unit else 0)
        return gA, gB


def solve_triangular(A, B, *, upper: bool, left: bool = True, unitriangular: bool = False, out=None) -> Tensor:
    """The solution of ``A X = B`` (``X A = B`` with ``left=False``) reading only A's upper or lower triangle."""
    no_out(out, "linalg.solve_triangular")
    if out is not None:
        raise NotImplementedError("linalg.solve_triangular: out= is not supported by deepbox")
    A, B = _float_tensor(A, "solve_triangular"), _float_tensor(B, "solve_triangular")
    _check_matrix(A, "solve_triangular", square=True)
    _check_matrix(B, "solve_triangular")
    n = A._data.shape[-1]
    if B._data.shape[-2 if left else -1] != n:
        raise RuntimeError(f"linalg.solve_triangular: incompatible shapes of A {tuple(A.shape)} and B "
                           f"{tuple(B.shape)}")
    return SolveTriangular.apply(A, B, upper, left, unitriangular)


# ----------------------------------------------------------------------------- least squares
class Lstsq(Function):
    @staticmethod
    def forward(ctx, A, B, rcond, driver):
        m, n = A.shape[-2:]
        batch = xp.broadcast_shapes(A.shape[:-2], B.shape[:-2])
        Ab = xp.broadcast_to(A, batch + A.shape[-2:])
        Bb = xp.broadcast_to(B, batch + B.shape[-2:])
        k = B.shape[-1]
        X = xp.empty(batch + (n, k), A.dtype)
        res = xp.empty(batch + (k,), A.dtype)
        rank = xp.empty(batch, xp.int64)
        sv = xp.empty(batch + (min(m, n),), A.dtype)
        full = True
        for idx in xp.ndindex(*batch):
            x, r, rk, s = xp.linalg.lstsq(Ab[idx], Bb[idx], rcond=rcond)
            X[idx], rank[idx], sv[idx] = x, rk, s
            if r.size:
                res[idx] = r
            else:
                full = False
        ctx.save_for_backward(A, B, X)
        ctx.shape = (m, n)
        if driver == "gelsy" or driver == "gels" or m <= n or not full or (rank < n).any():
            res = xp.empty((0,), A.dtype)
        if driver not in ("gelsd", "gelss"):
            sv = xp.empty((0,), A.dtype)
        if driver == "gels":
            rank = xp.empty((0,), xp.int64)
        return X, res, rank, sv

    @staticmethod
    def backward(ctx, gX, gres, grank, gsv):
        A, B, X = ctx.saved_tensors
        m, n = ctx.shape
        At = _T(A)
        if m >= n:
            # X = (AᵀA)⁻¹AᵀB;  z = (AᵀA)⁻¹G;  gB = A z;  gA = R zᵀ - A z Xᵀ  with R = B - A X
            z = xp.linalg.solve(At @ A, gX)
            Az = A @ z
            return (B - A @ X) @ _T(z) - Az @ _T(X), Az
        # minimum-norm solution X = Aᵀ(AAᵀ)⁻¹B = Aᵀ Z;  u = (AAᵀ)⁻¹A G;  gB = u;  gA = Z Gᵀ - u Xᵀ - Z uᵀ A
        M = A @ At
        Z = xp.linalg.solve(M, B)
        u = xp.linalg.solve(M, A @ gX)
        return Z @ _T(gX) - u @ _T(X) - Z @ _T(u) @ A, u


def lstsq(A, B, rcond: float | None = None, *, driver: str | None = None) -> LstsqResult:
    """The least-squares solution of ``A X ≈ B``: ``(solution, residuals, rank, singular_values)``.

    Shape: A ``(*, m, n)``, B ``(*, m, k)`` (or ``(*, m)``, treated as one column); solution ``(*, n, k)``.
    As in PyTorch on the CPU, the default driver is 'gelsy', which reports ``rank`` but leaves ``residuals``
    and ``singular_values`` empty; 'gelsd' and 'gelss' fill them (residuals only for full-rank tall A).
    The solution is differentiable where A has full rank.
    """
    drivers = ("gels", "gelsy", "gelsd", "gelss")
    if driver is None:
        driver = "gelsy"
    if driver not in drivers:
        raise RuntimeError(f"linalg.lstsq: parameter `driver` should be one of {drivers}, got {driver!r}")
    A, B = _float_tensor(A, "lstsq"), _float_tensor(B, "lstsq")
    _check_matrix(A, "lstsq")
    vector = B._data.ndim == A._data.ndim - 1
    if not vector and B._data.ndim != A._data.ndim:
        raise RuntimeError(f"linalg.lstsq: B must have A's number of dimensions or one fewer; got A "
                           f"{tuple(A.shape)} and B {tuple(B.shape)}")
    if B._data.shape[-1 if vector else -2] != A._data.shape[-2]:
        raise RuntimeError(f"linalg.lstsq: A {tuple(A.shape)} and B {tuple(B.shape)} need the same number of rows")
    if A._data.dtype != B._data.dtype:
        raise RuntimeError(f"linalg.lstsq: expected A and B to have the same dtype, got {A.dtype} and {B.dtype}")
    if vector:

        B = unsqueeze(B, -1)
    X, res, rank, sv = Lstsq.apply(A, B, rcond, driver)
    if vector:

        X = squeeze(X, -1)
    return LstsqResult(X, res.detach(), rank.detach(), sv.detach())


# ----------------------------------------------------------------------------- SVD, eigh, QR
class Svdvals(Function):
    @staticmethod
    def forward(ctx, A):
        U, s, Vh = xp.linalg.svd(A, full_matrices=False)
        ctx.save_for_backward(U, Vh)
        return s

    @staticmethod
    def backward(ctx, grad):
        U, Vh = ctx.saved_tensors
        return (U * grad[..., None, :]) @ Vh


def svdvals(A, *, driver=None, out=None) -> Tensor:
    """The singular values of ``A`` (shape ``(*, m, n)`` → ``(*, min(m, n))``), in descending order."""
    no_out(out, "linalg.svdvals")
    A = _float_tensor(A, "svdvals")
    _check_matrix(A, "svdvals")
    if not A.requires_grad:
        return _make(xp.linalg.svd(A._data, compute_uv=False))
    return Svdvals.apply(A)


class Svd(Function):
    @staticmethod
    def forward(ctx, A, full_matrices):
        U, s, Vh = xp.linalg.svd(A, full_matrices=full_matrices)
        ctx.save_for_backward(U, s, Vh)
        return U, s, Vh

    @staticmethod
    def backward(ctx, gU, gS, gVh):
        U, s, Vh = ctx.saved_tensors
        if U.shape[-1] != s.shape[-1] or Vh.shape[-2] != s.shape[-1]:
            raise RuntimeError("linalg.svd: the derivative with full_matrices=True is not defined (the extra "
                               "singular vectors are not unique); use full_matrices=False")
        # the reduced-SVD rule (real case):
        # gA = U[(skew(UᵀgU)/E) S + S (skew(VᵀgV)/E) + diag(gS)]Vᵀ + (I - UUᵀ)gU S⁻¹Vᵀ + U S⁻¹ gVᵀ(I - VVᵀ)
        # with E_jk = s_k² - s_j² (1 on the diagonal); it needs distinct nonzero singular values
        s2 = s * s
        E = s2[..., None, :] - s2[..., :, None]
        k = s.shape[-1]
        E[..., range(k), range(k)] = 1.0
        UtgU = _T(U) @ gU
        VtgV = Vh @ _T(gVh)
        inner = (UtgU - _T(UtgU)) / E * s[..., None, :] + s[..., :, None] * ((VtgV - _T(VtgV)) / E)
        inner[..., range(k), range(k)] += gS
        gA = U @ inner @ Vh
        gA += ((gU - U @ UtgU) / s[..., None, :]) @ Vh
        gA += U @ ((gVh - (gVh @ _T(Vh)) @ Vh) / s[..., :, None])
        return gA


def svd(A, full_matrices: bool = True, *, driver=None, out=None) -> SvdResult:
    """``A = U diag(S) Vh``: ``(U, S, Vh)`` with S descending.

    Shape: A ``(*, m, n)``; U ``(*, m, m)`` and Vh ``(*, n, n)`` (``(*, m, k)`` and ``(*, k, n)`` with
    ``full_matrices=False``, k = min(m, n)). Differentiable with ``full_matrices=False`` and distinct
    singular values (the rule ignores the sign gauge, so losses should not depend on the vectors' signs).
    """
    no_out(out, "linalg.svd")
    A = _float_tensor(A, "svd")
    _check_matrix(A, "svd")
    return SvdResult(*Svd.apply(A, full_matrices))


class Eigh(Function):
    @staticmethod
    def forward(ctx, A, lower):
        w, V = xp.linalg.eigh(A, UPLO="L" if lower else "U")
        ctx.save_for_backward(w, V)
        return w, V

    @staticmethod
    def backward(ctx, gw, gV):
        w, V = ctx.saved_tensors
        # gA = V (diag(gw) + (VᵀgV)/E) Vᵀ with E_ij = w_j - w_i, made symmetric: A is symmetric, so only
        # symmetric perturbations are meaningful (PyTorch returns the same symmetric gradient)
        E = w[..., None, :] - w[..., :, None]
        n = w.shape[-1]
        E[..., range(n), range(n)] = 1.0
        inner = (_T(V) @ gV) / E
        inner[..., range(n), range(n)] = gw
        inner = 0.5 * (inner + _T(inner))
        return V @ inner @ _T(V)


def eigh(A, UPLO: str = "L", *, out=None) -> EighResult:
    """Eigenvalues (ascending) and orthonormal eigenvectors of symmetric matrices, reading one triangle.

    Shape: A ``(*, n, n)`` → eigenvalues ``(*, n)``, eigenvectors ``(*, n, n)`` (columns).
    """
    no_out(out, "linalg.eigh")
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"linalg.eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    A = _float_tensor(A, "eigh")
    _check_matrix(A, "eigh", square=True)
    return EighResult(*Eigh.apply(A, UPLO == "L"))


def eigvalsh(A, UPLO: str = "L", *, out=None) -> Tensor:
    """The eigenvalues (ascending) of symmetric matrices, differentiable."""
    no_out(out, "linalg.eigvalsh")
    return eigh(A, UPLO).eigenvalues


def qr(A, mode: str = "reduced", *, out=None) -> QrResult:
    """The QR decomposition ``A = Q R`` (values only; ``mode`` 'reduced', 'complete' or 'r')."""
    no_out(out, "linalg.qr")
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"linalg.qr: qr received unrecognized mode {mode!r} but expected one of 'reduced' "
                           "(default), 'r', or 'complete'")
    A = _float_tensor(A, "qr")
    _check_matrix(A, "qr")
    if A.requires_grad:
        raise NotImplementedError("linalg.qr: deepbox computes QR values only (no gradient); detach the input")
    if mode == "r":
        return QrResult(_make(xp.empty((0,), A._data.dtype)), _make(xp.linalg.qr(A._data, mode="r")))
    Q, R = xp.linalg.qr(A._data, mode=mode)
    return QrResult(_make(Q), _make(R))


# ----------------------------------------------------------------------------- norms
def _norm_dtype(x: Tensor, dtype, fn: str) -> Tensor:
    if dtype is not None:
        x = cast(x, backend.to_numpy_dtype(dtype))
    return _float_tensor(x, fn)


def vector_norm(x, ord=2, dim=None, keepdim: bool = False, *, dtype=None, out=None) -> Tensor:
    """The vector ``ord``-norm of ``x`` over ``dim`` (all elements when ``dim`` is None).

    ``ord``: any real p, ``inf`` (max |x|), ``-inf`` (min |x|), 0 (number of nonzeros).
    """
    no_out(out, "linalg.vector_norm")

    x = _norm_dtype(_as_tensor(x), dtype, "vector_norm")
    if isinstance(ord, str):
        raise RuntimeError(f"linalg.vector_norm: ord must be a number, got {ord!r} (use matrix_norm for 'fro' or "
                           "'nuc')")
    if dim is not None and not isinstance(dim, int):
        dim = tuple(dim)
    return red.norm(x, float(ord), dim, keepdim)


def _two_dims(dim, ndim, fn):
    if len(dim) != 2:
        raise RuntimeError(f"linalg.{fn}: dim must be a 2-tuple, got {dim}")
    d0, d1 = (d % ndim if -ndim <= d < ndim else None for d in dim)
    if d0 is None or d1 is None:
        raise IndexError(f"linalg.{fn}: dim {dim} out of range for a tensor with {ndim} dimensions")
    if d0 == d1:
        raise RuntimeError(f"linalg.{fn}: dims must be different, got {dim}")
    return d0, d1


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None, out=None) -> Tensor:
    """The matrix norm over the two dimensions ``dim``.

    ``ord``: 'fro' (Frobenius), 'nuc' (sum of singular values), 2 / -2 (largest / smallest singular value),
    1 / -1 (max / min column sum of |A|), inf / -inf (max / min row sum of |A|).
    """
    no_out(out, "linalg.matrix_norm")

    A = _norm_dtype(_as_tensor(A), dtype, "matrix_norm")
    if A.ndim < 2:
        raise RuntimeError(f"linalg.matrix_norm: the input tensor A must have at least 2 dimensions, got shape "
                           f"{tuple(A.shape)}")
    d0, d1 = _two_dims(tuple(dim), A.ndim, "matrix_norm")
    if ord == "fro":
        return red.norm(A, 2.0, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2, 2.0, -2.0):
        M = movedim(A, (d0, d1), (-2, -1))
        s = svdvals(M)
        if ord == "nuc":
            r = red.sum(s, -1)
        elif ord > 0:
            r = red.amax(s, -1)
        else:
            r = red.amin(s, -1)
        if keepdim:
            r = unsqueeze(unsqueeze(r, min(d0, d1)), max(d0, d1))
        return r
    if ord in (1, -1, _INF, -_INF, 1.0, -1.0):
        # 1-norms sum over rows (dim d0) then pick a column; inf-norms the other way round
        sum_dim, pick_dim = (d0, d1) if abs(ord) == 1 else (d1, d0)
        sums = red.sum(ew.abs(A), sum_dim, keepdim=True)
        pick = red.amax if ord > 0 else red.amin
        r = pick(sums, pick_dim, keepdim=True)
        if not keepdim:

            r = squeeze(squeeze(r, max(d0, d1)), min(d0, d1))
        return r
    raise RuntimeError(f"linalg.matrix_norm: Order {ord!r} not supported; expected 'fro', 'nuc', 2, -2, 1, -1, "
                       "inf or -inf")


def norm(A, ord=None, dim=None, keepdim: bool = False, *, dtype=None, out=None) -> Tensor:
    """A vector or matrix norm, as ``torch.linalg.norm`` decides.

    With ``dim`` an int (or 1-tuple) a vector norm; a 2-tuple, a matrix norm. With ``dim=None``: the 2-norm of
    all elements when ``ord`` is None, otherwise ``A`` must be 1-D (vector norm) or 2-D (matrix norm).
    """
    no_out(out, "linalg.norm")
    A = _as_tensor(A)
    if isinstance(dim, int):
        dim = (dim,)
    if dim is not None:
        dim = tuple(dim)
        if len(dim) == 1:
            return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
        if len(dim) == 2:
            return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
        raise RuntimeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. Got {list(dim)}")
    if ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    if A.ndim == 1:
        return vector_norm(A, ord, None, keepdim, dtype=dtype)
    if A.ndim == 2:
        return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
    raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. Got "
                       f"{A.ndim}D.")


# ----------------------------------------------------------------------------- built from the above
def pinv(A, *, atol=None, rtol=None, hermitian: bool = False, out=None) -> Tensor:
    """The Moore-Penrose pseudo-inverse, from the SVD (values; singular values below the cut-off are dropped)."""
    no_out(out, "linalg.pinv")
    A = _float_tensor(A, "pinv")
    _check_matrix(A, "pinv")
    a = A._data
    U, s, Vh = xp.linalg.svd(a, full_matrices=False)
    smax = s[..., :1] if s.shape[-1] else s
    if rtol is None:
        rtol = 0.0 if atol is not None and atol > 0 else xp.finfo(a.dtype).eps * max(a.shape[-2:])
    cut = xp.maximum(atol or 0.0, rtol * smax)
    with xp.errstate(divide="ignore"):
        sinv = xp.where(s > cut, 1.0 / s, 0.0).astype(a.dtype)
    return _make(_T(Vh) @ (sinv[..., :, None] * _T(U)))


def matrix_rank(A, *, atol=None, rtol=None, hermitian: bool = False, out=None) -> Tensor:
    """The number of singular values above ``max(atol, rtol · σ_max)`` (int64)."""
    no_out(out, "linalg.matrix_rank")
    A = _float_tensor(A, "matrix_rank")
    _check_matrix(A, "matrix_rank")
    a = A._data
    s = xp.linalg.svd(a, compute_uv=False)
    if rtol is None:
        rtol = 0.0 if atol is not None and atol > 0 else xp.finfo(a.dtype).eps * max(a.shape[-2:])
    smax = s[..., :1] if s.shape[-1] else s
    return _make((s > xp.maximum(atol or 0.0, rtol * smax)).sum(-1).astype(xp.int64))


def cond(A, p=None) -> Tensor:
    """The condition number ``‖A‖ · ‖A⁻¹‖`` (σ_max/σ_min for ``p`` None or 2)."""

    A = _float_tensor(A, "cond")
    _check_matrix(A, "cond")
    if p in (None, 2, -2):
        s = svdvals(A)

        big, small = select(s, -1, 0), select(s, -1, s.shape[-1] - 1)
        return ew.div(big, small) if p in (None, 2) else ew.div(small, big)
    return ew.mul(matrix_norm(A, p), matrix_norm(inv(A), p))


def matrix_power(A, n: int) -> Tensor:
    """``A`` multiplied by itself ``n`` times (n < 0: powers of the inverse), by repeated squaring."""

    A = _float_tensor(A, "matrix_power")
    _check_matrix(A, "matrix_power", square=True)
    if not isinstance(n, int):
        raise TypeError(f"linalg.matrix_power: n must be an int, got {type(n).__name__}")
    if n == 0:

        # A·0 + I keeps the result in the graph (with a zero gradient), as PyTorch does
        return ew.add(ew.mul(A, 0.0), _make(xp.array(_eye_like(A._data))))
    base = inv(A) if n < 0 else A
    n = abs(n)
    result = None
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


def cross(input, other, *, dim: int = -1) -> Tensor:
    """The cross product of 3-vectors along ``dim``."""

    a, b = _as_tensor(input), _as_tensor(other)
    if a.ndim == 0 or b.ndim == 0 or a.ndim != b.ndim:
        raise RuntimeError(f"linalg.cross: inputs must have the same number of dimensions, at least 1; got shapes "
                           f"{tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[dim] != 3 or b.shape[dim] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3, got {a.shape[dim]} and "
                           f"{b.shape[dim]}")
    a0, a1, a2 = (select(a, dim, i) for i in range(3))
    b0, b1, b2 = (select(b, dim, i) for i in range(3))
    c = [ew.sub(ew.mul(a1, b2), ew.mul(a2, b1)), ew.sub(ew.mul(a2, b0), ew.mul(a0, b2)),
         ew.sub(ew.mul(a0, b1), ew.mul(a1, b0))]
    return stack(c, dim if dim >= 0 else a.ndim + dim if a.ndim >= b.ndim else b.ndim + dim)


# ----------------------------------------------------------------------------- torch.norm and torch.svd
def tensor_norm(input, p="fro", dim=None, keepdim=False, dtype=None) -> Tensor:
    """``torch.norm`` / ``Tensor.norm``: a vector p-norm over ``dim``; ``p='nuc'`` the nuclear (matrix) norm."""
    if p == "nuc":
        x = _as_tensor(input)
        return matrix_norm(x, "nuc", dim=(-2, -1) if dim is None else dim, keepdim=keepdim, dtype=dtype)
    return red.norm(input, p, dim, keepdim, dtype)


def torch_svd(input, some: bool = True, compute_uv: bool = True):
    """``torch.svd``: ``(U, S, V)`` with ``V`` itself (not ``Vh``), reduced unless ``some=False``."""
    if not compute_uv:
        A = _as_tensor(input)
        *batch, m, n = A.shape
        return A.new_zeros(*batch, m, m), svdvals(A), A.new_zeros(*batch, n, n)
    U, S, Vh = svd(input, full_matrices=not some)
    return U, S, Vh.mT


def torch_cross(input, other, dim=None):
    """``torch.cross``: as ``linalg.cross``, but ``dim=None`` takes the first dimension of size 3."""
    a, b = _as_tensor(input), _as_tensor(other)
    if dim is None:
        sizes = xp.broadcast_shapes(a.shape, b.shape) if a.ndim and b.ndim else ()
        dim = next((i for i, n in enumerate(sizes) if n == 3), -1)
    return cross(a, b, dim=dim)


def renorm(input, p, dim, maxnorm) -> Tensor:
    """Each slice ``input.select(dim, i)`` whose p-norm exceeds ``maxnorm`` scaled down to norm ``maxnorm``
    (by maxnorm / (norm + 1e-7), as PyTorch). Built from ``norm`` and products, so the gradient includes
    the norm's dependence on the input, as PyTorch's does."""
    x = _as_tensor(input)
    if x.ndim < 2:
        raise RuntimeError(f"renorm: input needs at least 2 dimensions, got {x.ndim} dimensions")
    if p <= 0:
        raise RuntimeError("renorm: non-positive-norm not supported")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    if x._data.dtype.kind != "f":
        raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as input. Got "
                           f"{_TORCH_NAMES[x._data.dtype.name]}")
    axis = dim % x.ndim if -x.ndim <= dim < x.ndim else None
    if axis is None:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-x.ndim}, {x.ndim - 1}], but got "
                         f"{dim})")
    norms = red.norm(x, float(p), tuple(i for i in range(x.ndim) if i != axis), True)
    factor = ew.where(norms > maxnorm, ew.div(maxnorm, ew.add(norms, 1e-7)), 1.0)
    return ew.mul(x, factor)
