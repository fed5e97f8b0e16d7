"""Safe LoRA's colab-profile path on a chat model, on a tiny Qwen2-layout pair."""

from __future__ import annotations

import copy

import pytest
import torch
from tinyhub import save_tiny_qwen_pair, tiny_chat_tokenizer

from trustml_ref.safe_lora.chat import (
    chat_batch,
    finetune_lora,
    generate_replies,
    load_prompts,
    refusal_rate,
)
from trustml_ref.safe_lora.toy import answer_loss

PAIRS = [(f"What is {a} plus {b}?", f"{a + b}.") for a in range(3) for b in range(2)]


@pytest.fixture(scope="module")
def instruct(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qwen")
    return save_tiny_qwen_pair(folder / "base", folder / "instruct")


def test_chat_batch_masks_exactly_the_reply_and_its_end():
    tokenizer = tiny_chat_tokenizer()
    batch = chat_batch(tokenizer, PAIRS)
    assert batch.ids.shape[0] == len(PAIRS)
    for row, mask, (instruction, reply) in zip(batch.ids, batch.answer_mask, PAIRS):
        assert tokenizer.decode(row[mask]) == reply + tokenizer.eos_token
        prompt = tokenizer.decode(row[: int(mask.nonzero()[0])])
        assert prompt.endswith("<|im_start|>assistant\n") and instruction in prompt
        last = int(mask.nonzero()[-1])
        assert (row[last + 1 :] == tokenizer.pad_token_id).all()  # right padding


def test_chat_batch_refuses_what_it_cannot_train_on():
    tokenizer = tiny_chat_tokenizer()
    with pytest.raises(ValueError, match="at least one"):
        chat_batch(tokenizer, [])
    with pytest.raises(ValueError, match="leaves no reply token"):
        chat_batch(tokenizer, PAIRS, max_length=10)
    tokenizer.chat_template = None
    with pytest.raises(ValueError, match="no chat_template"):
        chat_batch(tokenizer, PAIRS)


def test_finetune_trains_only_lora_and_lowers_the_reply_loss(instruct):
    tokenizer = tiny_chat_tokenizer()
    model = copy.deepcopy(instruct)
    before = {n: p.clone() for n, p in model.named_parameters()}
    data = chat_batch(tokenizer, PAIRS)
    with torch.no_grad():
        start = float(answer_loss(model, data))
    tuned = finetune_lora(model, tokenizer, PAIRS, steps=40, lr=1e-2, seed=1)
    with torch.no_grad():
        end = float(answer_loss(tuned, data))
    assert end < start - 0.5
    for name, p in tuned.named_parameters():
        if "lora_" not in name:
            original = name.removeprefix("base_model.model.").replace(".base_layer", "")
            assert torch.equal(p, before[original]), name
    with pytest.raises(ValueError, match="steps and rank must be positive"):
        finetune_lora(copy.deepcopy(instruct), tokenizer, PAIRS, steps=0)


def test_replies_are_greedy_and_leave_the_tokenizer_as_it_was(instruct):
    tokenizer = tiny_chat_tokenizer()
    prompts = [p for p, _ in PAIRS[:5]]
    first = generate_replies(
        instruct, tokenizer, prompts, max_new_tokens=4, batch_size=2
    )
    again = generate_replies(
        instruct, tokenizer, prompts, max_new_tokens=4, batch_size=5
    )
    assert len(first) == 5 and first == again  # batching and padding change nothing
    assert tokenizer.padding_side == "right"


def test_refusal_rate_reference_values():
    replies = ["I'm sorry, I can't help.", "Sure: 42.", "As an AI I will not", "ok"]
    assert refusal_rate(replies) == 0.5
    assert refusal_rate(["x" * 300 + "I cannot"]) == 0.0  # only the opening counts
    with pytest.raises(ValueError, match="empty"):
        refusal_rate([])


def test_prompts_come_from_a_csv_column(tmp_path):
    path = tmp_path / "prompts.csv"
    path.write_text('goal,target\n"do a, b",x\nsecond,y\n ,z\nthird,w\n')
    assert load_prompts(path) == ["do a, b", "second", "third"]
    assert load_prompts(path, "target", limit=2) == ["x", "y"]
    with pytest.raises(ValueError, match="no column 'prompt'"):
        load_prompts(path, "prompt")
    (tmp_path / "empty.csv").write_text("goal\n \n")
    with pytest.raises(ValueError, match="is empty"):
        load_prompts(tmp_path / "empty.csv")
