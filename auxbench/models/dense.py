"""Networks for dense multi-task prediction (Auto-λ §5.1): a shared backbone and one head per task.

``build_dense_model(architecture, backbone, in_channels, task_outputs, width)`` returns a
``DenseNet`` whose forward pass maps images (N, C, H, W) to ``{task: (N, outputs, H, W)}``: raw
outputs (logits for segmentation, unnormalised values for regression) at the input resolution; a
head whose map is coarser is upsampled bilinearly at the end, so any input size works.

Architectures:

- ``split`` (hard parameter sharing): the backbone (encoder, and decoder where it has one) is
  shared; each task has its own head on the backbone's last feature map.
- ``mtan`` (Liu et al. 2019, "End-to-end multi-task learning with attention"): the same shared
  backbone, plus per task one attention module per backbone stage. At stage i the task's mask
  ``sigmoid(BN(conv1x1(ReLU(BN(conv1x1(x))))))`` is computed from ``x`` = the stage's shared
  features concatenated with the task's previous attended feature (resized bilinearly to the
  stage's size; the first stage uses its features alone) and multiplies the stage's shared
  features; a conv3x3-BN-ReLU block then maps the attended feature to the next stage's input
  (the block runs at the coarser of the two stages' resolutions). The last attended feature goes
  to the task's head. Differences from the original code, kept for simplicity: the mask is
  computed from the stage's output rather than from the features one layer before it, and the
  conv3x3 block belongs to the task (the original shares it between tasks). Every attention
  module and head is a task parameter; the backbone is the only shared part.

Backbones (``DENSE_BACKBONES``):

- ``small``: a CPU encoder-decoder for 48x64 images. Encoder: three stages of two
  conv3x3-BN-ReLU layers (16, 32, 64 channels x ``width``) with a 2x2 max-pool between them;
  decoder: two stages back to full resolution, each mapping the coarser feature to the encoder
  skip's channels (conv1x1), upsampling it bilinearly and adding the skip; the half-resolution
  stage then applies a conv3x3-BN-ReLU (32 channels), the full-resolution one (16) leaves the
  sum to the heads. MTAN attends all five stages. Heads: conv3x3 then conv1x1 (as MTAN's SegNet
  heads). A Split training step (forward and backward, batch 16, 48x64) takes about 60 ms with 3
  tasks and 65 ms with 4 on one CPU core; MTAN's full-resolution attention makes it 4-5x that.
  On CPU the forward pass runs in channels-last memory format (oneDNN's convolutions are about
  twice as fast in it); the outputs are returned contiguous.
- ``segnet``: the SegNet of the MTAN paper: five encoder blocks (64, 128, 256, 512, 512 channels x
  ``width``; 2, 2, 3, 3, 3 conv3x3-BN-ReLU layers), each followed by a 2x2 max-pool that keeps its
  indices, and a mirrored decoder of max-unpooling then conv3x3-BN-ReLU layers (512, 256, 128, 64,
  64 channels). MTAN attends the five encoder and the five decoder blocks, as MTAN's SegNet does.
  Heads: conv3x3 then conv1x1.
- ``resnet50``: a dilated ResNet-50 trained from scratch (torchvision, dilation in the last two
  residual layers: output stride 8, as in Auto-λ's code); ``conv1`` is replaced when
  ``in_channels != 3``. MTAN attends the four residual layers (256, 512, 1024, 2048 channels; mask
  and block widths a quarter of those, as in Auto-λ's MTAN). Heads: DeepLabv3 (ASPP with rates
  12, 24, 36 and image pooling, then conv3x3-BN-ReLU and a conv1x1 classifier), ``256 x width``
  channels. ``width`` also sets the bottlenecks' inner width (torchvision's ``width_per_group``
  = ``64 x width``, the Wide-ResNet knob); the stem and the residual layers' output channels stay
  as in ResNet-50. The heads' image pooling normalises a 1x1 map, so training needs batches of at
  least 2 (as in torchvision's DeepLabv3).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DENSE_ARCHITECTURES = ("split", "mtan")
DENSE_BACKBONES = ("small", "resnet50", "segnet")

SMALL_ENCODER = (16, 32, 64)
SEGNET_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
"""(output channels, conv layers) of SegNet's encoder blocks; the decoder mirrors them."""
ASPP_RATES = (12, 24, 36)


def _scaled(channels: int, width: float) -> int:
    """``channels`` times ``width``, rounded, at least 1."""
    return max(1, round(channels * width))


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Sequential:
    """A convolution (same padding, no bias) followed by BatchNorm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _resize(x: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """``x`` resized bilinearly to spatial ``size`` (returned as is when it already has it)."""
    if x.shape[-2:] == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _plain_head(in_channels: int, outputs: int) -> nn.Sequential:
    """MTAN's SegNet head: a conv3x3 keeping the channels, then a conv1x1 to ``outputs``."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, padding=1), nn.Conv2d(in_channels, outputs, 1)
    )


class SmallBackbone(nn.Module):
    """The ``small`` encoder-decoder; ``forward`` returns the five stages' features in order."""

    def __init__(self, in_channels: int, width: float = 1.0):
        super().__init__()
        c1, c2, c3 = (_scaled(c, width) for c in SMALL_ENCODER)
        self.encoder = nn.ModuleList(
            nn.Sequential(_conv_bn_relu(a, b), _conv_bn_relu(b, b))
            for a, b in ((in_channels, c1), (c1, c2), (c2, c3))
        )
        self.lateral = nn.ModuleList(
            nn.Conv2d(a, b, 1, bias=False) for a, b in ((c3, c2), (c2, c1))
        )
        # no conv after the full-resolution merge: the heads' conv3x3 follows it, and one more
        # 16-channel conv at 48x64 would cost about an eighth of a training step
        self.decoder = nn.ModuleList([_conv_bn_relu(c2, c2), nn.Identity()])
        self.stage_channels = (c1, c2, c3, c2, c1)
        self.attention_reduction = 1

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        skips = []
        x = images
        for index, stage in enumerate(self.encoder):
            if index:
                x = F.max_pool2d(x, 2, ceil_mode=True)
            x = stage(x)
            skips.append(x)
        stages = list(skips)
        for lateral, stage, skip in zip(
            self.lateral, self.decoder, reversed(skips[:-1]), strict=True
        ):
            x = stage(_resize(lateral(x), skip.shape[-2:]) + skip)
            stages.append(x)
        return stages

    def head(self, outputs: int) -> nn.Module:
        """A task head on the last decoder stage."""
        return _plain_head(self.stage_channels[-1], outputs)


class SegNetBackbone(nn.Module):
    """MTAN's SegNet; ``forward`` returns the five encoder then the five decoder blocks' features.

    Each encoder block is followed by a 2x2 max-pool (ceil mode, so odd sizes lose no pixel) whose
    indices the mirrored decoder block's max-unpooling uses.
    """

    def __init__(self, in_channels: int, width: float = 1.0):
        super().__init__()
        blocks = [(_scaled(c, width), layers) for c, layers in SEGNET_BLOCKS]
        self.encoder = nn.ModuleList()
        channels = in_channels
        for out_channels, layers in blocks:
            convs = [_conv_bn_relu(channels, out_channels)]
            convs += [_conv_bn_relu(out_channels, out_channels) for _ in range(layers - 1)]
            self.encoder.append(nn.Sequential(*convs))
            channels = out_channels
        # decoder block j undoes encoder block 4 - j: unpool, then as many convs, the first one
        # down to the channels of the encoder block before it (the first block's for j = 4)
        self.decoder = nn.ModuleList()
        outputs = [c for c, _ in blocks]
        decoder_channels = []
        for index in reversed(range(len(blocks))):
            out_channels = outputs[max(index - 1, 0)]
            layers = blocks[index][1]
            convs = [_conv_bn_relu(channels, out_channels)]
            convs += [_conv_bn_relu(out_channels, out_channels) for _ in range(layers - 1)]
            self.decoder.append(nn.Sequential(*convs))
            decoder_channels.append(out_channels)
            channels = out_channels
        self.stage_channels = (*outputs, *decoder_channels)
        self.attention_reduction = 1

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        stages, pooled = [], []
        x = images
        for block in self.encoder:
            x = block(x)
            stages.append(x)
            size = x.shape[-2:]
            x, indices = F.max_pool2d(x, 2, ceil_mode=True, return_indices=True)
            pooled.append((indices, size))
        for block, (indices, size) in zip(self.decoder, reversed(pooled), strict=True):
            x = block(F.max_unpool2d(x, indices, 2, output_size=size))
            stages.append(x)
        return stages

    def head(self, outputs: int) -> nn.Module:
        """A task head on the last decoder block."""
        return _plain_head(self.stage_channels[-1], outputs)


class ResNet50Backbone(nn.Module):
    """The dilated ResNet-50 (output stride 8); ``forward`` returns the four residual layers'
    features (the stem before them is shared but not attended)."""

    def __init__(self, in_channels: int, width: float = 1.0):
        super().__init__()
        # torchvision takes ~0.9 s to import and every auxbench command imports this module
        # (through the config's choices), so it is imported where a ResNet-50 is built
        import torchvision

        resnet = torchvision.models.resnet50(
            weights=None,
            replace_stride_with_dilation=[False, True, True],
            width_per_group=_scaled(64, width),
        )
        if in_channels != 3:
            resnet.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(resnet.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.layers = nn.ModuleList([resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4])
        self.stage_channels = (256, 512, 1024, 2048)
        self.attention_reduction = 4
        self.head_channels = _scaled(256, width)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        stages = []
        x = self.stem(images)
        for layer in self.layers:
            x = layer(x)
            stages.append(x)
        return stages

    def head(self, outputs: int) -> nn.Module:
        """A DeepLabv3 head (ASPP, conv3x3-BN-ReLU, conv1x1 classifier) on the last layer."""
        from torchvision.models.segmentation.deeplabv3 import ASPP  # see __init__

        channels = self.head_channels
        return nn.Sequential(
            ASPP(self.stage_channels[-1], ASPP_RATES, channels),
            _conv_bn_relu(channels, channels),
            nn.Conv2d(channels, outputs, 1),
        )


BACKBONES = {"small": SmallBackbone, "resnet50": ResNet50Backbone, "segnet": SegNetBackbone}


class TaskAttention(nn.Module):
    """One task's MTAN attention modules over stages of ``stage_channels`` channels.

    Stage i's mask has ``channels_i // reduction`` hidden channels; the conv3x3 block after it
    outputs ``channels_{i+1} // reduction`` channels, which stage i + 1's mask takes in besides
    that stage's features. The last stage has no block: its attended feature is the output.
    """

    def __init__(self, stage_channels: tuple[int, ...], reduction: int = 1):
        super().__init__()
        self.masks, self.blocks = nn.ModuleList(), nn.ModuleList()
        previous = 0
        for index, channels in enumerate(stage_channels):
            hidden = max(1, channels // reduction)
            self.masks.append(
                nn.Sequential(
                    nn.Conv2d(channels + previous, hidden, 1, bias=False),
                    nn.BatchNorm2d(hidden),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(hidden, channels, 1, bias=False),
                    nn.BatchNorm2d(channels),
                    nn.Sigmoid(),
                )
            )
            if index + 1 < len(stage_channels):
                previous = max(1, stage_channels[index + 1] // reduction)
                self.blocks.append(_conv_bn_relu(channels, previous))

    def forward(self, stages: list[torch.Tensor]) -> torch.Tensor:
        """The task's attended feature of the last stage, given every stage's shared features."""
        carried = None
        for index, features in enumerate(stages):
            inputs = features if carried is None else torch.cat([features, carried], dim=1)
            attended = self.masks[index](inputs) * features
            if index < len(self.blocks):
                size = stages[index + 1].shape[-2:]
                if size.numel() < attended.shape[-2:].numel():
                    carried = self.blocks[index](_resize(attended, size))
                else:
                    carried = _resize(self.blocks[index](attended), size)
        return attended


class DenseNet(nn.Module):
    """A shared ``backbone`` (a list of stage features per batch) and one head per task, with
    per-task MTAN attention between them when ``attention`` is true."""

    def __init__(self, backbone: nn.Module, task_outputs: dict[str, int], attention: bool):
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict({task: backbone.head(n) for task, n in task_outputs.items()})
        self.attention = (
            nn.ModuleDict(
                {
                    task: TaskAttention(backbone.stage_channels, backbone.attention_reduction)
                    for task in task_outputs
                }
            )
            if attention
            else None
        )

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each task's raw outputs (N, outputs, H, W) at the images' resolution (contiguous)."""
        size = images.shape[-2:]
        if images.device.type == "cpu":
            # oneDNN's convolutions run about twice as fast on channels-last tensors here
            images = images.contiguous(memory_format=torch.channels_last)
        stages = self.backbone(images)
        outputs = {}
        for task, head in self.heads.items():
            features = stages[-1] if self.attention is None else self.attention[task](stages)
            outputs[task] = _resize(head(features), size).contiguous()
        return outputs

    def shared_parameters(self) -> list[nn.Parameter]:
        """The backbone's parameters, which every task uses."""
        return list(self.backbone.parameters())

    def task_parameters(self) -> list[nn.Parameter]:
        """Every task's own parameters: its head and (MTAN) its attention modules."""
        own = list(self.heads.parameters())
        if self.attention is not None:
            own += self.attention.parameters()
        return own


def build_dense_model(
    architecture: str,
    backbone: str,
    in_channels: int,
    task_outputs: dict[str, int],
    width: float = 1.0,
) -> DenseNet:
    """The ``architecture`` (``split`` or ``mtan``) network on ``backbone`` for images with
    ``in_channels`` channels, with a head of ``task_outputs[task]`` output channels per task."""
    if architecture not in DENSE_ARCHITECTURES:
        raise ValueError(
            f"unknown dense architecture {architecture!r}; "
            f"choose one of {', '.join(DENSE_ARCHITECTURES)}"
        )
    if backbone not in DENSE_BACKBONES:
        raise ValueError(
            f"unknown dense backbone {backbone!r}; choose one of {', '.join(DENSE_BACKBONES)}"
        )
    network = BACKBONES[backbone](in_channels, width)
    return DenseNet(network, task_outputs, attention=architecture == "mtan")
