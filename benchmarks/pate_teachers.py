"""Training PATE's teachers: one model per teacher in a loop against
``trustml_ref.visual_prompting.train_teachers``, which trains all of them as one
vectorised model.

``k`` teachers (full-canvas prompt + label map on a frozen ``SourceCNN``, chapter 3's
prompt teachers) on hash slices of ``n`` random 16x16 images. The baseline trains each
teacher alone with the same initialisation, minibatch draws and Adam steps; ours is the
public entry point. Both run here; the script checks that the teachers' predictions
agree (their weights agree to rounding after one step; Adam amplifies rounding over
many) and prints the time ratio from this run.

Run: ``python benchmarks/pate_teachers.py [--teachers 100] [--n 5000] [--steps 50]``.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from trustml_ref.visual_prompting import (
    PromptedClassifier,
    VisualPrompt,
    hash_partition,
    train_teachers,
)
from trustml_ref.visual_prompting.toy import SourceCNN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teachers", type=int, default=100)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    source = SourceCNN(classes=36).eval()
    x, y = torch.rand(args.n, 1, 16, 16), torch.randint(0, 10, (args.n,))

    def make() -> PromptedClassifier:
        prompt = VisualPrompt(1, 16, 16, region="full")
        return PromptedClassifier(source, prompt, 36, 10)

    def vectorised(steps: int):
        return train_teachers(
            make,
            x,
            y,
            args.teachers,
            steps=steps,
            batch_size=args.batch_size,
            lr=0.01,
            progress=False,
        )

    def loop(steps: int) -> list[PromptedClassifier]:
        """The baseline: each teacher alone, same initialisation, draws and Adam."""
        out = []
        for i, s in enumerate(hash_partition(range(args.n), args.teachers, salt="0")):
            torch.manual_seed(i)
            alone = make()
            params = [p for p in alone.parameters() if p.requires_grad]
            optimizer = torch.optim.Adam(params, lr=0.01)
            g = torch.Generator().manual_seed(i)
            draws = s[torch.randint(0, len(s), (steps, args.batch_size), generator=g)]
            for positions in draws:
                optimizer.zero_grad()
                F.cross_entropy(alone(x[positions]), y[positions]).backward()
                optimizer.step()
            out.append(alone.eval())
        return out

    # after one step the weights agree to rounding (Adam's first step is about lr
    # times the sign of each gradient, so a rounding-sized gradient may still flip)
    one_v, one_l = vectorised(1), loop(1)
    with torch.no_grad():
        worst = max(
            float((dict(one_v.member(i).named_parameters())[n] - p).abs().max())
            for i, alone in enumerate(one_l)
            for n, p in alone.named_parameters()
        )
    start = time.perf_counter()
    ensemble = vectorised(args.steps)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    teachers = loop(args.steps)
    baseline = time.perf_counter() - start
    # over many steps Adam amplifies rounding differences; the votes stay the same
    with torch.no_grad():
        same = float(
            (ensemble.predict(x) == torch.stack([t(x).argmax(1) for t in teachers]))
            .float()
            .mean()
        )
    print(
        f"{args.teachers} teachers, {args.n} images, {args.steps} steps of "
        f"{args.batch_size}: loop {baseline:.1f} s, train_teachers {ours:.1f} s, "
        f"ratio {baseline / ours:.1f}x; after one step the largest weight difference "
        f"is {worst:.1e}; after {args.steps}, the predictions agree on "
        f"{same:.4f} of the images"
    )
    if same < 0.98:
        raise SystemExit("the two trainings disagree")


if __name__ == "__main__":
    main()
