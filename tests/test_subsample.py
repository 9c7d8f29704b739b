"""Pool subsampling (issue 16, al.pool_subsample): the scored subset has the asked size, is seeded
(the same seed and cycle give the same subset, another seed another one), and for temporal
coherence is made of whole video segments so every scored frame keeps its neighbours; in the loop,
each cycle's selection.npz holds exactly that subset as its candidates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vidal.acquisition  # noqa: F401 - registers the acquisitions
from double_detector import registered
from tiny_videos import write_split
from vidal.config import ConfigError, load_config
from vidal.loop import Experiment
from vidal.selection import step_rng
from vidal.subsample import SEGMENT_FRAMES, segments_of, subsample


def _rng(seed, cycle=1):
    return step_rng(seed, cycle, "acquire").spawn(1)[0]


def test_frame_subset_size_and_seed():
    cand = np.sort(np.random.default_rng(5).choice(1000, 700, replace=False))
    a = subsample(cand, 0.1, _rng(0))
    assert len(a) == 70 and np.all(np.isin(a, cand)) and np.all(np.diff(a) > 0)
    np.testing.assert_array_equal(a, subsample(cand, 0.1, _rng(0)))
    assert not np.array_equal(a, subsample(cand, 0.1, _rng(1)))
    assert not np.array_equal(a, subsample(cand, 0.1, _rng(0, cycle=2)))
    np.testing.assert_array_equal(subsample(cand, None, _rng(0)), cand)
    np.testing.assert_array_equal(subsample(cand, 1.0, _rng(0)), cand)
    assert len(subsample(cand, 1e-6, _rng(0))) == 1


def test_segments_keep_neighbours():
    lengths = [40, 7, 33, 50]
    vof = np.repeat(np.arange(4), lengths)
    seg = segments_of(vof)
    assert seg.max() + 1 == 3 + 1 + 3 + 4  # ceil(T / 16) per video
    assert all(len(set(vof[seg == s])) == 1 and np.sum(seg == s) <= SEGMENT_FRAMES for s in np.unique(seg))
    labeled = np.zeros(len(vof), bool)
    labeled[[3, 20, 41, 100]] = True
    cand = np.flatnonzero(~labeled)
    sub = subsample(cand, 0.3, _rng(0), video_of_frames=vof, segments=True)
    target = round(0.3 * len(cand))
    assert target <= len(sub) < target + SEGMENT_FRAMES
    np.testing.assert_array_equal(sub, subsample(cand, 0.3, _rng(0), video_of_frames=vof, segments=True))
    # whole segments: a scored frame's unlabeled neighbours in its segment are scored too
    for s in np.unique(seg[sub]):
        np.testing.assert_array_equal(np.intersect1d(cand, np.flatnonzero(seg == s)), sub[seg[sub] == s])
    inside = [f for f in sub if f + 1 < len(vof) and seg[f + 1] == seg[f] and not labeled[f + 1]]
    assert inside and all(f + 1 in sub for f in inside)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sub")
    write_split(root / "train.h5", [20, 24, 30, 26], 0, "train")
    write_split(root / "test.h5", [6], 1, "test")
    (root / "al.py").write_text(f"""
dataset = dict(train="{root}/train.h5", test="{root}/test.h5")
detector = dict(backend="double", datasets=("{root}/train.h5", "{root}/test.h5"))
schedule = dict(epochs=1, lr=0.01, batch_size=4)
al = dict(initial=4, budget=3, cycles=2, k=1, per_video=True, pool_subsample=0.25)
acquisition = dict(name="entropy")
""")
    return root


def _run(tiny, work, name, seed=0):
    cfg = load_config(tiny / "al.py")
    cfg["acquisition"] = {"name": name}
    if name == "temporal_coherence":
        cfg["tracker"] = {"name": "identity"}
    with registered():
        Experiment(cfg, work, seed, progress=False, threads=1, echo=lambda s: None).run()


@pytest.mark.parametrize("name", ["entropy", "temporal_coherence"])
def test_loop_scores_the_subset(tiny, tmp_path, name):
    _run(tiny, tmp_path / "a", name)
    _run(tiny, tmp_path / "b", name)
    n_pool = 100
    for c, n_unlabeled in ((0, n_pool - 4), (1, n_pool - 7)):
        a = np.load(tmp_path / "a" / f"cycle_{c:03d}" / "selection.npz")
        b = np.load(tmp_path / "b" / f"cycle_{c:03d}" / "selection.npz")
        np.testing.assert_array_equal(a["candidates"], b["candidates"])  # seeded
        target = round(0.25 * n_unlabeled)
        if name == "entropy":
            assert len(a["candidates"]) == target
        else:
            assert target <= len(a["candidates"]) < target + SEGMENT_FRAMES
            seg = segments_of(np.repeat(np.arange(4), [20, 24, 30, 26]))
            state = np.load(tmp_path / "a" / f"state_cycle_{c:03d}.npz")["cycle_of"]
            unl = np.flatnonzero(state < 0)
            for s in np.unique(seg[a["candidates"]]):
                assert set(np.intersect1d(unl, np.flatnonzero(seg == s))) <= set(a["candidates"].tolist())
        assert set(a["selected"].tolist()) <= set(a["candidates"].tolist()) and len(a["selected"]) == 3


def test_bad_fraction(tiny, tmp_path):
    for bad in (0, 1.5, "half", True):
        cfg = load_config(tiny / "al.py", [f"al.pool_subsample={bad!r}"])
        with registered(), pytest.raises(ConfigError, match="al.pool_subsample must be None or a fraction"):
            Experiment(cfg, tmp_path / "w", 0, progress=False)
