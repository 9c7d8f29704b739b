"""Tests of ``VideoDataset`` (vidal/data/dataset.py): flat <-> (video, frame) mapping, random
access to frames and ground truth, multi-file datasets, fork safety and DataLoader workers."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from vidal.data.dataset import DatasetFormatError, VideoDataset, collate
from vidal.data.writer import ShardWriter, merge_shards

W, H = 16, 12
CLASSES = ["car", "pedestrian"]
ROOT_ATTRS = dict(classes=CLASSES, fps=10.0, split="train", generator_config={"preset": "test"},
                  seed=0, command="pytest", created_by="test")
VIDEO_ATTRS = dict(subset="default", area="city", season="spring", daytime="day", weather="clear", seed=3)


def _image(file_no: int, v: int, t: int) -> np.ndarray:
    """A frame whose pixels encode (file, video, frame)."""
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = file_no, v, t
    img[0, 0, 0] = 200  # not uniform: RGB order is checked too
    return img


def _boxes(v: int, t: int) -> dict[str, np.ndarray]:
    """(v + t) % 3 boxes; box k of frame t is at x = t + k, track k+1, label 1 + k % 2."""
    n = (v + t) % 3
    x = np.arange(n, dtype=np.float32) + t
    boxes = np.stack([x, np.full(n, 1.0), x + 2.5, np.full(n, 5.0 + v)], axis=1)
    return dict(boxes=boxes, labels=np.arange(n) % 2 + 1, track_ids=np.arange(n) + 1,
                visible_fraction=np.full(n, 0.75), truncation=np.full(n, 0.25), occlusion=np.zeros(n))


def write_file(path: Path, lengths: list[int], file_no: int = 0, classes=CLASSES) -> Path:
    shards = []
    for v, T in enumerate(lengths):
        shard = path.with_name(f"{path.stem}_{v}.shard.h5")
        with ShardWriter(shard, f"v{v:03d}", n_frames=T, height=H, width=W, attrs=VIDEO_ATTRS) as w:
            for t in range(T):
                w.add_frame(_image(file_no, v, t), _boxes(v, t))
        shards.append(shard)
    return merge_shards(path, shards, dict(ROOT_ATTRS, classes=classes))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("ds")
    return [write_file(d / "a.h5", [4, 1, 3], 0), write_file(d / "b.h5", [2, 5], 1)]


def test_lengths_and_metadata(files):
    ds = VideoDataset(files)
    assert len(ds) == 4 + 1 + 3 + 2 + 5
    assert ds.n_videos == 5 and ds.classes == CLASSES and ds.num_classes == 2 and ds.fps == 10.0
    assert [v.name for v in ds.videos] == ["v000", "v001", "v002", "v000", "v001"]
    assert [v.file for v in ds.videos] == [str(files[0])] * 3 + [str(files[1])] * 2
    assert [v.n_frames for v in ds.videos] == [4, 1, 3, 2, 5]
    assert ds.videos[2].attrs["area"] == "city" and ds.videos[2].attrs["n_frames"] == 3
    assert (ds.videos[0].height, ds.videos[0].width) == (H, W)
    assert list(ds.frames_of_video(3)) == [8, 9]
    assert ds.file_attrs[1]["split"] == "train"
    assert np.array_equal(ds.video_of_frames(), [0] * 4 + [1] + [2] * 3 + [3] * 2 + [4] * 5)


def test_mapping_round_trip(files):
    ds = VideoDataset(files, with_frames=False)
    seen = []
    for v, video in enumerate(ds.videos):
        for t in range(video.n_frames):
            i = ds.index_of(v, t)
            assert ds.locate(i) == (v, t)
            seen.append(i)
    assert seen == list(range(len(ds)))
    vs, ts = ds.locate_many(np.arange(len(ds)))
    assert [ds.index_of(int(v), int(t)) for v, t in zip(vs, ts)] == seen
    assert ds.locate(-1) == (4, 4)
    for bad in (len(ds), -len(ds) - 1):
        with pytest.raises(IndexError):
            ds.locate(bad)
    with pytest.raises(IndexError):
        ds.index_of(1, 1)   # video 1 has one frame
    with pytest.raises(IndexError):
        ds.index_of(5, 0)


def test_random_access_matches_what_was_written(files):
    ds = VideoDataset(files)
    file_no = [0, 0, 0, 1, 1]
    video_in_file = [0, 1, 2, 0, 1]
    order = np.random.default_rng(0).permutation(len(ds))
    for i in order:
        s = ds[int(i)]
        v, t = s["video_index"], s["frame_index"]
        assert s["index"] == i and ds.index_of(v, t) == i
        assert s["image"].dtype == np.uint8 and s["image"].shape == (H, W, 3)
        assert np.array_equal(s["image"], _image(file_no[v], video_in_file[v], t))
        want = _boxes(video_in_file[v], t)
        assert s["boxes"].dtype == np.float32 and s["boxes"].shape == (len(want["boxes"]), 4)
        assert np.array_equal(s["boxes"], want["boxes"])
        assert s["labels"].dtype == np.int64 and np.array_equal(s["labels"], want["labels"])
        assert np.array_equal(s["track_ids"], want["track_ids"])
        assert np.allclose(s["truncation"], 0.25)
        gt = ds.ground_truth(int(i))
        assert "image" not in gt and np.array_equal(gt["boxes"], s["boxes"])


def test_frames_without_boxes_have_empty_arrays(files):
    ds = VideoDataset(files, with_frames=False)
    s = ds[ds.index_of(0, 0)]   # (v + t) % 3 == 0
    assert "image" not in s
    assert s["boxes"].shape == (0, 4) and s["labels"].shape == (0,) and s["track_ids"].shape == (0,)


def _child_reads(ds: VideoDataset, i: int, queue) -> None:
    s = ds[i]
    queue.put((int(s["image"][0, 0, 2]), s["boxes"].tolist(), os.getpid() == ds._pid))


def test_reopens_after_fork(files):
    ds = VideoDataset(files)
    ds[0]                       # opens the files in the parent
    parent_handles = dict(ds._files)
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    i = ds.index_of(4, 3)
    p = ctx.Process(target=_child_reads, args=(ds, i, queue))
    p.start()
    frame, boxes, child_owns_handles = queue.get(timeout=20)
    p.join(timeout=20)
    assert p.exitcode == 0 and child_owns_handles
    assert frame == 3 and boxes == ds[i]["boxes"].tolist()
    assert ds._files[0] is parent_handles[0] and ds._files[0].id.valid   # the parent's handle survives


def test_dataloader_with_workers(files):
    torch = pytest.importorskip("torch")
    ds = VideoDataset(files)
    ds[3]  # a parent that has already read: workers must not reuse its handles
    loader = torch.utils.data.DataLoader(ds, batch_size=3, shuffle=True, num_workers=2, collate_fn=collate,
                                         generator=torch.Generator().manual_seed(0))
    seen = {}
    for batch in loader:
        assert isinstance(batch, list) and 1 <= len(batch) <= 3
        for s in batch:
            seen[s["index"]] = s
    assert sorted(seen) == list(range(len(ds)))
    for i, s in seen.items():
        assert np.array_equal(s["image"], ds[i]["image"]) and np.array_equal(s["boxes"], ds[i]["boxes"])


def test_pickles_without_handles(files):
    import pickle
    ds = VideoDataset(files)
    ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._files == {} and np.array_equal(clone[5]["image"], ds[5]["image"])
    ds.close()
    assert np.array_equal(ds[5]["image"], clone[5]["image"])   # reopens after close


def test_single_path_and_context_manager(files):
    with VideoDataset(files[1]) as ds:
        assert len(ds) == 7 and ds[0]["image"][0, 0, 0] == 200
    assert ds._files == {}


def test_not_a_vidal_file(tmp_path, files):
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(DatasetFormatError, match=r"notes\.h5: cannot be opened as HDF5"):
        VideoDataset([text])
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(DatasetFormatError, match=r"other\.h5: root attribute 'format' is 'something-else'"):
        VideoDataset([other])
    broken = tmp_path / "broken.h5"
    with h5py.File(files[0], "r") as src, h5py.File(broken, "w") as f:
        for k, a in src.attrs.items():
            f.attrs[k] = a
        src.copy(src["videos/v000"], f, name="videos/v000")
        del f["videos/v000/labels"]
    with pytest.raises(DatasetFormatError, match=r"broken\.h5: videos/v000/labels: is missing"):
        VideoDataset([broken])
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        VideoDataset([tmp_path / "nope.h5"])


def test_files_must_share_classes(tmp_path, files):
    other = write_file(tmp_path / "c.h5", [1], classes=["bus"])
    with pytest.raises(DatasetFormatError, match=r"c\.h5: classes \['bus'\] differ"):
        VideoDataset([files[0], other])
