"""vidal's own FPN backbones (EfficientNet-Lite0, ResNet-Tiny; vidal/detection/fpn.py): levels per
stride plus the max-pooled one, channels-last giving the same features, one-line stride errors."""

from __future__ import annotations

import pytest
import torch

from vidal.detection import efficientnet_lite as effl
from vidal.detection import resnet_tiny as rt
from vidal.detection.torchvision_frcnn import use_channels_last

BUILDERS = {"efficientnet_lite0": lambda **kw: effl.EfficientNetLite0FPN(**kw),
            "resnet_tiny": lambda **kw: rt.resnet_tiny_fpn(**kw)}


@pytest.fixture(autouse=True)
def _threads(torch_two_threads):
    yield


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_fpn_levels_and_channels_last_gives_the_same_features(name):
    fpn = BUILDERS[name](out_channels=16, strides=(4, 8, 16, 32)).eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        ref = fpn(x)
        assert list(ref) == ["0", "1", "2", "3", "pool"]
        assert [tuple(v.shape[1:]) for v in ref.values()] == [(16, 16, 24), (16, 8, 12), (16, 4, 6), (16, 2, 3),
                                                              (16, 1, 2)]
        use_channels_last(fpn)
        out = fpn(x)
    for k in ref:
        torch.testing.assert_close(out[k], ref[k], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="strides must be among"):
        BUILDERS[name](out_channels=16, strides=(2, 8))
