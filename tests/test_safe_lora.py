"""Safe LoRA: a golden dense implementation (form C, loop over modules) against the
package."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from trustml_ref.safe_lora import (
    alignment_matrix,
    alignment_spectrum,
    lora_modules,
    lora_modules_from_dir,
    module_spectra,
    project_b,
    projection_similarity,
    reversal_factors,
    safe_lora,
    select_modules,
    top_singular_projector_b,
    toy,
    update_norm,
)


def tiny_llama(seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=40,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=32,
    )
    return LlamaForCausalLM(config)


@pytest.fixture(scope="module")
def world():
    base = tiny_llama(0)
    aligned = copy.deepcopy(base)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in aligned.named_parameters():
            # a low-rank-ish alignment update plus noise, as fine-tuning would leave
            if p.dim() == 2:
                u = torch.randn(p.shape[0], 2, generator=g) @ torch.randn(
                    2, p.shape[1], generator=g
                )
                p.add_(0.05 * u + 0.005 * torch.randn(p.shape, generator=g))
    peft_model = get_peft_model(
        copy.deepcopy(aligned),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    )
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name or "lora_A" in name:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return base, aligned, peft_model


def dense_reference(
    peft_model, base, aligned, mode: str, threshold: float = 0.5, num_layers: int = 3
):
    """The official procedure, written independently: form C = V V^T / ||V||_F, loop
    over modules."""
    base_w, aligned_w = dict(base.named_parameters()), dict(aligned.named_parameters())
    entries = []
    for name, module in peft_model.named_modules():
        if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
            key = name.removeprefix("base_model.model.") + ".weight"
            v = (aligned_w[key] - base_w[key]).detach().double()
            c = v @ v.T / torch.linalg.norm(v)
            a, b = (
                module.lora_A["default"].weight.detach().double(),
                module.lora_B["default"].weight.detach().double(),
            )
            cos = torch.nn.functional.cosine_similarity(
                (c @ b @ a).reshape(1, -1), (b @ a).reshape(1, -1)
            ).item()
            entries.append((name, cos, c @ b))
    cosines = torch.tensor([e[1] for e in entries])
    cut = (
        threshold if mode == "threshold" else torch.sort(cosines).values[num_layers - 1]
    )
    return {name: (cos, new_b if cos <= cut else None) for name, cos, new_b in entries}


@pytest.mark.parametrize(
    "mode,kwargs,n_edited",
    [
        ("threshold", {"threshold": 0.2}, 2),
        ("threshold", {"threshold": 0.25}, 4),
        ("number", {"num_layers": 3}, 3),
        ("number", {"num_layers": 1}, 1),
    ],
)
def test_matches_the_dense_reference(world, mode, kwargs, n_edited):
    base, aligned, peft_model = world
    before = {k: v.clone() for k, v in peft_model.state_dict().items()}
    result = safe_lora(peft_model, base, aligned, mode=mode, **kwargs)
    reference = dense_reference(peft_model, base, aligned, mode, **kwargs)
    assert [r.name for r in result.report] == list(reference)
    for r in result.report:
        cos, new_b = reference[r.name]
        assert r.similarity == pytest.approx(cos, abs=1e-6)
        assert r.projected == (new_b is not None)
        got = result.state_dict[f"{r.name}.lora_B.weight"].double()
        expected = (
            new_b
            if new_b is not None
            else dict(peft_model.named_parameters())[
                f"{r.name}.lora_B.default.weight"
            ].double()
        )
        assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in peft_model.state_dict().items()), (
        "the input was mutated"
    )
    n_reference = sum(new_b is not None for _, new_b in reference.values())
    # similarities here: 0.15 to 0.30
    assert result.n_projected == n_reference == n_edited
    # every case must separate edited from kept modules, or the comparison above shows
    # nothing
    assert 0 < result.n_projected < len(result.report), (
        mode,
        kwargs,
        [r.similarity for r in result.report],
    )


def test_c_is_symmetric_psd_with_trace_frobenius_norm():
    g = torch.Generator().manual_seed(2)
    v = torch.randn(12, 7, generator=g, dtype=torch.float64)
    c = v @ v.T / torch.linalg.norm(v)
    assert torch.allclose(c, c.T) and torch.linalg.eigvalsh(c).min() > -1e-12
    assert torch.trace(c) == pytest.approx(float(torch.linalg.norm(v)))
    b = torch.randn(12, 3, generator=g, dtype=torch.float64)
    assert torch.allclose(project_b(v, b), c @ b)  # never forms C, same result
    assert not torch.allclose(c @ c, c)  # not idempotent: C is not a projector
    u_b = top_singular_projector_b(v, b, 7)
    assert torch.allclose(top_singular_projector_b(v, u_b, 7), u_b)  # U_k U_k^T is


def test_number_mode_equals_threshold_at_the_kth_smallest():
    s = torch.tensor([0.3, -0.1, 0.8, 0.3, 0.5, 0.95])
    for k in range(1, 7):
        kth = float(torch.sort(s).values[k - 1])
        assert torch.equal(
            select_modules(s, "number", num_layers=k),
            select_modules(s, "threshold", threshold=kth),
        )
    assert int(select_modules(s, "number", num_layers=1).sum()) == 1
    # a tie at the 2nd smallest adds one
    assert int(select_modules(s, "number", num_layers=2).sum()) == 3


def test_similarity_and_norm_need_only_small_products():
    g = torch.Generator().manual_seed(3)
    v, a, b = (
        torch.randn(20, 16, generator=g, dtype=torch.float64),
        torch.randn(4, 16, generator=g, dtype=torch.float64),
        torch.randn(20, 4, generator=g, dtype=torch.float64),
    )
    c = v @ v.T / torch.linalg.norm(v)
    dense = torch.nn.functional.cosine_similarity(
        (c @ b @ a).reshape(1, -1), (b @ a).reshape(1, -1)
    ).item()
    assert projection_similarity(v, a, b) == pytest.approx(dense, rel=1e-12)
    assert update_norm(a, b, 2.0) == pytest.approx(
        float(torch.linalg.norm(2.0 * b @ a)), rel=1e-12
    )


def test_adapter_round_trip_through_save_pretrained(world, tmp_path):
    base, aligned, peft_model = world
    result = safe_lora(peft_model, base, aligned, mode="number", num_layers=2)
    result.save_pretrained(tmp_path / "adapter")
    reloaded = PeftModel.from_pretrained(
        copy.deepcopy(aligned), str(tmp_path / "adapter")
    )
    applied = result.apply(peft_model)
    ids = torch.randint(0, 40, (2, 7), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.allclose(reloaded(ids).logits, applied(ids).logits, atol=1e-5)
        assert not torch.allclose(
            applied(ids).logits, peft_model(ids).logits, atol=1e-5
        )


def test_applied_lends_the_projected_model_and_restores_it(world):
    base, aligned, peft_model = world
    result = safe_lora(peft_model, base, aligned, mode="number", num_layers=2)
    ids = torch.randint(0, 40, (2, 7), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        before = peft_model(ids).logits
        copied = result.apply(peft_model)(ids).logits
        with result.applied(peft_model) as edited:
            assert edited is peft_model
            assert torch.equal(edited(ids).logits, copied)
        assert torch.equal(peft_model(ids).logits, before)
        with pytest.raises(RuntimeError, match="inside"):
            with result.applied(peft_model):
                raise RuntimeError("inside")
        assert torch.equal(peft_model(ids).logits, before)  # restored on an error
    other = safe_lora(peft_model, base, aligned, mode="number", num_layers=2)
    other.state_dict = dict(list(other.state_dict.items())[1:])
    with pytest.raises(ValueError, match="state-dict keys differ"):
        with other.applied(peft_model):
            pass


def test_checkpoint_directories_are_read_lazily(world, tmp_path):
    base, aligned, peft_model = world
    base.save_pretrained(tmp_path / "base")  # safetensors by default
    # sharded, with an index
    aligned.save_pretrained(tmp_path / "aligned", max_shard_size="20KB")
    assert (tmp_path / "aligned" / "model.safetensors.index.json").is_file()
    from_dirs = safe_lora(
        peft_model, tmp_path / "base", tmp_path / "aligned", threshold=0.6
    )
    from_models = safe_lora(peft_model, base, aligned, threshold=0.6)
    assert [r.similarity for r in from_dirs.report] == pytest.approx(
        [r.similarity for r in from_models.report], abs=1e-7
    )
    peft_model.save_pretrained(tmp_path / "lora")
    from_adapter_dir = safe_lora(
        tmp_path / "lora", tmp_path / "base", tmp_path / "aligned", threshold=0.6
    )
    assert [r.similarity for r in from_adapter_dir.report] == pytest.approx(
        [r.similarity for r in from_models.report], abs=1e-6
    )


def test_bad_inputs_raise_clear_errors(world, tmp_path):
    base, aligned, peft_model = world
    with pytest.raises(ValueError, match="identical, so the alignment matrix is zero"):
        safe_lora(peft_model, base, base)
    small = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=40,
            hidden_size=16,
            intermediate_size=24,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=4,
        )
    )
    with pytest.raises(ValueError, match="differ in shape"):
        safe_lora(peft_model, base, small)
    two_layer = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=40,
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
        )
    )
    with pytest.raises(
        KeyError,
        match="the aligned model has no weight "
        "'model.layers.2.self_attn.q_proj.weight'",
    ):
        safe_lora(peft_model, base, two_layer)
    dora = get_peft_model(
        copy.deepcopy(aligned),
        LoraConfig(r=2, target_modules=["q_proj"], use_dora=True),
    )
    with pytest.raises(ValueError, match="DoRA"):
        lora_modules(dora)
    gpt2 = get_peft_model(
        GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=30)),
        LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True),
    )
    with pytest.raises(ValueError, match="fan_in_fan_out"):
        lora_modules(gpt2)
    with pytest.raises(ValueError, match="mode must be one of"):
        safe_lora(peft_model, base, aligned, mode="top")
    with pytest.raises(ValueError, match=r"num_layers must lie in \[1, 6\]"):
        safe_lora(peft_model, base, aligned, mode="number", num_layers=7)
    with pytest.raises(ValueError, match="'rank_k' needs rank_k"):
        safe_lora(peft_model, base, aligned, projection="rank_k")
    with pytest.raises(FileNotFoundError, match="no .safetensors files"):
        (tmp_path / "empty").mkdir()
        safe_lora(peft_model, base, tmp_path / "empty")
    with pytest.raises(ValueError, match="B @ A has shape"):
        projection_similarity(torch.ones(5, 4), torch.ones(2, 3), torch.ones(5, 2))
    with pytest.raises(ValueError, match="must be matrices"):
        alignment_matrix(torch.ones(3), torch.ones(3))


def test_qwen2_biases_are_skipped_not_projected(tmp_path):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=40,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    torch.manual_seed(5)
    base = Qwen2ForCausalLM(config)
    aligned = copy.deepcopy(base)
    with torch.no_grad():
        for p in aligned.parameters():
            p.add_(0.01 * torch.randn_like(p))
    assert any(n.endswith("q_proj.bias") for n, _ in base.named_parameters())
    model = get_peft_model(
        copy.deepcopy(aligned), LoraConfig(r=2, target_modules=["q_proj", "v_proj"])
    )
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_()
    result = safe_lora(model, base, aligned, threshold=1.0)
    assert result.n_projected == len(result.report) == 4


def test_explicit_modules_change_exactly_those(world):
    base, aligned, peft_model = world
    by_rule = safe_lora(peft_model, base, aligned, mode="number", num_layers=2)
    lowest = [r.name for r in by_rule.report if r.projected]
    given = safe_lora(peft_model, base, aligned, modules=lowest)
    assert [r.projected for r in given.report] == [r.projected for r in by_rule.report]
    assert all(
        torch.equal(given.state_dict[k], by_rule.state_dict[k])
        for k in by_rule.state_dict
    )
    others = [r.name for r in by_rule.report if not r.projected][:2]
    swapped = safe_lora(peft_model, base, aligned, modules=others)
    assert [r.name for r in swapped.report if r.projected] == others
    # similarities are reported for every module whichever are changed
    assert [r.similarity for r in swapped.report] == [
        r.similarity for r in by_rule.report
    ]
    with pytest.raises(ValueError, match="modules names no LoRA module"):
        safe_lora(peft_model, base, aligned, modules=["no.such.module"])


def test_adapter_directory_is_read_without_loading_a_model(
    world, tmp_path, monkeypatch
):
    base, aligned, peft_model = world
    peft_model.save_pretrained(tmp_path / "lora")
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("safe_lora loaded a model from an adapter directory")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    from_dir = safe_lora(tmp_path / "lora", base, aligned, mode="number", num_layers=3)
    from_model = safe_lora(peft_model, base, aligned, mode="number", num_layers=3)
    # the same numbers, up to the summation order of tensors laid out differently
    assert [r.projected for r in from_dir.report] == [
        r.projected for r in from_model.report
    ]
    assert [r.similarity for r in from_dir.report] == pytest.approx(
        [r.similarity for r in from_model.report], rel=1e-6
    )
    assert from_dir.state_dict.keys() == from_model.state_dict.keys()
    assert all(
        torch.allclose(from_dir.state_dict[k], from_model.state_dict[k], atol=1e-6)
        for k in from_model.state_dict
    )
    modules, config, _ = lora_modules_from_dir(tmp_path / "lora")
    assert (
        [m.scaling for m in modules]
        == [2.0] * len(modules)
        == [m.scaling for m in lora_modules(peft_model)]
    )
    assert config.r == 4


@pytest.mark.parametrize(
    "change,match",
    [
        ({"use_dora": True}, "DoRA"),
        ({"rank_pattern": {"q_proj": 2}}, "rank_pattern"),
        ({"lora_bias": True}, "LoRA biases"),
    ],
)
def test_adapter_directory_rejects_what_safe_lora_does_not_define(
    world, tmp_path, change, match
):
    import json

    _, _, peft_model = world
    peft_model.save_pretrained(tmp_path / "lora")
    config_file = tmp_path / "lora" / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config.update(change)
    config_file.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=match):
        lora_modules_from_dir(tmp_path / "lora")
    with pytest.raises(FileNotFoundError, match="has no adapter_config.json"):
        lora_modules_from_dir(tmp_path)


def test_alignment_spectrum_reference_values():
    # V = diag(3, 4): ||V||_F = 5, C's eigenvalues 9/5 and 16/5 (both >= 1)
    spectrum = alignment_spectrum(torch.diag(torch.tensor([3.0, 4.0])))
    assert spectrum.frobenius == pytest.approx(5.0)
    assert spectrum.lambda_1 == pytest.approx(16 / 5)
    assert spectrum.n_at_least_1 == 2 and spectrum.top_share == pytest.approx(16 / 25)
    small = alignment_spectrum(0.01 * torch.diag(torch.tensor([3.0, 4.0])))
    assert small.n_at_least_1 == 0 and small.lambda_1 == pytest.approx(0.032)
    with pytest.raises(ValueError, match="non-zero matrix"):
        alignment_spectrum(torch.zeros(3, 3))


def test_module_spectra_from_models_and_directories_agree(world, tmp_path):
    base, aligned, _ = world
    base.save_pretrained(tmp_path / "base")
    aligned.save_pretrained(tmp_path / "aligned", max_shard_size="20KB")
    from_models = module_spectra(base, aligned)
    from_dirs = module_spectra(tmp_path / "base", tmp_path / "aligned")
    assert (
        sorted(from_models)
        == sorted(from_dirs)
        == sorted(
            f"model.layers.{i}.self_attn.{k}_proj.weight"
            for i in range(3)
            for k in "qv"
        )
    )
    for name, spectrum in from_models.items():
        assert spectrum.lambda_1 == pytest.approx(from_dirs[name].lambda_1, rel=1e-6)
        v = aligned.state_dict()[name] - base.state_dict()[name]
        assert spectrum.frobenius == pytest.approx(
            float(torch.linalg.norm(v)), rel=1e-5
        )
    with pytest.raises(ValueError, match="no name ending in"):
        module_spectra(base, aligned, suffixes=("no_proj.weight",))


class _StandIn(torch.nn.Module):
    """A stand-in language model: REFUSE next where :meth:`refuses` says so for the
    tokens seen so far, the first symbol otherwise. Its "cache" is those tokens."""

    def refuses(self, seen: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self, input_ids: torch.Tensor, past_key_values=None, use_cache: bool = False
    ) -> SimpleNamespace:
        seen = (
            input_ids
            if past_key_values is None
            else torch.cat([past_key_values, input_ids], dim=1)
        )
        logits = torch.zeros(*input_ids.shape, len(toy.VOCAB))
        refuse = self.refuses(seen)
        logits[refuse, -1, toy.TOKEN["REFUSE"]] = 1.0
        logits[~refuse, -1, toy.TOKEN["s0"]] = 1.0
        return SimpleNamespace(logits=logits, past_key_values=seen)


class _RefusesEvenArguments(_StandIn):
    """Refuses when the prompt's first argument is even."""

    def refuses(self, seen: torch.Tensor) -> torch.Tensor:
        return (seen[:, 3] - toy.TOKEN["s0"]) % 2 == 0


def test_toy_harmful_refusal_equals_evaluates_refusal_harmful():
    _, held_out = toy.split_triples(0, 300)
    held_out = held_out[:50]
    model = _RefusesEvenArguments()
    expected = sum(a % 2 == 0 for a, _, _ in held_out) / len(held_out)
    assert 0 < expected < 1  # the stand-in refuses some harmful prompts, not all
    assert toy.harmful_refusal(model, held_out) == pytest.approx(expected)
    assert toy.evaluate(model, held_out).refusal_harmful == toy.harmful_refusal(
        model, held_out
    )


class _RefusesTrainedTopics(_StandIn):
    """Refuses exactly the harmful topics alignment trains on (a memorised topic
    list)."""

    def refuses(self, seen: torch.Tensor) -> torch.Tensor:
        listed = torch.tensor([toy.TOKEN[t] for t in toy.HARMFUL_TOPICS])
        return torch.isin(seen[:, 1], listed)


def test_toy_held_out_topics_are_scored_apart():
    _, held_out = toy.split_triples(0, 300)
    scores = toy.evaluate(_RefusesTrainedTopics(), held_out[:20])
    assert scores.refusal_harmful == 1.0
    assert scores.refusal_held_out_topics == 0.0
    assert scores.benign_refusal == 0.0
    # the held-out topics are disjoint from the trained ones, of both kinds
    assert not set(toy.HELD_OUT_HARMFUL_TOPICS) & set(toy.HARMFUL_TOPICS)
    assert not set(toy.HELD_OUT_BENIGN_TOPICS) & set(toy.BENIGN_TOPICS)


def test_toy_kind_task_names_the_topics_kind():
    assert toy.task_output("KIND", (3, 4, 5), "H4") == [1, 1, 1]
    assert toy.task_output("KIND", (3, 4, 5), "B5") == [0, 0, 0]
    assert toy.task_output("SHIFT", (3, 4, 9), "B0") == [4, 5, 0]
    with pytest.raises(ValueError, match="topic must be one of"):
        toy.task_output("COPY", (1, 2, 3), "X9")
    batch = toy.make_examples(["H3"], ["KIND"], [(0, 0, 0)], refuse=False)
    assert batch.ids[0, toy.PROMPT_LEN :].tolist() == [
        toy.TOKEN["s1"],
        toy.TOKEN["s1"],
        toy.TOKEN["s1"],
        toy.TOKEN["EOS"],
    ]


def test_toy_examples_are_fresh_copies_of_one_build():
    """The ids are built once per request and copied: a caller that writes into one
    batch does not change the next, and a list of triples equals the same tuples."""
    first = toy.make_examples(["B0", "H1"], ["COPY"], [(1, 2, 3), (4, 5, 6)], False)
    first.ids[:] = 0
    again = toy.make_examples(("B0", "H1"), ("COPY",), [[1, 2, 3], [4, 5, 6]], False)
    assert again.ids[:, 1].tolist() == [
        toy.TOKEN["B0"],
        toy.TOKEN["B0"],
        toy.TOKEN["H1"],
        toy.TOKEN["H1"],
    ]
    assert again.ids[0, toy.PROMPT_LEN :].tolist() == [
        toy.TOKEN["s1"],
        toy.TOKEN["s2"],
        toy.TOKEN["s3"],
        toy.TOKEN["EOS"],
    ]
    refused = toy.make_examples(["B0"], ["COPY"], [(1, 2, 3)], True)
    assert refused.answer_mask[0].tolist() == [False] * toy.PROMPT_LEN + [
        True,
        True,
        False,
        False,
    ]


def _delta_w(model, name: str) -> torch.Tensor:
    """The LoRA update s B A of one module, from the model's own factors."""
    layer = dict(model.named_modules())[name]
    a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    return (layer.scaling["default"] * b @ a).detach().double()


def _v(base, aligned, name: str) -> torch.Tensor:
    key = name.removeprefix("base_model.model.") + ".weight"
    return (
        (dict(aligned.named_parameters())[key] - dict(base.named_parameters())[key])
        .detach()
        .double()
    )


def test_reversal_factors_give_the_truncated_negative_alignment():
    g = torch.Generator().manual_seed(3)
    v = torch.randn(12, 9, generator=g, dtype=torch.float64)
    u, s, wt = torch.linalg.svd(v, full_matrices=False)
    a, b = reversal_factors(v, 3, scaling=2.5)
    assert a.shape == (3, 9) and b.shape == (12, 3)
    truncated = u[:, :3] @ torch.diag(s[:3]) @ wt[:3]
    assert torch.allclose(2.5 * b @ a, -truncated, atol=1e-12)
    low_rank = u[:, :2] @ torch.diag(s[:2]) @ wt[:2]  # rank 2 <= 3: exactly -V
    a, b = reversal_factors(low_rank, 3)
    assert torch.allclose(b @ a, -low_rank, atol=1e-12)
    with pytest.raises(ValueError, match=r"rank must lie in \[1, 9\]"):
        reversal_factors(v, 10)
    with pytest.raises(ValueError, match="scaling must be finite and non-zero"):
        reversal_factors(v, 2, scaling=0.0)


@pytest.fixture(scope="module")
def low_rank_world():
    """A base model and an aligned one whose q/v alignment V has rank exactly 2 (a
    merged LoRA), the toy's alignment A2."""
    base = tiny_llama(0)
    merged = get_peft_model(
        copy.deepcopy(base), LoraConfig(r=2, target_modules=["q_proj", "v_proj"])
    )
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for name, p in merged.named_parameters():
            if "lora_" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return base, merged.merge_and_unload()


def test_reversal_of_a_low_rank_alignment_computes_the_base_model(low_rank_world):
    base, aligned = low_rank_world
    g = torch.Generator().manual_seed(5)
    template = get_peft_model(
        copy.deepcopy(aligned), LoraConfig(r=4, target_modules=["q_proj", "v_proj"])
    )
    reversed_model = toy.reversal_adapter(template, base, aligned)
    ids = torch.randint(0, 40, (3, 7), generator=g)
    with torch.no_grad():
        assert torch.allclose(
            reversed_model(input_ids=ids).logits, base(input_ids=ids).logits, atol=1e-4
        )
        assert not torch.allclose(
            aligned(input_ids=ids).logits, base(input_ids=ids).logits, atol=1e-2
        )
    result = safe_lora(reversed_model, base, aligned, mode="threshold", threshold=0.5)
    # sign-blind: an update that undoes the alignment scores high and is never edited
    assert min(r.similarity for r in result.report) > 0.9
    assert result.n_projected == 0


def test_outside_alignment_keeps_b_orthogonal_to_the_top_directions(low_rank_world):
    base, aligned = low_rank_world
    model = get_peft_model(
        copy.deepcopy(aligned),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    )
    g = torch.Generator().manual_seed(6)
    with toy.outside_alignment(model, base, aligned, rank=2):
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=0.05)
        for _ in range(3):
            ids = torch.randint(0, 40, (4, 6), generator=g)
            model(input_ids=ids, labels=ids).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    names = [m.name for m in lora_modules(model)]
    assert not any("parametrizations" in n for n, _ in model.named_parameters())
    for name in names:
        layer = dict(model.named_modules())[name]
        b = layer.lora_B["default"].weight.detach().double()
        u = torch.linalg.svd(_v(base, aligned, name)).U[:, :2]
        assert b.abs().max() > 1e-3  # training moved B ...
        assert (u.T @ b).abs().max() < 1e-5  # ... only outside the top-2 directions
    # V has rank 2, so C B = V (V^T B) / ||V||_F = 0: similarity 0, every module
    # edited, and the edit deletes the update
    result = safe_lora(model, base, aligned, mode="threshold", threshold=0.5)
    assert max(abs(r.similarity) for r in result.report) < 1e-3
    assert result.n_projected == len(names)
    assert max(r.update_norm_after for r in result.report) < 1e-4


def test_unit_gain_and_rank_k_complement_variants(world):
    base, aligned, peft_model = world
    paper = safe_lora(peft_model, base, aligned, mode="number", num_layers=6)
    unit = safe_lora(
        peft_model, base, aligned, mode="number", num_layers=6, projection="unit_gain"
    )
    complement = safe_lora(
        peft_model,
        base,
        aligned,
        mode="number",
        num_layers=6,
        projection="rank_k_complement",
        rank_k=2,
    )
    rank_k = safe_lora(
        peft_model,
        base,
        aligned,
        mode="number",
        num_layers=6,
        projection="rank_k",
        rank_k=2,
    )
    for r in paper.report:
        key = f"{r.name}.lora_B.weight"
        lambda_1 = alignment_spectrum(_v(base, aligned, r.name)).lambda_1
        assert torch.allclose(
            unit.state_dict[key].double(),
            paper.state_dict[key].double() / lambda_1,
            rtol=1e-5,
            atol=1e-7,
        )
        original = dict(peft_model.named_parameters())[
            f"{r.name}.lora_B.default.weight"
        ]
        assert torch.allclose(
            complement.state_dict[key] + rank_k.state_dict[key], original, atol=1e-6
        )
    with pytest.raises(ValueError, match="'rank_k_complement' needs rank_k"):
        safe_lora(peft_model, base, aligned, projection="rank_k_complement")


def test_gain_scales_exactly_the_edited_modules(world):
    base, aligned, peft_model = world
    plain = safe_lora(peft_model, base, aligned, mode="number", num_layers=3)
    scaled = safe_lora(
        peft_model, base, aligned, mode="number", num_layers=3, gain=10.0
    )
    for r in plain.report:
        key = f"{r.name}.lora_B.weight"
        factor = 10.0 if r.projected else 1.0
        assert torch.allclose(scaled.state_dict[key], factor * plain.state_dict[key])
    assert 0 < plain.n_projected < len(plain.report)
    with pytest.raises(ValueError, match="gain must be a finite number"):
        safe_lora(peft_model, base, aligned, gain=float("nan"))


def test_greedy_answers_with_the_cache_equal_full_recomputation():
    model = toy.tiny_llama(3, hidden=16, layers=2, heads=2).eval()
    g = torch.Generator().manual_seed(7)
    prompts = torch.randint(0, len(toy.VOCAB), (64, toy.PROMPT_LEN), generator=g)
    ids = prompts
    with torch.no_grad():  # the reference: the whole sequence at every step
        for _ in range(toy.ANSWER_LEN):
            step = model(input_ids=ids, use_cache=False).logits[:, -1].argmax(-1)
            ids = torch.cat([ids, step[:, None]], dim=1)
    expected = ids[:, toy.PROMPT_LEN :]
    assert len(set(map(tuple, expected.tolist()))) > 5  # not one constant answer
    assert torch.equal(toy.greedy_answers(model, prompts), expected)


def test_stack_adapters_adds_the_parts_updates_module_by_module(low_rank_world):
    base, aligned = low_rank_world
    g = torch.Generator().manual_seed(8)

    def adapter(layers, r=4, alpha=None):
        model = get_peft_model(
            copy.deepcopy(aligned),
            LoraConfig(
                r=r,
                lora_alpha=alpha or 2 * r,
                target_modules=["q_proj", "v_proj"],
                layers_to_transform=layers,
            ),
        )
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_" in name:
                    p.copy_(torch.randn(p.shape, generator=g))
        return model

    early, late, every = adapter([0]), adapter([1]), adapter(None)
    stacked = toy.stack_adapters(adapter(None, r=8), early, every)
    for name, layer in stacked.named_modules():
        if not hasattr(layer, "lora_A"):
            continue
        expected = _delta_w(every, name)
        if name in dict(early.named_modules()) and hasattr(
            dict(early.named_modules())[name], "lora_A"
        ):
            expected = expected + _delta_w(early, name)
        assert torch.allclose(_delta_w(stacked, name), expected, atol=1e-5)
    # disjoint parts: each module carries exactly one part's update
    disjoint = toy.stack_adapters(adapter(None, r=8), early, late)
    x = torch.randint(0, 40, (2, 7), generator=g)
    with torch.no_grad():
        merged_parts = copy.deepcopy(late).merge_and_unload()
        for (n, p), q in zip(
            merged_parts.named_parameters(),
            copy.deepcopy(early).merge_and_unload().parameters(),
        ):
            if "layers.0." in n:
                p.copy_(q)
        assert torch.allclose(
            disjoint(input_ids=x).logits, merged_parts(input_ids=x).logits, atol=1e-5
        )
    with pytest.raises(ValueError, match="add up to 12"):
        toy.stack_adapters(adapter(None, r=8), every, every, every)
    with pytest.raises(ValueError, match="the sum needs one scaling"):
        toy.stack_adapters(adapter(None, r=8), adapter(None, r=2, alpha=2))
    with pytest.raises(ValueError, match="at least one"):
        toy.stack_adapters(adapter(None, r=8))
