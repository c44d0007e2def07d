"""Batched image normalisation and augmentation, run on whatever device the batch lives on."""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

_STATS_CHUNK = 2048


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population std of uint8 (N, C, H, W) images, on the [0, 1] scale."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64, device=images.device)
    squares = torch.zeros_like(total)
    for chunk in images.split(_STATS_CHUNK):
        x = chunk.to(torch.float32).div_(255)
        total += x.sum(dim=(0, 2, 3), dtype=torch.float64)
        squares += x.square().sum(dim=(0, 2, 3), dtype=torch.float64)
    count = images.numel() // channels
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


@lru_cache(maxsize=32)
def _scale_shift(
    mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``x * scale + shift == (x / 255 - mean) / std``; (1, C, 1, 1) float32 on ``device``."""
    m = torch.tensor(mean, dtype=torch.float64)
    s = torch.tensor(std, dtype=torch.float64)
    scale = (1 / (255 * s)).view(1, -1, 1, 1)
    shift = (-m / s).view(1, -1, 1, 1)
    return scale.to(device, torch.float32), shift.to(device, torch.float32)


def normalize(
    images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """Map uint8 (N, C, H, W) images to float32 ``(x / 255 - mean) / std`` per channel."""
    if images.dtype != torch.uint8:
        raise TypeError(f"normalize expects uint8 images, got {images.dtype}")
    scale, shift = _scale_shift(tuple(mean), tuple(std), images.device)
    return torch.addcmul(shift, images.to(torch.float32), scale)


def augment(
    x: torch.Tensor,
    crop_padding: int,
    horizontal_flip: bool,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Randomly crop (zero-padded by ``crop_padding``) and maybe mirror each image of an NCHW batch.

    Every image draws its own crop offset and, with ``horizontal_flip``, a flip with probability
    0.5; the whole batch is one ``gather`` over flattened pixels, no loop over samples. Random
    numbers come from ``generator`` (drawn on its device, then moved to ``x``'s) or from the
    default generator of ``x``'s device. With ``crop_padding == 0`` and no flip, ``x`` itself is
    returned.
    """
    if crop_padding < 0:
        raise ValueError(f"crop_padding must be >= 0, got {crop_padding}")
    if crop_padding == 0 and not horizontal_flip:
        return x
    n, channels, height, width = x.shape
    rng_device = generator.device if generator is not None else x.device
    rows = torch.arange(height, device=x.device).expand(n, height)
    cols = torch.arange(width, device=x.device).expand(n, width)
    if crop_padding:
        x = F.pad(x, (crop_padding,) * 4)
        offsets = torch.randint(
            0, 2 * crop_padding + 1, (2, n, 1), generator=generator, device=rng_device
        )
        offsets = offsets.to(x.device)
        rows = rows + offsets[0]
        cols = cols + offsets[1]
    if horizontal_flip:
        flip = torch.rand(n, 1, generator=generator, device=rng_device).to(x.device) < 0.5
        cols = torch.where(flip, cols.flip(1), cols)
    flat = rows.view(n, height, 1) * x.shape[-1] + cols.view(n, 1, width)
    index = flat.view(n, 1, height * width).expand(n, channels, height * width)
    return x.reshape(n, channels, -1).gather(2, index).view(n, channels, height, width)
