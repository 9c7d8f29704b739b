"""Tests of the ImageNet-VID importer (vidal/data/imagenet_vid.py, tools/import_imagenet_vid.py)
on a tiny fake ILSVRC2015 tree written by the test."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vidal.data.dataset import VideoDataset
from vidal.data.imagenet_vid import (AnnotationError, WNID_TO_NAME, import_imagenet_vid, incomplete_frames,
                                     parse_annotation, resolve_classes)
from vidal.data.validate import validate_file

REPO = Path(__file__).resolve().parents[1]
W, H = 24, 16
CAR, BICYCLE, MOTO, DOG = "n02958343", "n02834778", "n03790512", "n02084071"
#: colour of frame t of a video: R, G, B (distinct, so a BGR/RGB swap is caught)
COLOUR = (200, 40, 90)


def _xml(objects, width=W, height=H) -> str:
    """objects: (trackid, wnid, xmin, ymin, xmax, ymax, occluded[, generated])."""
    parts = [f"<annotation><folder>x</folder><filename>f</filename><size><width>{width}</width>"
             f"<height>{height}</height></size>"]
    for o in objects:
        tid, wnid, x1, y1, x2, y2, occ, *gen = o
        parts.append(f"<object><trackid>{tid}</trackid><name>{wnid}</name><bndbox><xmax>{x2}</xmax>"
                     f"<xmin>{x1}</xmin><ymax>{y2}</ymax><ymin>{y1}</ymin></bndbox>"
                     f"<occluded>{occ}</occluded><generated>{gen[0] if gen else 0}</generated></object>")
    return "".join(parts) + "</annotation>"


def _video(root: Path, split: str, rel: str, frames: list[list[tuple]]) -> None:
    data = root / "Data" / "VID" / split / rel
    ann = root / "Annotations" / "VID" / split / rel
    data.mkdir(parents=True)
    ann.mkdir(parents=True)
    for t, objects in enumerate(frames):
        rgb = np.zeros((H, W, 3), np.uint8)
        rgb[:] = COLOUR
        rgb[:, :, 1] += 10 * t
        assert cv2.imwrite(str(data / f"{t:06d}.JPEG"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        (ann / f"{t:06d}.xml").write_text(objects if isinstance(objects, str) else _xml(objects))


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ILSVRC2015")
    car = lambda x: (0, CAR, x, 2, x + 6, 10, 0)
    bike = (1, BICYCLE, -5, 3, 8, 12, 1)        # clipped at x = 0: truncation 5/13
    dog = (2, DOG, 10, 1, 20, 9, 0)
    outside = (3, CAR, 30, 2, 40, 10, 0)         # fully outside: skipped as degenerate
    # vid_a: the car (track 0) is missing in frame 2 -> frame 2 incomplete
    _video(root, "train", "ILSVRC2015_VID_train_0000/vid_a",
           [[car(1), bike, dog], [car(2), bike], [bike, dog], [car(4), bike, (4, CAR, 2, 2, 5, 5, 0, 1)],
            [car(5), outside]])
    _video(root, "train", "ILSVRC2015_VID_train_0000/vid_b", [[dog], [dog], []])   # no kept class
    _video(root, "train", "ILSVRC2015_VID_train_0001/vid_c",
           [[(0, MOTO, 0, 0, 24, 16, 1)], [(0, MOTO, 1.5, 0.5, 23, 15.5, 0)], []])
    # val: one malformed file
    _video(root, "val", "vid_m", [[car(1)], [car(1), (1, CAR, 1, 2, "abc", 5, 0)]])
    return root


def test_default_import_filters_classes_videos_and_incomplete_frames(root, tmp_path):
    out = tmp_path / "train.h5"
    summary = import_imagenet_vid(root, "train", out, progress=False, command="test")
    assert validate_file(out) == []
    ds = VideoDataset([out])
    assert ds.classes == ["car", "bicycle", "motorcycle"]
    # vid_b has no kept class; vid_a is split around its incomplete frame 2
    assert [v.name for v in ds.videos] == ["vid_a_f000000", "vid_a_f000003", "vid_c"]
    assert [v.n_frames for v in ds.videos] == [2, 2, 3]
    assert [v.attrs["source_first_frame"] for v in ds.videos] == [0, 3, 0]
    assert ds.videos[0].attrs["source_dir"] == "ILSVRC2015_VID_train_0000/vid_a"
    assert ds.videos[2].attrs["subset"] == "unknown" and ds.videos[2].attrs["seed"] == -1
    assert (summary.n_videos, summary.n_frames, summary.n_source_videos) == (3, 7, 3)
    assert (summary.n_skipped_videos, summary.n_dropped_frames, summary.n_skipped_boxes) == (1, 1, 1)

    gt = ds.ground_truth(ds.index_of(0, 0))   # source frame 0: car + clipped bicycle, no dog
    assert gt["labels"].tolist() == [1, 2] and gt["track_ids"].tolist() == [1, 2]
    assert gt["boxes"].tolist() == [[1, 2, 7, 10], [0, 3, 8, 12]]
    assert gt["truncation"][0] == 0 and gt["truncation"][1] == pytest.approx(5 / 13)
    assert gt["occlusion"].tolist() == [0, 0.5]
    gt = ds.ground_truth(ds.index_of(1, 1))   # source frame 4: the box outside the image is skipped
    assert gt["boxes"].tolist() == [[5, 2, 11, 10]] and gt["track_ids"].tolist() == [1]
    gt = ds.ground_truth(ds.index_of(1, 0))   # source frame 3 keeps the generated box (track 4 -> id 5)
    assert sorted(gt["track_ids"].tolist()) == [1, 2, 5]
    gt = ds.ground_truth(ds.index_of(2, 1))
    assert gt["labels"].tolist() == [3] and np.allclose(gt["boxes"], [[1.5, 0.5, 23, 15.5]])

    image = ds[ds.index_of(1, 0)]["image"]    # source frame 3: RGB order, JPEG within a few levels
    assert np.abs(image.astype(int) - [COLOUR[0], COLOUR[1] + 30, COLOUR[2]]).max() <= 4
    assert summary.n_boxes == sum(len(ds.ground_truth(i)["boxes"]) for i in range(len(ds)))


def test_options_keep_everything(root, tmp_path):
    out = tmp_path / "all.h5"
    summary = import_imagenet_vid(root, "train", out, only_videos_with_classes=False, drop_incomplete=False,
                                  progress=False)
    assert validate_file(out) == []
    ds = VideoDataset([out])
    assert [v.name for v in ds.videos] == ["vid_a", "vid_b", "vid_c"] and [v.n_frames for v in ds.videos] == [5, 3, 3]
    assert summary.n_dropped_frames == 0 and summary.n_skipped_videos == 0
    assert all(len(ds.ground_truth(i)["boxes"]) == 0 for i in ds.frames_of_video(1))
    assert ds.ground_truth(ds.index_of(0, 2))["track_ids"].tolist() == [2]   # the incomplete frame, kept


def test_class_subset_by_name_or_wnid(root, tmp_path):
    out = tmp_path / "dog.h5"
    import_imagenet_vid(root, "train", out, classes=[DOG, "bicycle"], progress=False)
    assert validate_file(out) == []
    ds = VideoDataset([out])
    assert ds.classes == ["dog", "bicycle"]
    # vid_a: the dog (track 2, frames 0 and 2) makes frame 1 incomplete -> 2 segments; vid_b kept now
    assert [v.name for v in ds.videos] == ["vid_a_f000000", "vid_a_f000002", "vid_b"]
    labels = np.concatenate([ds.ground_truth(i)["labels"] for i in range(len(ds))])
    assert set(labels.tolist()) == {1, 2}
    with pytest.raises(ValueError, match="unknown ImageNet-VID class 'unicorn'"):
        resolve_classes(["car", "unicorn"])
    assert resolve_classes(["car", "n02834778"]) == [CAR, BICYCLE] and WNID_TO_NAME[MOTO] == "motorcycle"


def test_incomplete_frames_rule():
    present = {0: [0, 1, 3, 4], 1: [0, 4], 2: [2, 3]}
    assert incomplete_frames(present, 5, max_gap=1).tolist() == [False, False, True, False, False]
    assert incomplete_frames(present, 5, max_gap=3).tolist() == [False, True, True, True, False]
    assert not incomplete_frames({0: [0, 5]}, 6, max_gap=2).any()   # a long absence is not a miss


def test_malformed_xml_names_file_and_field(root, tmp_path):
    out = tmp_path / "val.h5"
    with pytest.raises(AnnotationError) as info:
        import_imagenet_vid(root, "val", out, progress=False)
    assert str(info.value) == "Annotations/VID/val/vid_m/000001.xml: <object>[1]/<bndbox>/<xmax>: not a number ('abc')"
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text, message", [
    ("<annotation><size><width>4</width></size></annotation>", "x.xml: <size>/<height>: missing"),
    ("<annotation><size><width>4", "x.xml: not well-formed XML"),
    (_xml([(0, CAR, 1, 1, 2, 2, 0), (0, CAR, 1, 1, 3, 3, 0)]), "x.xml: <object>[1]/<trackid>: track 0 appears twice"),
    (_xml([(-1, CAR, 1, 1, 2, 2, 0)]), "x.xml: <object>[0]/<trackid>: expected >= 0, got -1"),
    (_xml([(0, CAR, 1, 1, 2, 2, 2)]), "x.xml: <object>[0]/<occluded>: expected 0 or 1, got 2"),
    (_xml([(0.5, CAR, 1, 1, 2, 2, 0)]), "x.xml: <object>[0]/<trackid>: not an integer ('0.5')"),
])
def test_parse_errors(tmp_path, text, message):
    path = tmp_path / "x.xml"
    path.write_text(text)
    with pytest.raises(AnnotationError, match=re.escape(message)):
        parse_annotation(path, "x.xml")


def test_cli(root, tmp_path):
    spec = importlib.util.spec_from_file_location("import_imagenet_vid", REPO / "tools" / "import_imagenet_vid.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "cli.h5"
    result = CliRunner().invoke(module.main, [str(root), "--split", "train", "--out", str(out), "--classes",
                                              "car,motorcycle", "--all-videos", "--keep-incomplete", "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and validate_file(out) == []
    assert VideoDataset([out]).classes == ["car", "motorcycle"]
    result = CliRunner().invoke(module.main, [str(root), "--split", "val", "--out", str(tmp_path / "v.h5"), "--quiet"])
    assert result.exit_code == 1
    assert "Error: Annotations/VID/val/vid_m/000001.xml: <object>[1]/<bndbox>/<xmax>: not a number" in result.output
    result = CliRunner().invoke(module.main, [str(root), "--out", str(out), "--quiet"])
    assert result.exit_code == 1 and "exists" in result.output


def test_undecodable_frame_names_the_file_and_leaves_no_output(root, tmp_path):
    broken = tmp_path / "root"
    import shutil
    shutil.copytree(root, broken)
    (broken / "Data/VID/train/ILSVRC2015_VID_train_0001/vid_c/000001.JPEG").write_bytes(b"not a jpeg")
    out = tmp_path / "out" / "train.h5"
    with pytest.raises(AnnotationError, match=re.escape(
            "Data/VID/train/ILSVRC2015_VID_train_0001/vid_c/000001.JPEG: cannot be decoded as an image")):
        import_imagenet_vid(broken, "train", out, progress=False)
    assert list(out.parent.iterdir()) == []   # no output, no leftover shards
