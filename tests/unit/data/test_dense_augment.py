"""The dense augmentation: the flip mirrors every map and negates the normals' x, a scale zooms
in and divides depth (multiplies disparity), labels stay labels, regression maps keep their
values and NaN-marked invalid pixels, a target is treated by its kind whatever its name, padding
is invalid."""

import math

import torch

from auxbench.data.dense_augment import augment_dense

REGRESSION = {"albedo": "regression"}


def _batch(count=6, height=8, width=10):
    images = torch.arange(count * 3 * height * width, dtype=torch.float32).view(
        count, 3, height, width
    )
    column = torch.arange(width).view(1, 1, width).expand(count, height, width)
    targets = {
        "semantic": (column % 4).long(),
        "depth": torch.full((count, 1, height, width), 2.0),
        "disparity": torch.full((count, 1, height, width), 3.0),
        "normal": torch.stack(
            [
                torch.full((count, height, width), 0.6),
                torch.zeros(count, height, width),
                torch.full((count, height, width), -0.8),
            ],
            dim=1,
        ),
    }
    return images, targets


def test_flip_only_mirrors_every_map_and_negates_normal_x():
    images, targets = _batch()
    generator = torch.Generator().manual_seed(3)
    out_images, out = augment_dense(images, targets, generator, scales=(1.0,))
    flipped_any = unflipped_any = False
    for i in range(len(images)):
        if torch.allclose(out_images[i], images[i].flip(-1), atol=1e-3):
            flipped_any = True
            assert torch.equal(out["semantic"][i], targets["semantic"][i].flip(-1))
            assert torch.allclose(out["normal"][i, 0], torch.full_like(out["normal"][i, 0], -0.6))
        else:
            assert torch.allclose(out_images[i], images[i], atol=1e-3)
            unflipped_any = True
            assert torch.equal(out["semantic"][i], targets["semantic"][i])
            assert torch.allclose(out["normal"][i, 0], torch.full_like(out["normal"][i, 0], 0.6))
        assert torch.allclose(out["normal"][i, 2], torch.full_like(out["normal"][i, 2], -0.8))
        assert torch.equal(out["depth"][i], targets["depth"][i])
    assert flipped_any and unflipped_any  # 6 images, seed 3: both cases occur


def test_scale_divides_depth_multiplies_disparity_and_keeps_labels():
    images, targets = _batch()
    out_images, out = augment_dense(
        images, targets, torch.Generator().manual_seed(0), scales=(2.0,), flip=False
    )
    assert out_images.shape == images.shape
    assert torch.allclose(out["depth"], torch.full_like(out["depth"], 1.0))
    assert torch.allclose(out["disparity"], torch.full_like(out["disparity"], 6.0))
    assert out["semantic"].dtype == torch.int64
    assert set(out["semantic"].unique().tolist()) <= {0, 1, 2, 3}
    # zoomed in 2x: a row shows 5 or 6 consecutive input columns, each over about 2 pixels
    for row in out["semantic"][:, 0]:
        shown = torch.unique_consecutive(row)
        assert len(shown) in (5, 6)
        assert ((shown[1:] - shown[:-1]) % 4 == 1).all()


def test_a_crop_larger_than_the_image_pads_with_the_invalid_values():
    images, targets = _batch(count=2, height=4, width=4)
    targets["disparity"][:] = 1.0
    _, out = augment_dense(
        images, targets, torch.Generator().manual_seed(0), size=(4, 8), scales=(1.0,), flip=False
    )
    # the 4x8 window over a 4x4 image is centred: two padded columns on each side
    assert (out["semantic"][:, :, :2] == -1).all() and (out["semantic"][:, :, -2:] == -1).all()
    assert (out["depth"][..., :2] == 0).all()
    assert (out["normal"][..., :2] == 0).all()
    assert (out["disparity"][..., :2] == -1).all()
    assert (out["semantic"][:, :, 2:6] >= 0).all()
    assert torch.allclose(out["disparity"][..., 2:6], torch.ones(2, 1, 4, 4))


def test_crop_size_and_determinism():
    images, targets = _batch(count=3, height=12, width=16)
    a = augment_dense(images, targets, torch.Generator().manual_seed(5), size=(8, 8))
    b = augment_dense(images, targets, torch.Generator().manual_seed(5), size=(8, 8))
    assert a[0].shape == (3, 3, 8, 8) and a[1]["semantic"].shape == (3, 8, 8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1]["normal"], b[1]["normal"])


def _regression_map(count=6, height=8, width=10):
    """A 2-channel regression map: channel 0 the column index, channel 1 −row; pixel (1, 2) of
    every image invalid (NaN in both channels)."""
    column = torch.arange(width, dtype=torch.float32).view(1, width).expand(height, width)
    row = torch.arange(height, dtype=torch.float32).view(height, 1).expand(height, width)
    values = torch.stack([column, -row]).unsqueeze(0).repeat(count, 1, 1, 1)
    values[:, :, 1, 2] = math.nan
    return values


def test_a_regression_map_is_flipped_with_the_image_its_values_unchanged():
    images, targets = _batch()
    targets["albedo"] = _regression_map()
    out_images, out = augment_dense(
        images, targets, torch.Generator().manual_seed(3), scales=(1.0,), kinds=REGRESSION
    )
    flipped = [
        torch.allclose(out_images[i], images[i].flip(-1), atol=1e-3) for i in range(len(images))
    ]
    assert any(flipped) and not all(flipped)
    for i, mirrored in enumerate(flipped):
        expected = targets["albedo"][i].flip(-1) if mirrored else targets["albedo"][i]
        assert torch.equal(out["albedo"][i].isnan(), expected.isnan())  # the NaN pixel moves too
        assert torch.equal(out["albedo"][i].nan_to_num(), expected.nan_to_num())  # nothing negated


def test_a_scale_zooms_a_regression_map_without_dividing_it_and_padding_is_nan():
    images, targets = _batch()
    targets["albedo"] = torch.full((6, 2, 8, 10), 2.0)
    _, out = augment_dense(
        images,
        targets,
        torch.Generator().manual_seed(0),
        scales=(2.0,),
        flip=False,
        kinds=REGRESSION,
    )
    assert torch.equal(out["albedo"], targets["albedo"])  # not divided by the scale, as depth is
    images, targets = _batch(count=2, height=4, width=4)
    targets["albedo"] = _regression_map(count=2, height=4, width=4)
    _, out = augment_dense(
        images,
        targets,
        torch.Generator().manual_seed(0),
        size=(4, 8),
        scales=(1.0,),
        flip=False,
        kinds=REGRESSION,
    )
    albedo = out["albedo"]
    assert albedo.shape == (2, 2, 4, 8) and albedo.dtype == torch.float32
    assert albedo[..., :2].isnan().all() and albedo[..., -2:].isnan().all()  # padding: invalid
    inside = albedo[..., 2:6]
    assert torch.equal(inside.isnan(), targets["albedo"].isnan())
    assert torch.equal(inside.nan_to_num(), targets["albedo"].nan_to_num())


def test_kinds_treat_a_target_by_its_task_kind_whatever_its_name():
    images, targets = _batch()
    renamed = {"height": targets["depth"], "seg": targets["semantic"]}
    _, out = augment_dense(
        images,
        renamed,
        torch.Generator().manual_seed(0),
        size=(4, 5),
        scales=(2.0,),
        kinds={"height": "depth", "seg": "segmentation"},
    )
    assert torch.allclose(out["height"], torch.full((6, 1, 4, 5), 1.0))  # depth: divided
    assert out["seg"].shape == (6, 4, 5) and out["seg"].dtype == torch.int64  # labels: cropped
    # a kinds entry wins over a field's name: a regression map named "depth" is not divided
    _, out = augment_dense(
        images,
        {"depth": targets["depth"]},
        torch.Generator().manual_seed(0),
        scales=(2.0,),
        kinds={"depth": "regression"},
    )
    assert torch.equal(out["depth"], targets["depth"])
