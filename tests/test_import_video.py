"""tools/import_video.py (issue 16): real video files written by OpenCV's VideoWriter and a folder
of PNG frames into vidal-video-v1 without annotations; the validator accepts the result; every bad
input of the issue (unreadable / truncated / zero-frame video, mixed frame sizes, duplicate name)
is one line naming the file and leaves no output file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from vidal.data import VideoDataset
from vidal.data.validate import validate_file
from vidal.data.video_import import natural_key

REPO = Path(__file__).resolve().parents[1]


def write_video(path: Path, n: int, size=(80, 60), fourcc="mp4v", fps=10.0) -> None:
    """A real video file: frame t is a grey level 10 t with a white square at x = 2 t."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert w.isOpened()
    for t in range(n):
        img = np.full((size[1], size[0], 3), 10 * t, np.uint8)
        img[10:30, 2 * t:2 * t + 20] = 255
        w.write(img)
    w.release()


def write_folder(path: Path, n: int, size=(64, 48)) -> list[np.ndarray]:
    """PNG frames named f0.png .. f{n-1}.png (natural order differs from the string order)."""
    path.mkdir(parents=True)
    frames = []
    rng = np.random.default_rng(0)
    for t in range(n):
        rgb = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        cv2.imwrite(str(path / f"f{t}.png"), rgb[:, :, ::-1])
        frames.append(rgb)
    return frames


def run_tool(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tools/import_video.py"), *map(str, args), "--quiet"],
                          capture_output=True, text=True, cwd=REPO)


def test_video_file_and_frame_folder_import_and_validate(tmp_path):
    write_video(tmp_path / "drive.mp4", 20)
    write_video(tmp_path / "walk.avi", 12, size=(100, 40), fourcc="MJPG")
    frames = write_folder(tmp_path / "cam3", 11)
    out = tmp_path / "pool.h5"
    res = run_tool(tmp_path / "drive.mp4", tmp_path / "walk.avi", tmp_path / "cam3", "--out", out,
                   "--classes", "car,pedestrian")
    assert res.returncode == 0, res.stderr
    assert f"wrote {out} (3 videos, 43 frames, no annotations)" in res.stdout
    assert validate_file(out) == []
    check = subprocess.run([sys.executable, str(REPO / "tools/validate_dataset.py"), str(out)],
                           capture_output=True, text=True, cwd=REPO)
    assert check.returncode == 0 and check.stdout.startswith(f"OK {out}: 3 videos, 43 frames, 0 boxes")
    ds = VideoDataset(out)
    assert ds.classes == ["car", "pedestrian"] and [v.name for v in ds.videos] == ["cam3", "drive", "walk"]
    assert [v.n_frames for v in ds.videos] == [11, 20, 12]
    assert (ds.videos[1].height, ds.videos[1].width) == (60, 80)
    # frames of the folder in natural order (f2 before f10), pixels exact (PNG is lossless)
    for t in (0, 2, 10):
        np.testing.assert_array_equal(ds.image(ds.index_of(0, t)), frames[t])
    # the decoded video frames: the square moves 2 px per frame (lossy codec: compare the bright columns)
    img = ds.image(ds.index_of(1, 5)).astype(int)
    cols = np.nonzero(img[20, :, 0] > 200)[0]
    assert abs(cols.min() - 10) <= 1 and abs(cols.max() - 29) <= 1
    assert len(ds.ground_truth(ds.index_of(1, 5))["boxes"]) == 0
    with h5py.File(out) as f:
        assert f.attrs["seed"] == -1 and f.attrs["split"] == "unlabeled" and f.attrs["fps"] == 10.0
        assert f["videos/drive"].attrs["source"] == str(tmp_path / "drive.mp4")
    ds.close()


def test_stride_and_max_side(tmp_path):
    write_video(tmp_path / "a.mp4", 20, size=(160, 120))
    out = tmp_path / "s.h5"
    res = run_tool(tmp_path / "a.mp4", "--out", out, "--classes", "car", "--stride", 3, "--max-side", 80,
                   "--split", "train")
    assert res.returncode == 0, res.stderr
    ds = VideoDataset(out)
    assert ds.videos[0].n_frames == 7 and (ds.videos[0].height, ds.videos[0].width) == (60, 80)
    assert ds.fps == pytest.approx(10.0 / 3) and ds.file_attrs[0]["split"] == "train"
    # frame 2 of the output is source frame 6: grey level 60 away from the square
    assert abs(int(ds.image(2)[55, 70, 1]) - 60) <= 3
    assert validate_file(out) == []


def test_natural_sort():
    names = ["f10.png", "f2.png", "F1.png", "f0.png"]
    assert sorted(names, key=natural_key) == ["f0.png", "F1.png", "f2.png", "f10.png"]


def _one_line_error(res, out: Path, *names: str) -> str:
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    for name in names:
        assert name in lines[0], lines[0]
    assert "Traceback" not in res.stderr
    assert not out.exists() and not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]
    return lines[0]


def test_bad_inputs_are_one_line_and_write_nothing(tmp_path):
    good = tmp_path / "good.mp4"
    write_video(good, 10)
    out = tmp_path / "out" / "pool.h5"
    out.parent.mkdir()
    # unreadable: not a video at all
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    line = _one_line_error(run_tool(good, junk, "--out", out, "--classes", "car"), out, str(junk))
    assert "cannot open" in line
    # truncated: the second half of a real file cut off
    cut = tmp_path / "cut.mp4"
    data = good.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    _one_line_error(run_tool(good, cut, "--out", out, "--classes", "car"), out, str(cut))
    # zero frames: a writer closed before any frame, and an empty frame folder
    zero = tmp_path / "zero.avi"
    w = cv2.VideoWriter(str(zero), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 32))
    w.release()
    _one_line_error(run_tool(good, zero, "--out", out, "--classes", "car"), out, str(zero))
    (tmp_path / "empty").mkdir()
    line = _one_line_error(run_tool(good, tmp_path / "empty", "--out", out, "--classes", "car"), out,
                           str(tmp_path / "empty"))
    assert "no .jpg/.jpeg/.png frames" in line
    # a folder of mixed frame sizes names the odd frame
    mixed = tmp_path / "mixed"
    write_folder(mixed, 3)
    cv2.imwrite(str(mixed / "f3.png"), np.zeros((10, 12, 3), np.uint8))
    line = _one_line_error(run_tool(good, mixed, "--out", out, "--classes", "car"), out, str(mixed / "f3.png"))
    assert "12x10 differs from 64x48" in line
    # a duplicate video name (same stem in two folders)
    (tmp_path / "other").mkdir()
    write_video(tmp_path / "other" / "good.avi", 5, fourcc="MJPG")
    line = _one_line_error(run_tool(good, tmp_path / "other" / "good.avi", "--out", out, "--classes", "car"), out,
                           str(tmp_path / "other" / "good.avi"))
    assert "duplicate video name 'good'" in line
    # bad classes, unknown extension
    line = _one_line_error(run_tool(good, "--out", out, "--classes", "car,,bus"), out)
    assert "--classes" in line
    (tmp_path / "notes.txt").write_text("x")
    _one_line_error(run_tool(tmp_path / "notes.txt", "--out", out, "--classes", "car"), out,
                    str(tmp_path / "notes.txt"))
    # an existing output is kept
    out.write_bytes(b"keep")
    res = run_tool(good, "--out", out, "--classes", "car")
    assert res.returncode != 0 and "--overwrite" in res.stderr and out.read_bytes() == b"keep"
