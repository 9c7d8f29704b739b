"""ResNet-Tiny: a small ResNet [He et al. 2016] FPN backbone made to train *from scratch* on CPU.

EfficientNet-Lite0 is the right backbone when ImageNet weights are loaded, but from random
weights its 16 depthwise MBConv blocks learn slowly and its depthwise convolutions are slow on
CPU (oneDNN runs dense 3x3 convolutions far closer to peak). ResNet-Tiny is the opposite trade:
a two-convolution stem and one BasicBlock per stage, all dense 3x3 convolutions with BatchNorm,

=====  ==================  ======  ========
stage  layers              stride  channels
=====  ==================  ======  ========
stem   conv 3x3 s2, conv   4       24, 32
       3x3 s2
1      BasicBlock          4       32
2      BasicBlock s2       8       64
3      BasicBlock s2       16      128
4      BasicBlock s2       32      256
=====  ==================  ======  ========

1.2 M parameters. Measured on 2 CPU cores, forward + backward of a batch of 4 images of 304x400
(``/tmp`` profiling run, channels-last): 42 images/s against 4.7 for the EfficientNet-Lite0 body.
The last BatchNorm of every residual branch starts at zero (Goyal et al. 2017), so each block
starts as the identity, which helps from-scratch training.

The FPN takes any of the stride 4, 8, 16 and 32 outputs and adds a max-pooled level, as
:class:`vidal.detection.efficientnet_lite.EfficientNetLite0FPN` does (:class:`BodyFPN`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from vidal.detection.fpn import BodyFPN

#: (channels, stride) of each stage's output; the stem ends at stride 4 with ``STEM[-1]`` channels
STEM = (24, 32)
STAGES = ((32, 4), (64, 8), (128, 16), (256, 32))
TAPS = {stride: channels for channels, stride in STAGES}
IMAGE_MEAN = [0.485, 0.456, 0.406]
IMAGE_STD = [0.229, 0.224, 0.225]


def conv_bn(cin: int, cout: int, stride: int, norm: Callable[[int], nn.Module], relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), norm(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """relu(x + bn(conv(relu(bn(conv(x)))))), with a 1x1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int, norm: Callable[[int], nn.Module]):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, stride, norm)
        self.conv2 = conv_bn(cout, cout, 1, norm, relu=False)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), norm(cout))
        bn = self.conv2[1]
        if isinstance(bn, nn.BatchNorm2d):
            nn.init.zeros_(bn.weight)  # the block starts as the identity

    def forward(self, x: Tensor) -> Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        return torch.relu(self.conv2(self.conv1(x)) + skip)


class ResNetTinyBody(nn.Module):
    """Stem + 4 BasicBlock stages; ``forward`` returns ``{"s4"|"s8"|"s16"|"s32": [B, C, H/s, W/s]}``
    for the requested strides (``C``: :data:`TAPS`)."""

    def __init__(self, norm: Callable[[int], nn.Module] = nn.BatchNorm2d, strides: Sequence[int] = (4, 8, 16, 32)):
        super().__init__()
        bad = sorted(set(strides) - set(TAPS))
        if bad or not strides:
            raise ValueError(f"resnet_tiny feature strides must be among {sorted(TAPS)}, got {list(strides)}")
        self.strides = tuple(sorted(strides))
        self.stem = nn.Sequential(conv_bn(3, STEM[0], 2, norm), conv_bn(STEM[0], STEM[1], 2, norm))
        stages, cin = [], STEM[1]
        for cout, stride in STAGES:
            stages.append(BasicBlock(cin, cout, 1 if stride == 4 else 2, norm))
            cin = cout
            if stride == self.strides[-1]:
                break
        self.stages = nn.ModuleList(stages)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        out: dict[str, Tensor] = OrderedDict()
        x = self.stem(x)
        for stage, (_, stride) in zip(self.stages, STAGES):
            x = stage(x)
            if stride in self.strides:
                out[f"s{stride}"] = x
        return out

    def freeze(self, trainable_stages: int) -> None:
        """Train only the last ``trainable_stages`` of the 5 parts (stem + 4 stages)."""
        parts = [self.stem, *self.stages]
        if not 0 <= trainable_stages <= 5:
            raise ValueError(f"trainable_layers for resnet_tiny_fpn must be in 0..5, got {trainable_stages}")
        for i, part in enumerate(parts):
            for p in part.parameters():
                p.requires_grad_(i >= 5 - trainable_stages)


def resnet_tiny_fpn(*, out_channels: int, strides: Sequence[int],
                    norm: Callable[[int], nn.Module] = nn.BatchNorm2d) -> BodyFPN:
    """ResNet-Tiny body + FPN with ``out_channels`` per level + a max-pooled level."""
    body = ResNetTinyBody(norm, strides)
    return BodyFPN(body, [TAPS[s] for s in body.strides], out_channels)
