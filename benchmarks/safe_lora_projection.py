"""Safe LoRA's projection at Llama-2-7B shapes: the official dense procedure against
ours.

Shapes: q_proj and v_proj of 32 layers (64 modules), 4096 x 4096 weights, LoRA rank 8,
on random tensors generated module by module from a seed (as if read from two
checkpoints). Three passes run in separate processes, each reporting its time and its
peak resident memory above the process's baseline:

- ``read``: read both weight sets once (one pass over W_aligned - W_base; the floor for
  any method);
- ``dense``: the official procedure, C = V V^T / ||V||_F formed explicitly, then C @ B
  and the cosine of the flattened d x d products C B A and B A;
- ``ours``: ``trustml_ref.safe_lora`` (C B = V (V^T B) / ||V||_F in two blocked passes
  over the weights with no d x d temporary, cosine from r x r Gram matrices).

Without a d x d temporary, two passes over the weights are unavoidable (no row of V (V^T
B) is known before all of V^T B is), so twice the read-once time bounds any such method
from below. On the development machine (one thread) ours costs about 3x the read floor:
each pass subtracts a block (memory bound) and multiplies it by an r-row matrix (about
60 GFLOP/s), one after the other.

It checks that dense and ours agree (cosines and projected B) and prints the ratios
measured in this run. Run: ``python benchmarks/safe_lora_projection.py [--dim 4096]
[--modules 8] [--rank 8]`` (``--modules 64`` for the full model; the dense pass then
takes minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import torch

from trustml_ref.safe_lora import project_b_from_weights, projection_cosine


def module_tensors(i: int, dim: int, rank: int):
    g = torch.Generator().manual_seed(i)
    w_base = torch.randn(dim, dim, generator=g)
    w_aligned = w_base + 0.01 * torch.randn(dim, dim, generator=g)
    a = torch.randn(rank, dim, generator=g) / dim**0.5
    b = torch.randn(dim, rank, generator=g) / rank**0.5
    return w_base, w_aligned, a, b


def run(method: str, dim: int, modules: int, rank: int, queue) -> None:
    torch.set_num_threads(1)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cosines, checksums, elapsed = [], [], 0.0
    for i in range(modules):
        w_base, w_aligned, a, b = module_tensors(i, dim, rank)
        start = time.perf_counter()
        if method == "dense":
            v = w_aligned - w_base
            c = v @ v.T / torch.linalg.norm(v)
            new_b = c @ b
            cos = torch.nn.functional.cosine_similarity(
                (new_b @ a).reshape(1, -1), (b @ a).reshape(1, -1)
            ).item()
        elif method == "ours":
            new_b = project_b_from_weights(w_base, w_aligned, b)
            cos = projection_cosine(new_b, a, b)
        # the floor: read both weight sets once, block by block (||V||_F, nothing else)
        else:
            cos = 0.0
            for r in range(0, dim, 256):
                cos += float(
                    torch.linalg.vector_norm(
                        w_aligned[r : r + 256] - w_base[r : r + 256]
                    )
                )
            new_b = b
        elapsed += time.perf_counter() - start
        # float64, untimed: what both methods are checked against
        if method == "reference":
            new_b = project_b_from_weights(
                w_base.double(), w_aligned.double(), b.double()
            )
            cos = projection_cosine(new_b, a.double(), b.double())
        cosines.append(cos)
        checksums.append(new_b.double().numpy())
        del w_base, w_aligned
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline) / 1024
    queue.put((method, elapsed, peak_mb, cosines, checksums))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=4096)
    parser.add_argument("--modules", type=int, default=8)
    parser.add_argument("--rank", type=int, default=8)
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    results = {}
    for method in ("read", "ours", "dense", "reference"):
        queue = ctx.Queue()
        proc = ctx.Process(
            target=run, args=(method, args.dim, args.modules, args.rank, queue)
        )
        proc.start()
        results[method] = queue.get()
        proc.join()
        _, elapsed, peak, *_ = results[method]
        if method != "reference":
            print(
                f"{method:6s} {elapsed:8.3f} s   peak memory above baseline "
                f"{peak:8.1f} MB"
            )
    _, t_dense, m_dense, cos_dense, b_dense = results["dense"]
    _, t_ours, m_ours, cos_ours, b_ours = results["ours"]
    reference = list(zip(*results["reference"][3:]))
    t_read = results["read"][1]

    def errors(cosines, bs):
        cos_err = max(abs(c - ref_c) for c, (ref_c, _) in zip(cosines, reference))
        b_err = max(
            float(abs(x - ref_b).max() / abs(ref_b).max())
            for x, (_, ref_b) in zip(bs, reference)
        )
        return cos_err, b_err

    (cos_err_d, b_err_d), (cos_err_o, b_err_o) = (
        errors(cos_dense, b_dense),
        errors(cos_ours, b_ours),
    )
    print(
        f"{args.modules} modules of {args.dim} x {args.dim}, rank {args.rank}; error "
        "against a float64 reference: "
        f"dense |cos| {cos_err_d:.1e}, B {b_err_d:.1e}; ours |cos| {cos_err_o:.1e}, B "
        f"{b_err_o:.1e}"
    )
    assert cos_err_o < 1e-3 and b_err_o < 1e-3, (
        "ours disagrees with the float64 reference"
    )
    assert cos_err_d < 1e-2 and b_err_d < 1e-2, (
        "dense disagrees with the float64 reference"
    )
    print(
        f"speed-up dense / ours = {t_dense / t_ours:,.1f}x; ours / read-once floor = "
        f"{t_ours / t_read:.2f}x; "
        f"dense / read-once floor = {t_dense / t_read:,.1f}x; best possible dense / (2 "
        "x floor) = "
        f"{t_dense / (2 * t_read):,.1f}x (two passes are needed without a d x d "
        "temporary); "
        f"peak memory dense / ours = {m_dense / max(m_ours, 1e-9):.1f}x"
    )


if __name__ == "__main__":
    main()
