"""Ring-A-Bell's concept extraction, genetic search and success rates
(trustml_ref.ring_a_bell)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trustml_ref.ring_a_bell import (
    allowed_token_ids,
    attack_success_rate,
    concept_direction,
    concept_vector,
    crossover,
    decode,
    fitness,
    genetic_search,
    genetic_search_batch,
    mutate,
    prompt_ids,
    prompt_success,
    target_embedding,
    text_embedding,
    union_success_rate,
)
from trustml_ref.ring_a_bell.text import (
    build_text_encoder,
    build_tokenizer,
    save_text_encoder,
)

WORDS = [
    "a",
    "red",
    "crimson",
    "scarlet",
    "blue",
    "green",
    "circle",
    "square",
    "fire",
    "sky",
    "big",
    "small",
    "reddish",
    "on",
    "the",
    "left",
    "right",
    "bright",
    "dark",
    "tree",
]


@pytest.fixture(scope="module")
def world():
    tokenizer = build_tokenizer(WORDS, max_length=12)
    return tokenizer, build_text_encoder(tokenizer, hidden=16, layers=1, heads=2)


def test_embedding_shapes_and_concept_invariants(world):
    tok, enc = world
    emb = text_embedding(enc, tok, ["a red circle", "a blue square on the left"])
    assert emb.shape == (2, 12, 16)
    c = concept_vector(
        enc, tok, ["a red circle", "a red square"], ["a blue circle", "a blue square"]
    )
    assert c.shape == (12, 16)
    # causal attention: position 0 (BOS) never sees the prompt, so the concept is zero
    # there
    assert torch.allclose(c[0], torch.zeros(16), atol=1e-6) and c[2].abs().sum() > 0
    # identical pairs carry no concept; swapping the lists negates it
    assert torch.allclose(
        concept_vector(enc, tok, ["a red circle"], ["a red circle"]),
        torch.zeros(12, 16),
    )
    assert torch.allclose(
        concept_vector(
            enc,
            tok,
            ["a blue circle", "a blue square"],
            ["a red circle", "a red square"],
        ),
        -c,
    )
    assert torch.allclose(target_embedding(emb, c, 3.0), emb + 3 * c)


def test_concept_direction_and_fitness_on_tensors():
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(5, 4, 3, generator=g), torch.randn(5, 4, 3, generator=g)
    c = concept_direction(pos, neg)
    assert torch.allclose(c, sum(p - n for p, n in zip(pos, neg)) / 5)
    # F = |f - f(P)|^2 - 2 eta <f - f(P), c> + eta^2 |c|^2 (the chapter's expansion),
    # and F(target) = 0
    base, cand = torch.randn(4, 3, generator=g), torch.randn(6, 4, 3, generator=g)
    expanded = (
        ((cand - base) ** 2).sum((1, 2))
        - 4 * ((cand - base) * c).sum((1, 2))
        + 4 * (c**2).sum()
    )
    assert torch.allclose(
        fitness(cand, target_embedding(base, c, 2.0)), expanded, atol=1e-5
    )
    assert (
        fitness(
            target_embedding(base, c, 2.0)[None], target_embedding(base, c, 2.0)
        ).item()
        == 0
    )
    assert torch.equal(fitness(cand, cand), torch.zeros(6))  # one target per candidate
    with pytest.raises(
        ValueError, match="with_states and without_states must be non-empty"
    ):
        concept_direction(pos, neg[:4])
    with pytest.raises(ValueError, match=r"candidates must be \(N, L, d\)"):
        fitness(cand, torch.zeros(3, 4))


def test_concept_pairs_differ_only_in_the_colour():
    pos, neg = toy.concept_pairs(60, seed=0)
    colour_words = {w: c for c, words in toy.SYNONYMS.items() for w in words}
    phrase_words = {
        w: c
        for c, phrases in toy.CORRELATED.items()
        for p in phrases
        for w in p.split()
        if w not in ("like", "a", "the")
    }

    def said(prompt: str) -> set:
        words = {colour_words.get(w) or phrase_words.get(w) for w in prompt.split()}
        return words - {None}

    for p, n in zip(pos, neg):
        assert said(p) == {"red"} and len(said(n)) == 1 and said(n) != {"red"}
        # same size and place
        assert p.split()[:2] == n.split()[:2] and p.split()[-2:] == n.split()[-2:]
    # both forms occur
    assert any(" like " in p for p in pos) and any(" like " not in p for p in pos)
    with pytest.raises(ValueError, match="concept must be one of"):
        toy.concept_pairs(3, concept="purple")


def test_exclusions_remove_words_and_substrings(world):
    tok, _ = world
    allowed = allowed_token_ids(tok, ["red"])
    names = set(tok.convert_ids_to_tokens(allowed.tolist()))
    # substrings go, synonyms stay unless listed
    assert {"red", "reddish"}.isdisjoint(names) and "crimson" in names
    assert (
        tok.bos_token_id not in allowed.tolist()
        and tok.eos_token_id not in allowed.tolist()
    )
    assert len(allowed_token_ids(tok, ["red", "crimson", "scarlet"])) == len(WORDS) - 4


def test_operators_have_the_official_statistics():
    rng = np.random.default_rng(0)
    parents = torch.arange(400 * 6).view(400, 6)
    children = crossover(parents, 0.5, rng)
    # Binomial(400, 0.5) matings, two children each
    assert abs(len(children) / 2 / 400 - 0.5) < 4 * np.sqrt(0.25 / 400)
    half = len(children) // 2
    # child 1 starts with its parent's tokens and ends with its mate's; child 2 is the
    # complement
    first_rows = children[:half] // 6
    assert torch.all((children[:half] % 6) == torch.arange(6)) and torch.all(
        (children[half:] % 6) == torch.arange(6)
    )
    cuts = (first_rows != first_rows[:, :1]).float().argmax(1)
    assert set(cuts.tolist()) <= set(range(6))
    allowed = torch.tensor([7, 8, 9])
    pop = torch.zeros(4000, 5, dtype=torch.long)
    mutated = mutate(pop, 0.25, allowed, np.random.default_rng(1))
    changed = (mutated != 0).sum(1)
    assert set(changed.tolist()) <= {0, 1} and abs(
        changed.float().mean() - 0.25
    ) < 4 * np.sqrt(0.25 * 0.75 / 4000)
    # no in-place change
    assert set(mutated[mutated != 0].tolist()) <= {7, 8, 9} and torch.equal(
        pop, torch.zeros_like(pop)
    )
    counts = torch.bincount(
        (mutated != 0).float().argmax(1)[changed == 1], minlength=5
    ).float()
    assert counts.min() > 0.6 * counts.mean()  # positions uniform


def test_search_is_deterministic_respects_exclusions_and_improved_is_monotone(world):
    tok, enc = world
    target = target_embedding(
        text_embedding(enc, tok, ["a small circle"])[0],
        concept_vector(enc, tok, ["a red circle"], ["a blue circle"]),
        3.0,
    )
    allowed = allowed_token_ids(tok, ["red", "crimson"])
    runs = [
        genetic_search(
            enc,
            tok,
            target,
            4,
            population=20,
            generations=15,
            allowed=allowed,
            seed=3,
            progress=False,
        )
        for _ in range(2)
    ]
    assert (
        torch.equal(runs[0].tokens, runs[1].tokens)
        and runs[0].history == runs[1].history
    )
    assert set(runs[0].tokens.tolist()) <= set(allowed.tolist())
    assert all(b <= a for a, b in zip(runs[0].history[:-1], runs[0].history[1:]))
    ids = runs[0].input_ids
    assert ids[0] == tok.bos_token_id and torch.all(ids[5:] == tok.pad_token_id)
    # decoding and re-encoding gives the same prompt
    emb = text_embedding(enc, tok, [decode(tok, runs[0])])
    assert float(((emb[0] - target) ** 2).sum()) == pytest.approx(
        runs[0].fitness, rel=1e-5
    )
    faithful = genetic_search(
        enc,
        tok,
        target,
        4,
        population=20,
        generations=15,
        mode="faithful",
        seed=3,
        progress=False,
    )
    # the faithful loop re-evaluates survivors every generation
    assert faithful.evaluations > runs[0].evaluations
    assert faithful.fitness == faithful.history[-1]


def test_random_mode_is_the_improved_search_without_its_operators(world):
    tok, enc = world
    target = text_embedding(enc, tok, ["a small circle on the left"])[0]
    allowed = allowed_token_ids(tok, ["red"])
    kwargs = dict(population=20, allowed=allowed, seed=5, progress=False)
    modes = {
        m: genetic_search(enc, tok, target, 4, generations=12, mode=m, **kwargs)
        for m in ("improved", "random")
    }
    improved, rand = modes["improved"], modes["random"]
    # an equal query budget: the same number of prompts evaluated
    assert rand.evaluations == improved.evaluations == 20 + 11 * 10
    assert all(b <= a for a, b in zip(rand.history[:-1], rand.history[1:]))
    assert set(rand.tokens.tolist()) <= set(allowed.tolist())
    # the same first population (same seed), then different children
    first = [
        genetic_search(enc, tok, target, 4, generations=1, mode=m, **kwargs)
        for m in ("improved", "random")
    ]
    assert torch.equal(first[0].tokens, first[1].tokens)
    assert rand.history != improved.history
    # the best found is the best of the prompts it evaluated: re-encode and compare
    emb = text_embedding(enc, tok, [decode(tok, rand)])
    assert float(((emb[0] - target) ** 2).sum()) == pytest.approx(
        rand.fitness, rel=1e-5
    )


def test_success_rates():
    flags = torch.tensor([[True, False], [False, False], [True, True], [False, True]])
    assert (
        attack_success_rate(flags) == 0.75
        and attack_success_rate(flags, images_needed=2) == 0.25
    )
    assert (
        union_success_rate(
            [prompt_success(flags), torch.tensor([False, True, False, False])]
        )
        == 1.0
    )
    with pytest.raises(ValueError, match="boolean"):
        attack_success_rate(flags.float())
    with pytest.raises(ValueError, match="non-empty list"):
        union_success_rate([])


def test_bad_inputs(world):
    tok, enc = world
    target = torch.zeros(12, 16)
    with pytest.raises(ValueError, match=r"k must lie in \[1, 11\]"):
        genetic_search(enc, tok, target, 12, progress=False)
    with pytest.raises(ValueError, match="non-empty pairs of equal length"):
        concept_vector(enc, tok, ["a red circle"], [])
    with pytest.raises(ValueError, match="target must have shape"):
        genetic_search(enc, tok, torch.zeros(12, 8), 3, progress=False)
    with pytest.raises(ValueError, match="mismatched encoder/tokenizer"):
        text_embedding(
            build_text_encoder(
                build_tokenizer(WORDS[:5], 12), hidden=16, layers=1, heads=2
            ),
            tok,
            ["a"],
        )
    with pytest.raises(ValueError, match="mode must be one of"):
        genetic_search(enc, tok, target, 3, mode="fast", progress=False)
    with pytest.raises(ValueError, match=r"K < context length 12"):
        prompt_ids(torch.zeros(2, 12, dtype=torch.long), 0, 1, 12)


# --- the toy world, its detector, pipeline loading and ESD
# ----------------------------------------

from trustml_ref.ring_a_bell import toy  # noqa: E402
from trustml_ref.ring_a_bell.pipeline import GATE_GUIDANCE, ToyPipeline  # noqa: E402
from trustml_ref.ring_a_bell.removal import (  # noqa: E402
    cross_attention_projections,
    esd_finetune,
    reads_no_text,
    reads_text,
    uce_erase,
    uce_weight,
)


def test_layout_reader_reads_clean_renders():
    images, _, scenes = toy.dataset(600, seed=2)
    read = toy.read_layout(images)
    for i, part, floor in [(0, "shape", 0.85), (1, "position", 1.0), (2, "size", 1.0)]:
        hits = np.mean([r[i] == getattr(s, part) for r, s in zip(read, scenes)])
        assert hits >= floor, (part, hits)
    # noise-free renders at the exact centre are read exactly
    exact = [
        toy.Scene("blue", h, p, z)
        for h in toy.SHAPES
        for p in toy.POSITIONS
        for z in toy.SIZES
    ]
    canvas = torch.full((len(exact), 3, 16, 16), toy.BACKGROUND)
    for img, s in zip(canvas, exact):
        img[
            :,
            torch.as_tensor(toy.shape_mask(s.shape, s.size, toy.POSITIONS[s.position])),
        ] = torch.tensor(toy.COLOURS["blue"])[:, None]
    assert toy.read_layout(canvas) == [(s.shape, s.position, s.size) for s in exact]
    assert toy.read_layout(torch.full((1, 3, 16, 16), toy.BACKGROUND)) == [None]
    with pytest.raises(ValueError, match=r"images must have shape \(n, 3, H, W\)"):
        toy.read_layout(torch.zeros(3, 16, 16))


def test_detector_reads_every_clean_colour_and_captions_tokenise():
    images, captions, scenes = toy.dataset(400, seed=1)
    assert [s.colour for s in scenes] == toy.dominant_colour(images)
    assert torch.equal(
        toy.detect(images), torch.tensor([s.colour == "red" for s in scenes])
    )
    # an empty canvas is not red
    assert not toy.detect(torch.full((1, 3, 16, 16), toy.BACKGROUND)).item()
    tok = build_tokenizer(toy.vocabulary(), 16)
    ids = tok(captions).input_ids
    assert tok.unk_token_id not in {i for row in ids for i in row}
    # every caption fits the context whole: BOS, up to two neutral words, the scene
    # in at most nine words, EOS
    assert max(len(row) for row in ids) <= 13
    with pytest.raises(ValueError, match="colour must be one of"):
        toy.detect(images, colour="purple")


def test_the_vocabulary_is_large_and_a_banned_word_leaves_sub_word_routes():
    words = toy.words()
    assert len(words) >= 300 and set(toy.NEUTRAL) <= set(words)
    assert toy.pieces("crimson") == ("crim", "##son") and toy.pieces("on") is None
    tok = build_tokenizer(toy.vocabulary(), 16)
    # a whole word is one token; its pieces, written out, are the pieces, and a decoded
    # prompt re-encodes to the same ids
    for text, tokens in [
        ("a crimson circle", ["a", "crimson", "circle"]),
        ("a crim ##son circle", ["a", "crim", "##son", "circle"]),
    ]:
        ids = tok(text, add_special_tokens=False).input_ids
        assert tok.convert_ids_to_tokens(ids) == tokens
        assert tok(tok.decode(ids), add_special_tokens=False).input_ids == ids
    # banning the word removes its token, not the pieces that spell it
    kept = set(tok.convert_ids_to_tokens(allowed_token_ids(tok, ["crimson"]).tolist()))
    assert "crimson" not in kept and {"crim", "##son"} <= kept
    # no neutral word says a colour, a shape, a place or a size
    scene_words = {*toy.SHAPES, *toy.POSITIONS, *toy.SIZES, *toy.COLOURS}
    for syn in toy.SYNONYMS.values():
        scene_words.update(syn)
    assert scene_words.isdisjoint(toy.NEUTRAL)


def test_writing_in_pieces_keeps_the_text():
    rng = np.random.default_rng(0)
    text = "a big crimson circle on the left"
    assert toy.write_in_pieces(text, rng, p=0.0) == text
    split = toy.write_in_pieces(text, rng, p=1.0)
    assert split == "a bi ##g crim ##son cir ##cle on th ##e le ##ft"
    assert split.replace(" ##", "") == text
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        toy.write_in_pieces(text, rng, p=1.5)


def test_a_denoiser_without_the_pooled_text_path_reads_text_by_attention_only(
    tmp_path,
):
    from trustml_ref.ring_a_bell.denoiser import TinyTextDenoiser

    torch.manual_seed(0)
    model = TinyTextDenoiser(width=8, text_dim=16, heads=2, pooled_text=False).eval()
    assert not any("text_pool" in name for name, _ in model.named_parameters())
    x, states = torch.randn(2, 3, 16, 16), torch.randn(2, 5, 16)
    out = model(x, 10, states)
    assert out.shape == x.shape
    # the text still matters, through cross-attention
    assert not torch.allclose(out, model(x, 10, torch.randn(2, 5, 16)))
    model.save_pretrained(tmp_path)
    reloaded = TinyTextDenoiser.from_pretrained(tmp_path).eval()
    assert reloaded.text_pool is None and torch.equal(reloaded(x, 10, states), out)


def save_tiny_checkpoint(path):
    """A tiny untrained pipeline saved to disk as the real checkpoint is."""
    from diffusers import DDPMScheduler

    from trustml_ref.ring_a_bell.denoiser import TinyTextDenoiser

    tok = build_tokenizer(toy.vocabulary(), 12)
    tok.save_pretrained(path / "tokenizer")
    save_text_encoder(
        build_text_encoder(tok, hidden=16, layers=1, heads=2), path / "text_encoder"
    )
    torch.manual_seed(0)
    TinyTextDenoiser(width=8, text_dim=16, heads=2).save_pretrained(path / "denoiser")
    DDPMScheduler(num_train_timesteps=100).save_pretrained(path / "scheduler")
    return path


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    return ToyPipeline.from_pretrained(
        save_tiny_checkpoint(tmp_path_factory.mktemp("toy_checkpoint"))
    )


@pytest.mark.parametrize(
    "part,file,edit,match",
    [
        (
            "denoiser",
            "diffusion_pytorch_model.safetensors",
            lambda state: state.pop("text_pool.0.weight"),
            # ours, or diffusers' own (0.30) before ours: both name the key
            r"(?s)missing.*text_pool\.0\.weight",
        ),
        (  # keys under names this transformers does not map: random weights before
            "text_encoder",
            "model.safetensors",
            lambda state: state.update(
                {"encoder_v9." + k: state.pop(k) for k in list(state)}
            ),
            "does not match CLIPTextModel",
        ),
        (
            "text_encoder",
            "model.safetensors",
            lambda state: state.update({"text_model.extra.weight": torch.ones(1)}),
            "unexpected keys",
        ),
    ],
)
def test_a_checkpoint_whose_weights_do_not_match_is_refused(
    tmp_path, part, file, edit, match
):
    from safetensors.torch import load_file, save_file

    weights = save_tiny_checkpoint(tmp_path) / part / file
    state = load_file(weights)
    edit(state)
    save_file(state, weights, metadata={"format": "pt"})
    with pytest.raises(ValueError, match=match):
        ToyPipeline.from_pretrained(tmp_path)


def test_text_encoders_are_saved_in_the_layout_every_transformers_reads(tmp_path):
    """text_model.-prefixed names (what transformers 4 writes and every Hub CLIP has),
    for the tests' checkpoints and the shipped one; they reload exactly."""
    from trustml_ref.io import load_tensors
    from trustml_ref.ring_a_bell.pipeline import CHECKPOINT

    tok = build_tokenizer(toy.vocabulary(), 12)
    encoder = build_text_encoder(tok, hidden=16, layers=1, heads=2)
    save_text_encoder(encoder, tmp_path / "te")
    for directory in (tmp_path / "te", CHECKPOINT / "text_encoder"):
        names = list(load_tensors(directory / "model.safetensors"))
        assert names and all(n.startswith("text_model.") for n in names)
    from transformers import CLIPTextModel

    reloaded, info = CLIPTextModel.from_pretrained(
        tmp_path / "te", output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]
    reloaded = reloaded.state_dict()
    for name, value in encoder.state_dict().items():
        assert torch.equal(reloaded[name], value), name


def test_pipeline_loads_and_generates_deterministically(tiny_pipeline):
    pipe = tiny_pipeline
    images = pipe(
        ["a big red circle on the left"],
        num_images_per_prompt=2,
        num_inference_steps=3,
        generator=torch.Generator().manual_seed(0),
    )
    assert images.shape == (2, 3, 16, 16) and images.min() >= 0 and images.max() <= 1
    same = pipe(
        prompt_embeds=pipe.embed(["a big red circle on the left"]),
        num_images_per_prompt=2,
        num_inference_steps=3,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(images, same)  # prompt and its embedding are the same input
    negative = pipe(
        ["a big red circle on the left"],
        num_images_per_prompt=2,
        num_inference_steps=3,
        negative_guidance="red",
        generator=torch.Generator().manual_seed(0),
    )
    assert not torch.equal(images, negative)
    with pytest.raises(ValueError, match="exactly one of prompt and prompt_embeds"):
        pipe()
    with pytest.raises(FileNotFoundError, match="no toy checkpoint"):
        ToyPipeline.from_pretrained("/nonexistent")


def test_sampling_at_guidance_one_skips_the_unconditional_pass(tiny_pipeline):
    from trustml_ref.ring_a_bell.diffusion import sample

    pipe, seen = tiny_pipeline, []
    hook = pipe.denoiser.register_forward_hook(lambda m, a, out: seen.append(len(a[0])))
    states = pipe.embed(["a big red circle on the left", "a small blue square"])
    empty = pipe.embed([""])[0]
    try:
        images = {
            w: sample(
                pipe.denoiser,
                pipe.scheduler,
                states,
                empty,
                guidance=w,
                steps=3,
                generator=torch.Generator().manual_seed(1),
            )
            for w in (1.0, 1.0 + 1e-9)
        }
    finally:
        hook.remove()
    # w = 1: one conditional pass of 2 per step; otherwise 2 passes stacked (4 rows)
    assert seen == [2] * 3 + [4] * 3
    # and the result is the guided formula's: eps_0 + 1 * (eps_P - eps_0) = eps_P
    torch.testing.assert_close(images[1.0], images[1.0 + 1e-9], atol=1e-5, rtol=0)


def test_a_negative_prompt_replaces_the_unconditional_prompt(tiny_pipeline):
    """Stable Diffusion's negative prompt: eps_N + w (eps_P - eps_N). It does nothing
    at w = 1; at w > 1 it equals guidance against the negative text's own states, one
    text or one per prompt."""
    from trustml_ref.ring_a_bell.diffusion import sample

    pipe, prompts = tiny_pipeline, ["a big red circle", "a small blue square"]

    def draw(**kwargs):
        return pipe(
            prompts,
            num_inference_steps=3,
            generator=torch.Generator().manual_seed(2),
            **kwargs,
        )

    assert torch.equal(draw(), draw(negative_prompt="red"))
    guided = draw(guidance_scale=3.0, negative_prompt="red")
    assert not torch.allclose(guided, draw(guidance_scale=3.0))
    by_hand = sample(
        pipe.denoiser,
        pipe.scheduler,
        pipe.embed(prompts),
        pipe.embed(["red"])[0],
        guidance=3.0,
        steps=3,
        generator=torch.Generator().manual_seed(2),
    )
    torch.testing.assert_close(guided, by_hand)
    torch.testing.assert_close(
        guided, draw(guidance_scale=3.0, negative_prompt=["red", "red"])
    )
    per_prompt = draw(guidance_scale=3.0, negative_prompt=["red", "blue"])
    torch.testing.assert_close(per_prompt[:1], guided[:1])
    assert not torch.allclose(per_prompt[1:], guided[1:])
    with pytest.raises(ValueError, match=r"negative_prompt must be one text or one"):
        draw(guidance_scale=3.0, negative_prompt=["red"] * 3)


def test_safety_guidance_follows_its_equations():
    """SLD's eqs. 4-8 on hand-made noise predictions: mu = min(1, s |phi|) below the
    threshold and 0 at or above it; gamma adds s_m times the momentum; the momentum
    moves to beta nu + (1 - beta) gamma."""
    from trustml_ref.ring_a_bell.diffusion import safety_guidance

    uncond = torch.zeros(4)
    safety = torch.tensor([1.0, 1.0, 1.0, 1.0])
    text = torch.tensor([0.9, 1.0 - 1e-4, 1.5, 1.0 + 0.2])  # phi = text - safety
    momentum = torch.tensor([0.0, 0.0, 0.0, 2.0])
    gamma, nu = safety_guidance(
        uncond,
        text,
        safety,
        momentum,
        sld_guidance_scale=1000.0,
        sld_threshold=0.2,
        sld_momentum_scale=0.5,
        sld_mom_beta=0.7,
    )
    # phi = -0.1 (mu 1), -1e-4 (mu 0.1), 0.5 (>= threshold: 0), 0.2 (= threshold: 0)
    expected = torch.tensor([1.0, 0.1, 0.0, 0.0]) + 0.5 * momentum
    torch.testing.assert_close(gamma, expected, rtol=1e-3, atol=1e-6)
    torch.testing.assert_close(nu, 0.7 * momentum + 0.3 * expected, rtol=1e-3, atol=0)


def test_safe_latent_diffusion_reduces_to_guidance_and_to_negative_guidance(
    tiny_pipeline,
):
    """With a zero safety scale, or a warm-up as long as the sampling, SLD is plain
    classifier-free guidance; at full scale with no threshold, momentum or warm-up,
    at w = 1, it is negative guidance of scale 1: eps_0 + (eps_P - eps_S)."""
    from trustml_ref.ring_a_bell.diffusion import (
        SLD_KEYS,
        SLD_STEPS,
        sample,
        sld_config,
    )

    pipe, prompts = tiny_pipeline, ["a big red circle", "a small blue square"]

    def draw(**kwargs):
        return pipe(
            prompts,
            num_inference_steps=4,
            guidance_scale=3.0,
            generator=torch.Generator().manual_seed(3),
            **kwargs,
        )

    plain = draw()
    medium = dict(
        sld_warmup_steps=0,
        sld_guidance_scale=1000.0,
        sld_threshold=0.01,
        sld_momentum_scale=0.3,
        sld_mom_beta=0.4,
    )
    for no_op in (dict(sld_guidance_scale=0.0), dict(sld_warmup_steps=SLD_STEPS)):
        torch.testing.assert_close(
            draw(safety_concept="red", sld=medium | no_op), plain
        )
    assert not torch.allclose(draw(safety_concept="red", sld=medium), plain)
    assert torch.equal(
        draw(safety_concept="red", sld="max"),
        draw(safety_concept="red", sld=sld_config("max")),
    )
    full = dict(zip(SLD_KEYS, (0, 1e12, float("inf"), 0.0, 0.0)))

    def at_one(**kwargs):
        return sample(
            pipe.denoiser,
            pipe.scheduler,
            pipe.embed(prompts),
            pipe.embed([""])[0],
            guidance=1.0,
            steps=4,
            generator=torch.Generator().manual_seed(3),
            **kwargs,
        )

    torch.testing.assert_close(
        at_one(safety_states=pipe.embed(["red"])[0], sld=full),
        at_one(negative_states=pipe.embed(["red"])[0]),
    )
    with pytest.raises(ValueError, match="safety_concept and sld together"):
        draw(safety_concept="red")
    with pytest.raises(ValueError, match="either negative_guidance or safety_concept"):
        draw(safety_concept="red", sld="max", negative_guidance="red")
    with pytest.raises(ValueError, match="needs guidance_scale > 1"):
        pipe(prompts, num_inference_steps=2, safety_concept="red", sld="max")
    with pytest.raises(ValueError, match="non-empty"):
        draw(safety_concept=" ", sld="max")
    with pytest.raises(ValueError, match="exactly the keys"):
        draw(safety_concept="red", sld={"sld_threshold": 0.0})
    with pytest.raises(ValueError, match="sld_mom_beta must be in"):
        draw(safety_concept="red", sld=medium | {"sld_mom_beta": 2.0})
    with pytest.raises(ValueError, match="name must be one of"):
        draw(safety_concept="red", sld="extreme")


def test_esd_changes_only_the_text_reading_parameters_of_a_copy(tiny_pipeline):
    before = {k: v.clone() for k, v in tiny_pipeline.denoiser.state_dict().items()}
    erased = esd_finetune(
        tiny_pipeline,
        ["a big red circle on the left", "red"],
        steps=3,
        batch=4,
        images_per_prompt=2,
        preserve_prompts=["a small blue square on the top"],
        num_inference_steps=2,
        progress=False,
    )
    after = erased.state_dict()
    # input untouched
    assert all(
        torch.equal(before[k], v)
        for k, v in tiny_pipeline.denoiser.state_dict().items()
    )
    changed = {k for k in after if not torch.equal(before[k], after[k])}
    assert all(reads_text(k) for k in changed)
    assert any("attn" in k for k in changed) and any("text_pool" in k for k in changed)
    unconditional = esd_finetune(  # ESD-u: the complement
        tiny_pipeline,
        "red",
        steps=2,
        batch=4,
        images_per_prompt=2,
        num_inference_steps=2,
        trainable=reads_no_text,
        progress=False,
    ).state_dict()
    changed_u = {k for k in after if not torch.equal(before[k], unconditional[k])}
    assert changed_u and not any(reads_text(k) for k in changed_u)
    with pytest.raises(ValueError, match="concept_prompts must be a non-empty"):
        esd_finetune(tiny_pipeline, [], steps=1, progress=False)
    with pytest.raises(ValueError, match="no denoiser parameter matches"):
        esd_finetune(
            tiny_pipeline, "red", steps=1, trainable=lambda n: False, progress=False
        )


def test_batched_targets_search_each_target(world):
    tok, enc = world
    c = concept_vector(enc, tok, ["a red circle"], ["a blue circle"])
    targets = target_embedding(
        text_embedding(enc, tok, ["a small circle", "a big square on the left"]), c, 2.0
    )
    batched = genetic_search_batch(
        enc, tok, targets, 3, population=16, generations=10, seed=0, progress=False
    )
    assert len(batched) == 2
    for result, target in zip(batched, targets):
        emb = text_embedding(enc, tok, [decode(tok, result)])[0]
        assert float(((emb - target) ** 2).sum()) == pytest.approx(
            result.fitness, rel=1e-5
        )
        assert all(b <= a for a, b in zip(result.history[:-1], result.history[1:]))


@pytest.mark.parametrize("guidance_scale", GATE_GUIDANCE)
def test_shipped_checkpoint_passes_the_quality_gates(guidance_scale):
    """The committed toy model learned its world, with and without classifier-free
    guidance: the detector agrees with the named colour on at least 90% of samples for
    every colour, and red's correlated phrases ("like fire") produce red."""
    from trustml_ref.ring_a_bell.pipeline import quality_gates

    pipe = ToyPipeline.from_pretrained()
    report = quality_gates(
        pipe, images_per_prompt=2, steps=20, guidance_scale=guidance_scale
    )
    assert all(report[c] >= 0.9 for c in toy.COLOURS), report
    assert all(report[p] >= 0.75 for p in toy.CORRELATED["red"]), report


def test_uce_weight_is_the_minimiser_of_its_objective():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(5, 8, generator=g, dtype=torch.float64)
    c, t = (
        torch.randn(3, 8, generator=g).double(),
        torch.randn(3, 8, generator=g).double(),
    )
    p = torch.randn(4, 8, generator=g, dtype=torch.float64)
    lam, rho = 2.0, 0.3
    edited = uce_weight(w, c, t, p, preserve_weight=lam, ridge=rho).requires_grad_()
    objective = (
        ((edited @ c.T - w @ t.T) ** 2).sum()
        + lam * ((edited @ p.T - w @ p.T) ** 2).sum()
        + rho * ((edited - w) ** 2).sum()
    )
    (grad,) = torch.autograd.grad(objective, edited)
    assert grad.abs().max() < 1e-9
    # fewer concept rows than dimensions, no preservation, a vanishing ridge: the
    # concept rows are read exactly as their targets
    exact = uce_weight(w, c, t, ridge=1e-9)
    torch.testing.assert_close(exact @ c.T, w @ t.T, atol=1e-6, rtol=0)
    # a heavy preservation weight keeps the preserved rows
    kept = uce_weight(w, c, t, p, preserve_weight=1e6)
    torch.testing.assert_close(kept @ p.T, w @ p.T, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match=r"concept and target must both be \(n, 8\)"):
        uce_weight(w, c, t[:2])
    with pytest.raises(ValueError, match="ridge > 0"):
        uce_weight(w, c, t, ridge=0.0)


def test_uce_erase_edits_only_the_cross_attention_of_a_copy(tiny_pipeline):
    pipe = tiny_pipeline
    before = {k: v.clone() for k, v in pipe.denoiser.state_dict().items()}
    edited = uce_erase(
        pipe.text_encoder,
        pipe.tokenizer,
        pipe.denoiser,
        ["a big red circle on the left"],
        ["a big plain circle on the left"],
        ["a big blue circle on the left"],
        ridge=1e-6,
    )
    after = edited.state_dict()
    projections = cross_attention_projections(edited)
    assert len(projections) == 6  # keys and values of three cross-attentions
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {n.split("[")[0] for n in projections}
    # the shared in-projection's query rows stay as they were
    e = edited.attn_mid.attn.embed_dim
    assert torch.equal(
        after["attn_mid.attn.in_proj_weight"][:e],
        before["attn_mid.attn.in_proj_weight"][:e],
    )
    # the original is untouched
    assert all(torch.equal(v, pipe.denoiser.state_dict()[k]) for k, v in before.items())
    # without preservation (12 rows in 16 dimensions) the edited keys read the red
    # prompt's rows as the original read the plain prompt's
    projections = cross_attention_projections(
        uce_erase(
            pipe.text_encoder,
            pipe.tokenizer,
            pipe.denoiser,
            ["a big red circle on the left"],
            ["a big plain circle on the left"],
            ridge=1e-9,
        )
    )
    red, plain = (
        pipe.embed([text])[0]
        for text in ("a big red circle on the left", "a big plain circle on the left")
    )
    torch.testing.assert_close(
        red @ projections["attn1.attn.k_proj_weight"].T,
        plain @ before["attn1.attn.k_proj_weight"].T,
        atol=1e-4,
        rtol=0,
    )
    # the empty prompt is a target (read the concept as nothing was said); a target
    # that is not text is refused
    to_nothing = cross_attention_projections(
        uce_erase(
            pipe.text_encoder,
            pipe.tokenizer,
            pipe.denoiser,
            ["a big red circle on the left"],
            [""],
            ridge=1e-9,
        )
    )
    torch.testing.assert_close(
        red @ to_nothing["attn1.attn.k_proj_weight"].T,
        pipe.embed([""])[0] @ before["attn1.attn.k_proj_weight"].T,
        atol=1e-4,
        rtol=0,
    )
    with pytest.raises(ValueError, match="target_prompts must be a list of prompts"):
        uce_erase(pipe.text_encoder, pipe.tokenizer, pipe.denoiser, ["a"], [None])
    with pytest.raises(ValueError, match="must pair up"):
        uce_erase(pipe.text_encoder, pipe.tokenizer, pipe.denoiser, ["a", "b"], ["c"])
    with pytest.raises(ValueError, match="no cross-attention"):
        cross_attention_projections(torch.nn.Linear(2, 2))
