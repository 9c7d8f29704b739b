"""Tests of vidal.evaluation: hand-computed VOC cases, degenerate inputs, and agreement with
pycocotools on hundreds of random detection / ground truth sets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vidal.evaluation import (average_precision, average_precision_voc, box_iou, coco_metrics,
                              evaluate_detections, evaluate_thesis, filter_predictions, nms)

pytest.importorskip("pycocotools")


def gt(boxes, labels):
    return {"boxes": np.asarray(boxes, np.float32).reshape(-1, 4), "labels": np.asarray(labels, np.int64)}


def dt(boxes, scores, labels):
    return {"boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
            "scores": np.asarray(scores, np.float32), "labels": np.asarray(labels, np.int64)}


# ----------------------------------------------------------------------------- hand cases
def hand_case():
    """3 car GT in 2 frames; 5 detections: a TP, a duplicate, a wrong class, a TP, a miss.

    class 1 = car, class 2 = person (no person GT).
      frame 0 GT: A [0,0,10,10], B [20,0,30,10];  frame 1 GT: C [0,0,10,10]
      d1 .9 f0 car    [0,0,10,10]   IoU(A)=1                         -> TP (A)
      d2 .8 f0 car    [1,0,11,10]   IoU(A)=90/110=.818, A taken      -> FP (duplicate)
      d3 .7 f1 person [0,0,10,10]   wrong class: FP of *person*      (person has no GT -> NaN)
      d4 .6 f1 car    [0,0,10,8]    IoU(C)=80/100=.8                 -> TP (C)
      d5 .5 f0 car    [50,50,60,60] no overlap                       -> FP
    """
    gts = [gt([[0, 0, 10, 10], [20, 0, 30, 10]], [1, 1]), gt([[0, 0, 10, 10]], [1])]
    preds = [dt([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], [.9, .8, .5], [1, 1, 1]),
             dt([[0, 0, 10, 10], [0, 0, 10, 8]], [.7, .6], [2, 1])]
    return gts, preds


def test_hand_case_voc_all_point():
    gts, preds = hand_case()
    r = evaluate_detections(gts, preds, 2, class_names=["car", "person"])
    # car ranked: d1 TP, d2 FP, d4 TP, d5 FP; n_gt = 3
    #   recall    1/3, 1/3, 2/3, 2/3
    #   precision 1,   1/2, 2/3, 1/2   -> envelope 1, 2/3, 2/3, 1/2
    #   AP = (1/3 - 0) * 1 + (2/3 - 1/3) * 2/3 = 1/3 + 2/9 = 5/9
    assert r["AP"]["car"] == pytest.approx(5 / 9, abs=1e-12)
    assert math.isnan(r["AP"]["person"])          # no person GT: NaN, excluded from the mean
    assert r["mAP"] == pytest.approx(5 / 9, abs=1e-12)
    assert r["num_classes_with_gt"] == 1
    car, person = r["per_class"]
    assert (car["num_gt"], car["num_det"], car["tp"], car["fp"]) == (3, 4, 2, 2)
    assert (person["num_gt"], person["num_det"], person["tp"], person["fp"]) == (0, 1, 0, 1)


def test_hand_case_coco101_and_pycocotools():
    gts, preds = hand_case()
    # 101-point: r in {0,..,.33} (34 points) first reached at rank 1 -> envelope 1;
    # r in {.34,..,.66} (33 points) at rank 3 -> 2/3; r >= .67 never reached -> 0.
    # AP = (34 * 1 + 33 * 2/3) / 101 = 56/101
    r = evaluate_detections(gts, preds, 2, interpolation="coco101")
    assert r["AP"]["1"] == pytest.approx(56 / 101, abs=1e-12)
    c = coco_metrics(gts, preds, 2)
    assert c["AP50_per_class"]["1"] == pytest.approx(56 / 101, abs=1e-12)
    assert c["AP50"] == pytest.approx(56 / 101, abs=1e-12)
    assert math.isnan(c["AP50_per_class"]["2"])


def test_thesis_protocol_nms_then_threshold():
    gts, preds = hand_case()
    # NMS (IoU .5): d2 overlaps d1 (same class, IoU .818 > .5) -> suppressed; d5 has score .5,
    # kept by "reject below 0.5". car: d1 TP, d4 TP, d5 FP -> recall 1/3, 2/3, 2/3,
    # precision 1, 1, 2/3 -> AP = 1/3 * 1 + 1/3 * 1 = 2/3
    r = evaluate_thesis(gts, preds, 2)
    assert r["AP"]["1"] == pytest.approx(2 / 3, abs=1e-12)
    assert r["per_class"][0]["fp"] == 1
    same = evaluate_detections(gts, preds, 2, nms_iou=0.5, score_threshold=0.5)
    assert same["AP"] == r["AP"]
    # threshold alone (no NMS) keeps the duplicate -> 5/9 as without any post-processing
    assert evaluate_detections(gts, preds, 2, score_threshold=0.5)["AP"]["1"] == pytest.approx(5 / 9)
    # a threshold above d4 (.6) leaves d1 only: recall 1/3 at precision 1 -> AP 1/3
    assert evaluate_detections(gts, preds, 2, score_threshold=0.65)["AP"]["1"] == pytest.approx(1 / 3)


def test_detection_takes_highest_iou_unmatched_gt():
    # G1 [0,0,10,10], G2 [2,0,12,10] in one frame.
    # a .9 [1.5,0,11.5,10]: IoU(G1) = 85/115 = .739, IoU(G2) = 95/105 = .905 -> takes G2
    # b .8 [-3,0,7,10]:     IoU(G1) = 70/130 = .538, IoU(G2) = 50/150 = .333 -> takes G1
    # both TP -> AP 1. (Taking the first GT above .5 for a would make b a FP: AP 1/2.)
    gts = [gt([[0, 0, 10, 10], [2, 0, 12, 10]], [1, 1])]
    preds = [dt([[1.5, 0, 11.5, 10], [-3, 0, 7, 10]], [.9, .8], [1, 1])]
    assert evaluate_detections(gts, preds, 1)["mAP"] == pytest.approx(1.0)
    assert coco_metrics(gts, preds, 1)["AP50"] == pytest.approx(1.0)


def test_global_score_order_and_stable_ties():
    # Two frames, one GT each; the FP (frame 0) and the TP (frame 1) share score .5.
    # Ties go by frame order: FP first -> precision 0, 1/2 at recall 0, 1/2 ... :
    #   ranked: t1 .9 TP (f1), x .5 FP (f0), t0 .5 TP (f1)
    gts = [gt([[0, 0, 10, 10]], [1]), gt([[0, 0, 10, 10], [20, 20, 30, 30]], [1, 1])]
    preds = [dt([[50, 50, 60, 60]], [.5], [1]),
             dt([[0, 0, 10, 10], [20, 20, 30, 30]], [.9, .5], [1, 1])]
    # n_gt = 3; recall 1/3, 1/3, 2/3; precision 1, 1/2, 2/3 -> AP = 1/3 + 1/3 * 2/3 = 5/9
    assert evaluate_detections(gts, preds, 1)["mAP"] == pytest.approx(5 / 9)
    # swapping the frames puts the TP first among the ties: precision 1, 1, 2/3 -> AP 2/3
    assert evaluate_detections(gts[::-1], preds[::-1], 1)["mAP"] == pytest.approx(2 / 3)


def test_average_precision_from_curve():
    # recall .5, .5, 1 ; precision 1, .5, 2/3: envelope 1, 2/3, 2/3 -> .5 * 1 + .5 * 2/3
    rec, prec = np.array([.5, .5, 1.]), np.array([1, .5, 2 / 3])
    assert average_precision_voc(rec, prec) == pytest.approx(.5 + 1 / 3)
    assert average_precision(np.zeros(0), np.zeros(0)) == 0.0
    with pytest.raises(ValueError, match="interpolation"):
        average_precision(rec, prec, "11point")


def test_box_iou_plus_zero_convention():
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [10, 10, 20, 20], [0, 0, 0, 0]]))
    np.testing.assert_allclose(iou, [[50 / 150, 0.0, 0.0]])


# ----------------------------------------------------------------------------- degenerate inputs
def test_empty_frame_list():
    r = evaluate_detections([], [], 3)
    assert math.isnan(r["mAP"]) and r["num_classes_with_gt"] == 0 and r["num_frames"] == 0
    assert all(math.isnan(v) for v in r["AP"].values())
    c = coco_metrics([], [], 3)
    assert all(math.isnan(c[k]) for k in ("AP", "AP50", "AR100"))


def test_gt_without_any_detection_is_zero():
    gts = [gt([[0, 0, 10, 10]], [1]), gt(np.zeros((0, 4)), [])]
    preds = [dt(np.zeros((0, 4)), [], []), dt(np.zeros((0, 4)), [], [])]
    r = evaluate_detections(gts, preds, 2)
    assert r["AP"]["1"] == 0.0 and math.isnan(r["AP"]["2"]) and r["mAP"] == 0.0
    assert coco_metrics(gts, preds, 2)["AP50"] == 0.0


def test_detections_without_any_gt():
    gts = [gt(np.zeros((0, 4)), []), gt(np.zeros((0, 4)), [])]
    preds = [dt([[0, 0, 5, 5]], [.9], [1]), dt(np.zeros((0, 4)), [], [])]
    r = evaluate_detections(gts, preds, 1)
    assert math.isnan(r["mAP"]) and r["per_class"][0]["fp"] == 1
    assert math.isnan(coco_metrics(gts, preds, 1)["AP50"])


def test_class_with_gt_but_no_detection_counts_in_the_mean():
    # class 1 found perfectly (AP 1), class 2 never detected (AP 0), class 3 absent (NaN)
    gts = [gt([[0, 0, 10, 10], [20, 20, 40, 40]], [1, 2])]
    preds = [dt([[0, 0, 10, 10]], [.9], [1])]
    r = evaluate_detections(gts, preds, 3, class_names=["a", "b", "c"])
    assert r["AP"]["a"] == 1.0 and r["AP"]["b"] == 0.0 and math.isnan(r["AP"]["c"])
    assert r["mAP"] == 0.5 and r["num_classes_with_gt"] == 2
    assert coco_metrics(gts, preds, 3)["AP50"] == pytest.approx(0.5)


def test_accepts_predictions_objects():
    from vidal.detection.base import Predictions

    gts, preds = hand_case()
    objs = [Predictions(p["boxes"], p["scores"], p["labels"], np.full((len(p["boxes"]), 3), 1 / 3))
            for p in preds]
    assert evaluate_detections(gts, objs, 2)["mAP"] == pytest.approx(5 / 9)


def test_input_errors():
    gts, preds = hand_case()
    with pytest.raises(ValueError, match="frames"):
        evaluate_detections(gts, preds[:1], 2)
    with pytest.raises(ValueError, match="1..1"):
        evaluate_detections(gts, preds, 1)
    with pytest.raises(ValueError, match="class names"):
        evaluate_detections(gts, preds, 2, class_names=["car"])
    with pytest.raises(ValueError, match="scores"):
        evaluate_detections(gts, [{"boxes": np.zeros((1, 4)), "labels": [1]}, preds[1]], 2)
    with pytest.raises(ValueError, match="3 boxes but 2 scores"):
        evaluate_thesis(gts, [dt(np.zeros((3, 4)), [.9, .9], [1, 1, 1]), preds[1]], 2)


# ----------------------------------------------------------------------------- NMS
def test_nms_matches_torchvision_batched_nms():
    torch = pytest.importorskip("torch")
    tv_ops = pytest.importorskip("torchvision.ops")
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(0, 40))
        xy = rng.uniform(0, 80, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (n, 2))], 1).astype(np.float32)
        scores = rng.random(n).astype(np.float32)          # continuous: no ties
        labels = rng.integers(1, 4, n)
        ours = nms(boxes, scores, labels, 0.5)
        ref = tv_ops.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores),
                                 torch.from_numpy(labels), 0.5).numpy()
        assert sorted(ours.tolist()) == sorted(ref.tolist())


def test_filter_predictions_keeps_threshold_inclusive():
    out = filter_predictions([dt([[0, 0, 1, 1], [5, 5, 6, 6]], [.5, .49], [1, 1])], score_threshold=.5)
    assert out[0]["scores"].tolist() == [.5]


# ----------------------------------------------------------------------------- vs pycocotools
def random_set(rng, num_classes=3):
    """A random evaluation set inside the region where our AP and pycocotools' coincide:

    - <= 60 detections per frame (pycocotools keeps only the top maxDets=100 per image and class);
    - boxes at real-valued positions, so no two GT of a class have exactly equal IoU with a
      detection (pycocotools takes the *last* GT on an exact IoU tie, we take the first) and no
      IoU equals 0.5 exactly;
    - all GT iscrowd=0 with area far below pycocotools' "all" range limit 1e10;
    - scores rounded to 1 decimal, so many ties, inside and across frames: both break them by
      frame (image id) order, then by order within the frame.
    Detections are jittered copies of GT (TPs, duplicates, poor localisations, wrong classes)
    plus random boxes; half the frames have a crowd of same-class GT overlapping each other, so
    that which GT a detection takes (highest IoU) matters.
    """
    frames_gt, frames_dt = [], []
    for _ in range(int(rng.integers(0, 6))):
        m = int(rng.integers(0, 7))
        xy = rng.uniform(0, 200, (m, 2))
        gb = np.concatenate([xy, xy + rng.uniform(4, 80, (m, 2))], 1)
        gl = rng.integers(1, num_classes + 1, m)
        if m > 1 and rng.random() < 0.5:   # crowd: GT overlapping GT 0, same class
            crowd = rng.random(m) < 0.5
            gb[crowd] = gb[0] + rng.normal(0, 3, (int(crowd.sum()), 4))
            gb[crowd, 2:] = np.maximum(gb[crowd, 2:], gb[crowd, :2] + 2)
            gl[crowd] = gl[0]
        k = int(rng.integers(0, 2 * m + 1)) if m else 0
        src = rng.integers(0, m, k) if m else np.zeros(0, int)
        wh = (gb[src, 2:] - gb[src, :2]) if m else np.zeros((0, 2))
        db = gb[src] + rng.normal(0, 0.25, (k, 4)) * np.concatenate([wh, wh], 1)
        db[:, 2:] = np.maximum(db[:, 2:], db[:, :2] + 1)
        dl = np.where(rng.random(k) < 0.15, rng.integers(1, num_classes + 1, k), gl[src])
        r = int(rng.integers(0, 6))
        rxy = rng.uniform(0, 200, (r, 2))
        db = np.concatenate([db, np.concatenate([rxy, rxy + rng.uniform(2, 60, (r, 2))], 1)])
        dl = np.concatenate([dl, rng.integers(1, num_classes + 1, r)])
        ds = np.round(rng.random(len(db)), 1)
        frames_gt.append(gt(gb, gl))
        frames_dt.append(dt(db, ds, dl))
    return frames_gt, frames_dt


def test_coco101_equals_pycocotools_ap50_on_random_sets():
    rng = np.random.default_rng(20261121)
    worst, compared = 0.0, 0
    for _ in range(300):
        gts, preds = random_set(rng)
        ours = evaluate_detections(gts, preds, 3, interpolation="coco101")
        ref = coco_metrics(gts, preds, 3)
        for name, ap in ours["AP"].items():
            theirs = ref["AP50_per_class"][name]
            assert math.isnan(ap) == math.isnan(theirs), (name, ap, theirs)
            if not math.isnan(ap):
                worst = max(worst, abs(ap - theirs))
                compared += 1
        if math.isnan(ours["mAP"]):
            assert math.isnan(ref["AP50"])
        else:
            worst = max(worst, abs(ours["mAP"] - ref["AP50"]))
    assert compared > 300
    assert worst < 1e-9, worst


def test_voc_all_point_is_order_invariant_and_bounded():
    # Frame order only matters through score ties; with continuous scores it must not.
    rng = np.random.default_rng(7)
    for _ in range(50):
        gts, preds = random_set(rng)
        for p in preds:
            p["scores"] = rng.random(len(p["scores"])).astype(np.float32)
        a = evaluate_detections(gts, preds, 3)
        perm = rng.permutation(len(gts))
        b = evaluate_detections([gts[i] for i in perm], [preds[i] for i in perm], 3)
        for name in a["AP"]:
            x, y = a["AP"][name], b["AP"][name]
            assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, abs=1e-12)
            if not math.isnan(x):
                assert 0.0 <= x <= 1.0
