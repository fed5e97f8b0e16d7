"""Safe LoRA on plain tensors (Hsu et al., NeurIPS 2024).

For one LoRA-adapted linear module with frozen weight :math:`W` (:math:`d_{out}\\times
d_{in}`) and factors :math:`A` (:math:`r\\times d_{in}`), :math:`B`
(:math:`d_{out}\\times r`), the update is :math:`\\Delta W = s\\,BA`. With the alignment
matrix :math:`V = W^{aligned} - W^{base}` the paper's "projection" is :math:`C =
VV^\\top/\\|V\\|_F`; a module is projected, :math:`B \\leftarrow CB`, when
:math:`\\cos(\\mathrm{vec}(CBA), \\mathrm{vec}(BA))` is small. Nothing here forms the
:math:`d_{out}\\times d_{out}` matrix :math:`C`: :math:`CB = V(V^\\top B)/\\|V\\|_F`,
and the cosine needs only :math:`r\\times r` products. Derived in
``notebooks/01_safe_lora``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

MODES = ("threshold", "number")


def check_weights(w_base: torch.Tensor, w_aligned: torch.Tensor, name: str) -> None:
    """Base and aligned weights must be matrices of one shape."""
    if w_base.dim() != 2 or w_aligned.dim() != 2:
        raise ValueError(
            f"{name}: base and aligned weights must be matrices, got shapes "
            f"{tuple(w_base.shape)} and {tuple(w_aligned.shape)}"
        )
    if w_base.shape != w_aligned.shape:
        raise ValueError(
            f"{name}: base weight {tuple(w_base.shape)} and aligned weight "
            f"{tuple(w_aligned.shape)} differ in shape"
        )


def _zero_alignment(name: str) -> ValueError:
    return ValueError(
        f"{name}: base and aligned weights are identical, so the alignment matrix is "
        "zero"
    )


def alignment_matrix(
    w_base: torch.Tensor, w_aligned: torch.Tensor, name: str = "module"
) -> torch.Tensor:
    """:math:`V = W^{aligned} - W^{base}` (float32 or wider), checked for shape and for
    being non-zero."""
    check_weights(w_base, w_aligned, name)
    dtype = torch.promote_types(w_base.dtype, torch.float32)
    v = w_aligned.to(dtype) - w_base.to(dtype)
    if not torch.any(v):
        raise _zero_alignment(name)
    return v


@dataclass(frozen=True)
class AlignmentSpectrum:
    """What :math:`C = VV^\\top/\\|V\\|_F` does, from the singular values of
    :math:`V`."""

    frobenius: float  #: :math:`\\|V\\|_F`
    lambda_1: float  #: :math:`\\sigma_1^2/\\|V\\|_F`, C's largest gain
    n_at_least_1: int  #: eigenvalues of C that are >= 1 (directions C does not shrink)
    top_share: (
        float  #: :math:`\\sigma_1^2/\\|V\\|_F^2`, the top direction's energy share
    )


def alignment_spectrum(v: torch.Tensor) -> AlignmentSpectrum:
    """The spectrum statistics of :math:`C` for one alignment matrix ``v`` (eigenvalues
    :math:`\\sigma_k^2/\\|V\\|_F`, computed in float64)."""
    if v.dim() != 2 or not torch.any(v):
        raise ValueError(
            f"v must be a non-zero matrix, got shape {tuple(v.shape)}"
            + (" of zeros" if v.dim() == 2 else "")
        )
    sigma = torch.linalg.svdvals(v.double())
    norm = float(torch.linalg.vector_norm(sigma))
    eig = sigma**2 / norm
    return AlignmentSpectrum(
        norm, float(eig[0]), int((eig >= 1).sum()), float(sigma[0] ** 2 / norm**2)
    )


def check_lora_factors(
    v: torch.Tensor, a: torch.Tensor, b: torch.Tensor, name: str
) -> None:
    if a.dim() != 2 or b.dim() != 2 or b.shape[1] != a.shape[0]:
        raise ValueError(
            f"{name}: LoRA factors must be A (r, d_in) and B (d_out, r), got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    if (b.shape[0], a.shape[1]) != tuple(v.shape):
        raise ValueError(
            f"{name}: LoRA update B @ A has shape {(b.shape[0], a.shape[1])} but the "
            f"alignment matrix has {tuple(v.shape)}"
        )


def project_b(v: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """:math:`CB = V(V^\\top B)/\\|V\\|_F` without forming :math:`C`; returned in
    ``b``'s dtype."""
    if b.shape[0] != v.shape[0]:
        raise ValueError(f"B has {b.shape[0]} rows but V has {v.shape[0]}")
    vb = v.to(torch.promote_types(v.dtype, b.dtype))
    # V^T B as (B^T V)^T: reads V row by row, much faster than V.T @ B
    vt_b = (b.to(vb.dtype).T @ vb).T
    return (vb @ vt_b / torch.linalg.matrix_norm(vb)).to(b.dtype)


def project_b_from_weights(
    w_base: torch.Tensor,
    w_aligned: torch.Tensor,
    b: torch.Tensor,
    block_rows: int = 128,
    name: str = "module",
) -> torch.Tensor:
    """:math:`CB` straight from the two weights, without any
    :math:`d_{out}\\times d_{in}` temporary.

    Two passes over row blocks of :math:`V = W^{aligned} - W^{base}`: the first
    accumulates :math:`V^\\top B` and :math:`\\|V\\|_F^2`, the second forms the rows of
    :math:`V(V^\\top B)`. Each pass reads both weights once, block by block. Every
    product keeps the rank r as the row count of a matrix product (:math:`B^\\top
    V_{blk}` and :math:`(V^\\top B)^\\top V_{blk}^\\top`), the layout BLAS runs fastest.
    """
    check_weights(w_base, w_aligned, name)
    if b.shape[0] != w_base.shape[0]:
        raise ValueError(
            f"{name}: B has {b.shape[0]} rows but the weights have {w_base.shape[0]}"
        )
    dtype = torch.promote_types(
        torch.promote_types(w_base.dtype, b.dtype), torch.float32
    )
    # r x d_out: the layouts below keep every product a fast r-row matmul
    b_t = b.to(dtype).T.contiguous()
    rows = w_base.shape[0]
    buffer = torch.empty(min(block_rows, rows), w_base.shape[1], dtype=dtype)

    def v_block(start: int) -> torch.Tensor:
        stop = min(start + block_rows, rows)
        return torch.sub(
            w_aligned[start:stop].to(dtype),
            w_base[start:stop].to(dtype),
            out=buffer[: stop - start],
        )

    # (V^T B)^T, r x d_in
    vt_b_t = torch.zeros(b.shape[1], w_base.shape[1], dtype=dtype)
    sq = torch.zeros((), dtype=torch.float64)
    for start in range(0, rows, block_rows):
        block = v_block(start)
        vt_b_t.addmm_(b_t[:, start : start + block_rows], block)
        sq += torch.linalg.vector_norm(block).double() ** 2
    if sq == 0:
        raise _zero_alignment(name)
    vt_b_t /= float(sq.sqrt())
    out_t = torch.empty(b.shape[1], rows, dtype=dtype)  # (C B)^T
    for start in range(0, rows, block_rows):
        torch.mm(vt_b_t, v_block(start).T, out=out_t[:, start : start + block_rows])
    return out_t.T.contiguous().to(b.dtype)


def projection_cosine(cb: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> float:
    """:math:`\\cos(\\mathrm{vec}(CBA), \\mathrm{vec}(BA))` given :math:`CB`, from
    :math:`r\\times r` Gram matrices.

    .. math:: \\langle CBA, BA\\rangle_F = \\mathrm{tr}\\big((CB)^\\top
       B\\,AA^\\top\\big),

    and likewise for the two norms.
    """
    dtype = torch.promote_types(cb.dtype, torch.promote_types(a.dtype, b.dtype))
    cb, a, b = cb.to(dtype), a.to(dtype), b.to(dtype)
    g = a @ a.T  # A A^T, r x r (symmetric)
    inner = torch.sum((cb.T @ b) * g)
    norm_cb = torch.sum((cb.T @ cb) * g).clamp_min(0).sqrt()
    norm_b = torch.sum((b.T @ b) * g).clamp_min(0).sqrt()
    if norm_b == 0:
        raise ValueError(
            "the LoRA update B @ A is zero, so its cosine with the projection is "
            "undefined"
        )
    if norm_cb == 0:
        return 0.0
    return float(inner / (norm_cb * norm_b))


def projection_similarity(
    v: torch.Tensor, a: torch.Tensor, b: torch.Tensor, name: str = "module"
) -> float:
    r""":math:`s = \cos(\mathrm{vec}(CBA), \mathrm{vec}(BA))` with
    :math:`C = VV^\top/\|V\|_F` (the scaling :math:`s` cancels)."""
    check_lora_factors(v, a, b, name)
    return projection_cosine(project_b(v, b), a, b)


def update_norm(a: torch.Tensor, b: torch.Tensor, scaling: float = 1.0) -> float:
    """:math:`\\|sBA\\|_F = |s|\\sqrt{\\mathrm{tr}(B^\\top B\\,AA^\\top)}`, from
    :math:`r\\times r` products."""
    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    return abs(scaling) * float(
        torch.sum((b64.T @ b64) * (a64 @ a64.T)).clamp_min(0).sqrt()
    )


def top_singular_projector_b(v: torch.Tensor, b: torch.Tensor, k: int) -> torch.Tensor:
    """Variant: :math:`U_kU_k^\\top B` with :math:`U_k` the top-``k`` left singular
    vectors of :math:`V`.

    A true orthogonal projector (idempotent), unlike :math:`C`. Its full-rank limit
    :math:`V(V^\\top V)^{-1}V^\\top` is the identity whenever :math:`V` is square and
    invertible.
    """
    u = top_left_singular(v, k)
    return (u @ (u.T @ b.to(torch.float64))).to(b.dtype)


def top_left_singular(v: torch.Tensor, k: int) -> torch.Tensor:
    """:math:`U_k`, the top-``k`` left singular vectors of :math:`V` (float64,
    :math:`d_{out}\\times k`)."""
    if not 1 <= k <= min(v.shape):
        raise ValueError(f"k must lie in [1, {min(v.shape)}], got {k}")
    return torch.linalg.svd(v.to(torch.float64), full_matrices=False).U[:, :k]


def reversal_factors(
    v: torch.Tensor, rank: int, scaling: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """LoRA factors whose update undoes the alignment: :math:`s\\,BA = -U_r\\Sigma_r
    W_r^\\top`, the rank-``rank`` truncation of :math:`-V`, split as :math:`B =
    -U_r\\Sigma_r^{1/2}`, :math:`A = \\Sigma_r^{1/2}W_r^\\top/s`. Returns ``(a, b)``
    in :math:`V`'s dtype.

    When :math:`V` has rank at most ``rank`` the update is exactly :math:`-V`: the
    adapted aligned model is the base model.
    """
    if not 1 <= rank <= min(v.shape):
        raise ValueError(f"rank must lie in [1, {min(v.shape)}], got {rank}")
    if not math.isfinite(scaling) or scaling == 0:
        raise ValueError(f"scaling must be finite and non-zero, got {scaling}")
    u, s, wt = torch.linalg.svd(v.to(torch.float64), full_matrices=False)
    root = s[:rank].sqrt()
    b = -u[:, :rank] * root
    a = root[:, None] * wt[:rank] / scaling
    return a.to(v.dtype), b.to(v.dtype)


def random_spectrum_b(
    v: torch.Tensor, b: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Control: :math:`Q\\Sigma^2Q^\\top B/\\|V\\|_F`, the spectrum of :math:`C` with
    random orthonormal directions :math:`Q`.

    Same eigenvalues as :math:`C = U\\Sigma^2U^\\top/\\|V\\|_F`, so it shrinks :math:`B`
    about as much, but in directions unrelated to the alignment update.
    """
    s = torch.linalg.svdvals(v.to(torch.float64))
    q, _ = torch.linalg.qr(
        torch.randn(v.shape[0], s.numel(), generator=generator, dtype=torch.float64)
    )
    return (
        q
        @ (s.square()[:, None] * (q.T @ b.to(torch.float64)))
        / torch.linalg.vector_norm(s)
    ).to(b.dtype)


def select_modules(
    similarities: torch.Tensor,
    mode: str = "threshold",
    threshold: float = 0.5,
    num_layers: int = 10,
) -> torch.Tensor:
    """Boolean mask of the modules to project.

    ``threshold``: :math:`s_i \\le \\tau`. ``number``: the ``num_layers`` lowest
    similarities, as the official code does it: threshold at the ``num_layers``-th
    smallest value, so ties may add more.
    """
    s = torch.as_tensor(similarities, dtype=torch.float64)
    if s.dim() != 1 or s.numel() == 0:
        raise ValueError(
            f"similarities must be a non-empty 1-D tensor, got shape {tuple(s.shape)}"
        )
    if mode == "threshold":
        if not -1.0 <= threshold <= 1.0 or math.isnan(threshold):
            raise ValueError(
                f"threshold must lie in [-1, 1] (a cosine), got {threshold}"
            )
        return s <= threshold
    if mode == "number":
        if not 1 <= num_layers <= s.numel():
            raise ValueError(
                f"num_layers must lie in [1, {s.numel()}] (the number of LoRA "
                f"modules), got {num_layers}"
            )
        return s <= torch.sort(s).values[num_layers - 1]
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
