"""Train the Ring-A-Bell chapter's toy text-to-image model and write its checkpoint
with provenance.

Text encoder (small CLIPTextModel over the toy vocabulary) and denoiser
(TinyTextDenoiser) are trained jointly on freshly rendered scenes
(trustml_ref.ring_a_bell.toy), then checked against the quality gates the tests re-check
on the shipped checkpoint. Run: ``python tools/train_ring_a_bell_toy.py [--steps 6000]
[--out trustml_ref/ring_a_bell/checkpoint]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from trustml_ref.ring_a_bell import toy
from trustml_ref.ring_a_bell.concept import encode
from trustml_ref.ring_a_bell.denoiser import TinyTextDenoiser
from trustml_ref.ring_a_bell.diffusion import diffusion_loss
from trustml_ref.ring_a_bell.text import (
    build_text_encoder,
    build_tokenizer,
    save_text_encoder,
)

MAX_LENGTH, HIDDEN = 12, 64


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out",
        default=str(
            Path(__file__).resolve().parents[1] / "trustml_ref/ring_a_bell/checkpoint"
        ),
    )
    args = parser.parse_args()
    from diffusers import DDPMScheduler

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    tokenizer = build_tokenizer(toy.vocabulary(), MAX_LENGTH)
    encoder = build_text_encoder(
        tokenizer, hidden=HIDDEN, layers=2, heads=4, seed=args.seed
    ).train()
    denoiser = TinyTextDenoiser(text_dim=HIDDEN).train()
    scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2"
    )
    params = [
        {"params": denoiser.parameters(), "lr": 2e-3},
        {"params": encoder.parameters(), "lr": 5e-4},
    ]
    optimizer = torch.optim.AdamW(params, weight_decay=0.0)
    lr_schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[2e-3, 5e-4], total_steps=args.steps, pct_start=0.05
    )
    start, losses = time.time(), []
    for step in range(args.steps):
        scenes = toy.random_scenes(args.batch, rng)
        images = torch.stack([toy.render(s, rng) for s in scenes])
        captions = [toy.caption(s, rng) if rng.random() > 0.1 else "" for s in scenes]
        loss = diffusion_loss(
            denoiser, scheduler, images, encode(encoder, tokenizer, captions)
        )
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in params for p in g["params"]], 1.0)
        optimizer.step()
        lr_schedule.step()
        losses.append(loss.item())
        if step % 500 == 0 or step == args.steps - 1:
            print(
                f"step {step}: loss {np.mean(losses[-100:]):.4f} "
                f"({time.time() - start:.0f} s)",
                flush=True,
            )
    out = Path(args.out)
    encoder.eval(), denoiser.eval()
    tokenizer.save_pretrained(out / "tokenizer")
    save_text_encoder(encoder, out / "text_encoder")
    denoiser.save_pretrained(out / "denoiser", safe_serialization=True)
    scheduler.save_pretrained(out / "scheduler")
    provenance = {
        "command": " ".join(["python", *sys.argv]),
        "seed": args.seed,
        "steps": args.steps,
        "batch": args.batch,
        "seconds": round(time.time() - start, 1),
        "final_loss": float(np.mean(losses[-200:])),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps(provenance, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
