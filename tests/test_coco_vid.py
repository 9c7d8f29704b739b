"""Tests of COCO-VID export / import (vidal/data/coco_vid.py, tools/{export,import}_coco_vid.py)."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vidal.data.coco_vid import CocoVidFormatError, export_coco_vid, import_coco_vid
from vidal.data.dataset import VideoDataset
from vidal.data.validate import validate_file
from vidal.data.writer import ShardWriter, frame_annotations, merge_shards

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["car", "pedestrian", "wheelchair"]
SIZES = {"town_0000": (20, 14, 4), "town_0001": (18, 10, 1), "city_0002": (20, 14, 3)}   # W, H, T


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A vidal file with awkward float boxes, sparse track ids and frames without boxes."""
    d = tmp_path_factory.mktemp("src")
    rng = np.random.default_rng(1)
    shards = []
    for k, (name, (W, H, T)) in enumerate(SIZES.items()):
        attrs = dict(subset=name.split("_")[0], area="town", season="fall", daytime="night", weather="rain", seed=k)
        with ShardWriter(d / f"{name}.h5", name, n_frames=T, height=H, width=W, attrs=attrs) as w:
            for _ in range(T):
                n = int(rng.integers(0, 4))
                x1 = rng.uniform(0, W / 2, n).astype(np.float32)
                y1 = rng.uniform(0, H / 2, n).astype(np.float32)
                x2 = np.minimum(x1 + rng.uniform(0.01, W / 2, n), W).astype(np.float32)
                y2 = np.minimum(y1 + rng.uniform(0.01, H / 2, n), H).astype(np.float32)
                occ = rng.uniform(0, 0.9, n).astype(np.float32)
                trunc = rng.uniform(0, 0.5, n).astype(np.float32)
                ann = dict(boxes=np.stack([x1, y1, x2, y2], 1), labels=rng.integers(1, 4, n),
                           track_ids=rng.choice([2, 7, 9, 40], n, replace=False), occlusion=occ,
                           truncation=trunc, visible_fraction=(1 - occ) * (1 - trunc))
                w.add_frame(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), ann)
        shards.append(d / f"{name}.h5")
    attrs = dict(classes=CLASSES, fps=12.5, split="test", generator_config={"preset": "x"}, seed=5,
                 command="pytest", created_by="synth 0.1.0")
    return merge_shards(d / "test.h5", shards, attrs)


def _all_gt(ds: VideoDataset) -> list[dict]:
    return [ds.ground_truth(i) for i in range(len(ds))]


def test_round_trip_preserves_everything(source, tmp_path):
    json_path = export_coco_vid(source, tmp_path / "coco", image_format="png", progress=False)
    assert json_path == tmp_path / "coco" / "test.json"
    out = tmp_path / "back.h5"
    summary = import_coco_vid(json_path, tmp_path / "coco" / "test", out, progress=False)
    assert validate_file(out) == []
    a, b = VideoDataset([source]), VideoDataset([out])
    assert b.classes == CLASSES and b.fps == 12.5 and b.file_attrs[0]["split"] == "test"
    assert [v.name for v in b.videos] == [v.name for v in a.videos]
    for va, vb in zip(a.videos, b.videos):
        assert (vb.n_frames, vb.height, vb.width) == (va.n_frames, va.height, va.width)
        for key in ("subset", "area", "season", "daytime", "weather", "seed"):
            assert vb.attrs[key] == va.attrs[key]
    n_boxes = 0
    for i in range(len(a)):
        ga, gb = a[i], b[i]
        for key in ("boxes", "labels", "track_ids", "occlusion", "truncation", "visible_fraction", "image"):
            assert ga[key].dtype == gb[key].dtype and np.array_equal(ga[key], gb[key]), (i, key)
        n_boxes += len(ga["boxes"])
    assert n_boxes > 10 and summary.n_boxes == n_boxes and summary.n_frames == len(a)


def test_exported_json_follows_coco_vid(source, tmp_path):
    json_path = export_coco_vid(source, tmp_path, image_format="jpg", progress=False)
    doc = json.loads(json_path.read_text())
    assert doc["categories"] == [{"id": 1, "name": "car"}, {"id": 2, "name": "pedestrian"},
                                 {"id": 3, "name": "wheelchair"}]
    assert [(v["id"], v["name"]) for v in doc["videos"]] == [(1, "city_0002"), (2, "town_0000"), (3, "town_0001")]
    im = doc["images"][4]   # town_0000, frame 1
    assert (im["video_id"], im["frame_id"], im["file_name"], im["width"], im["height"]) == \
        (2, 1, "town_0000/000001.jpg", 20, 14)
    assert cv2.imread(str(tmp_path / "test" / im["file_name"])).shape == (14, 20, 3)
    ds = VideoDataset([source])
    images = {im["id"]: im for im in doc["images"]}
    instances = {}
    for a in doc["annotations"]:
        im = images[a["image_id"]]
        assert a["video_id"] == im["video_id"] and a["iscrowd"] == 0
        gt = ds.ground_truth(ds.index_of(im["video_id"] - 1, im["frame_id"]))
        k = gt["track_ids"].tolist().index(a["track_id"])
        x1, y1, x2, y2 = gt["boxes"][k].tolist()
        assert a["bbox"] == [x1, y1, x2 - x1, y2 - y1] and a["category_id"] == gt["labels"][k]
        assert a["area"] == pytest.approx((x2 - x1) * (y2 - y1))
        instances.setdefault(a["instance_id"], set()).add((a["video_id"], a["track_id"]))
    assert all(len(s) == 1 for s in instances.values())   # instance ids are unique over the file
    assert len({next(iter(s)) for s in instances.values()}) == len(instances)


def _write_png(path: Path, W: int, H: int, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((H, W, 3), value, np.uint8))


def _plain_doc() -> dict:
    """An mmtracking-style json without vidal's extra keys."""
    return {
        "categories": [{"id": 5, "name": "bicycle"}, {"id": 2, "name": "car"}],
        "videos": [{"id": 10, "name": "train/seq_a"}, {"id": 11, "name": "seq_empty"}],
        "images": [
            {"id": 101, "video_id": 10, "frame_id": 1, "file_name": "a/1.png", "width": 8, "height": 6},
            {"id": 100, "video_id": 10, "frame_id": 0, "file_name": "a/0.png", "width": 8, "height": 6},
        ],
        "annotations": [
            {"id": 1, "image_id": 100, "video_id": 10, "category_id": 5, "instance_id": 33,
             "bbox": [1, 1, 3, 2], "area": 6, "iscrowd": 0, "occluded": True},
            {"id": 2, "image_id": 101, "category_id": 2, "instance_id": 8, "bbox": [-2, 1, 5, 10],
             "area": 50, "iscrowd": 0},
            {"id": 3, "image_id": 101, "category_id": 5, "instance_id": 33, "bbox": [2, 1, 3, 2], "iscrowd": 0},
            {"id": 4, "image_id": 101, "category_id": 2, "instance_id": 9, "bbox": [0, 0, 8, 6], "iscrowd": 1},
            {"id": 5, "image_id": 100, "category_id": 2, "instance_id": 12, "bbox": [9, 1, 3, 2], "iscrowd": 0},
        ],
    }


@pytest.fixture
def plain(tmp_path) -> tuple[Path, Path]:
    images = tmp_path / "img"
    _write_png(images / "a/0.png", 8, 6, 10)
    _write_png(images / "a/1.png", 8, 6, 20)
    path = tmp_path / "plain.json"
    path.write_text(json.dumps(_plain_doc()))
    return path, images


def test_import_plain_coco_vid(plain, tmp_path):
    path, images = plain
    out = tmp_path / "plain.h5"
    summary = import_coco_vid(path, images, out, progress=False)
    assert validate_file(out) == []
    assert (summary.n_videos, summary.n_frames, summary.n_boxes) == (1, 2, 3)
    assert (summary.n_skipped_videos, summary.n_crowd, summary.n_skipped_boxes) == (1, 1, 1)
    ds = VideoDataset([out])
    assert ds.classes == ["car", "bicycle"] and ds.fps == 30.0 and ds.file_attrs[0]["split"] == "imported"
    assert ds.videos[0].name == "train__seq_a" and ds.videos[0].attrs["source_name"] == "train/seq_a"
    f0, f1 = ds[0], ds[1]                          # ordered by frame_id, not by position in the json
    assert f0["image"][0, 0, 0] == 10 and f1["image"][0, 0, 0] == 20
    assert f0["boxes"].tolist() == [[1, 1, 4, 3]] and f0["labels"].tolist() == [2]   # box at x=9 is outside
    assert f0["occlusion"].tolist() == [0.5] and f0["track_ids"].tolist() == [2]     # instances 8, 33 -> 1, 2
    assert f1["boxes"].tolist() == [[0, 1, 3, 6], [2, 1, 5, 3]]                       # clipped to the image
    assert f1["labels"].tolist() == [1, 2] and f1["track_ids"].tolist() == [1, 2]


def _broken(doc: dict, edit) -> dict:
    doc = copy.deepcopy(doc)
    edit(doc)
    return doc


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("images"), "images: missing"),
    (lambda d: d.update(videos={}), "videos: expected a list, got dict"),
    (lambda d: d["annotations"][2].update(bbox=[1, 2]), "annotations[2].bbox: expected 4 numbers [x, y, w, h], got [1, 2]"),
    (lambda d: d["annotations"][1].update(bbox=[1, "a", 2, 2]), "annotations[1].bbox: expected 4 numbers"),
    (lambda d: d["annotations"][0].update(image_id=7), "annotations[0].image_id: 7 is not the id of an entry of images"),
    (lambda d: d["annotations"][0].update(category_id=1), "annotations[0].category_id: 1 is not the id"),
    (lambda d: d["annotations"][0].pop("instance_id"), "annotations[0].instance_id: missing"),
    (lambda d: d["annotations"][0].update(video_id=11), "annotations[0].video_id: 11, but its image 100 belongs to video 10"),
    (lambda d: d["images"][0].update(frame_id="one"), "images[0].frame_id: expected an integer, got 'one'"),
    (lambda d: d["images"][0].update(frame_id=0), "images[1].frame_id: frame 0 of video 'train/seq_a' appears twice"),
    (lambda d: d["images"][1].update(width=9), "images[1].width: 9 x 6 differs from the other frames"),
    (lambda d: d["images"][1].update(video_id=3), "images[1].video_id: 3 is not the id of an entry of videos"),
    (lambda d: d["categories"][1].update(id=5), "categories[1].id: duplicate category id 5"),
    (lambda d: d["annotations"][2].update(instance_id=8), "annotations[2].instance_id: track 1 already has a box"),
])
def test_malformed_json_names_file_and_field(plain, tmp_path, edit, message):
    path, images = plain
    path.write_text(json.dumps(_broken(_plain_doc(), edit)))
    out = tmp_path / "x.h5"
    with pytest.raises(CocoVidFormatError, match=re.escape(f"{path}: {message}")):
        import_coco_vid(path, images, out, progress=False)
    assert not out.exists()


def test_invalid_json_and_missing_image(plain, tmp_path):
    path, images = plain
    path.write_text('{"categories": [}')
    with pytest.raises(CocoVidFormatError, match=re.escape(f"{path}: not valid JSON (line 1, column 17")):
        import_coco_vid(path, images, tmp_path / "x.h5", progress=False)
    path.write_text(json.dumps(_plain_doc()))
    (images / "a/1.png").unlink()
    out = tmp_path / "x.h5"
    with pytest.raises(CocoVidFormatError, match=re.escape(f"1.png: cannot be read as an image ({path}: images[0].file_name)")):
        import_coco_vid(path, images, out, progress=False)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["img", "plain.json"]


def test_clis_round_trip(source, tmp_path):
    result = CliRunner().invoke(_tool("export_coco_vid"), [str(source), "--out", str(tmp_path / "c"),
                                                           "--image-format", "png", "--quiet"])
    assert result.exit_code == 0, result.output
    json_path = tmp_path / "c" / "test.json"
    assert f"wrote {json_path}" in result.output
    out = tmp_path / "r.h5"
    result = CliRunner().invoke(_tool("import_coco_vid"), [str(json_path), "--images", str(tmp_path / "c" / "test"),
                                                           "--out", str(out), "--split", "again", "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and validate_file(out) == []
    a, b = VideoDataset([source]), VideoDataset([out])
    assert b.file_attrs[0]["split"] == "again"
    assert all(np.array_equal(x["boxes"], y["boxes"]) and np.array_equal(x["track_ids"], y["track_ids"])
               for x, y in zip(_all_gt(a), _all_gt(b)))
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    result = CliRunner().invoke(_tool("import_coco_vid"), [str(bad), "--images", str(tmp_path), "--out",
                                                           str(tmp_path / "z.h5"), "--quiet"])
    assert result.exit_code == 1 and f"Error: {bad}: expected a JSON object at the top level" in result.output


# --- path escapes (issue 15) -------------------------------------------------------------------

@pytest.mark.parametrize("file_name", ["../../secret/outside.png", "ABS", "a/../../outside.png", "LINK"])
def test_import_refuses_file_names_outside_images(plain, tmp_path, file_name):
    path, images = plain
    outside = tmp_path / "secret" / "outside.png"
    _write_png(outside, 8, 6, 99)
    if file_name == "ABS":
        file_name = str(outside)
    if file_name == "LINK":
        (images / "a" / "link.png").symlink_to(outside)
        file_name = "a/link.png"
    doc = _plain_doc()
    doc["images"][1]["file_name"] = file_name
    path.write_text(json.dumps(doc))
    out = tmp_path / "x.h5"
    result = CliRunner().invoke(_tool("import_coco_vid"), [str(path), "--images", str(images), "--out", str(out),
                                                           "--quiet"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    line, = result.output.strip().splitlines()
    assert line.startswith(f"Error: {path}: images[1].file_name: ")
    assert "outside --images" in line and "pass the folder that holds the images as --images" in line
    assert not out.exists()


@pytest.mark.parametrize("name", ["..", ".", "a/../b", "x\x00y", "tab\there", "a\\b", "//"])
def test_import_refuses_unsafe_video_names(plain, tmp_path, name):
    path, images = plain
    doc = _plain_doc()
    doc["videos"][0]["name"] = name
    path.write_text(json.dumps(doc))
    out = tmp_path / "x.h5"
    with pytest.raises(CocoVidFormatError, match=re.escape(f"{path}: videos[0].name: ")):
        import_coco_vid(path, images, out, progress=False)
    assert not out.exists()


def _file_with_video_named(tmp_path, name: str) -> Path:
    import h5py
    good = tmp_path / "good.h5"
    with ShardWriter(good, "ok", n_frames=1, height=4, width=4,
                     attrs=dict(subset="s", area="a", season="s", daytime="d", weather="w", seed=0)) as w:
        w.add_frame(np.zeros((4, 4, 3), np.uint8), frame_annotations(np.zeros((0, 4)), [], []))
    path = merge_shards(tmp_path / "evil.h5", [good], dict(classes=CLASSES, fps=1.0, split="test",
                                                             generator_config={}, seed=0, command="x",
                                                             created_by="x"))
    with h5py.File(path, "a") as f:
        f.move("videos/ok", f"videos/{name}")
    return path


@pytest.mark.parametrize("name", ["..", "a\\b", "x\x01"])
def test_validator_and_export_refuse_unsafe_video_names(tmp_path, name):
    path = _file_with_video_named(tmp_path, name)
    problems = validate_file(path)
    assert any(p.startswith(f"{path}: videos: video name ") for p in problems), problems
    out = tmp_path / "deep" / "out"
    result = CliRunner().invoke(_tool("export_coco_vid"), [str(path), "--out", str(out), "--image-format", "png",
                                                           "--quiet"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    line, = result.output.strip().splitlines()
    assert line.startswith(f"Error: {path}: videos: video name ") and "tools/validate_dataset.py" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.h5", "good.h5"]   # nothing written anywhere


def test_export_confines_frames_to_out_through_symlinks(source, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "test").symlink_to(elsewhere, target_is_directory=True)    # <stem> folder points out of --out
    with pytest.raises(Exception, match="outside --out"):
        export_coco_vid(source, out, image_format="png", progress=False)
    assert list(elsewhere.iterdir()) == [] and sorted(p.name for p in out.iterdir()) == ["test"]


def test_export_of_corrupt_chunk_leaves_no_frames(source, tmp_path):
    import shutil
    import h5py
    bad = tmp_path / "test.h5"
    shutil.copy(source, bad)
    with h5py.File(bad, "r") as f:     # the middle frame's chunk of the first video (the validator's quick check
        ds = f["videos/city_0002/frames"]   # reads only the first and last)
        offset = ds.id.get_chunk_info(1).byte_offset
    with open(bad, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * 64)
    out = tmp_path / "out"
    result = CliRunner().invoke(_tool("export_coco_vid"), [str(bad), "--out", str(out), "--image-format", "png",
                                                           "--quiet"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    line, = result.output.strip().splitlines()
    assert line.startswith(f"Error: {bad}: videos/city_0002/frames: frame 1 cannot be read")
    assert not out.exists() or list(out.iterdir()) == []
