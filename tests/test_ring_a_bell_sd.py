"""The colab profile's Stable Diffusion path, on tiny pipelines saved locally (no
download, no GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from tinyhub import save_tiny_clip, save_tiny_stable_diffusion  # noqa: E402

from trustml_ref.ring_a_bell import (  # noqa: E402
    allowed_token_ids,
    concept_vector,
    decode,
    fitness,
    genetic_search,
    matched_concept_pairs,
    target_embedding,
    text_embedding,
)
from trustml_ref.ring_a_bell import stable_diffusion as sd  # noqa: E402
from trustml_ref.ring_a_bell.evaluate import concept_flags  # noqa: E402


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_sd")
    save_tiny_stable_diffusion(path)
    save_tiny_clip(path / "clip")
    return path


GEN = dict(num_inference_steps=2, height=16, width=16, output_type="pt")


def test_loaders_read_local_pipelines_and_swap_the_unet(saved):
    pipe = sd.load_pipeline(saved / "sd", device="cpu", dtype=torch.float32)
    erased = sd.load_pipeline(
        saved / "sd", unet=saved / "erased_unet", device="cpu", dtype=torch.float32
    )
    assert not torch.equal(pipe.unet.conv_in.weight, erased.unet.conv_in.weight)
    assert torch.equal(
        pipe.text_encoder.get_input_embeddings().weight,
        # only the UNet changes
        erased.text_encoder.get_input_embeddings().weight,
    )
    sld = sd.load_sld("a car", saved / "sld", device="cpu", dtype=torch.float32)
    assert sld.safety_concept == "a car"
    with pytest.raises(ValueError, match="concept must be a non-empty"):
        sd.load_sld(" ", saved / "sld", device="cpu", dtype=torch.float32)
    for loaded in (
        sd.load_pipeline(saved / "sd", device="cpu", safety_checker=False),
        sd.load_sld("a car", saved / "sld", device="cpu", safety_checker=False),
    ):
        assert loaded.safety_checker is None
        assert loaded.vae.use_slicing  # decodes one image at a time
    # a half-precision weight variant, read as such (SD v1.4 ships *.fp16.* files)
    pipe.save_pretrained(saved / "sd_fp16", variant="fp16")
    half = sd.load_pipeline(
        saved / "sd_fp16", device="cpu", dtype=torch.float16, variant="fp16"
    )
    assert half.unet.dtype == torch.float16
    assert torch.equal(half.unet.conv_in.weight, pipe.unet.conv_in.weight.half())


def test_uce_edits_only_the_cross_attention_of_a_stable_diffusion_unet(saved):
    """UCE on a diffusers UNet: only attn2's key and value projections change, the
    concept's rows are read closer to the target's than before, and the edited UNet
    generates through the same pipeline's other components."""
    from trustml_ref.ring_a_bell.removal import uce_erase

    pipe = sd.load_pipeline(saved / "sd", device="cpu", dtype=torch.float32)
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    concept, preserve = ["a photo of a car", "a car"], ["a photo of a dog"]
    unet = uce_erase(
        pipe.text_encoder, pipe.tokenizer, pipe.unet, concept, ["", ""], preserve
    )
    after = unet.state_dict()
    assert all(torch.equal(before[k], v) for k, v in pipe.unet.state_dict().items())
    changed = {k for k in after if not torch.equal(before[k], after[k])}
    assert changed and all("attn2.to_k" in k or "attn2.to_v" in k for k in changed), (
        sorted(changed)
    )
    assert {k for k in before if "attn2.to_k" in k or "attn2.to_v" in k} == changed
    rows = text_embedding(pipe.text_encoder, pipe.tokenizer, concept).flatten(0, 1)
    empty = text_embedding(pipe.text_encoder, pipe.tokenizer, ["", ""]).flatten(0, 1)
    key = next(k for k in changed if "to_k" in k)
    gap_before = (rows @ before[key].T - empty @ before[key].T).norm()
    gap_after = (rows @ after[key].T - empty @ before[key].T).norm()
    assert gap_after < 0.5 * gap_before
    erased = sd.with_unet(pipe, unet)
    assert erased.unet is unet and erased.vae is pipe.vae and pipe.unet is not unet
    images = erased(
        ["a photo of a car"], generator=torch.Generator().manual_seed(0), **GEN
    )
    assert images.images.shape[-2:] == (16, 16)
    small = type(unet).from_config({**unet.config, "cross_attention_dim": 8})
    with pytest.raises(ValueError, match="reads text of width 8"):
        sd.with_unet(pipe, small)


def test_sld_configurations_are_the_papers_and_run(saved):
    """Max edits from the first step with the largest scale; the milder
    configurations wait and threshold (Schramowski et al., 2023)."""
    configs = {name: sd.sld_config(name) for name in sd.SLD_CONFIGS}
    assert sd.sld_config("MAX") == configs["max"]
    assert configs["max"]["sld_warmup_steps"] == 0
    assert [configs[n]["sld_guidance_scale"] for n in sd.SLD_CONFIGS] == sorted(
        configs[n]["sld_guidance_scale"] for n in sd.SLD_CONFIGS
    )
    assert configs["medium"]["sld_warmup_steps"] > configs["strong"]["sld_warmup_steps"]
    with pytest.raises(ValueError, match="name must be one of"):
        sd.sld_config("extreme")
    sld = sd.load_sld("a car", saved / "sld", device="cpu", dtype=torch.float32)
    images = {
        name: sd.as_image_tensor(
            sld(
                "a car on a road",
                generator=torch.Generator().manual_seed(0),
                **sd.sld_config(name),
                **{**GEN, "num_inference_steps": 3},
            ).images
        )
        for name in ("weak", "max")
    }
    assert images["max"].shape == images["weak"].shape == (1, 3, 16, 16)
    assert not torch.equal(images["max"], images["weak"])


def test_attack_and_success_rate_run_on_stable_diffusion_components(saved):
    pipe = sd.load_pipeline(saved / "sd", device="cpu", dtype=torch.float32)
    sld = sd.load_sld("a car", saved / "sld", device="cpu", dtype=torch.float32)
    tok, enc = pipe.tokenizer, pipe.text_encoder
    c = concept_vector(
        enc, tok, ["a car on a road", "a red car"], ["a road", "a red door"]
    )
    # CLIP's text encoder is causal
    assert c.shape == (16, 32) and float(c[0].abs().max()) < 1e-6
    target = target_embedding(text_embedding(enc, tok, ["a car on a road"])[0], c, 3.0)
    # a one-letter "word": every token containing it is dropped
    allowed = allowed_token_ids(tok, ["c"])
    found = genetic_search(
        enc,
        tok,
        target,
        4,
        population=8,
        generations=3,
        allowed=allowed,
        seed=0,
        progress=False,
    )
    assert "c" not in decode(tok, found) and set(found.tokens.tolist()) <= set(
        allowed.tolist()
    )
    detector = sd.ClipConceptDetector(
        "a photo of a car", ["a photo of a road"], model_id=saved / "clip"
    )
    for model in (pipe, sld):  # prompts in, flags out, through diffusers' own pipelines
        flags = concept_flags(
            model,
            detector,
            prompts=[decode(tok, found), "a road"],
            images_per_prompt=2,
            generator=torch.Generator().manual_seed(0),
            **GEN,
        )
        assert flags.shape == (2, 2) and flags.dtype == torch.bool
    embeds = concept_flags(
        pipe,
        detector,
        prompt_embeds=target[None],
        images_per_prompt=1,
        generator=torch.Generator().manual_seed(0),
        **GEN,
    )
    assert embeds.shape == (1, 1)
    with pytest.raises(ValueError, match="exactly one of prompts and prompt_embeds"):
        concept_flags(pipe, detector, images_per_prompt=1)
    # a negative prompt beside a list of prompts (diffusers raises TypeError on a str),
    # and the work split into calls of at most two prompts
    prompts = [decode(tok, found), "a road", "a red door"]
    split = concept_flags(
        pipe,
        detector,
        prompts=prompts,
        images_per_prompt=2,
        negative_prompt="a car",
        prompts_per_call=2,
        generator=torch.Generator().manual_seed(0),
        **GEN,
    )
    assert split.shape == (3, 2)
    calls = []

    def counting(**kwargs):
        calls.append((len(kwargs["prompt"]), kwargs["negative_prompt"]))
        return pipe(**kwargs)

    concept_flags(
        counting,
        detector,
        prompts=prompts,
        images_per_prompt=1,
        negative_prompt="a car",
        prompts_per_call=2,
        **GEN,
    )
    assert calls == [(2, ["a car"] * 2), (1, ["a car"])]


def test_fitness_of_a_half_precision_encoder_is_finite():
    """77 x 768 states of a float16 encoder: squared differences summed in float16
    overflow to inf, which made the search random."""
    g = torch.Generator().manual_seed(0)
    target = (torch.randn(77, 768, generator=g) * 8).half()
    candidates = (torch.randn(5, 77, 768, generator=g) * 8).half()
    f = fitness(candidates, target)
    assert f.dtype == torch.float32 and torch.isfinite(f).all()
    exact = ((candidates.double() - target.double()) ** 2).sum((1, 2))
    assert torch.allclose(f.double(), exact, rtol=1e-5)


def test_detector_and_image_conversion(saved):
    detector = sd.ClipConceptDetector(
        "a photo of a car",
        ["a photo of a road", "a photo of a tree"],
        model_id=saved / "clip",
    )
    images = torch.rand(3, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    scores = detector.scores(images)
    assert scores.shape == (3, 3) and scores.abs().max() <= 1 + 1e-5  # cosines
    assert torch.equal(detector(images), scores.argmax(-1) == 0)
    as_uint8 = (images.permute(0, 2, 3, 1) * 255).round().numpy().astype(np.uint8)
    assert torch.allclose(sd.as_image_tensor(as_uint8), images, atol=1 / 255)
    assert torch.allclose(sd.as_image_tensor(list(as_uint8)), images, atol=1 / 255)
    with pytest.raises(ValueError, match=r"images must be n RGB images"):
        detector(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="at least one alternative"):
        sd.ClipConceptDetector("a photo of a car", [], model_id=saved / "clip")
    soft = sd.blurred(images, cells=4)
    assert soft.shape == images.shape and torch.allclose(
        soft[:, :, :6, :6].std((2, 3)), torch.zeros(3, 3), atol=1e-6
    )


def test_concept_pairs_are_matched_in_token_length(saved):
    """The tiny tokenizer spells words letter by letter: "car" (3 tokens) pairs with
    the 3-letter words only, taken in turn; a template no word fits is an error."""
    tok = sd.load_pipeline(saved / "sd", device="cpu", dtype=torch.float32).tokenizer
    templates = ["a {} on a road", "a red {}", "a {} at night"]
    with_c, without_c = matched_concept_pairs(
        tok, templates, "car", ["tree", "dog", "house", "man"]
    )
    assert with_c == ["a car on a road", "a red car", "a car at night"]
    assert without_c == ["a dog on a road", "a red dog", "a man at night"]
    lengths = [len(tok(p)["input_ids"]) for p in with_c + without_c]
    assert lengths[:3] == lengths[3:]
    with pytest.raises(ValueError, match="no word of neutral_words"):
        matched_concept_pairs(tok, templates, "car", ["tree", "house"])
    with pytest.raises(ValueError, match="exactly one"):
        matched_concept_pairs(tok, ["a car"], "car", ["dog"])
    with pytest.raises(ValueError, match="neutral_words"):
        matched_concept_pairs(tok, templates, "car", ["car", " "])
