"""The two matching rules of vidal.evaluation (VOC / TF OD API vs COCO) on hand-built crowded
scenes, and the VOC rule against an independent transcription of the PASCAL VOC devkit's
VOCevaldet.m (greedy over all detections by score, each taking its highest-IoU box)."""

import numpy as np
import pytest

from vidal.evaluation import evaluate_detections, evaluate_thesis, match_frame

A = [0.0, 0.0, 10.0, 10.0]
B = [2.0, 0.0, 12.0, 10.0]  # IoU(A, B) = 0.667: a crowded pair


def frame(boxes, labels, scores=None):
    out = {"boxes": np.asarray(boxes, float).reshape(-1, 4), "labels": np.asarray(labels, int)}
    if scores is not None:
        out["scores"] = np.asarray(scores, float)
    return out


def test_crowded_pair_duplicate_under_voc_true_positive_under_coco():
    gt = frame([A, B], [1, 1])
    # d1 is exactly A; d2's best box is also A (IoU 0.905), its IoU with B is 0.739
    dt = frame([A, [0.5, 0.0, 10.5, 10.0]], [1, 1], [0.9, 0.8])
    voc = evaluate_detections([gt], [dt], 1, matching="voc")
    coco = evaluate_detections([gt], [dt], 1, matching="coco")
    assert voc["per_class"][0]["tp"] == 1 and voc["per_class"][0]["fp"] == 1
    assert voc["mAP"] == pytest.approx(0.5)  # recall stops at 1/2 with precision 1
    assert coco["per_class"][0]["tp"] == 2 and coco["mAP"] == pytest.approx(1.0)
    assert voc["matching"] == "voc" and coco["matching"] == "coco"
    # the thesis protocol and the VOC interpolation default to the VOC rule, coco101 to COCO's
    assert evaluate_thesis([gt], [dt], 1)["mAP"] == pytest.approx(0.5)
    assert evaluate_detections([gt], [dt], 1)["matching"] == "voc"
    assert evaluate_detections([gt], [dt], 1, interpolation="coco101")["matching"] == "coco"


def test_crowded_order_matters_under_voc_only():
    # the higher-scoring detection sits between A and B but nearer B; the lower one is A exactly
    gt = frame([A, B], [1, 1])
    dt = frame([[1.6, 0.0, 11.6, 10.0], A], [1, 1], [0.9, 0.8])  # d1: IoU B 0.92, A 0.72
    gof_voc, m_voc = match_frame(gt["boxes"], gt["labels"], dt["boxes"], dt["labels"], dt["scores"])
    gof_coco, _ = match_frame(gt["boxes"], gt["labels"], dt["boxes"], dt["labels"], dt["scores"], matching="coco")
    assert gof_voc.tolist() == [1, 0] and m_voc.all()  # both rules agree here: d1 takes B, d2 takes A
    assert gof_coco.tolist() == [1, 0]
    # three detections on the pair: the third one's best box is taken -> duplicate under VOC
    dt3 = frame([A, B, [0.2, 0.0, 10.2, 10.0]], [1, 1, 1], [0.9, 0.8, 0.7])
    gof, matched = match_frame(gt["boxes"], gt["labels"], dt3["boxes"], dt3["labels"], dt3["scores"])
    assert gof.tolist() == [0, 1, -1] and matched.all()


def test_wrong_class_and_below_threshold_are_false_positives_under_both():
    gt = frame([A, B], [1, 2])
    dt = frame([A, [20, 20, 30, 30], B], [2, 1, 2], [0.9, 0.8, 0.7])
    for rule in ("voc", "coco"):
        gof, matched = match_frame(gt["boxes"], gt["labels"], dt["boxes"], dt["labels"], dt["scores"], matching=rule)
        # A is class 1, the class-2 detection on A overlaps B (class 2) with IoU 0.667 -> takes B;
        # the class-2 detection exactly on B then finds B taken -> a duplicate (both rules)
        assert gof.tolist() == [1, -1, -1], rule
        assert matched.tolist() == [False, True], rule


def test_unknown_rule_is_one_line_error():
    with pytest.raises(ValueError, match="matching must be one of voc, coco"):
        evaluate_detections([frame([A], [1])], [frame([A], [1], [1.0])], 1, matching="tf")


def _voc_devkit_ap(gts, preds, cls, minoverlap=0.5):
    """Independent transcription of VOCevaldet.m (VOC2010+ AP), with the +0 area convention."""
    ids, conf, bbs = [], [], []
    for i, p in enumerate(preds):
        for b, lab, s in zip(p["boxes"], p["labels"], p["scores"]):
            if lab == cls:
                ids.append(i), conf.append(s), bbs.append(b)
    gt_bbs = [g["boxes"][g["labels"] == cls] for g in gts]
    det = [np.zeros(len(b), bool) for b in gt_bbs]
    npos = sum(len(b) for b in gt_bbs)
    si = np.argsort(-np.asarray(conf), kind="stable")
    tp, fp = np.zeros(len(si)), np.zeros(len(si))
    for d, k in enumerate(si):
        bb, i = bbs[k], ids[k]
        ovmax, jmax = -np.inf, -1
        for j, g in enumerate(gt_bbs[i]):
            iw = min(bb[2], g[2]) - max(bb[0], g[0])
            ih = min(bb[3], g[3]) - max(bb[1], g[1])
            if iw > 0 and ih > 0:
                ua = (bb[2] - bb[0]) * (bb[3] - bb[1]) + (g[2] - g[0]) * (g[3] - g[1]) - iw * ih
                ov = iw * ih / ua
                if ov > ovmax:
                    ovmax, jmax = ov, j
        if ovmax >= minoverlap:
            if not det[i][jmax]:
                tp[d], det[i][jmax] = 1, True
            else:
                fp[d] = 1
        else:
            fp[d] = 1
    if npos == 0:
        return float("nan")
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    rec, prec = tp / npos, tp / np.maximum(tp + fp, np.finfo(float).tiny)
    mrec = np.concatenate([[0], rec, [1]])
    mpre = np.concatenate([[0], prec, [0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    i = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[i] - mrec[i - 1]) * mpre[i]))


def _crowded_case(rng, n_frames=6, n_classes=2):
    gts, preds = [], []
    for _ in range(n_frames):
        centres = rng.uniform(10, 30, size=(rng.integers(0, 7), 2))  # boxes packed in a 40-px square
        wh = rng.uniform(6, 14, size=centres.shape)
        g = np.concatenate([centres - wh / 2, centres + wh / 2], 1)
        gl = rng.integers(1, n_classes + 1, len(g))
        # detections: jittered copies (some twice) plus clutter
        src = rng.integers(0, max(len(g), 1), rng.integers(0, 2 * len(g) + 1)) if len(g) else np.zeros(0, int)
        d = g[src] + rng.normal(0, 1.5, (len(src), 4)) if len(g) else np.zeros((0, 4))
        dl = gl[src] if len(g) else np.zeros(0, int)
        clutter = rng.uniform(0, 40, (rng.integers(0, 3), 2))
        d = np.concatenate([d, np.concatenate([clutter, clutter + 8], 1)])
        d[:, 2:] = np.maximum(d[:, 2:], d[:, :2] + 1)
        dl = np.concatenate([dl, rng.integers(1, n_classes + 1, len(clutter))])
        gts.append(frame(g, gl))
        preds.append(frame(d, dl, rng.uniform(0, 1, len(d))))
    return gts, preds


def test_voc_rule_equals_the_voc_devkit_on_random_crowded_scenes():
    rng = np.random.default_rng(0)
    differ = 0
    for _ in range(150):
        gts, preds = _crowded_case(rng)
        voc = evaluate_detections(gts, preds, 2, matching="voc")
        coco = evaluate_detections(gts, preds, 2, matching="coco")
        for c in (1, 2):
            want = _voc_devkit_ap(gts, preds, c)
            got = voc["per_class"][c - 1]["ap"]
            assert (np.isnan(want) and np.isnan(got)) or got == pytest.approx(want, abs=1e-12)
            differ += not np.isclose(got, coco["per_class"][c - 1]["ap"], equal_nan=True)
    assert differ > 0  # the cases are crowded enough for the two rules to disagree somewhere
