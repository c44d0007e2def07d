import copy

import pytest
import torch
from torch import nn

from auxbench.models.dense import (
    DENSE_ARCHITECTURES,
    DENSE_BACKBONES,
    ResNet50Backbone,
    TaskAttention,
    build_dense_model,
)

pytestmark = pytest.mark.usefixtures("one_thread")

TASKS = {"semantic": 13, "depth": 1, "normal": 3, "noise": 1}
# narrow networks keep the tests fast; resnet50's width only narrows its bottlenecks and heads
WIDTH = {"small": 0.5, "segnet": 0.125, "resnet50": 0.25}
# one size that divides by the network's stride (4, 32 and 8) and one that does not
SIZES = {
    "small": [(48, 64), (50, 70)],
    "segnet": [(32, 48), (34, 50)],
    "resnet50": [(32, 48), (34, 50)],
}
CASES = [(a, b) for a in DENSE_ARCHITECTURES for b in DENSE_BACKBONES]

_models: dict[tuple[str, str], nn.Module] = {}


def model(architecture: str, backbone: str) -> nn.Module:
    """The (cached) test network; tests that change it work on a copy."""
    key = (architecture, backbone)
    if key not in _models:
        torch.manual_seed(0)
        _models[key] = build_dense_model(architecture, backbone, 3, TASKS, WIDTH[backbone])
    return _models[key]


def count(parameters) -> int:
    """How many numbers ``parameters`` hold."""
    return sum(p.numel() for p in parameters)


def test_names():
    assert DENSE_ARCHITECTURES == ("split", "mtan")
    assert DENSE_BACKBONES == ("small", "resnet50", "segnet")


@pytest.mark.parametrize(("architecture", "backbone"), CASES)
def test_outputs_have_the_input_resolution(architecture, backbone):
    network = model(architecture, backbone).train()
    for height, width in SIZES[backbone]:
        outputs = network(torch.rand(2, 3, height, width))
        assert set(outputs) == set(TASKS)
        for task, channels in TASKS.items():
            assert outputs[task].shape == (2, channels, height, width)
            assert outputs[task].is_contiguous()
            assert torch.isfinite(outputs[task]).all()


@pytest.mark.parametrize(
    ("backbone", "size", "channels", "sizes"),
    [
        (
            "small",
            (50, 70),
            [8, 16, 32, 16, 8],
            [(50, 70), (25, 35), (13, 18), (25, 35), (50, 70)],
        ),
        (
            "segnet",
            (34, 50),
            [8, 16, 32, 64, 64, 64, 32, 16, 8, 8],
            [(34, 50), (17, 25), (9, 13), (5, 7), (3, 4), (3, 4), (5, 7), (9, 13), (17, 25)]
            + [(34, 50)],
        ),
        # stem: conv stride 2 (34x50 -> 17x25), max-pool stride 2 (9x13); layer2 stride 2 (5x7);
        # layers 3 and 4 dilated instead of strided: output stride 8
        ("resnet50", (34, 50), [256, 512, 1024, 2048], [(9, 13), (5, 7), (5, 7), (5, 7)]),
    ],
)
def test_stage_shapes(backbone, size, channels, sizes):
    network = model("split", backbone).eval()
    with torch.no_grad():
        stages = network.backbone(torch.rand(1, 3, *size))
    assert [s.shape[1] for s in stages] == channels
    assert [tuple(s.shape[-2:]) for s in stages] == sizes
    assert list(network.backbone.stage_channels) == channels


def test_segnet_layers_mirror_the_mtan_segnet():
    network = build_dense_model("split", "segnet", 3, {"depth": 1})
    convs = [
        [m.out_channels for m in block.modules() if isinstance(m, nn.Conv2d)]
        for part in (network.backbone.encoder, network.backbone.decoder)
        for block in part
    ]
    assert convs == [
        [64, 64],
        [128, 128],
        [256, 256, 256],
        [512, 512, 512],
        [512, 512, 512],
        [512, 512, 512],
        [256, 256, 256],
        [128, 128, 128],
        [64, 64],
        [64, 64],
    ]
    head = network.heads["depth"]
    assert [(m.kernel_size, m.out_channels) for m in head] == [((3, 3), 64), ((1, 1), 1)]


def test_small_widths_scale():
    convs = [
        m.out_channels
        for m in build_dense_model("split", "small", 3, {"depth": 1}).backbone.encoder.modules()
        if isinstance(m, nn.Conv2d)
    ]
    assert convs == [16, 16, 32, 32, 64, 64]
    assert build_dense_model("split", "small", 3, {"depth": 1}, 2.0).backbone.stage_channels == (
        32,
        64,
        128,
        64,
        32,
    )


def test_resnet50_parameter_counts():
    torch.manual_seed(0)
    network = build_dense_model("split", "resnet50", 3, {"semantic": 13, "depth": 1, "normal": 3})
    # torchvision's ResNet-50 has 25,557,032 parameters, 2,049,000 of them in the 2048 -> 1000 fc
    assert count(network.shared_parameters()) == 25_557_032 - 2_049_000
    # DeepLabv3 head: ASPP 1x1 and image-pooling 1x1 (2048*256 + BN 512 each), three dilated 3x3
    # (9*2048*256 + 512 each), projection 1280*256 + 512, conv3x3 9*256*256 + 512, classifier
    aspp = 2 * (2048 * 256 + 512) + 3 * (9 * 2048 * 256 + 512) + 1280 * 256 + 512
    head = aspp + 9 * 256 * 256 + 512
    for task, outputs in {"semantic": 13, "depth": 1, "normal": 3}.items():
        assert count(network.heads[task].parameters()) == head + 256 * outputs + outputs
    assert count(network.parameters()) == 71_888_721
    # one task's MTAN attention: masks in -> c/4 -> c (1x1 convs and BNs) over c = 256 .. 2048,
    # with in = c + the previous block's c/4; blocks 3x3 c_i -> c_{i+1}/4 with BN
    masks = sum(
        i * c // 4 + 2 * (c // 4) + c // 4 * c + 2 * c
        for i, c in [(256, 256), (512 + 128, 512), (1024 + 256, 1024), (2048 + 512, 2048)]
    )
    blocks = sum(9 * a * b + 2 * b for a, b in [(256, 128), (512, 256), (1024, 512)])
    assert count(TaskAttention((256, 512, 1024, 2048), 4).parameters()) == masks + blocks


def test_resnet50_width_and_in_channels():
    backbone = ResNet50Backbone(in_channels=1, width=0.25)
    assert backbone.stem[0].weight.shape == (64, 1, 7, 7)
    first = backbone.layers[0][0]
    assert (first.conv1.out_channels, first.conv2.out_channels, first.conv3.out_channels) == (
        16,
        16,
        256,
    )
    assert backbone.head(5)[0].convs[0][0].out_channels == 64
    network = build_dense_model("mtan", "resnet50", 1, {"depth": 1}, 0.25).eval()
    with torch.no_grad():
        assert network(torch.rand(1, 1, 32, 48))["depth"].shape == (1, 1, 32, 48)


@pytest.mark.parametrize("backbone", ["small", "segnet"])
def test_one_input_channel(backbone):
    network = build_dense_model("mtan", backbone, 1, {"depth": 1}, WIDTH[backbone])
    assert network(torch.rand(2, 1, *SIZES[backbone][1]))["depth"].shape == (
        2,
        1,
        *SIZES[backbone][1],
    )


def test_mtan_attention_widths():
    attention = model("mtan", "resnet50").attention["depth"]
    assert [(m[0].in_channels, m[0].out_channels, m[3].out_channels) for m in attention.masks] == [
        (256, 64, 256),
        (512 + 128, 128, 512),
        (1024 + 256, 256, 1024),
        (2048 + 512, 512, 2048),
    ]
    assert [b[0].kernel_size for b in attention.blocks] == [(3, 3)] * 3


@pytest.mark.parametrize(("architecture", "backbone"), CASES)
def test_parameters_split_into_shared_and_task(architecture, backbone):
    network = model(architecture, backbone)
    shared = [id(p) for p in network.shared_parameters()]
    own = [id(p) for p in network.task_parameters()]
    assert len(set(shared)) == len(shared) and len(set(own)) == len(own)
    assert not set(shared) & set(own)
    assert set(shared) | set(own) == {id(p) for p in network.parameters()}
    assert set(shared) == {id(p) for p in network.backbone.parameters()}
    modules = [network.heads] + ([network.attention] if architecture == "mtan" else [])
    assert set(own) == {id(p) for m in modules for p in m.parameters()}


@pytest.mark.parametrize(("architecture", "backbone"), CASES)
def test_a_task_loss_reaches_the_shared_part_and_only_its_own_head(architecture, backbone):
    network = copy.deepcopy(model(architecture, backbone)).train()
    height, width = SIZES[backbone][1]
    torch.manual_seed(1)
    outputs = network(torch.rand(2, 3, height, width))
    (outputs["depth"] - torch.rand(2, 1, height, width)).square().mean().backward()
    assert all(p.grad is not None for p in network.shared_parameters())
    assert sum(p.grad.abs().sum() for p in network.shared_parameters()) > 0
    own = list(network.heads["depth"].parameters())
    others = [p for task in TASKS if task != "depth" for p in network.heads[task].parameters()]
    if architecture == "mtan":
        own += network.attention["depth"].parameters()
        others += [
            p for task in TASKS if task != "depth" for p in network.attention[task].parameters()
        ]
    assert all(p.grad is not None for p in own) and sum(p.grad.abs().sum() for p in own) > 0
    assert others and all(p.grad is None for p in others)


@pytest.mark.parametrize("backbone", DENSE_BACKBONES)
def test_perturbing_one_tasks_attention_changes_only_its_output(backbone):
    network = copy.deepcopy(model("mtan", backbone)).eval()
    images = torch.rand(1, 3, *SIZES[backbone][0])
    with torch.no_grad():
        before = network(images)
        torch.manual_seed(2)
        for p in network.attention["normal"].parameters():
            p.add_(0.5 * torch.randn_like(p))
        after = network(images)
    assert (after["normal"] - before["normal"]).abs().max() > 1e-3
    for task in ("semantic", "depth", "noise"):
        assert torch.equal(after[task], before[task])


@pytest.mark.parametrize("backbone", ["small", "segnet"])
def test_the_last_mask_multiplies_the_last_shared_features(backbone):
    """A mask of ones passes the last stage's shared features to the head; a mask of zeros
    leaves the head's biases: conv1x1(conv3x3(0)) = W1 b3 + b1 at every pixel."""
    network = copy.deepcopy(model("mtan", backbone)).eval()
    images = torch.rand(1, 3, *SIZES[backbone][1])
    last_norm = network.attention["depth"].masks[-1][4]
    head = network.heads["depth"]
    with torch.no_grad():
        last_norm.weight.zero_()
        last_norm.bias.fill_(30.0)  # sigmoid(30) is 1 in float32
        ones = network(images)["depth"]
        expected = head(network.backbone(images)[-1])
        assert expected.shape[-2:] == images.shape[-2:]
        torch.testing.assert_close(ones, expected)
        last_norm.bias.fill_(-200.0)  # sigmoid(-200) is 0
        zeros = network(images)["depth"]
        constant = head[1].weight[0, :, 0, 0] @ head[0].bias + head[1].bias[0]
        torch.testing.assert_close(zeros, constant.expand_as(zeros))


def test_unknown_names_list_the_choices():
    with pytest.raises(ValueError, match="split, mtan"):
        build_dense_model("cross-stitch", "small", 3, TASKS)
    with pytest.raises(ValueError, match="small, resnet50, segnet"):
        build_dense_model("split", "vgg16", 3, TASKS)
