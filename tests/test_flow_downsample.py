"""Flow caches stored at reduced resolution (``downsample``, format ``vidal-flow-v2``) and cache
reading details: reduced-resolution sampling matches full resolution on smooth fields (centre and
median modes), old ``vidal-flow-v1`` caches without the attribute still load, bad attributes give a
one-line error naming the file and the field, the EPE upsampling equals the tracker's sampling, and
compute_flow_cache / tools/compute_flow.py write and report it."""

from __future__ import annotations

import json

import cv2
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from vidal.data import VideoDataset
from vidal.tracking import FlowTracker
from vidal.tracking.flow import _bilinear, to_grid
from vidal.tracking.flow_cache import (
    FLOW_FORMAT,
    FLOW_FORMAT_V2,
    FlowCache,
    FlowCacheError,
    FlowCacheWriter,
    downsample_flow,
)
from vidal.tracking.flow_methods import DISFlow, compute_flow_cache

from test_tracking import H, W, const, load_tool, write_video_file  # noqa: E402


def smooth(t, h=H, w=W):
    """A smooth field (linear plus a slow sine), different per frame."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    f = np.empty((h, w, 2), np.float32)
    f[..., 0] = 1.5 + 0.05 * x - 0.02 * y + 0.3 * np.sin(x / 17.0 + t)
    f[..., 1] = -0.75 + 0.03 * y + 0.2 * np.cos(y / 13.0 - t)
    return f


def make(tmp_path, dataset, fields, *, downsample=1, name=None):
    out = tmp_path / (name or f"ds{downsample}.flow.h5")
    writer = FlowCacheWriter(out, dataset, method="field", downsample=downsample)
    for v, info in enumerate(dataset.videos):
        fwd, bwd = writer.begin_video(v)
        for t in range(info.n_frames - 1):
            f = fields(t)
            writer.write(fwd, t, f)
            writer.write(bwd, t, -f)
        writer.end_video(v)
    return writer.finish()


@pytest.fixture
def six(tmp_path):
    return write_video_file(tmp_path / "six.h5", [6, 2])


def test_block_mean_and_shapes():
    f = np.arange(5 * 7 * 2, dtype=np.float32).reshape(5, 7, 2)
    np.testing.assert_array_equal(downsample_flow(f, 1), f)
    small = downsample_flow(f, 2)
    assert small.shape == (3, 4, 2)
    np.testing.assert_allclose(small[0, 0], f[:2, :2].reshape(-1, 2).mean(0))
    np.testing.assert_allclose(small[2, 3], f[4, 6])  # a partial corner block: its own pixel only
    np.testing.assert_allclose(small[1, 3], f[2:4, 6].mean(0))


@pytest.mark.parametrize("s", [2, 4])
def test_reduced_resolution_matches_full_resolution_on_smooth_fields(tmp_path, six, s):
    full = FlowTracker.for_dataset(six, flow=make(tmp_path, six, smooth), mode="center")
    red = FlowTracker.for_dataset(six, flow=make(tmp_path, six, smooth, downsample=s), mode="center")
    assert full.downsample == 1 and red.downsample == s
    rng = np.random.default_rng(0)
    xy = rng.uniform([6, 6], [W - 18, H - 18], size=(40, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(4, 12, size=(40, 2))], 1).astype(np.float32)
    for t, d in ((0, 1), (1, 3), (5, -2), (3, -1)):
        np.testing.assert_allclose(red.propagate(0, t, boxes, d), full.propagate(0, t, boxes, d), atol=0.1)
    med_full = FlowTracker.for_dataset(six, flow=full.cache.path, mode="median")
    med_red = FlowTracker.for_dataset(six, flow=red.cache.path, mode="median")
    big = np.array([[8, 8, 40, 30], [20, 4, 56, 40]], np.float32)
    np.testing.assert_allclose(med_red.propagate(0, 0, big, 2), med_full.propagate(0, 0, big, 2), atol=0.25)


@pytest.mark.parametrize("mode", ["center", "median"])
def test_constant_translation_is_exact_at_reduced_resolution(tmp_path, six, mode):
    path = make(tmp_path, six, lambda t: const(1.25, -0.5), downsample=4)
    tr = FlowTracker.for_dataset(six, flow=path, mode=mode)
    boxes = np.array([[10, 20, 20, 30], [30.5, 5, 40, 15.25], [0, 0, 1, 1]], np.float32)
    shift = np.array([1.25, -0.5, 1.25, -0.5], np.float32)
    np.testing.assert_allclose(tr.propagate(0, 1, boxes[:2], 3), boxes[:2] + 3 * shift, atol=1e-5)
    np.testing.assert_allclose(tr.propagate(0, 4, boxes[:2], -2), boxes[:2] - 2 * shift, atol=1e-5)
    np.testing.assert_allclose(tr.propagate(0, 1, boxes[2:], 1), [[1.25, 0, 2.25, 0.5]], atol=1e-5)  # clipped


def test_format_versions_and_old_caches_without_the_attribute(tmp_path, six):
    v1 = make(tmp_path, six, smooth)
    v2 = make(tmp_path, six, smooth, downsample=2)
    with h5py.File(v1, "r") as f:
        assert f.attrs["format"] == FLOW_FORMAT and f.attrs["downsample"] == 1
    with h5py.File(v2, "r") as f:
        assert f.attrs["format"] == FLOW_FORMAT_V2 and f.attrs["downsample"] == 2
        assert f["videos/v0/forward"].shape == (5, H // 2, W // 2, 2)
    boxes = np.array([[10, 12, 30, 28]], np.float32)
    want = FlowTracker.for_dataset(six, flow=v1).propagate(0, 0, boxes, 3)
    with h5py.File(v1, "a") as f:  # as written before the attribute existed
        del f.attrs["downsample"]
    old = FlowTracker.for_dataset(six, flow=v1)
    assert old.downsample == 1 and old.cache.downsample == 1
    np.testing.assert_array_equal(old.propagate(0, 0, boxes, 3), want)


@pytest.mark.parametrize("value", [0, -2, 2.5, "4", True])
def test_bad_downsample_attribute_is_a_one_line_error(tmp_path, six, value):
    path = make(tmp_path, six, smooth, downsample=2)
    with h5py.File(path, "a") as f:
        f.attrs["downsample"] = value
    with pytest.raises(FlowCacheError) as err:
        FlowCache(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "'downsample'" in msg


def test_shape_inconsistent_with_downsample_is_a_one_line_error(tmp_path, six):
    path = make(tmp_path, six, smooth)
    with h5py.File(path, "a") as f:
        f.attrs["downsample"] = 2  # the arrays are full resolution
    cache = FlowCache(path)
    with pytest.raises(FlowCacheError) as err:
        cache.check_dataset(six)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "shape" in msg and "'downsample'" in msg
    with pytest.raises(FlowCacheError, match="downsample"):
        FlowCacheWriter(tmp_path / "bad.flow.h5", six, method="field", downsample=0)


@pytest.mark.parametrize("s", [1, 2, 4])
def test_epe_upsampling_equals_the_tracker_sampling(s):
    small = downsample_flow(smooth(0), s)
    up = cv2.resize(small, None, fx=s, fy=s, interpolation=cv2.INTER_LINEAR)[:H, :W] if s > 1 else small
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    got = _bilinear(small, to_grid(x.ravel(), s), to_grid(y.ravel(), s)).reshape(H, W, 2)
    np.testing.assert_allclose(got, up, atol=1e-3)


def test_compute_flow_cache_downsample_and_resume_keeps_the_setting(tmp_path, six):
    class Const(DISFlow):
        def __call__(self, a, b):
            return np.broadcast_to(const(0.5, 0.25), a.shape[:3] + (2,)).copy()

    out = tmp_path / "c.flow.h5"
    res = compute_flow_cache(six, out, Const(), downsample=4)
    assert res["ds_epe_mean"] == pytest.approx(0.0, abs=1e-6)
    cache = FlowCache(out)
    cache.check_dataset(six)
    assert cache.downsample == 4 and cache.read("v0", "forward", 0).shape == (H // 4, W // 4, 2)
    # a .partial of another downsample is not resumed
    FlowCacheWriter(tmp_path / "p.flow.h5", six, method="dis", options={"preset": "medium"}).close()
    w = FlowCacheWriter(tmp_path / "p.flow.h5", six, method="dis", options={"preset": "medium"}, downsample=2)
    assert w.resumed == 0
    w.close()


def test_compute_flow_cli_downsample(tmp_path):
    from tiny_videos import write_split

    write_split(tmp_path / "valid.h5", [6, 2], seed=0, split="test")  # the tool validates its input first
    six = VideoDataset(tmp_path / "valid.h5")
    r = CliRunner().invoke(load_tool("compute_flow"), [six.paths[0], "--downsample", "2", "--out",
                                                      str(tmp_path / "cli.flow.h5"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "ds_epe_mean" in json.loads(r.stdout.splitlines()[0])
    assert FlowCache(tmp_path / "cli.flow.h5").downsample == 2
    bad = CliRunner().invoke(load_tool("compute_flow"), [six.paths[0], "--downsample", "0"])
    assert bad.exit_code == 2 and "--downsample" in bad.output
