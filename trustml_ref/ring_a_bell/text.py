"""A sub-word tokenizer and a small CLIP text encoder built offline (the toy world's
text side).

The tokenizer is a ``transformers.PreTrainedTokenizerFast`` over a ``tokenizers``
WordPiece model, so it saves and loads with ``save_pretrained``/``from_pretrained`` like
any Hub tokenizer; sequences are ``[BOS] tokens [EOS]`` padded with EOS to
``max_length``, as CLIP's are. Text is split on whitespace only and a word in the
vocabulary is one token; a word that is not is split greedily into the longest
entries, later pieces marked ``##``. A piece written on its own ("crim ##son") is that
piece, and decoding joins tokens with spaces, so a decoded prompt re-encodes to the
same ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch


def build_tokenizer(words: Sequence[str], max_length: int):
    """A WordPiece tokenizer over the entries ``words`` (whole words and ``##`` pieces;
    lower-cased, whitespace-split) with CLIP's conventions."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if len(set(words)) != len(words) or not words:
        raise ValueError("words must be a non-empty list without duplicates")
    specials = ["<|startoftext|>", "<|endoftext|>", "<|unk|>"]
    vocab = {w: i for i, w in enumerate([*specials, *words])}
    core = Tokenizer(models.WordPiece(vocab, unk_token="<|unk|>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[(s, vocab[s]) for s in specials[:2]],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=specials[0],
        eos_token=specials[1],
        pad_token=specials[1],
        unk_token=specials[2],
        model_max_length=max_length,
    )


def build_text_encoder(
    tokenizer, hidden: int = 64, layers: int = 2, heads: int = 4, seed: int = 0
):
    """A small ``CLIPTextModel`` for ``tokenizer``; token embeddings drawn with unit
    scale so prompts are distinguishable from the start (CLIP's default 0.02 makes every
    prompt encode nearly alike)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = CLIPTextModel(config)
    with torch.no_grad():
        model.get_input_embeddings().weight.normal_(0.0, 1.0)
    return model.eval()


TEXT_MODEL_PREFIX = "text_model."


def save_text_encoder(encoder, directory: str | Path) -> Path:
    """``encoder.save_pretrained(directory)``, with the weights' names in the layout
    every transformers version reads: ``text_model.``-prefixed, as transformers 4
    writes them (transformers 5 writes them unprefixed, which 4 loads as random
    weights) and as every CLIP checkpoint on the Hub has them."""
    from trustml_ref.io import load_tensors, save_tensors

    directory = Path(directory)
    encoder.save_pretrained(directory, safe_serialization=True)
    path = directory / "model.safetensors"
    tensors = load_tensors(path)
    save_tensors(
        {
            k if k.startswith(TEXT_MODEL_PREFIX) else TEXT_MODEL_PREFIX + k: v
            for k, v in tensors.items()
        },
        path,
        metadata={"format": "pt"},
    )
    return directory
