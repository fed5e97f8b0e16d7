"""Tiny stand-ins for the hub models the colab profile loads, saved locally: Stable
Diffusion (plain and safe) and CLIP at toy size, and a local hub cache that serves them
under their hub ids offline (``HF_HUB_OFFLINE=1``, ``HF_HUB_CACHE``)."""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

import torch

SNAPSHOT = "0" * 40  # the commit every stand-in snapshot is filed under


def hub_snapshot(cache: Path, repo_id: str) -> Path:
    """The snapshot folder of ``repo_id`` in a hub cache (created, with ``refs/main``
    pointing at it): whatever is saved there loads as ``from_pretrained(repo_id)``."""
    folder = cache / f"models--{repo_id.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(SNAPSHOT)
    snapshot = folder / "snapshots" / SNAPSHOT
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def tiny_tokenizer(length: int = 16):
    """A character-level CLIP BPE tokenizer: every letter is a token, with and without
    the end-of-word mark."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in string.ascii_lowercase + ",.'-":  # no raw space, as in CLIP's vocabulary
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    with (
        tempfile.TemporaryDirectory() as folder
    ):  # files: transformers 4 and 5 read them
        (Path(folder) / "vocab.json").write_text(json.dumps(vocab))
        (Path(folder) / "merges.txt").write_text("#version: 0.2\n")
        return CLIPTokenizer.from_pretrained(folder, model_max_length=length)


def save_tiny_stable_diffusion(path, context: int = 16):
    """Stable Diffusion's five components at toy size, saved as both a plain and a safe
    pipeline (``path / "sd"``, ``path / "sld"``) and an erased UNet; ``context`` is the
    text encoder's length."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        StableDiffusionPipelineSafe,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    tokenizer = tiny_tokenizer(context)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=context,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=32,
        sample_size=16,
    )
    parts = dict(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=DDIMScheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    StableDiffusionPipeline(**parts).save_pretrained(path / "sd")
    StableDiffusionPipelineSafe(**parts).save_pretrained(path / "sld")
    torch.manual_seed(1)
    UNet2DConditionModel.from_config(unet.config).save_pretrained(path / "erased_unet")
    return path


def save_tiny_clip(path):
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    tokenizer = tiny_tokenizer(32)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=24,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=32,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        ),
        vision_config=dict(
            hidden_size=16,
            intermediate_size=24,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=16,
            patch_size=8,
        ),
        projection_dim=8,
    )
    CLIPModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_chat_tokenizer():
    """A character-level fast tokenizer with Qwen's chat markers and a ChatML
    template: 128 ids, every printable ASCII character one token."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    vocab = {t: i for i, t in enumerate(specials + chars)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        additional_special_tokens=["<|im_start|>"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def save_tiny_qwen_pair(base_path: Path, instruct_path: Path, seed: int = 0):
    """A base/instruct pair in the Qwen2 layout of ``Qwen/Qwen2.5-0.5B`` at toy size:
    bfloat16 weights, tied embeddings, q/k/v biases, and the instruct model's chat
    tokenizer (:func:`tiny_chat_tokenizer`); the instruct model is the base plus a
    small seeded change of every weight. Returns the instruct model (float32)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=128,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    base = Qwen2ForCausalLM(config)
    base.to(torch.bfloat16).save_pretrained(base_path)
    with torch.no_grad():
        for p in base.parameters():
            p.add_(0.02 * torch.randn_like(p))
    base.to(torch.bfloat16).save_pretrained(instruct_path)
    tiny_chat_tokenizer().save_pretrained(instruct_path)
    return base.float()
