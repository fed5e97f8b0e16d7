r"""A visual prompt on a frozen source model, built to be trained with DP-SGD (Li et
al., ICCV 2023).

The target image :math:`x` (any size) is resized to :math:`s \times s` and centred on
the source model's :math:`S \times S` canvas; the trainable prompt fills the border:

.. math:: \tilde x = \mathrm{pad}(\mathrm{resize}(x)) + \tanh(W) \odot M,\qquad
          M_{ij} = 1 \text{ outside the central } s \times s \text{ window},

and a trainable linear label map :math:`\hat y = A\, f_{\text{src}}(\tilde x) + c` turns
the frozen model's source-class logits into target classes. Only :math:`W, A, c` are
trained.

For differential privacy the module owns no buffers (the mask is rebuilt in
``forward``), it comes with a per-sample-gradient rule Opacus uses
(:func:`prompt_grad_sample`), and :class:`PromptedClassifier` refuses a backbone whose
batch-normalisation layers would compute batch statistics: one example would then
influence every other example's output in the batch, so clipping each example's gradient
no longer bounds its influence, and Opacus does not notice when those layers are frozen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _margin(canvas: int, inner: int) -> int:
    """The border width; raises unless the window fits the canvas with an even
    margin."""
    if not 0 < inner <= canvas or (canvas - inner) % 2:
        raise ValueError(
            f"inner must lie in (0, canvas] with an even margin, got inner={inner}, "
            f"canvas={canvas}"
        )
    return (canvas - inner) // 2


def border_mask(
    canvas: int,
    inner: int,
    *,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """:math:`M`: ones on the border of an ``canvas`` × ``canvas`` image, zeros on the
    centred ``inner`` window."""
    pad = _margin(canvas, inner)
    m = torch.ones(canvas, canvas, device=device, dtype=dtype)
    m[pad : pad + inner, pad : pad + inner] = 0
    return m


def place_on_canvas(x: torch.Tensor, canvas: int, inner: int) -> torch.Tensor:
    r""":math:`\mathrm{pad}(\mathrm{resize}(x))`: bilinear resize of (B, C, h, w)
    images to ``inner`` and zero padding to ``canvas``."""
    if x.dim() != 4:
        raise ValueError(
            f"x must have shape (batch, channels, height, width), got {tuple(x.shape)}"
        )
    pad = _margin(canvas, inner)
    if x.shape[-2:] != (inner, inner):
        x = F.interpolate(x, size=(inner, inner), mode="bilinear", align_corners=False)
    return F.pad(x, (pad, pad, pad, pad))


class VisualPrompt(nn.Module):
    r"""The input transformation :math:`x \mapsto \mathrm{pad}(\mathrm{resize}(x)) +
    \tanh(W)\odot M`, with :math:`M` the border mask (``region="border"``, the
    paper's padding prompt) or all ones (``region="full"``: the prompt is added to the
    whole canvas, image included)."""

    REGIONS = ("border", "full")

    def __init__(
        self, channels: int, canvas: int, inner: int, region: str = "border"
    ) -> None:
        super().__init__()
        _margin(canvas, inner)
        if region not in self.REGIONS:
            raise ValueError(f"region must be one of {self.REGIONS}, got {region!r}")
        if region == "border" and inner == canvas:
            raise ValueError(
                "a border prompt needs inner < canvas (inner == canvas leaves no "
                "border); use region='full' to prompt the whole canvas"
            )
        self.canvas, self.inner, self.region = canvas, inner, region
        # W; tanh(0) = 0: starts as no prompt
        self.weight = nn.Parameter(torch.zeros(channels, canvas, canvas))

    def mask(self) -> torch.Tensor:
        """:math:`M`: where the prompt is added."""
        kwargs = dict(device=self.weight.device, dtype=self.weight.dtype)
        if self.region == "full":
            return torch.ones(self.canvas, self.canvas, **kwargs)
        return border_mask(self.canvas, self.inner, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.weight.shape[0]:
            raise ValueError(
                f"x must have shape (batch, {self.weight.shape[0]}, height, width), "
                f"got {tuple(x.shape)}"
            )
        return (
            place_on_canvas(x, self.canvas, self.inner)
            + torch.tanh(self.weight) * self.mask()
        )


def prompt_grad_sample(
    layer: VisualPrompt, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[nn.Parameter, torch.Tensor]:
    r"""Per-example gradient of the prompt: :math:`\partial \ell_i / \partial W = g_i
    \odot M \odot (1 - \tanh^2 W)`, with :math:`g_i = \partial \ell_i / \partial \tilde
    x_i` (the signature Opacus's grad samplers have)."""
    del activations  # the prompt is additive: its gradient does not depend on the input
    return {
        layer.weight: backprops
        * (layer.mask() * (1 - torch.tanh(layer.weight) ** 2)).unsqueeze(0)
    }


def _batch_statistics_layers(module: nn.Module) -> list[str]:
    return [
        name
        for name, m in module.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
    ]


class PromptedClassifier(nn.Module):
    r""":math:`x \mapsto A\, f_{\text{src}}(\mathrm{prompt}(x)) + c` with a frozen
    source model :math:`f_{\text{src}}`.

    The backbone's parameters are frozen and the backbone is kept in eval mode by
    :meth:`train`; ``forward`` raises if any of its batch-norm layers is in training
    mode anyway.
    """

    def __init__(
        self,
        backbone: nn.Module,
        prompt: VisualPrompt,
        source_classes: int,
        target_classes: int,
    ) -> None:
        super().__init__()
        if source_classes < 1 or target_classes < 2:
            raise ValueError(
                "need source_classes >= 1 and target_classes >= 2, got "
                f"{source_classes}, {target_classes}"
            )
        self.backbone, self.prompt = backbone, prompt
        self.label_map = nn.Linear(source_classes, target_classes)
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.backbone.eval()

    def train(self, mode: bool = True) -> PromptedClassifier:
        super().train(mode)
        self.backbone.eval()  # frozen: never batch statistics
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bad := _batch_statistics_layers(self.backbone):
            raise RuntimeError(
                f"backbone batch-norm layers {bad} are in training mode: their batch "
                "statistics mix "
                "examples, which breaks per-example sensitivity (and DP); call "
                "backbone.eval()"
            )
        logits = self.backbone(self.prompt(x))
        if logits.dim() != 2 or logits.shape[1] != self.label_map.in_features:
            raise ValueError(
                f"backbone must return (batch, {self.label_map.in_features}) source "
                "logits, "
                f"got {tuple(logits.shape)}"
            )
        return self.label_map(logits)
