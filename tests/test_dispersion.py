"""Tests of label dispersion (vidal/acquisition/dispersion.py, thesis ch. 3 adapted): scripted
prediction sequences against hand-computed dispersions, the aggregations, and the loop's epoch
predictions (the training's on_epoch_end hook, cached per cycle; a shared cycle 0 is trained here)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from double_detector import registered
from tiny_videos import write_split
from vidal.acquisition.dispersion import LabelDispersion, dispersion, votes
from vidal.build import build_acquisition
from vidal.config import ConfigError, load_config
from vidal.detection.base import Predictions


def P(boxes, labels, scores=None) -> Predictions:
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels, np.int64)
    probs = np.full((len(labels), 4), 0.1, np.float32)
    scores = np.full(len(labels), 0.9) if scores is None else np.asarray(scores)
    return Predictions(boxes, scores, labels, probs)


A = [0, 0, 10, 10]
A_SHIFTED = [1, 0, 11, 10]     # IoU with A = 90 / 110 = 0.818
A_FAR = [5, 0, 15, 10]         # IoU with A = 50 / 150 = 0.333
B = [50, 50, 70, 70]


def test_votes_and_dispersion_by_hand():
    final = P([A, B], [1, 2])
    checkpoints = [P([A_SHIFTED, B], [1, 3]),      # A -> 1, B -> 3
                   P([A_FAR], [2]),                # A: IoU 0.33 < 0.5 -> no detection (0); B -> 0
                   P([B, A], [2, 2])]              # A -> 2 (best IoU is the second box), B -> 2
    v = votes(final, checkpoints, 0.5)
    assert v.tolist() == [[1, 0, 2, 1], [3, 0, 2, 2]]
    # A: votes 1, 0, 2, 1: mode 1 twice of 4 -> 1 - 2/4 = 0.5; B: 3, 0, 2, 2 -> 1 - 2/4 = 0.5
    np.testing.assert_allclose(dispersion(v), [0.5, 0.5])
    # a stable object: 0; a lower IoU threshold lets A_FAR match
    assert dispersion(votes(P([A], [1]), [P([A], [1]), P([A_SHIFTED], [1])], 0.5)).tolist() == [0.0]
    assert votes(final, checkpoints, 0.3)[0].tolist() == [1, 2, 2, 1]
    # four different votes of four: 1 - 1/4
    np.testing.assert_allclose(dispersion(np.array([[1, 2, 3, 0]])), [0.75])


def test_score_aggregates_per_frame_like_the_uncertainty_scorers():
    frames = [P([A, B], [1, 2]), P([A], [1]), P(np.zeros((0, 4)), [])]
    epochs = [[P([A_SHIFTED, B], [1, 3]), P([A], [2]), P([A], [1])],
              [P([A_FAR], [2]), P([A], [2]), P([], [])],
              [P([B, A], [2, 2]), P([A], [1]), P([], [])]]
    ctx = SimpleNamespace(candidates=np.arange(3), predictions=frames, epoch_predictions=epochs)
    # frame 0: [0.5, 0.5]; frame 1: votes 2, 2, 1, 1 -> 0.5; frame 2: no final detection -> 0
    assert LabelDispersion(aggregation="mean").score(ctx).tolist() == [0.5, 0.5, 0.0]
    assert LabelDispersion(aggregation="sum").score(ctx).tolist() == [1.0, 0.5, 0.0]
    assert LabelDispersion(aggregation="max").score(ctx).tolist() == [0.5, 0.5, 0.0]
    # score_threshold drops B (score 0.3) from frame 0's final detections
    frames[0] = P([A, B], [1, 2], [0.9, 0.3])
    assert LabelDispersion(aggregation="sum", score_threshold=0.5).score(ctx).tolist() == [0.5, 0.5, 0.0]


def test_config_errors_are_one_line():
    for bad, msg in [({"checkpoints": 0}, "checkpoints must be an int >= 1"), ({"iou": 1.5}, "iou must be in"),
                     ({"aggregation": "median"}, "aggregation must be one of sum, mean, max")]:
        with pytest.raises(ConfigError, match=msg):
            build_acquisition({"acquisition": {"name": "label_dispersion", **bad}})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("disp")
    write_split(root / "train.h5", [6, 10, 14, 12], 0, "train")
    write_split(root / "test.h5", [6, 6], 1, "test")
    (root / "al.py").write_text(f"""
dataset = dict(train="{root}/train.h5", test="{root}/test.h5")
detector = dict(backend="double", datasets=("{root}/train.h5", "{root}/test.h5"))
schedule = dict(epochs=4, lr=0.01, batch_size=4)
evaluation = dict(score_threshold=0.5, nms_iou=0.5)
al = dict(initial=4, budget=3, cycles=1, k=1, per_video=True, train_from="previous", reference=False)
acquisition = dict(name="label_dispersion", checkpoints=2)
""")
    return root


def test_loop_predicts_the_last_epochs_and_scores_from_them(tiny, tmp_path):
    from vidal.loop import Experiment, read_epoch_predictions

    with registered():
        cfg = load_config(tiny / "al.py")
        exp = Experiment(cfg, tmp_path / "w", 0, progress=False, threads=1, echo=lambda s: None)
        exp.run()
        path = tmp_path / "w" / "cycle_000" / "epoch_predictions.npz"
        sets, seconds = read_epoch_predictions(path, 42)
        with np.load(path, allow_pickle=False) as z:
            assert z["epochs"].tolist() == [1, 2]  # the 2 epochs before the last of 4 (0-based)
        assert len(sets) == 2 and seconds >= 0
        # the checkpoints disagree with each other (the double draws per epoch) and the scores are
        # exactly the acquisition's on the cached files
        assert any(len(a) != len(b) or not np.array_equal(a.labels, b.labels) for a, b in zip(*sets))
        from vidal.workdir import read_pool_predictions

        final, _ = read_pool_predictions(tmp_path / "w" / "cycle_000" / "pool_predictions.npz", 42)
        with np.load(tmp_path / "w" / "cycle_000" / "selection.npz") as z:
            cand, scores = z["candidates"], z["scores"]
        ctx = SimpleNamespace(candidates=cand, predictions=final, epoch_predictions=sets)
        np.testing.assert_allclose(scores, LabelDispersion(checkpoints=2).score(ctx))
        assert scores.max() > 0


def test_shared_cycle0_is_trained_again_for_the_epoch_predictions(tiny, tmp_path):
    from vidal.loop import Experiment

    with registered():
        cfg = load_config(tiny / "al.py")
        shared = dict(cfg, acquisition={"name": "entropy"})
        Experiment(shared, tmp_path / "c0", 0, progress=False, threads=1, only="cycle0", echo=lambda s: None).run()
        lines = []
        Experiment(cfg, tmp_path / "w", 0, progress=False, threads=1, cycle0_from=tmp_path / "c0",
                   echo=lines.append).run()
    assert (tmp_path / "w" / "cycle_000" / "epoch_predictions.npz").is_file()
    assert not any("shared model" in ln for ln in lines)
