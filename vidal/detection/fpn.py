"""The FPN wrapper shared by vidal's own backbones (EfficientNet-Lite0, ResNet-Tiny)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import Tensor, nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool


class BodyFPN(nn.Module):
    """``body`` (returning an ordered dict of feature maps, finest first, with ``in_channels``
    channels) + an FPN with ``out_channels`` per level + a max-pooled extra level, for
    torchvision's ``FasterRCNN`` (which reads ``out_channels``). Levels are named
    ``"0", "1", ..., "pool"``, as torchvision's ResNet FPNs."""

    def __init__(self, body: nn.Module, in_channels: Sequence[int], out_channels: int):
        super().__init__()
        self.body = body
        self.fpn = FeaturePyramidNetwork(list(in_channels), out_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        feats = self.body(x)
        return self.fpn(OrderedDict((str(i), v) for i, v in enumerate(feats.values())))
