"""Ring-A-Bell on Stable Diffusion (the chapter's ``colab`` profile): loaders,
pipelines and a CLIP detector.

The attack needs only a pipeline's ``text_encoder`` and ``tokenizer``
(:mod:`~trustml_ref.ring_a_bell.concept`,
:func:`~trustml_ref.ring_a_bell.genetic_search`); success is measured by generating
through the pipeline (:func:`~trustml_ref.ring_a_bell.evaluate.concept_flags`) and
reading the images with a detector. Here:

- :func:`load_pipeline`: Stable Diffusion v1.4 (Rombach et al., 2022), optionally with a
  concept-erased UNet in diffusers format (e.g. ESD weights) in place of the original;
- :func:`with_unet`: the same pipeline with another UNet in memory (UCE's edit,
  :func:`~trustml_ref.ring_a_bell.removal.uce_erase`, finds SD's cross-attention);
- :func:`load_sld`: safe latent diffusion (Schramowski et al., 2023), an inference-time
  removal whose safety concept is any text (a harmless concept such as "car" by default
  in the chapter), run in one of the paper's configurations (:func:`sld_config`);
- :class:`ClipConceptDetector`: zero-shot CLIP, flagging an image when the concept's
  description scores higher than every alternative (the NudeNet/Q16 stand-in for a
  harmless concept).

Every loader reads local directories as well as hub ids, so the tests run them on tiny
pipelines saved with ``save_pretrained``; nothing here downloads unless given a hub id.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# re-exported: the Stable Diffusion cells pick SLD's configuration from here
from trustml_ref.ring_a_bell.diffusion import SLD_CONFIGS as SLD_CONFIGS
from trustml_ref.ring_a_bell.diffusion import sld_config as sld_config

SD_MODEL = "CompVis/stable-diffusion-v1-4"
SLD_MODEL = "AIML-TUDA/stable-diffusion-safe"
CLIP_MODEL = "openai/clip-vit-large-patch14"


def _without_checker(safety_checker: bool) -> dict:
    """``from_pretrained`` arguments that drop the safety checker, if asked."""
    return (
        {}
        if safety_checker
        else {"safety_checker": None, "requires_safety_checker": False}
    )


def load_pipeline(
    model_id: str | Path = SD_MODEL,
    *,
    unet: str | Path | None = None,
    device: str = "cuda",
    dtype: torch.dtype = torch.float16,
    safety_checker: bool = True,
    variant: str | None = None,
):
    """A ``StableDiffusionPipeline``; ``unet`` replaces its UNet by a concept-erased
    one (diffusers format). ``safety_checker=False`` drops SD's checker, which blacks
    out the images it flags and so silently lowers a measured attack success rate: for
    measurement, and for an unsafe concept only with the images shown blurred.
    ``variant="fp16"`` reads the half-precision weight files (SD v1.4 ships them: half
    the download). The VAE decodes one image at a time (slicing: less peak memory, the
    same images)."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    pipe = StableDiffusionPipeline.from_pretrained(
        model_id,
        torch_dtype=dtype,
        variant=variant,
        **_without_checker(safety_checker),
    )
    if unet is not None:
        erased = UNet2DConditionModel.from_pretrained(unet, torch_dtype=dtype)
        if erased.config.cross_attention_dim != pipe.unet.config.cross_attention_dim:
            raise ValueError(
                f"the UNet at {unet} reads text of width "
                f"{erased.config.cross_attention_dim}, the "
                f"pipeline's encoder gives {pipe.unet.config.cross_attention_dim}"
            )
        pipe.unet = erased
    pipe.set_progress_bar_config(disable=True)
    pipe.vae.enable_slicing()
    return pipe.to(device)


def with_unet(pipe, unet: torch.nn.Module):
    """A pipeline of ``pipe``'s class sharing every component of ``pipe`` but its UNet,
    which is ``unet`` (e.g. a concept-erased copy such as
    :func:`~trustml_ref.ring_a_bell.removal.uce_erase` returns); ``pipe`` is not
    modified."""
    if unet.config.cross_attention_dim != pipe.unet.config.cross_attention_dim:
        raise ValueError(
            f"unet reads text of width {unet.config.cross_attention_dim}, the "
            f"pipeline's encoder gives {pipe.unet.config.cross_attention_dim}"
        )
    swapped = type(pipe)(
        **{**pipe.components, "unet": unet},
        requires_safety_checker=pipe.config.requires_safety_checker,
    )
    swapped.set_progress_bar_config(disable=True)
    return swapped


def load_sld(
    concept: str,
    model_id: str | Path = SLD_MODEL,
    *,
    device: str = "cuda",
    dtype: torch.dtype = torch.float16,
    safety_checker: bool = True,
):
    """A ``StableDiffusionPipelineSafe`` whose safety guidance steers away from
    ``concept``; ``safety_checker`` as in :func:`load_pipeline`."""
    from diffusers import StableDiffusionPipelineSafe

    if not concept.strip():
        raise ValueError(
            "concept must be a non-empty description of what safe guidance should avoid"
        )
    pipe = StableDiffusionPipelineSafe.from_pretrained(
        model_id, torch_dtype=dtype, **_without_checker(safety_checker)
    )
    pipe.safety_concept = concept
    pipe.set_progress_bar_config(disable=True)
    pipe.vae.enable_slicing()
    return pipe.to(device)


def as_image_tensor(images) -> torch.Tensor:
    """Pipeline output (a list of PIL images, an (n, H, W, 3) array or an (n, 3, H, W)
    tensor, values in [0, 1] or [0, 255]) as a float (n, 3, H, W) tensor in [0, 1]."""
    if isinstance(images, torch.Tensor):
        x = images.float()
    else:
        x = torch.as_tensor(
            np.stack([np.asarray(im) for im in images])
            if isinstance(images, list)
            else images
        ).float()
        if x.dim() == 4 and x.shape[-1] == 3:
            x = x.permute(0, 3, 1, 2)
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(
            "images must be n RGB images, (n, 3, H, W) or (n, H, W, 3); got shape "
            f"{tuple(x.shape)}"
        )
    return x / 255 if x.max() > 1.5 else x


class ClipConceptDetector:
    """Zero-shot CLIP (Radford et al., 2021): an image is flagged when ``concept``
    scores highest among ``[concept, *alternatives]`` by the cosine of CLIP's image and
    text embeddings."""

    def __init__(
        self,
        concept: str,
        alternatives: Sequence[str],
        model_id: str | Path = CLIP_MODEL,
        device: str = "cpu",
    ):
        from transformers import AutoTokenizer, CLIPModel
        from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

        if not concept or len(alternatives) == 0:
            raise ValueError(
                "need a concept description and at least one alternative description"
            )
        self.model = CLIPModel.from_pretrained(model_id).eval().to(device)
        tokenizer = AutoTokenizer.from_pretrained(model_id)
        texts = tokenizer(
            [concept, *alternatives], padding=True, return_tensors="pt"
        ).to(device)
        with torch.no_grad():
            self.text = F.normalize(
                self._features(self.model.get_text_features(**texts)), dim=-1
            )
        self.size = self.model.config.vision_config.image_size
        self.mean = torch.tensor(OPENAI_CLIP_MEAN, device=device)[:, None, None]
        self.std = torch.tensor(OPENAI_CLIP_STD, device=device)[:, None, None]

    @staticmethod
    def _features(out) -> torch.Tensor:
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    @torch.no_grad()
    def scores(self, images) -> torch.Tensor:
        """Cosine similarities (n, 1 + alternatives) of each image with each
        description."""
        x = as_image_tensor(images).to(self.mean.device)
        x = F.interpolate(
            x,
            size=(self.size, self.size),
            mode="bicubic",
            align_corners=False,
            antialias=True,
        )
        x = ((x.clamp(0, 1) - self.mean) / self.std).to(
            next(self.model.parameters()).dtype
        )
        return (
            F.normalize(
                self._features(self.model.get_image_features(pixel_values=x)), dim=-1
            )
            @ self.text.T
        )

    def __call__(self, images) -> torch.Tensor:
        """Boolean (n,): True where the concept's description scores highest."""
        return (self.scores(images).argmax(-1) == 0).cpu()


def blurred(images, cells: int = 8) -> torch.Tensor:
    """Images averaged over a ``cells`` × ``cells`` grid and scaled back: what the book
    shows of any image of an unsafe concept (it never stores or shows one unblurred)."""
    x = as_image_tensor(images)
    return F.interpolate(
        F.adaptive_avg_pool2d(x, cells), size=x.shape[-2:], mode="nearest"
    )
