"""Tests of the ``vidal-video-v1`` validator (vidal/data/validate.py, tools/validate_dataset.py)
and of the atomic split-file writing of vidal/data/writer.py that it checks."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from vidal.data.validate import MAX_ROWS, check_file, validate_file
from vidal.data.writer import ShardWriter, merge_shards

REPO = Path(__file__).resolve().parents[1]
W, H = 32, 24
CLASSES = ["car", "pedestrian", "wheelchair"]
ROOT_ATTRS = dict(classes=CLASSES, fps=10.0, split="train", generator_config={"preset": "test"},
                  seed=0, command="pytest", created_by="synth 0.1.0")
V0 = "default_0000"

#: name -> (boxes per frame, dense flags). Frame count = len(boxes per frame).
VIDEOS = {
    V0: ([2, 3, 0, 1, 2], dict(masks=True, depth=True, flow=True)),  # 5 frames, 8 boxes
    "default_0001": ([0, 0, 0], {}),                                  # no boxes at all
    "default_0002": ([1], dict(flow=True)),                           # one frame: empty flow
}


def _write_shard(path: Path, name: str, per_frame: list[int], dense: dict) -> Path:
    """One video of smooth (so LZF-compressible) frames with ``per_frame[t]`` boxes in frame t."""
    attrs = dict(subset="default", area="city", season="spring", daytime="day", weather="clear", seed=7)
    with ShardWriter(path, name, n_frames=len(per_frame), height=H, width=W, attrs=attrs, **dense) as w:
        for t, n in enumerate(per_frame):
            rgb = np.broadcast_to((np.arange(W, dtype=np.uint8) * 4 + t)[None, :, None], (H, W, 3))
            x1 = np.arange(n, dtype=np.float32) * 6 + t
            boxes = np.stack([x1, np.full(n, 2.0), x1 + 5, np.full(n, 10.0)], axis=1)
            ann = dict(boxes=boxes, labels=np.arange(n) % len(CLASSES) + 1, track_ids=np.arange(n) + 1,
                       visible_fraction=np.full(n, 0.9), truncation=np.zeros(n), occlusion=np.full(n, 0.1))
            w.add_frame(rgb, ann, mask=np.zeros((H, W), np.uint16), depth=np.full((H, W), np.inf, np.float32),
                        flow=np.zeros((H, W, 2), np.float32))
    return path


def _write_split(directory: Path, out_name: str = "train.h5") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    shards = [_write_shard(directory / f"{name}.shard.h5", name, per_frame, dense)
              for name, (per_frame, dense) in VIDEOS.items()]
    return merge_shards(directory / out_name, shards, ROOT_ATTRS)


@pytest.fixture(scope="module")
def valid_file(tmp_path_factory) -> Path:
    return _write_split(tmp_path_factory.mktemp("valid"))


@pytest.fixture()
def copy_of(valid_file, tmp_path):
    """Copy the valid file to a fresh path and return it, optionally mutated by ``fn(h5py.File)``."""
    def make(fn=None) -> Path:
        path = tmp_path / "train.h5"
        shutil.copy(valid_file, path)
        if fn is not None:
            with h5py.File(path, "r+") as f:
                fn(f)
        return path
    return make


def _load_cli():
    spec = importlib.util.spec_from_file_location("validate_dataset", REPO / "tools" / "validate_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


CLI = _load_cli()


# ---------------------------------------------------------------------------------------------
# valid files

def test_valid_file_is_clean(valid_file):
    assert validate_file(valid_file) == []
    assert validate_file(valid_file, deep=True) == []
    report = check_file(valid_file)
    assert (report.n_videos, report.n_frames, report.n_boxes) == (3, 9, 9)


def test_one_frame_video_has_empty_flow(valid_file):
    # Regression: ShardWriter used to fail creating a [0,H,W,2] flow with (1,H,W,2) chunks.
    with h5py.File(valid_file, "r") as f:
        assert f["videos/default_0002/flow"].shape == (0, H, W, 2)
        assert f["videos/default_0001/boxes"].shape == (0, 4)


def test_cli_ok(valid_file):
    result = CliRunner().invoke(CLI, [str(valid_file), "--deep"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"OK {valid_file}: 3 videos, 9 frames, 9 boxes"


# ---------------------------------------------------------------------------------------------
# malformed files

def _replace(key: str, change, video: str = V0):
    """Mutation: replace dataset ``videos/<video>/<key>`` by ``change(its data)``."""
    def fn(f):
        group = f[f"videos/{video}"]
        data = group[key][()]
        new = change(data)
        del group[key]
        group.create_dataset(key, data=data if new is None else new)
    return fn


def _set(array_index, value):
    def change(data):
        data[array_index] = value
    return change


def _del_attr(path: str, key: str):
    def fn(f):
        del f[path].attrs[key]
    return fn


def _set_attr(path: str, key: str, value):
    def fn(f):
        f[path].attrs[key] = value
    return fn


def _del(path: str):
    def fn(f):
        del f[path]
    return fn


B, L, FI = f"videos/{V0}/boxes", f"videos/{V0}/labels", f"videos/{V0}/frame_index"

# id -> (mutation, field the message must name, further substrings of that message)
MALFORMED = {
    "missing array": (_del(L), L, ["missing"]),
    "missing frames": (_del(f"videos/{V0}/frames"), f"videos/{V0}/frames", ["missing"]),
    "x2 outside frame": (_replace("boxes", _set((0, 2), W + 8)), B, ["row 0 has x2 > W", "x2=40.0", "W=32"]),
    "y2 outside frame": (_replace("boxes", _set((3, 3), H + 1)), B, ["row 3 has y2 > H", "y2=25.0"]),
    "x1 negative": (_replace("boxes", _set((0, 0), -1)), B, ["row 0 has x1 < 0", "x1=-1.0"]),
    "x2 <= x1": (_replace("boxes", _set((1, 2), 5.5)), B, ["row 1 has x2 <= x1", "x1=6.0, x2=5.5"]),
    "y2 == y1": (_replace("boxes", _set((1, 3), 2)), B, ["row 1 has y2 <= y1"]),
    "nan box": (_replace("boxes", _set((2, 1), np.nan)), B, ["row 2 has a non-finite coordinate"]),
    "boxes [M,5]": (_replace("boxes", lambda b: np.pad(b, ((0, 0), (0, 1)))), B, ["[M,4]"]),
    "label 0": (_replace("labels", _set(0, 0)), L, ["row 0", "label=0", "1..3"]),
    "label C+1": (_replace("labels", _set(4, len(CLASSES) + 1)), L, ["row 4", "label=4", "1..3"]),
    "labels int64": (_replace("labels", lambda a: a.astype(np.int64)), L, ["int64", "int32"]),
    "boxes float64": (_replace("boxes", lambda a: a.astype(np.float64)), B, ["float64", "float32"]),
    "frames float32": (_replace("frames", lambda a: a.astype(np.float32)), f"videos/{V0}/frames",
                       ["float32", "uint8"]),
    "frame_index >= T": (_replace("frame_index", _set(-1, 5)), FI, ["row 7", "outside 0..4", "frame_index=5"]),
    "frame_index < 0": (_replace("frame_index", _set(0, -1)), FI, ["row 0", "outside 0..4"]),
    "frame_index decreasing": (_replace("frame_index", _set(2, 3)), FI,  # [0,0,3,1,1,3,4,4]
                               ["row 3", "smaller than the row before", "frame_index=1 after 3"]),
    "length mismatch": (_replace("occlusion", lambda a: a[:-1]), f"videos/{V0}/occlusion",
                        ["length 7", "M=8"]),
    "track_id 0": (_replace("track_ids", _set(2, 0)), f"videos/{V0}/track_ids", ["row 2", "track_id=0"]),
    "track repeated in frame": (_replace("track_ids", _set(3, 1)), f"videos/{V0}/track_ids",
                                ["repeated within its frame", "frame_index=1"]),
    "visible_fraction 0": (_replace("visible_fraction", _set(0, 0)), f"videos/{V0}/visible_fraction",
                           ["row 0", "visible_fraction=0.0", "(0, 1]"]),
    "truncation 1": (_replace("truncation", _set(1, 1)), f"videos/{V0}/truncation", ["row 1", "truncation=1.0"]),
    "occlusion negative": (_replace("occlusion", _set(1, -0.5)), f"videos/{V0}/occlusion", ["occlusion=-0.5"]),
    "masks wrong shape": (_replace("masks", lambda a: a[:-1]), f"videos/{V0}/masks", ["[T,H,W]", "(4, 24, 32)"]),
    "depth wrong dtype": (_replace("depth", lambda a: a.astype(np.float64)), f"videos/{V0}/depth", ["float64"]),
    "flow wrong shape": (_replace("flow", lambda a: np.concatenate([a, a[:1]])), f"videos/{V0}/flow",
                         ["[T-1,H,W,2]"]),
    "n_frames attr mismatch": (_set_attr(f"videos/{V0}", "n_frames", 6), f"videos/{V0}/frames",
                               ["has 5 frames", "n_frames is 6"]),
    "width attr mismatch": (_set_attr(f"videos/{V0}", "width", 33), f"videos/{V0}/frames", ["width is 33"]),
    "missing video attr": (_del_attr("videos/default_0001", "weather"), "videos/default_0001",
                           ["'weather'", "missing"]),
    "missing root attr": (_del_attr("/", "fps"), "root attribute 'fps'", ["missing"]),
    "wrong format": (_set_attr("/", "format", "vidal-video-v0"), "root attribute 'format'",
                     ["vidal-video-v0", "expected 'vidal-video-v1'"]),
    "fps 0": (_set_attr("/", "fps", 0.0), "root attribute 'fps'", ["> 0"]),
    "empty classes": (_set_attr("/", "classes", np.array([], dtype=h5py.string_dtype())),
                      "root attribute 'classes'", ["empty"]),
    "config not json": (_set_attr("/", "generator_config", "{oops"), "root attribute 'generator_config'",
                        ["JSON"]),
    "no videos group": (_del("videos"), "'videos'", ["missing"]),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_is_reported(case, copy_of):
    mutate, field, fragments = MALFORMED[case]
    path = copy_of(mutate)
    problems = validate_file(path)
    matching = [p for p in problems if p.startswith(f"{path}: ") and field in p
                and all(s in p for s in fragments)]
    assert matching, f"no problem naming {field} with {fragments}; got:\n" + "\n".join(problems)
    result = CliRunner().invoke(CLI, [str(path)])
    assert result.exit_code == 1
    assert matching[0] in result.output


def test_many_bad_rows_are_capped(copy_of):
    path = copy_of(_replace("labels", lambda a: np.zeros_like(a)))
    problems = [p for p in validate_file(path) if L in p]
    assert len(problems) == MAX_ROWS + 1
    assert problems[-1].endswith(f"{8 - MAX_ROWS} more rows have a label outside 1..3 (not listed)")


def test_truncated_file(copy_of):
    path = copy_of()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    [problem] = validate_file(path)
    assert problem.startswith(f"{path}: cannot be opened as HDF5 (truncated or corrupt file?)")
    result = CliRunner().invoke(CLI, [str(path)])
    assert result.exit_code == 1 and "truncated" in result.output


@pytest.mark.parametrize("content", [b"", b"this is not HDF5\n" * 100])
def test_not_hdf5(content, tmp_path):
    path = tmp_path / "train.h5"
    path.write_bytes(content)
    assert validate_file(path) == [f"{path}: not an HDF5 file (no HDF5 signature); expected a vidal-video-v1 file"]


def test_corrupt_frame_chunk_found_by_deep_only(copy_of):
    path = copy_of()
    with h5py.File(path, "r") as f:
        info = f[f"videos/{V0}/frames"].id.get_chunk_info_by_coord((2, 0, 0, 0))
    assert info.filter_mask == 0 and info.size < H * W * 3  # the chunk is LZF-compressed
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset)
        fh.write(b"\xff" * info.size)
    assert validate_file(path) == []  # the default mode reads only the first and last frame
    [problem] = validate_file(path, deep=True)
    assert problem.startswith(f"{path}: videos/{V0}/frames: frame 2 cannot be read")
    assert CliRunner().invoke(CLI, [str(path), "--deep"]).exit_code == 1


# ---------------------------------------------------------------------------------------------
# the command line

def test_cli_mixed_files(valid_file, copy_of):
    bad = copy_of(_replace("labels", _set(0, 0)))
    result = CliRunner().invoke(CLI, [str(valid_file), str(bad)])
    assert result.exit_code == 1
    assert f"OK {valid_file}: 3 videos" in result.output and f"INVALID {bad}" in result.output


def test_cli_missing_path(tmp_path):
    result = CliRunner().invoke(CLI, [str(tmp_path / "nope.h5")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_cli_script_never_tracebacks(tmp_path):
    path = tmp_path / "train.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)  # an HDF5 signature, then garbage
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "validate_dataset.py"), str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert f"{path}: cannot be opened as HDF5" in proc.stdout


# ---------------------------------------------------------------------------------------------
# merge_shards

def test_merge_refuses_overwrite(tmp_path):
    out = _write_split(tmp_path)
    before = out.read_bytes()
    shard = tmp_path / f"{V0}.shard.h5"
    with pytest.raises(FileExistsError):
        merge_shards(out, [shard], ROOT_ATTRS)
    assert out.read_bytes() == before
    merge_shards(out, [shard], ROOT_ATTRS, overwrite=True)
    assert check_file(out).n_videos == 1 and validate_file(out) == []


def _leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("problem", ["duplicate video", "missing shard"])
def test_merge_error_leaves_no_temporary_file(problem, tmp_path):
    _write_split(tmp_path, "other.h5")
    shard = tmp_path / f"{V0}.shard.h5"
    shards = [shard, shard] if problem == "duplicate video" else [shard, tmp_path / "missing.h5"]
    out = tmp_path / "train.h5"
    with pytest.raises((ValueError, OSError)):
        merge_shards(out, shards, ROOT_ATTRS)
    assert not out.exists()
    assert _leftovers(tmp_path) == []
    # An existing file is kept intact when replacing it fails.
    shutil.copy(tmp_path / "other.h5", out)
    with pytest.raises((ValueError, OSError)):
        merge_shards(out, shards, ROOT_ATTRS, overwrite=True)
    assert out.read_bytes() == (tmp_path / "other.h5").read_bytes()
    assert _leftovers(tmp_path) == []
