"""VGG16 as used by MAXL and RL-AUX: 13 conv3x3-BN-ReLU layers in 5 blocks, max-pool after each."""

from __future__ import annotations

from torch import nn

VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    """A 3x3 convolution (padding 1) followed by BatchNorm and ReLU."""
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


def vgg16_trunk(in_channels: int, image_size: int, width: float = 1.0) -> tuple[nn.Module, int]:
    """The VGG16 convolutional trunk and its feature size (512 at width 1).

    Pooling uses ``ceil_mode`` so 28x28 inputs reach 1x1 like 32x32 ones do; a global average
    pool then flattens, which is the identity on a 1x1 map (``image_size`` ≤ 32).
    """
    layers: list[nn.Module] = []
    channels = in_channels
    for out_channels, repeats in VGG16_BLOCKS:
        out_channels = max(1, round(out_channels * width))
        for _ in range(repeats):
            layers += conv_bn_relu(channels, out_channels)
            channels = out_channels
        layers.append(nn.MaxPool2d(2, ceil_mode=True))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), channels
