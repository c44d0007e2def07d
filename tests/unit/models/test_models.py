import pytest
import torch

from auxbench.models import build_model


@pytest.mark.parametrize("size", [28, 32])
def test_vgg16_has_13_convs_and_reaches_512_features(size):
    model = build_model("vgg16", in_channels=3, heads={"primary": 20, "aux": 100})
    convs = [m for m in model.trunk.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 13
    assert [c.out_channels for c in convs] == [64] * 2 + [128] * 2 + [256] * 3 + [512] * 6
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.trunk.modules()) == 5
    outputs = model(torch.randn(2, 3, size, size))
    assert outputs["primary"].shape == (2, 20) and outputs["aux"].shape == (2, 100)
    assert model.feature_dim == 512


def test_heads_are_two_layer_mlps_and_can_be_added():
    model = build_model("small", in_channels=1, heads={"primary": 10}, image_size=28)
    head = model.heads["primary"]
    assert [type(m).__name__ for m in head] == ["Linear", "ReLU", "Linear"]
    assert head[0].out_features == 512
    model.add_head("aux", 50)
    assert set(model(torch.randn(3, 1, 28, 28))) == {"primary", "aux"}
    with pytest.raises(ValueError, match="already exists"):
        model.add_head("aux", 5)


def test_width_scales_channels():
    narrow = build_model("small", 1, {"primary": 10}, width=1.0, image_size=28)
    wide = build_model("small", 1, {"primary": 10}, width=2.0, image_size=28)
    assert wide.feature_dim == 2 * narrow.feature_dim


def test_unknown_model_lists_choices():
    with pytest.raises(ValueError, match="small, vgg16"):
        build_model("resnet", 3, {"primary": 10})
