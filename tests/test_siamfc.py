"""SiamFC (vidal/tracking/siamfc.py, train_siamfc.py, tools/train_siamfc.py): shapes, the
siamfc-pytorch checkpoint layout round trip and its one-line errors, tracking geometry on a moving
square with a hand-set embedding (pixels minus grey, average-pooled at stride 8), caching, and a
short training run whose loss decreases."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from vidal.data.dataset import VideoDataset
from vidal.registry import TRACKERS
from vidal.tracking.evaluate import propagation_iou
from vidal.tracking.identity import IdentityTracker
from vidal.tracking.siamfc import SiamFCNet, SiamFCTracker, SiamFCWeightsError, crops, load_siamfc
from vidal.tracking.train_siamfc import make_batch, pair_loss, sample_pairs, track_index

from test_tracking import write_video_file

REPO = Path(__file__).resolve().parents[1]
T, H, W, SIDE = 6, 96, 128, 16
STEP = np.array([5.0, 3.0])  # square motion per frame (x, y)


class GreyPool(nn.Module):
    """Hand-set embedding: (pixels - 128) average-pooled 8x8 — template matching at stride 8
    (127 -> 15, 255 -> 31: a 17x17 response, as AlexNet's 6 and 22)."""

    def forward(self, x):
        return nn.functional.avg_pool2d(x - 128.0, 8)


@pytest.fixture(scope="module")
def square(tmp_path_factory):
    """A bright square moving by STEP per frame over a dark, gently textured background."""
    rng = np.random.default_rng(0)
    background = rng.integers(20, 60, size=(H, W, 3), dtype=np.uint8)
    frames, boxes = [], []
    for t in range(T):
        f = background.copy()
        x, y = 20 + STEP[0] * t, 20 + STEP[1] * t
        f[int(y):int(y) + SIDE, int(x):int(x) + SIDE] = 230
        frames.append(f)
        boxes.append([x, y, x + SIDE, y + SIDE])
    path = tmp_path_factory.mktemp("square") / "square.h5"
    write_video_file(path, [T], h=H, w=W, frames=[np.stack(frames)], boxes=[(np.array(boxes), np.arange(T), np.ones(T))])
    import h5py   # complete it into a valid file: tools/train_siamfc.py checks its input (vidal.data.validate)
    with h5py.File(path, "r+") as f:
        f.attrs.update(split="test", generator_config="{}", seed=0, command="tests", created_by="tests")
        g = f["videos/v0"]
        g.attrs.update(subset="s", area="a", season="spring", daytime="day", weather="clear", seed=0)
        g["visible_fraction"][...] = 1.0
    return VideoDataset(path)


def test_alexnet_shapes_and_checkpoint_layout_round_trip(tmp_path):
    net = SiamFCNet().eval()
    keys = list(net.state_dict())
    assert keys[0] == "backbone.conv1.0.weight" and "backbone.conv1.1.running_var" in keys
    assert keys[-1] == "backbone.conv5.0.bias" and not any(k.startswith("head") for k in keys)
    with torch.no_grad():
        z, x = torch.rand(2, 3, 127, 127) * 255, torch.rand(6, 3, 255, 255) * 255
        assert net.backbone(z).shape == (2, 256, 6, 6)
        resp = net(z, x)
    assert resp.shape == (2, 3, 17, 17)
    path = tmp_path / "siamfc.pth"
    torch.save({"module." + k: v for k, v in net.state_dict().items()}, path)  # DataParallel prefix
    loaded = load_siamfc(path)
    with torch.no_grad():
        torch.testing.assert_close(loaded(z, x), resp)


def test_wrong_checkpoints_give_one_line_errors(tmp_path):
    state = SiamFCNet().state_dict()
    bad_shape = dict(state, **{"backbone.conv3.0.weight": torch.zeros(384, 256, 5, 5)})
    missing = {k: v for k, v in state.items() if k != "backbone.conv5.0.bias"}
    cases = {"shape.pth": bad_shape, "missing.pth": missing}
    for name, sd in cases.items():
        torch.save(sd, tmp_path / name)
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint at all")
    for name, match in (("shape.pth", "conv3.0.weight"), ("missing.pth", "conv5.0.bias"),
                        ("garbage.pth", "cannot be read"), ("absent.pth", "no such")):
        with pytest.raises(SiamFCWeightsError, match=match) as err:
            load_siamfc(tmp_path / name)
        assert name in str(err.value) and "\n" not in str(err.value)


def test_crops_are_centred_and_padded_with_the_mean_colour():
    img = torch.zeros(3, 20, 20)
    img[:, 4:16, 4:16] = 255.0  # bilinear sampling blends at edges: a crop well inside
    c = crops(img, torch.tensor([[10.0, 10.0], [0.0, 0.0]]), torch.tensor([4.0, 40.0]), 4)
    torch.testing.assert_close(c[0], torch.full((3, 4, 4), 255.0))
    assert c[1, 0, 0, 0] == pytest.approx(float(img.mean()), abs=1e-3)  # outside the image


def test_siamfc_tracks_a_moving_square_with_a_hand_set_embedding(square):
    tracker = SiamFCTracker(square, SiamFCNet(backbone=GreyPool()))
    gt = square.annotations(0)["boxes"]
    for frame, delta in ((0, 1), (0, 3), (5, -2), (4, -4)):
        out = tracker.propagate(0, frame, gt[frame:frame + 1], delta)
        target = gt[frame + delta]
        centre_err = np.abs((out[0, :2] + out[0, 2:]) / 2 - (target[:2] + target[2:]) / 2)
        assert centre_err.max() < 2.0, (frame, delta, out, target)
        size = out[0, 2:] - out[0, :2]
        assert np.all(np.abs(size - SIDE) < 0.15 * SIDE)
    ident = propagation_iou(IdentityTracker.for_dataset(square), square, deltas=(1, 2))
    res = propagation_iou(tracker, square, deltas=(1, 2))
    assert res["mean_iou"] > 0.8 > ident["mean_iou"] + 0.2
    # cache: asking again does not re-track; reset clears it; NaN / empty rows
    n_results = len(tracker._results)
    tracker.propagate(0, 0, gt[:1], 1)
    assert len(tracker._results) == n_results
    tracker.reset()
    assert not tracker._results
    out = tracker.propagate(0, 0, np.array([[np.nan] * 4, gt[0]]), 1)
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()
    assert tracker.propagate(0, 0, np.zeros((0, 4)), 1).shape == (0, 4)


def test_registry_and_weights_requirement(square, tmp_path):
    assert TRACKERS.get("siamfc") is SiamFCTracker
    with pytest.raises(SiamFCWeightsError, match="train_siamfc.py"):
        SiamFCTracker.for_dataset(square)
    assert isinstance(SiamFCTracker.for_dataset(square, allow_random=True), SiamFCTracker)


def test_training_loss_decreases_on_a_fixed_batch(square):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    tiny = nn.Sequential(nn.Conv2d(3, 8, 7, 8), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 1))
    net = SiamFCNet(backbone=tiny)
    batch = make_batch(square, sample_pairs(track_index(square), 4, max_gap=3, rng=rng), rng=rng)
    assert batch["z"].shape == (4, 3, 127, 127) and batch["x"].shape == (4, 3, 255, 255)
    assert batch["labels"].shape == (4, 1, 17, 17)
    torch.testing.assert_close(batch["weights"].sum((1, 2, 3)), torch.ones(4))  # balanced halves
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(8):
        loss = pair_loss(net, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses


def test_train_siamfc_tool_writes_a_loadable_checkpoint(square, tmp_path):
    spec = importlib.util.spec_from_file_location("_tool_train_siamfc", REPO / "tools" / "train_siamfc.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / "w.pth"
    r = CliRunner().invoke(tool.main, [square.paths[0], "--out", str(out), "--epochs", "1", "--pairs-per-epoch",
                                       "2", "--batch-size", "2", "--quiet"])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[-2] == f"wrote {out}"
    assert len(json.loads(r.output.splitlines()[0])["epoch_losses"]) == 1
    assert isinstance(load_siamfc(out), SiamFCNet)
    tracker = SiamFCTracker.for_dataset(square, weights=out)
    assert tracker.propagate(0, 0, square.annotations(0)["boxes"][:1], 1).shape == (1, 4)
    again = CliRunner().invoke(tool.main, [square.paths[0], "--out", str(out), "--quiet"])
    assert again.exit_code == 1 and "exists" in again.output
