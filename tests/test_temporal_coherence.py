"""Temporal coherence (vidal/acquisition/temporal_coherence/, thesis 2.3.2) on hand-built videos:
isolated detections become FP, gaps in a track become FN candidates, consistent tracks stay TP,
duplicates, per-class linking, moving objects with a tracker, one-frame videos, empty frames,
parameter validation, the tracker cache, the acquisition through the protocol, and the
comparison with ground truth (true_errors, evaluate_estimates, spearman)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from vidal.acquisition.base import Acquisition, AcquisitionContext
from vidal.acquisition.temporal_coherence import (
    DEFAULTS,
    TemporalCoherence,
    check_params,
    estimate_errors,
    estimate_video,
    evaluate_estimates,
    spearman,
    true_errors,
)
from vidal.detection.base import Predictions
from vidal.evaluation import match_detections, match_frame
from vidal.graphcut import have_pymaxflow
from vidal.registry import ACQUISITIONS
from vidal.tracking.identity import IdentityTracker

C = 2
BOX = [10.0, 10.0, 50.0, 50.0]


def P(boxes=(), labels=None, scores=None) -> Predictions:
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(b)
    labels = np.ones(n, np.int64) if labels is None else np.asarray(labels, np.int64)
    scores = np.full(n, 0.9, np.float32) if scores is None else np.asarray(scores, np.float32)
    probs = np.zeros((n, C + 1), np.float32)
    probs[np.arange(n), labels] = scores
    probs[:, 0] = 1 - scores
    return Predictions(b, scores, labels, probs)


class VelocityTracker:
    """Test double: every box moves by ``(vx, vy)`` pixels per frame; counts its calls."""

    name = "velocity"

    def __init__(self, n_frames, vx=0.0, vy=0.0):
        self.n_frames, self.v = list(n_frames), np.array([vx, vy, vx, vy], np.float32)
        self.calls: list[tuple[int, int, int]] = []

    def propagate(self, video, frame, boxes, delta):
        assert 0 <= frame + delta < self.n_frames[video] and delta != 0
        self.calls.append((video, frame, delta))
        return np.asarray(boxes, np.float32).reshape(-1, 4) + delta * self.v


class LosingTracker(VelocityTracker):
    """Loses every box (NaN rows)."""

    def propagate(self, video, frame, boxes, delta):
        return np.full((len(boxes), 4), np.nan, np.float32)


def ident(T):
    return IdentityTracker([T])


def run(preds, tracker=None, **kw):
    return estimate_video(preds, tracker or ident(len(preds)), 0, **kw)


# ----------------------------------------------------------------------------- hand-built videos


def test_consistent_track_stays_tp_with_zero_energy():
    ve = run([P([BOX]) for _ in range(8)])
    assert ve.est_fp.tolist() == [0] * 8 and ve.est_fn.tolist() == [0] * 8
    assert ve.energy == 0 and not ve.node_is_candidate.any() and ve.present.all()
    # every detection is linked to its neighbours within the window (3 on each side)
    deg = ve.support
    assert deg[0] == 3 and deg[4] == 6


def test_isolated_detection_without_support_becomes_fp():
    preds = [P() for _ in range(7)]
    preds[3] = P([[60, 60, 80, 90]])
    ve = run(preds)
    assert ve.est_fp.tolist() == [0, 0, 0, 1, 0, 0, 0]
    assert ve.est_fn.sum() == 0
    fe = ve.frame(3)
    assert fe.det_fp.tolist() == [True] and fe.det_index.tolist() == [0]
    # its tracks in the six neighbour frames became six candidates, all TN
    assert ve.node_is_candidate.sum() == 6 and not ve.present[ve.node_is_candidate].any()


def test_detection_missing_in_one_frame_yields_an_fn_candidate_there():
    preds = [P([BOX]) for _ in range(9)]
    preds[4] = P()
    ve = run(preds)
    assert ve.est_fn.tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert ve.est_fp.sum() == 0
    fe = ve.frame(4)
    assert len(fe.cand_boxes) == 1 and fe.cand_fn.tolist() == [True]
    np.testing.assert_allclose(fe.cand_boxes[0], BOX)
    assert fe.cand_support.tolist() == [6]  # tracked from frames 1, 2, 3, 5, 6, 7


def test_object_detected_in_frames_i_minus_1_and_i_plus_1_only():
    # three-frame video: detections in 0 and 2 link (|0 - 2| <= 3), frame 1 gets one FN candidate
    ve = run([P([BOX]), P(), P([BOX])])
    assert ve.est_fn.tolist() == [0, 1, 0] and ve.est_fp.tolist() == [0, 0, 0]
    assert ve.frame(1).cand_support.tolist() == [2]


def test_duplicate_detection_becomes_fp_with_one_to_one_matching():
    dup = [14.0, 10.0, 54.0, 50.0]  # IoU 0.82 with BOX
    preds = [P([BOX]) for _ in range(7)]
    preds[3] = P([BOX, dup], scores=[0.9, 0.8])
    ve = run(preds)
    assert ve.frame(3).det_fp.tolist() == [False, True]
    assert ve.est_fp.tolist() == [0, 0, 0, 1, 0, 0, 0] and ve.est_fn.sum() == 0
    # the literal many-to-many reading links the duplicate to the track: no FP
    ve_all = run(preds, matching="all")
    assert ve_all.est_fp.sum() == 0


def test_links_are_per_class():
    preds = [P([BOX]) for _ in range(7)]
    preds[3] = P([BOX, BOX], labels=[1, 2])  # a class-2 box on the class-1 track, alone in its class
    ve = run(preds)
    fe = ve.frame(3)
    assert fe.det_fp.tolist() == [False, True]
    # alternating classes never link: every detection is isolated in its own class
    alt = run([P([BOX], labels=[1 + t % 2]) for t in range(7)], window=1)
    assert alt.support[~alt.node_is_candidate].min() >= 1  # only candidate edges
    e = alt.edges
    assert not (~alt.node_is_candidate[e[:, 0]] & ~alt.node_is_candidate[e[:, 1]]).any()


def test_score_threshold_decides_which_detections_enter_the_graph():
    preds = [P([BOX], scores=[0.9]) for _ in range(5)]
    preds[2] = P([BOX, [70, 70, 90, 90]], scores=[0.3, 0.95])
    ve = run(preds)  # default 0.5: the 0.3 box is out, frame 2 has a miss and an isolated box
    fe = ve.frame(2)
    assert fe.det_index.tolist() == [1] and fe.det_fp.tolist() == [True]
    assert fe.cand_fn.tolist() == [True]
    ve0 = run(preds, score_threshold=0.2)
    assert ve0.frame(2).det_index.tolist() == [0, 1] and ve0.est_fn.sum() == 0


def test_moving_object_needs_the_tracker():
    # 30 px/frame motion of a 40 px box: identity tracking cannot link it, velocity tracking can
    preds = [P([[10 + 30 * t, 10, 50 + 30 * t, 50]]) for t in range(6)]
    ve_v = run(preds, VelocityTracker([6], vx=30))
    assert ve_v.est_fp.sum() == 0 and ve_v.est_fn.sum() == 0 and ve_v.energy == 0
    ve_i = run(preds)
    assert ve_i.energy > 0 and ve_i.node_is_candidate.any()


def test_lost_tracks_add_nothing():
    preds = [P() for _ in range(5)]
    preds[2] = P([BOX])
    ve = run(preds, LosingTracker([5]))
    assert ve.n_nodes == 1 and len(ve.edges) == 0 and ve.est_fp.tolist() == [0] * 5


def test_one_frame_video_and_empty_frames_and_empty_video():
    ve = run([P([BOX, [60, 60, 90, 90]])])
    assert ve.est_fp.tolist() == [0] and ve.est_fn.tolist() == [0] and len(ve.edges) == 0
    ve = run([P() for _ in range(4)])
    assert ve.n_nodes == 0 and ve.est_fp.tolist() == [0] * 4 and ve.energy == 0
    ve = run([])
    assert ve.n_frames == 0 and ve.est_fp.shape == (0,)


def test_each_frame_is_tracked_once_per_delta():
    tr = VelocityTracker([10])
    run([P([BOX]) for _ in range(10)], tr)
    assert len(tr.calls) == len(set(tr.calls))
    # every (frame, delta) with a target inside the video and something to track
    expected = {(0, t, d) for t in range(10) for d in (-3, -2, -1, 1, 2, 3) if 0 <= t + d < 10}
    assert set(tr.calls) == expected


def test_window_and_pairwise_change_the_outcome():
    preds = [P() for _ in range(7)]
    preds[3] = P([[60, 60, 80, 90]])
    assert run(preds, window=3).est_fp[3] == 1
    # window 1 gives 2 candidates; with pairwise 0.4 keeping it TP (2 x 0.4) beats FP (1)
    assert run(preds, window=1, pairwise=0.4).est_fp[3] == 0
    assert run(preds, window=1, pairwise=1.0).est_fp[3] == 1


@pytest.mark.parametrize("solver", ["scipy"] + (["pymaxflow"] if have_pymaxflow() else []))
def test_solvers_reach_the_bruteforce_energy_on_tc_graphs(solver):
    """Noisy little videos (two jittered objects with dropouts, spurious boxes): the graph-cut
    labeling has the brute-force minimum energy."""
    checked = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        objs = np.array([[10, 10, 40, 40], [50, 20, 80, 60]], np.float64)
        preds = []
        for t in range(5):
            keep = rng.random(2) > 0.3
            b = objs[keep] + rng.normal(0, 2, (int(keep.sum()), 4))
            if rng.random() < 0.4:
                xy = rng.uniform(0, 60, 2)
                b = np.concatenate([b, [[*xy, *(xy + 25)]]])
            preds.append(P(b, labels=rng.integers(1, 3, len(b)) if seed % 3 == 0 else None))
        got = run(preds, solver=solver, window=2)
        if got.n_nodes > 18:
            continue
        ref = run(preds, solver="bruteforce", window=2)
        assert got.energy == ref.energy, seed
        checked += 1 if len(ref.edges) else 0
    assert checked >= 10


def test_parameter_validation():
    assert check_params({}) == DEFAULTS
    with pytest.raises(ValueError, match="unknown parameter.*valid: window"):
        TemporalCoherence(windw=3)
    for bad in (dict(window=0), dict(window=1.5), dict(link_iou=1.0), dict(candidate_iou=-0.1),
                dict(score_threshold=2), dict(pairwise=-1), dict(matching="hungarian"), dict(solver="x"),
                dict(target="tp")):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TemporalCoherence(**bad)
    with pytest.raises(ValueError, match="unknown parameter"):
        estimate_video([P()], ident(1), 0, nope=1)


def test_tracker_returning_wrong_shape_is_an_error():
    class Bad(VelocityTracker):
        def propagate(self, video, frame, boxes, delta):
            return np.zeros((0, 4), np.float32)

    with pytest.raises(ValueError, match="returned 0 boxes for 1"):
        run([P([BOX]), P([BOX])], Bad([2]))


# ----------------------------------------------------------------------------- dataset level + protocol


def fake_dataset(lengths):
    offs = np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist()
    return SimpleNamespace(videos=[SimpleNamespace(n_frames=n, offset=o, name=f"v{k}")
                                   for k, (n, o) in enumerate(zip(lengths, offs))])


def _pool():
    """Video 0 (7 frames): a track with a gap at frame 3 and a spurious box at frame 5.
    Video 1 (1 frame): two boxes. Video 2 (4 frames): nothing."""
    v0 = [P([BOX]) for _ in range(7)]
    v0[3] = P()
    v0[5] = P([BOX, [100, 100, 130, 140]])
    return fake_dataset([7, 1, 4]), v0 + [P([BOX, [60, 60, 90, 90]])] + [P() for _ in range(4)]


def test_estimate_errors_over_a_dataset_and_frame_addressing():
    ds, preds = _pool()
    res = estimate_errors(ds, preds, IdentityTracker([7, 1, 4]))
    assert sorted(res.videos) == [0, 1, 2]
    fp, fn = res.counts(np.arange(12))
    assert fp.tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert fn.tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert res.frame(5).det_fp.tolist() == [False, True]
    s = res.summary()
    assert s["est_fp"] == 1 and s["est_fn"] == 1 and s["frames"] == 12 and set(s["seconds"]) >= {"track", "cut"}
    part = estimate_errors(ds, preds, IdentityTracker([7, 1, 4]), videos=[0], n_frames={0: 3})
    assert part.videos[0].n_frames == 3 and not part.covers(4) and part.covers(2)
    with pytest.raises(KeyError):
        part.frame(8)


def test_acquisition_through_the_protocol():
    ds, preds = _pool()
    assert ACQUISITIONS.get("temporal_coherence") is TemporalCoherence
    acq = ACQUISITIONS.build("temporal_coherence")
    assert isinstance(acq, Acquisition) and acq.needs == frozenset({"predictions", "tracks"})
    cand = np.array([1, 3, 5, 7, 9], np.int64)  # frames 1, 3, 5 of video 0; video 1; frame 1 of video 2
    labeled = np.zeros(12, bool)
    labeled[[0, 2, 4, 6, 8, 10, 11]] = True

    def ctx():
        return AcquisitionContext(dataset=ds, candidates=cand, labeled=labeled, num_classes=C,
                                  class_names=["a", "b"], cycle=0, rng=np.random.default_rng(0),
                                  predictions=preds, tracker=IdentityTracker([7, 1, 4]))

    c = ctx()
    s = acq.score(c)
    assert s.dtype == np.float64 and s.tolist() == [0, 0, 1, 0, 0]
    assert c.log["est_fp"].tolist() == [0, 0, 1, 0, 0] and c.log["est_fn"].tolist() == [0, 1, 0, 0, 0]
    assert c.log["tc"]["videos"] == 3
    assert TemporalCoherence(target="fn").score(ctx()).tolist() == [0, 1, 0, 0, 0]
    assert TemporalCoherence(target="fp+fn").score(ctx()).tolist() == [0, 1, 1, 0, 0]
    # an empty pool
    empty = ctx()
    empty.candidates = np.zeros(0, np.int64)
    assert acq.score(empty).shape == (0,)
    # the context must carry what the acquisition needs
    missing = ctx()
    missing.tracker = None
    with pytest.raises(ValueError, match="tracker"):
        acq.score(missing)


# ----------------------------------------------------------------------------- checking against ground truth


@pytest.mark.parametrize("matching", ["voc", "coco"])
def test_match_frame_agrees_with_the_evaluator(matching):
    rng = np.random.default_rng(5)
    for _ in range(50):
        m, n = int(rng.integers(0, 5)), int(rng.integers(0, 6))
        gxy, dxy = rng.uniform(0, 40, (m, 2)), rng.uniform(0, 40, (n, 2))
        gb, db = np.concatenate([gxy, gxy + 20], 1), np.concatenate([dxy, dxy + 20], 1)
        gl, dl, ds = rng.integers(1, 3, m), rng.integers(1, 3, n), rng.uniform(0, 1, n)
        gt_of_det, _ = match_frame(gb, gl, db, dl, ds, matching=matching)
        tp = gt_of_det >= 0
        for cls in (1, 2):
            sc, is_tp, _ = match_detections([(gb, gl)], [(db, dl, ds)], cls, matching=matching)
            k = np.flatnonzero(dl == cls)
            order = np.argsort(-ds[k], kind="mergesort")
            assert tp[k[order]].tolist() == is_tp.tolist()


def test_true_errors_and_evaluate_estimates():
    ds, preds = _pool()
    res = estimate_errors(ds, preds, IdentityTracker([7, 1, 4]))
    # ground truth: the track is real in all 7 frames (frame 3 missed), frame 5's extra box is
    # spurious; video 1's second box is real too; video 2 is empty
    gts = {i: {"boxes": np.array([BOX], np.float32), "labels": np.array([1])} for i in range(7)}
    gts[7] = {"boxes": np.array([BOX, [60, 60, 90, 90]], np.float32), "labels": np.array([1, 1])}
    for i in range(8, 12):
        gts[i] = {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64)}
    te = true_errors(gts[5], preds[5], res.frame(5))
    assert te["det_fp"].tolist() == [False, True]
    te = true_errors(gts[3], preds[3], res.frame(3))
    # candidates of frame 3: the missed object (FN) and the spurious box of frame 5 tracked back (TN)
    assert te["cand_miss"].tolist() == [True, False] and res.frame(3).cand_fn.tolist() == [True, False]
    assert te["gt_missed"].tolist() == [True] and te["gt_found"].tolist() == [True]
    rep = evaluate_estimates(res, gts.__getitem__, preds, np.arange(12))
    assert rep["detections"] == 9 and rep["real_fp"] == 1 and rep["fp_base_rate"] == pytest.approx(1 / 9)
    assert rep["fp_precision"] == 1.0 and rep["fp_recall"] == 1.0
    assert rep["fn_precision"] == 1.0 and rep["gt_missed"] == 1 and rep["gt_missed_found"] == 1.0
    assert rep["spearman_fp"] == pytest.approx(1.0) and rep["spearman_fn"] == pytest.approx(1.0)
    assert rep["per_frame"]["real_fn"].tolist()[3] == 1


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))
    # ties get average ranks (value from scipy.stats.spearmanr)
    assert spearman([0, 0, 1, 2], [0, 1, 1, 3]) == pytest.approx(0.8333333333333335)


# ----------------------------------------------------------------------------- overlays (vidal/viz.py)


def test_overlay_draws_each_kind_in_its_colour(tmp_path):
    import cv2

    from vidal.viz import COLORS, draw_errors, overlay_frame_errors, save_png

    img = np.zeros((100, 120, 3), np.uint8)
    out = draw_errors(img, gt_boxes=[[5, 5, 30, 30]], det_boxes=[[40, 5, 70, 30], [80, 5, 110, 30]],
                      det_fp=[False, True], fn_boxes=[[40, 50, 70, 90]], scale=1.0, title="t")
    assert out.shape[1] == 120 and out.shape[0] > 100  # legend strip below the frame
    assert tuple(out[5, 15]) == COLORS["gt"]           # top edge of each box
    assert tuple(out[5, 55]) == COLORS["det"]
    assert tuple(out[5, 95]) == COLORS["fp"]
    assert tuple(out[50, 41]) == COLORS["fn"]          # dashed: the first dash starts at the corner
    assert not out[60:80, 5:30].any()                  # untouched background
    with pytest.raises(ValueError, match="det_fp"):
        draw_errors(img, det_boxes=[[1, 1, 5, 5]], det_fp=[True, False])
    # from TC output
    preds = [P() for _ in range(7)]
    preds[3] = P([[60, 60, 80, 90]])
    ve = run(preds)
    ov = overlay_frame_errors(np.zeros((120, 160, 3), np.uint8), preds[3], ve.frame(3), scale=1.0)
    assert tuple(ov[60, 70]) == COLORS["fp"]
    p = save_png(tmp_path / "sub" / "o.png", ov)
    assert cv2.imread(str(p))[60, 70].tolist() == list(COLORS["fp"][::-1])  # BGR on disk


def test_tracker_output_is_not_modified():
    class Caching(VelocityTracker):
        """Returns float64 arrays it keeps; TC must not write into them."""

        def __init__(self, n):
            super().__init__(n)
            self.kept = []

        def propagate(self, video, frame, boxes, delta):
            out = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
            out[:, 2:] = out[:, :2]  # degenerate boxes: TC treats them as lost (NaN)
            self.kept.append(out)
            return out

    tr = Caching([3])
    ve = run([P([BOX]) for _ in range(3)], tr)
    assert all(np.isfinite(k).all() for k in tr.kept)
    assert len(ve.edges) == 0 and ve.est_fp.sum() == 0  # lost tracks: no links, no candidates
