"""Train the Ring-A-Bell chapter's toy text-to-image model and write its checkpoint
with provenance.

Text encoder (small CLIPTextModel over the toy vocabulary) and denoiser
(TinyTextDenoiser) are trained jointly on freshly rendered scenes
(trustml_ref.ring_a_bell.toy): a quarter of the captions dropped to the empty prompt
(so that classifier-free guidance works) and some words written as sub-word pieces
(so that the pieces mean something). The quality gates the tests re-check on the shipped
checkpoint are measured at each guidance scale of ``GATE_GUIDANCE`` and written to the
provenance. Run: ``python tools/train_ring_a_bell_toy.py [--steps 8000]
[--no-pooled-text] [--out trustml_ref/ring_a_bell/checkpoint]``.
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
from trustml_ref.ring_a_bell.pipeline import GATE_GUIDANCE, ToyPipeline, quality_gates
from trustml_ref.ring_a_bell.text import (
    build_text_encoder,
    build_tokenizer,
    save_text_encoder,
)

MAX_LENGTH, HIDDEN = 16, 64
# the share of captions dropped to the empty prompt, so that the model also learns the
# unconditional prediction that classifier-free guidance subtracts
P_UNCONDITIONAL = 0.25


def fitting_pieces(tokenizer, text: str, rng: np.random.Generator) -> str:
    """``text`` with some words written as sub-word pieces (``toy.write_in_pieces``),
    unless that no longer fits the context."""
    split = toy.write_in_pieces(text, rng)
    return split if len(tokenizer(split).input_ids) <= MAX_LENGTH else text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-pooled-text",
        action="store_true",
        help="train the denoiser without its pooled-text FiLM path",
    )
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
    denoiser = TinyTextDenoiser(
        text_dim=HIDDEN, pooled_text=not args.no_pooled_text
    ).train()
    # no clipping of the predicted x0 when sampling (Stable Diffusion's setting): with
    # it, classifier-free guidance above about 2 wrecks this pixel-space model's images
    scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=False
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
        captions = [
            fitting_pieces(tokenizer, toy.caption(s, rng), rng)
            if rng.random() >= P_UNCONDITIONAL
            else ""
            for s in scenes
        ]
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
        "unconditional_share": P_UNCONDITIONAL,
        "pieces_share": toy.P_PIECES,
        "pooled_text": not args.no_pooled_text,
        "vocabulary": len(tokenizer),
        "gates": {
            f"guidance {w:g}": quality_gates(
                ToyPipeline.from_pretrained(out), guidance_scale=w
            )
            for w in GATE_GUIDANCE
        },
    }
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps(provenance, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
