"""The training augmentations of :mod:`cocoer.data.transforms`, on batches of uint8 windows.

Used by the windows cache (:mod:`cocoer.data.fast_windows`): the windows are cut once, so the
random context crop is taken from a stored context with margin (side ``M >= S``) instead of
the full image. Per sample, in the order of :class:`~cocoer.data.transforms.WindowTransform`:

1. context: the crop rectangle (or the whole stored context) resized to ``S x S`` (bilinear,
   antialiased, on uint8); body / head boxes re-expressed in the crop frame, clipped to [0, 1];
2. colour jitter with one ``(brightness, contrast, saturation)`` per sample, the same on the
   three windows; it is the affine map of :func:`~cocoer.data.transforms.color_jitter` written
   in one step: with ``g(x)`` the grey of a pixel and ``m`` the mean grey of the window,
   ``x' = s c b x + (1 - s) c b g(x) + (1 - c) b m``, then clamped to [0, 1];
3. ImageNet normalisation;
4. horizontal flip of the three windows and both boxes.

The random parameters are drawn per batch from ``torch``'s generator (:func:`draw_params`) and
applied in two parts, so tests can pass chosen parameters: :func:`crop_batch` in the loader
(step 1 and the boxes: cheap, per sample) and :func:`finish_batch` where the batch is used
(steps 2-4 on uint8 windows: on the GPU after the transfer, see
:meth:`cocoer.data.datamodule.PersonDataModule.on_after_batch_transfer`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.ops import roi_align

from cocoer.constants import IMAGENET_MEAN, IMAGENET_STD, LEVELS
from cocoer.data.transforms import AugmentConfig, random_context_crop

_GRAY = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float32).view(1, 3, 1, 1)
_MEAN = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
_STD = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)


@dataclass
class AugmentParams:
    """Random parameters of one batch of B samples.

    Attributes:
        crop: float32 [B, 4] context rectangle ``(x1, y1, x2, y2)`` in the image's pixels
            (the whole image where no crop was drawn).
        jitter: float32 [B, 3] brightness, contrast, saturation factors (1 = none).
        flip: bool [B].
    """

    crop: Tensor
    jitter: Tensor
    flip: Tensor


def draw_params(
    aug: AugmentConfig,
    image_wh: Tensor,
    body_px: Tensor,
    generator: torch.Generator | None = None,
) -> AugmentParams:
    """Draw the crop / jitter / flip of a batch with the same laws as ``WindowTransform``.

    Args:
        aug: the augmentation settings (``enabled`` is assumed).
        image_wh: float32 [B, 2] image width, height (pixels).
        body_px: float32 [B, 4] body boxes in the image's pixels.
    """
    B = image_wh.shape[0]
    crop = torch.cat([torch.zeros(B, 2), image_wh], 1)
    do_crop = torch.rand(B, generator=generator) < aug.crop_p
    for i in torch.nonzero(do_crop).flatten().tolist():  # B small scalar draws (loader side)
        w, h = image_wh[i].tolist()
        box = tuple(body_px[i].tolist())
        crop[i] = torch.tensor(
            random_context_crop(int(w), int(h), box, aug.crop_min_scale, generator)  # type: ignore[arg-type]
        )
    lo = torch.tensor([1 - aug.brightness, 1 - aug.contrast, 1 - aug.saturation])
    hi = torch.tensor([1 + aug.brightness, 1 + aug.contrast, 1 + aug.saturation])
    jitter = lo + (hi - lo) * torch.rand(B, 3, generator=generator)
    do_jitter = torch.rand(B, generator=generator) < aug.jitter_p
    jitter = torch.where(do_jitter[:, None], jitter, torch.ones(B, 3))
    flip = torch.rand(B, generator=generator) < aug.flip_p
    return AugmentParams(crop=crop, jitter=jitter, flip=flip)


def crop_context(context: Tensor, crop: Tensor, image_wh: Tensor, size: int) -> Tensor:
    """Resize each sample's crop of the stored context to ``size x size``.

    The crop is widened to whole pixels of the full image (floor / ceil, as
    :func:`~cocoer.data.window_arrays.resize_region_array` does), mapped to the stored M x M
    frame (sub-pixel) and resampled with ``roi_align`` (one bilinear sample per output pixel:
    the shrink factor is at most M / S, about 1.3).

    Args:
        context: uint8 [B, 3, M, M], the whole image resized to M x M.
        crop: float32 [B, 4] rectangles in image pixels; image_wh: float32 [B, 2].
    Returns:
        uint8 [B, 3, S, S].
    """
    B, M = context.shape[0], context.shape[-1]
    wh = image_wh.repeat(1, 2)
    lo = torch.floor(crop[:, :2] + 1e-6).clamp(min=0)
    hi = torch.maximum(torch.minimum(torch.ceil(crop[:, 2:] - 1e-6), image_wh), lo + 1)
    box = torch.cat([lo, hi], 1) * (M / wh)  # [B, 4] in the stored frame
    rois = torch.cat([torch.arange(B, dtype=box.dtype)[:, None], box], 1)
    out = roi_align(context.float(), rois, (size, size), 1.0, sampling_ratio=1, aligned=True)
    out = out.round_().clamp_(0, 255).to(torch.uint8)
    if size == M:  # an uncropped sample keeps its stored window (no resampling)
        whole = (box == torch.tensor([0.0, 0.0, M, M])).all(1).view(-1, 1, 1, 1)
        out = torch.where(whole, context, out)
    return out


def boxes_in_crop(box_px: Tensor, crop: Tensor) -> Tensor:
    """Pixel boxes [B, 4] expressed in the crop frame, normalised and clipped to [0, 1]."""
    origin = crop[:, :2].repeat(1, 2)
    extent = (crop[:, 2:] - crop[:, :2]).repeat(1, 2)
    return ((box_px - origin) / extent).clamp(0.0, 1.0)


def jitter_normalize(windows: Tensor, jitter: Tensor) -> Tensor:
    """Colour jitter (the one-step affine map of the module doc) then ImageNet normalisation.

    Args:
        windows: uint8 [B, L, 3, S, S] (L levels of one sample share the factors).
        jitter: float32 [B, 3] brightness b, contrast c, saturation s.
    Returns:
        float32 [B, L, 3, S, S], normalised.
    """
    B, L = windows.shape[:2]
    dev = windows.device
    x = windows.flatten(0, 1).float()  # [B*L, 3, S, S] in [0, 255]
    b, c, s = (jitter[:, j].repeat_interleave(L).view(-1, 1, 1, 1) for j in range(3))
    gray = x[:, :1] * _GRAY[0, 0]  # [B*L, 1, S, S], g(x) of the module doc (x 255)
    gray.add_(x[:, 1:2], alpha=float(_GRAY[0, 1])).add_(x[:, 2:3], alpha=float(_GRAY[0, 2]))
    m = gray.mean((2, 3), keepdim=True) * b  # mean grey after the brightness factor
    gray.mul_((1 - s) * c * b).add_((1 - c) * m)
    x = x.mul_(s * c * b).add_(gray).clamp_(0.0, 255.0)
    scale = 1.0 / (255.0 * _STD.to(dev))
    x = torch.addcmul((-_MEAN / _STD).to(dev), x, scale)  # (x / 255 - mean) / std
    return x.view(B, L, *x.shape[1:])


def crop_batch(
    context: Tensor,
    image_wh: Tensor,
    body_px: Tensor,
    head_px: Tensor,
    params: AugmentParams,
    size: int,
) -> dict[str, Tensor]:
    """The loader's share of the augmentation (step 1, and the boxes of step 4).

    Args:
        context: uint8 [B, 3, M, M]; image_wh: float32 [B, 2]; body_px, head_px: float32
            [B, 4] pixel boxes; params: the batch's random parameters; size: S.
    Returns:
        ``context`` uint8 [B, 3, S, S]; ``body_box``/``head_box`` float32 [B, 4] (in the crop
        frame, mirrored where flipped); ``jitter`` float32 [B, 3] and ``flip`` bool [B] for
        :func:`finish_batch`.
    """
    out = {"context": crop_context(context, params.crop, image_wh, size)}
    for name, px in (("body_box", body_px), ("head_box", head_px)):
        b = boxes_in_crop(px, params.crop)
        mirrored = torch.stack([1.0 - b[:, 2], b[:, 1], 1.0 - b[:, 0], b[:, 3]], 1)
        out[name] = torch.where(params.flip[:, None], mirrored, b)
    out["jitter"], out["flip"] = params.jitter, params.flip
    return out


def finish_batch(batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """The device's share: uint8 windows -> jittered (steps 2-3), normalised, flipped (4).

    A batch whose windows are already float (today's loader) is returned unchanged. Runs
    where the batch is (the GPU after the transfer): the loader ships uint8, 4x fewer bytes.

    Args:
        batch: ``context``/``body``/``head`` uint8 [B, 3, S, S], optional ``jitter`` float32
            [B, 3] and ``flip`` bool [B] (removed from the result).
    Returns:
        the batch with float32 [B, 3, S, S] normalised windows.
    """
    if batch["context"].dtype != torch.uint8:
        return batch
    out = dict(batch)
    jitter = out.pop("jitter", None)
    flip = out.pop("flip", None)
    wins = torch.stack([out[name] for name in LEVELS], 1)  # [B, 3 levels, 3, S, S]
    if jitter is None:  # no augmentation: exactly today's arithmetic (same bytes)
        dev = wins.device
        x = (wins.float() / 255.0 - _MEAN.to(dev)[:, None]) / _STD.to(dev)[:, None]
    else:
        x = jitter_normalize(wins, jitter.to(wins.device))
    if flip is not None and bool(flip.any()):
        at = flip.to(wins.device)
        x[at] = x[at].flip(-1)
    for i, name in enumerate(LEVELS):
        out[name] = x[:, i]
    return out
