"""Augmentation of dense-prediction batches on the device, as in MTAN's and Auto-λ's training:
a random scale, a random crop and a random horizontal flip per image, the targets transformed
consistently.

Each image of the batch draws a scale s from ``scales`` ({1.0, 1.2, 1.5} by default), a window
of ``size / s`` pixels at a uniform random position, and a flip with probability 1/2; the window
is resampled to ``size`` (the output size; default: the input's), which zooms in by s. One
batched ``grid_sample`` does it for the whole batch: bilinear for the images, nearest-neighbour
for every target (labels, depth, disparity, normals, regression maps, noise), so label values
are never mixed. A target is treated as its task's kind (``auxbench.data.dense.DENSE_KINDS``)
when ``kinds`` names it, else by its field name (``semantic`` and ``part`` are labels, ``depth``,
``disparity`` and ``normal`` the kinds of those names). The targets follow the geometry:

- depth is divided by s (zooming in by s brings the scene s times closer), disparity multiplied;
- a flip negates the normal's x component (the normals are in camera coordinates);
- a regression map is mirrored, cropped and resized with the image, its values unchanged (its
  channels are taken for scalars: nothing is negated or scaled);
- pixels a window takes from outside the image (a crop larger than the image) are padding:
  −1 for labels and disparity, 0 for depth and normals, NaN for regression maps (their invalid
  values), 0 for the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

LABEL_FIELDS = ("semantic", "part")
"""Integer label maps (N, H, W), −1 ignored."""
DISPARITY_FIELDS = ("disparity",)
DEPTH_FIELDS = ("depth",)
NORMAL_FIELDS = ("normal",)
DEFAULT_SCALES = (1.0, 1.2, 1.5)
_FIELD_KINDS = {
    **dict.fromkeys(LABEL_FIELDS, "segmentation"),
    **dict.fromkeys(DISPARITY_FIELDS, "disparity"),
    **dict.fromkeys(DEPTH_FIELDS, "depth"),
    **dict.fromkeys(NORMAL_FIELDS, "normal"),
}
"""The kind of a target field that ``kinds`` does not name, by its name."""


def _sample(values: torch.Tensor, grid: torch.Tensor, mode: str) -> torch.Tensor:
    return F.grid_sample(values, grid, mode=mode, padding_mode="zeros", align_corners=False)


def augment_dense(
    images: torch.Tensor,
    targets: dict[str, torch.Tensor],
    generator: torch.Generator,
    *,
    size: Sequence[int] | None = None,
    scales: Sequence[float] = DEFAULT_SCALES,
    flip: bool = True,
    kinds: Mapping[str, str] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The batch ``images`` (N, C, H, W) and its ``targets`` (by field name: see the module doc)
    randomly scaled, cropped to ``size`` (H', W') and flipped, drawing from ``generator`` (on the
    images' device). ``kinds`` ({field: kind}) says how to treat a field whatever its name (a
    user's tasks have their own names); fields it does not name are treated by their name."""
    count, _, height, width = images.shape
    out_height, out_width = (height, width) if size is None else (int(size[0]), int(size[1]))
    device = images.device
    scale_of = torch.tensor(list(scales), dtype=torch.float32, device=device)
    scale = scale_of[torch.randint(len(scales), (count,), generator=generator, device=device)]
    flipped = (
        torch.rand(count, generator=generator, device=device) < 0.5
        if flip
        else torch.zeros(count, dtype=torch.bool, device=device)
    )
    position = torch.rand(count, 2, generator=generator, device=device) * 2 - 1
    # the window's half-extent in the input's normalised coordinates ([-1, 1] across the image)
    extent_x = out_width / width / scale
    extent_y = out_height / height / scale
    # the window's centre: anywhere that keeps it inside the image (centred when it is larger)
    shift_x = position[:, 0] * (1 - extent_x).clamp(min=0)
    shift_y = position[:, 1] * (1 - extent_y).clamp(min=0)
    theta = torch.zeros(count, 2, 3, device=device)
    theta[:, 0, 0] = torch.where(flipped, -extent_x, extent_x)
    theta[:, 0, 2] = shift_x
    theta[:, 1, 1] = extent_y
    theta[:, 1, 2] = shift_y
    grid = F.affine_grid(theta, [count, 1, out_height, out_width], align_corners=False)

    out_images = _sample(images.float(), grid, "bilinear").to(images.dtype)
    out: dict[str, torch.Tensor] = {}
    per_image = scale.view(count, 1, 1, 1)
    for name, values in targets.items():
        kind = (kinds or {}).get(name, _FIELD_KINDS.get(name))
        if kind == "segmentation":
            shifted = (values.unsqueeze(1) + 1).float()  # padding 0 becomes −1 below
            out[name] = (_sample(shifted, grid, "nearest").squeeze(1).round() - 1).to(values.dtype)
        elif kind == "disparity":
            sampled = _sample(values.float() + 1, grid, "nearest") - 1
            out[name] = torch.where(sampled >= 0, sampled * per_image, sampled).to(values.dtype)
        elif kind == "depth":
            out[name] = (_sample(values.float(), grid, "nearest") / per_image).to(values.dtype)
        elif kind == "normal":
            sampled = _sample(values.float(), grid, "nearest")
            sign = torch.where(flipped, -1.0, 1.0).view(count, 1, 1)
            sampled[:, 0] = sampled[:, 0] * sign
            out[name] = sampled.to(values.dtype)
        elif kind == "regression":
            out[name] = _regression(values, grid)
        elif values.dim() == 4:
            out[name] = _sample(values.float(), grid, "nearest").to(values.dtype)
        else:
            out[name] = values  # per-image values (not maps) are not transformed
    return out_images, out


def _regression(values: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """A regression map (N, C, H, W), NaN = invalid pixel, resampled on ``grid``: its valid
    values unchanged, invalid and padded pixels NaN in every channel. A validity channel is
    sampled with the values (NaN replaced by 0 first), so grid_sample never sees a NaN."""
    valid = torch.isfinite(values).all(dim=1, keepdim=True)
    zero = torch.zeros((), device=values.device)
    filled = torch.where(valid, values.float(), zero)
    sampled = _sample(torch.cat([filled, valid.float()], dim=1), grid, "nearest")
    kept = sampled[:, -1:] > 0.5  # 1 where a valid pixel was taken, 0 if invalid or padding
    return torch.where(kept, sampled[:, :-1], zero + torch.nan).to(values.dtype)
