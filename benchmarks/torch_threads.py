"""Tiny-model training speed with 1 thread versus all cores.

Why: the book trains many tiny models on 2-core machines, where thread
synchronisation costs more than it saves.  This script measures the ratio that
picks ``trustml_ref.config.DEFAULT_CPU_THREADS``.

Run: ``python benchmarks/torch_threads.py [--steps 300] [--width 64] [--busy]``.
``--busy`` keeps one core spinning in another process during the measurement, as
on a machine that also runs a test or a book build.  Prints seconds per run and the
ratio (all cores / one thread) measured in this run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

import torch


def train_tiny_mlp(steps: int, width: int, batch: int, threads: int) -> float:
    """Time ``steps`` Adam steps of a 64-width MLP on random data with ``threads``
    threads."""
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 64, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, width),
        torch.nn.ReLU(),
        torch.nn.Linear(width, width),
        torch.nn.ReLU(),
        torch.nn.Linear(width, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return time.perf_counter() - start


def _spin() -> None:
    while True:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--busy", action="store_true", help="load one core with a spinning process"
    )
    args = parser.parse_args()
    spinner = multiprocessing.Process(target=_spin, daemon=True) if args.busy else None
    if spinner is not None:
        spinner.start()
    cores = os.cpu_count() or 1
    results = {}
    for threads in sorted({1, cores}):
        times = [
            train_tiny_mlp(args.steps, args.width, args.batch, threads)
            for _ in range(args.repeats)
        ]
        results[threads] = min(times)
        print(
            f"threads={threads}: best of {args.repeats} = {results[threads]:.3f} s for "
            f"{args.steps} steps"
        )
    if cores > 1:
        print(
            f"ratio time({cores} threads) / time(1 thread) = "
            f"{results[cores] / results[1]:.2f}"
        )
    if spinner is not None:
        spinner.terminate()


if __name__ == "__main__":
    main()
