"""Tests of the acquisition functions on hand-made predictions: uncertainty measures (entropy of a
uniform row is maximal, ...), aggregation modes, frames without detections, class weighting,
oracle FP / FN counts, random scores, the registry and strict constructor arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vidal.acquisition  # noqa: F401 - registers
from vidal.acquisition import Acquisition, AcquisitionContext
from vidal.acquisition.oracle import frame_errors
from vidal.acquisition.uncertainty import aggregate, class_weights, entropy, least_confidence, margin
from vidal.detection.base import Predictions
from vidal.registry import ACQUISITIONS

C = 2  # classes 1..2


def pred(rows, labels=None, boxes=None, scores=None) -> Predictions:
    probs = np.asarray(rows, np.float32).reshape(-1, C + 1)
    n = len(probs)
    labels = np.asarray(labels if labels is not None else 1 + probs[:, 1:].argmax(1), np.int64)
    boxes = np.asarray(boxes if boxes is not None else [[0, 0, 10, 10]] * n, np.float32).reshape(-1, 4)
    scores = np.asarray(scores if scores is not None else probs[np.arange(n), labels], np.float32)
    return Predictions(boxes, scores, labels, probs)


def ctx_for(predictions, *, counts=None, gts=None, evaluation=None) -> AcquisitionContext:
    n = len(predictions)
    return AcquisitionContext(dataset=None, candidates=np.arange(n), labeled=np.zeros(n, bool), num_classes=C,
                              class_names=["a", "b"], cycle=0, rng=np.random.default_rng(0),
                              predictions=predictions, ground_truth=(lambda i: gts[i]) if gts else None,
                              labeled_class_counts=None if counts is None else np.asarray(counts),
                              evaluation=evaluation or {})


UNIFORM = [1 / 3, 1 / 3, 1 / 3]
SURE = [0.0, 1.0, 0.0]
HALF = [0.0, 0.5, 0.5]
MOSTLY = [0.1, 0.8, 0.1]


def test_measures_on_hand_made_rows():
    rows = np.array([UNIFORM, SURE, HALF, MOSTLY])
    np.testing.assert_allclose(entropy(rows), [math.log(3), 0.0, math.log(2),
                                               -(0.8 * math.log(0.8) + 0.2 * math.log(0.1))], atol=1e-6)
    np.testing.assert_allclose(least_confidence(rows), [2 / 3, 0.0, 0.5, 0.2], atol=1e-6)
    np.testing.assert_allclose(margin(rows), [1.0, 0.0, 1.0, 0.3], atol=1e-6)
    for f in (entropy, least_confidence, margin):
        assert f(np.zeros((0, 3))).shape == (0,)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.01, 1.0), min_size=3, max_size=6))
def test_uniform_row_is_maximal(weights):
    p = np.asarray(weights) / np.sum(weights)
    u = np.full(len(p), 1 / len(p))
    assert entropy(p[None])[0] <= entropy(u[None])[0] + 1e-9
    assert least_confidence(p[None])[0] <= least_confidence(u[None])[0] + 1e-9
    assert margin(p[None])[0] <= margin(u[None])[0] + 1e-9


def test_aggregations_and_empty_frames_score_zero():
    assert aggregate(np.array([1.0, 2.0, 6.0]), "sum") == 9.0
    assert aggregate(np.array([1.0, 2.0, 6.0]), "mean") == 3.0
    assert aggregate(np.array([1.0, 2.0, 6.0]), "max") == 6.0
    assert aggregate(np.zeros(0), "mean") == 0.0
    with pytest.raises(ValueError, match="aggregation must be one of"):
        aggregate(np.ones(2), "median")
    preds = [pred([UNIFORM, SURE]), pred([HALF]), Predictions.empty(C), pred([HALF, HALF, HALF])]
    H = {"sum": [math.log(3), math.log(2), 0, 3 * math.log(2)],
         "mean": [math.log(3) / 2, math.log(2), 0, math.log(2)],
         "max": [math.log(3), math.log(2), 0, math.log(2)]}
    for how, want in H.items():
        got = ACQUISITIONS.build("entropy", aggregation=how).score(ctx_for(preds))
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, atol=1e-6)
    # thesis defaults: mean for LC and entropy, sum for margin
    assert ACQUISITIONS.build("entropy").aggregation == "mean"
    assert ACQUISITIONS.build("least_confidence").aggregation == "mean"
    assert ACQUISITIONS.build("margin").aggregation == "sum"
    np.testing.assert_allclose(ACQUISITIONS.build("margin").score(ctx_for(preds)), [1.0, 1.0, 0.0, 3.0], atol=1e-6)
    np.testing.assert_allclose(ACQUISITIONS.build("least_confidence").score(ctx_for(preds)),
                               [1 / 3, 0.5, 0.0, 0.5], atol=1e-6)


def test_score_threshold_drops_low_detections():
    p = [pred([UNIFORM, HALF], labels=[1, 1], scores=[0.2, 0.9])]
    acq = ACQUISITIONS.build("entropy", aggregation="sum", score_threshold=0.5)
    np.testing.assert_allclose(acq.score(ctx_for(p)), [math.log(2)], atol=1e-6)


def test_class_weighting_favours_rare_classes():
    w = class_weights([0, 90, 10])  # class 2 rare
    np.testing.assert_allclose(w, [1.0, 102 / (2 * 91), 102 / (2 * 11)])
    np.testing.assert_allclose(class_weights([0, 5, 5]), [1, 1, 1])
    assert class_weights([0, 10, 0])[2] > class_weights([0, 10, 0])[1]
    # two frames with equally uncertain detections, one predicted class 1, the other class 2
    preds = [pred([HALF], labels=[1]), pred([HALF], labels=[2])]
    plain = ACQUISITIONS.build("entropy").score(ctx_for(preds, counts=[0, 90, 10]))
    weighted = ACQUISITIONS.build("entropy", class_weighting=True).score(ctx_for(preds, counts=[0, 90, 10]))
    assert plain[0] == plain[1]
    assert weighted[1] > weighted[0]
    np.testing.assert_allclose(weighted, np.array([w[1], w[2]]) * math.log(2), atol=1e-6)


def test_oracle_counts_real_false_positives_and_negatives():
    gt = {"boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], np.float32),
          "labels": np.array([1, 1, 2])}
    # a TP (class 1), a duplicate of it (FP; both overlap the object by IoU 0.7, each other by 0.4,
    # so NMS at 0.5 keeps both), a wrong-class box on
    # the class-2 object (FP for class 1, and the class-2 object a FN), a low-score box (dropped), a
    # box on nothing (FP); the class-1 object at (20, 20) is missed (FN)
    p = Predictions(np.array([[0, 0, 10, 7], [0, 3, 10, 10], [40, 40, 50, 50], [20, 20, 30, 30], [70, 5, 80, 15]]),
                    np.array([0.9, 0.8, 0.7, 0.3, 0.6]), np.array([1, 1, 1, 1, 2]),
                    np.full((5, 3), 1 / 3))
    assert frame_errors(gt, p, C) == (3, 2)
    assert frame_errors(gt, p, C, score_threshold=0.0) == (3, 1)  # the low-score box is now a TP
    empty_gt = {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, np.int64)}
    assert frame_errors(empty_gt, p, C) == (4, 0)
    assert frame_errors(gt, Predictions.empty(C), C) == (0, 3)
    ctx = ctx_for([p, Predictions.empty(C)], gts=[gt, empty_gt])
    np.testing.assert_array_equal(ACQUISITIONS.build("oracle_fp").score(ctx), [3, 0])
    np.testing.assert_array_equal(ctx.log["real_fp"], [3, 0])
    np.testing.assert_array_equal(ACQUISITIONS.build("oracle_fn").score(ctx), [2, 0])
    # the config's evaluation threshold is used unless the acquisition sets its own
    ctx = ctx_for([p], gts=[gt], evaluation={"score_threshold": 0.0, "nms_iou": 0.5})
    np.testing.assert_array_equal(ACQUISITIONS.build("oracle_fn").score(ctx), [1])
    np.testing.assert_array_equal(ACQUISITIONS.build("oracle_fn", score_threshold=0.5).score(ctx), [2])


def test_random_scores_are_seeded_and_random_overrides_the_protocol():
    preds = [Predictions.empty(C)] * 20
    a = ACQUISITIONS.build("random").score(ctx_for(preds))
    b = ACQUISITIONS.build("random_r").score(ctx_for(preds))
    assert a.shape == (20,) and len(set(a.tolist())) == 20 and np.array_equal(a, b)
    assert ACQUISITIONS.get("random").selection == {"k": 0, "per_video": False}
    assert not hasattr(ACQUISITIONS.get("random_r"), "selection")


def test_registry_needs_and_strict_arguments():
    assert {"random", "random_r", "least_confidence", "margin", "entropy", "oracle_fp", "oracle_fn"} <= set(ACQUISITIONS)
    for name in ACQUISITIONS:
        acq = ACQUISITIONS.build(name)
        assert isinstance(acq, Acquisition) and acq.name == name
        assert acq.needs <= vidal.acquisition.NEEDS
    assert ACQUISITIONS.get("oracle_fp").needs == {"predictions", "ground_truth"}
    assert ACQUISITIONS.get("entropy").needs == {"predictions"}
    with pytest.raises(TypeError):
        ACQUISITIONS.build("entropy", aggregaton="sum")
    with pytest.raises(ValueError, match="aggregation must be one of"):
        ACQUISITIONS.build("margin", aggregation="median")
    with pytest.raises(KeyError, match="valid names: entropy"):
        ACQUISITIONS.get("entropie")
