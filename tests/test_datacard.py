"""The data card (synth/datacard.py) on tiny hand-made datasets whose figures are known exactly."""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from synth.datacard import (CAPTION_HEIGHT, LEGEND_HEIGHT, collect_stats, condition_of, render_markdown,
                            render_montage, write_datacard)
from vidal.data.writer import ShardWriter, merge_shards

CLASSES = ["pedestrian", "cyclist", "car", "wheelchair"]  # ids 1..4
PED, CAR, WC = 1, 3, 4
COMMAND = "python tools/generate.py --preset synthia-al --scale 0.001 --seed 7 --out /tmp/tiny"
CONFIG = {"name": "tiny", "preset": "synthia-al", "scale": 0.001, "resolution": [64, 48]}


def _load_tool(name):
    """Import ``tools/<name>.py`` (tools/ is a folder of scripts, not a package)."""
    path = Path(__file__).parents[1] / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"tools_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ann(boxes=(), labels=(), tracks=()):
    n = len(boxes)
    return {"boxes": np.asarray(boxes, np.float32).reshape(n, 4), "labels": np.asarray(labels, np.int32),
            "track_ids": np.asarray(tracks, np.int32), "visible_fraction": np.ones(n, np.float32),
            "truncation": np.zeros(n, np.float32), "occlusion": np.zeros(n, np.float32)}


def _video(path, name, attrs, frames, anns):
    T, H, W, _ = frames.shape
    with ShardWriter(path, name, n_frames=T, height=H, width=W, attrs=attrs) as w:
        for rgb, ann in zip(frames, anns):
            w.add_frame(rgb, ann)
    return path


def _attrs(subset, area, season, daytime, weather, seed):
    return {"subset": subset, "area": area, "season": season, "daytime": daytime, "weather": weather,
            "seed": seed}


def _base(h, w):
    """A textured frame with values in 20..200, so +12 never clips."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([20 + 180 * x / (w - 1), 20 + 180 * y / (h - 1), 20 + 90 * ((x // 8 + y // 8) % 3)], -1)
    return img.astype(np.uint8)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """train.h5: default_0000 (fall, city, 4 frames of 64x48, frame 2 empty, frames 0 and 1
    identical, then +10 and +2 on every pixel) and night_0000 (night, highway, 3 identical
    frames, one car standing still). test.h5: test_wc_0000 (rain, town, 2 frames of 32x24, a
    4x4 patch +96) and test_no_wc_0000 (winter, city, 1 empty frame)."""
    d = tmp_path_factory.mktemp("ds")
    root = {"classes": CLASSES, "fps": 25.0, "generator_config": CONFIG, "seed": 7, "command": COMMAND,
            "created_by": "synth 0.1.0"}

    b = _base(48, 64)
    default = np.stack([b, b, b + 10, b + 12])
    car, ped = [10, 10, 50, 46], [2, 4, 8, 24]            # heights 36 and 20
    anns = [_ann([car, ped], [CAR, PED], [1, 2]),
            _ann([car, [4, 4, 10, 24]], [CAR, PED], [1, 2]),  # car IoU 1, pedestrian IoU 0.5
            _ann(),                                          # empty frame
            _ann([[12, 10, 52, 46]], [CAR], [1])]            # not consecutive with frame 1
    s1 = _video(d / "s1.h5", "default_0000", _attrs("default", "city", "fall", "day", "clear", 1), default, anns)
    night = np.repeat(np.full((1, 48, 64, 3), 15, np.uint8), 3, axis=0)
    s2 = _video(d / "s2.h5", "night_0000", _attrs("night", "highway", "spring", "night", "clear", 2), night,
                [_ann([[0, 0, 40, 40]], [CAR], [1])] * 3)   # height 40, IoU 1, 1
    train = merge_shards(d / "train.h5", [s1, s2], {**root, "split": "train"})

    t = _base(24, 32)
    t2 = t.copy()
    t2[4:8, 4:8] += 96                                       # mean abs diff 2.0, PSNR 25.3 dB
    s3 = _video(d / "s3.h5", "test_wc_0000", _attrs("test_wc", "town", "spring", "day", "rain", 3),
                np.stack([t, t2]), [_ann([[4, 2, 14, 22]], [WC], [5]), _ann([[6, 2, 16, 22]], [WC], [5])])
    s4 = _video(d / "s4.h5", "test_no_wc_0000", _attrs("test_no_wc", "city", "winter", "day", "clear", 4),
                t[None], [_ann()])
    test = merge_shards(d / "test.h5", [s3, s4], {**root, "split": "test"})
    return [train, test]


@pytest.fixture(scope="module")
def stats(dataset):
    return collect_stats(dataset)


def test_condition_collapses_attrs():
    assert condition_of("spring", "night", "rain") == "night"
    assert condition_of("winter", "day", "rain") == "rain"
    assert condition_of("fall", "day", "clear") == "fall"
    assert condition_of("unknown", "unknown", "unknown") == "unknown"


def test_counts_per_split_and_subset(stats):
    train, test = stats["splits"]["train"], stats["splits"]["test"]
    assert list(stats["splits"]) == ["train", "test"]
    assert (train["sequences"], train["frames"], train["boxes"]) == (2, 7, 8)
    assert (test["sequences"], test["frames"], test["boxes"]) == (2, 3, 2)
    assert list(train["subsets"]) == ["default", "night"]
    assert list(test["subsets"]) == ["test_no_wc", "test_wc"]
    assert train["subsets"]["default"]["frames"] == 4 and train["subsets"]["night"]["frames"] == 3
    assert stats["classes"] == CLASSES


def test_objects_and_tracks_per_class(stats):
    train, test = stats["splits"]["train"], stats["splits"]["test"]
    assert train["objects"] == {"pedestrian": 2, "cyclist": 0, "car": 6, "wheelchair": 0}
    assert train["tracks"] == {"pedestrian": 1, "cyclist": 0, "car": 2, "wheelchair": 0}
    assert train["subsets"]["night"]["objects"]["car"] == 3
    assert test["objects"] == {"pedestrian": 0, "cyclist": 0, "car": 0, "wheelchair": 2}
    assert test["tracks"]["wheelchair"] == 1


def test_frames_per_condition_and_area(stats):
    train, test = stats["splits"]["train"], stats["splits"]["test"]
    assert train["frames_per_condition"] == {"fall": 4, "night": 3}
    assert train["frames_per_area"] == {"city": 4, "highway": 3}
    assert test["frames_per_condition"] == {"winter": 1, "rain": 2}
    assert test["frames_per_area"] == {"city": 1, "town": 2}
    assert test["subsets"]["test_wc"]["frames_per_condition"] == {"rain": 2}


def test_empty_frames(stats):
    train, test = stats["splits"]["train"], stats["splits"]["test"]
    assert train["empty_frames"] == 1 and train["empty_fraction"] == pytest.approx(1 / 7)
    assert train["subsets"]["night"]["empty_fraction"] == 0
    assert test["empty_frames"] == 1 and test["empty_fraction"] == pytest.approx(1 / 3)
    assert test["subsets"]["test_no_wc"]["empty_fraction"] == 1


def test_box_sizes(stats):
    train = stats["splits"]["train"]
    assert train["box_height_median_px"] == 36          # 20 20 36 36 36 40 40 40
    assert train["small_box_fraction"] == pytest.approx(2 / 8)
    assert train["subsets"]["default"]["small_box_fraction"] == pytest.approx(2 / 5)
    assert train["subsets"]["night"]["box_height_median_px"] == 40
    assert stats["splits"]["test"]["small_box_fraction"] == 1


def test_track_iou_counts_only_consecutive_frames(stats):
    train, test = stats["splits"]["train"], stats["splits"]["test"]
    assert train["track_iou_pairs"] == 4                 # car 0-1, pedestrian 0-1, night car 0-1, 1-2
    assert train["track_iou_mean"] == pytest.approx((1 + 0.5 + 1 + 1) / 4)
    assert train["subsets"]["default"]["track_iou_mean"] == pytest.approx(0.75)
    assert test["track_iou_mean"] == pytest.approx(2 / 3)
    assert test["subsets"]["test_no_wc"]["track_iou_mean"] is None


def test_pixel_redundancy_exact_on_all_pairs(stats):
    train = stats["splits"]["train"]["redundancy"]
    assert train["pairs"] == 5                            # fewer than 200: all of them
    assert train["mean_abs_diff"] == pytest.approx((0 + 10 + 2 + 0 + 0) / 5)
    assert train["psnr_above_30db"] == pytest.approx(4 / 5)  # only the +10 pair is below
    night = stats["splits"]["train"]["subsets"]["night"]["redundancy"]
    assert night["mean_abs_diff"] == 0 and night["psnr_above_30db"] == 1
    assert math.isinf(night["median_psnr_db"])
    test = stats["splits"]["test"]["redundancy"]
    assert test["pairs"] == 1 and test["mean_abs_diff"] == pytest.approx(2.0)
    assert test["psnr_above_30db"] == 0
    assert test["median_psnr_db"] == pytest.approx(10 * math.log10(255 ** 2 / 192))
    assert stats["splits"]["test"]["subsets"]["test_no_wc"]["redundancy"]["pairs"] == 0


def test_pixel_redundancy_sample_is_seeded(dataset):
    a = collect_stats(dataset, redundancy_pairs=2, seed=3)["splits"]["train"]["redundancy"]
    b = collect_stats(dataset, redundancy_pairs=2, seed=3)["splits"]["train"]["redundancy"]
    assert a == b and a["pairs"] == 2
    # the mean of two distinct pairs out of the diffs 0, 10, 2, 0, 0
    assert a["mean_abs_diff"] in {0.0, 5.0, 1.0, 6.0}


def test_provenance(stats, dataset):
    assert stats["command"] == COMMAND and stats["seed"] == 7
    assert stats["generator_config"] == CONFIG and stats["fps"] == 25.0
    assert stats["resolutions"] == ["32x24", "64x48"]
    train = stats["files"][0]
    assert train["resolutions"] == ["64x48"]
    assert train["bytes_per_frame"] == pytest.approx(os.path.getsize(dataset[0]) / 7)


def test_markdown_has_command_and_tables(stats):
    md = render_markdown(stats, title="tiny", montage="tiny_montage.png")
    assert md.startswith("# Data card: tiny")
    assert f"```bash\n{COMMAND}\n```" in md
    assert "seed `7`" in md and "`scale`: 0.001" in md
    assert json.dumps(CONFIG, indent=2, sort_keys=True) in md
    assert "| split | subset | sequences | frames | boxes | frames without objects |\n|:---|:---|---:|" in md
    assert "| train | default | 1 | 4 | 5 | 1 (25.0%) |" in md
    assert "| wheelchair | 0 | 0.0% | 0 | 2 | 100.0% | 1 |" in md       # boxes, %, tracks per split
    assert "| night | 3 | 42.9% | 0 | 0.0% |" in md                      # condition table
    assert "| highway | 3 | 42.9% | 0 | 0.0% |" in md                    # area table
    assert "| train | night | 2 | 0.00 | 100.0% | inf (identical) | 1.000 | 2 |" in md
    assert "![" in md and "(tiny_montage.png)" in md
    assert "## Intended use and caveats" in md and "synthetic" in md


def test_montage_png(dataset, tmp_path):
    out = render_montage(dataset, tmp_path / "m.png", n=12, cols=4, tile_width=320)
    img = cv2.imread(str(out))
    # 10 frames in the dataset -> 10 tiles -> 3 rows of 4; 64x48 and 32x24 both scale to 320x240
    assert img.shape == (3 * (240 + CAPTION_HEIGHT) + LEGEND_HEIGHT, 4 * 320, 3)
    small = cv2.imread(str(render_montage(dataset, tmp_path / "s.png", n=3, cols=3, tile_width=160)))
    assert small.shape == (120 + CAPTION_HEIGHT + LEGEND_HEIGHT, 3 * 160, 3)
    # the car box of a default_0000 or night_0000 tile is drawn in the car colour somewhere
    assert (np.abs(img.astype(int) - [255, 120, 40]).sum(-1) == 0).any()  # BGR of (40, 120, 255)


def test_write_datacard_and_cli(dataset, tmp_path):
    md_path, png_path = write_datacard(dataset, tmp_path / "cards", name="tiny")
    assert md_path == tmp_path / "cards" / "tiny.md" and png_path == tmp_path / "cards" / "tiny_montage.png"
    assert "(tiny_montage.png)" in md_path.read_text()
    assert cv2.imread(str(png_path)) is not None

    args = [*map(str, dataset), "--out", str(tmp_path / "cli"), "--name", "t2"]
    result = CliRunner().invoke(_load_tool("make_datacard").main, args)
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'cli' / 't2.md'}" in result.output
    assert (tmp_path / "cli" / "t2_montage.png").is_file()
