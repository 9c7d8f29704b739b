"""Extra cost per AL cycle of the issue-17 methods next to the detector's pool inference time.

    python benchmarks/bench_selectors.py [--config configs/al/cpu/_protocol.py] [--model MODEL.pt]
        [--frames 64] [--checkpoints 3] [--threads 1]

The detector of ``--config`` (with the weights of ``--model``, e.g. a cycle's ``model.pt``;
default: the config's start weights) predicts ``--frames`` frames spread over the config's train
split (the pool) and embeds them (:mod:`vidal.detection.embeddings`); per-frame times are scaled to
the whole pool. The selectors then run on a pool of the real size and video structure whose
frames reuse the measured predictions / embeddings cyclically, with the protocol's budget,
``k`` and per-video rule, and entropy-mean scores. Label dispersion's extra cost is
``checkpoints`` extra pool predictions (made during the training) plus its scoring, timed on
checkpoints made by predicting the frames again with jittered boxes (the matching cost does not
depend on where the boxes come from). Prints one table (wall and process-CPU seconds per cycle:
on a shared machine the CPU seconds are the comparable figure) and one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


CPU = {}  # name -> process CPU seconds of the last _timed call (robust when the machine is shared)


def _timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    CPU["last"] = time.process_time() - c0
    return out, time.perf_counter() - t0


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", default="configs/al/cpu/_protocol.py", show_default=True)
@click.option("--model", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Weights to load (a cycle's model.pt); default: the config's start weights.")
@click.option("--frames", default=64, show_default=True, help="Pool frames actually predicted and embedded.")
@click.option("--checkpoints", default=3, show_default=True, help="Label dispersion's E.")
@click.option("--threads", default=1, show_default=True)
def main(config_path, model, frames, checkpoints, threads):
    import torch

    from vidal.acquisition.dispersion import LabelDispersion
    from vidal.acquisition.uncertainty import Entropy
    from vidal.build import build_spec
    from vidal.config import load_config
    from vidal.detection.base import Predictions
    from vidal.detection.embeddings import embed
    from vidal.loop import resolve_protocol
    from vidal.selection import ALState, initial_labeled
    from vidal.selectors import build_selector

    torch.set_num_threads(threads)
    cfg = load_config(config_path)
    spec = build_spec(cfg, splits=("train",), evaluation=False)
    pool = spec.open("train")
    P = resolve_protocol(cfg, len(pool))
    torch.manual_seed(0)
    det = spec.detector.build(list(pool.classes), seed=0)
    if model:
        det.load_weights(model)
    idx = np.linspace(0, len(pool) - 1, frames).round().astype(int)
    images = [pool.image(int(i)) for i in idx]
    bs = 8
    det.predict(images[:2])  # warm-up (first-call allocations)
    preds, t_pred = _timed(lambda: [p for s in range(0, len(images), bs) for p in det.predict(images[s:s + bs])])
    c_pred = CPU["last"]
    (emb, rois), t_emb = _timed(lambda: embed(det, images, [p.boxes for p in preds]))
    c_emb = CPU["last"]
    per = len(pool) / frames
    t_pool, t_embed = t_pred * per, t_emb * per

    # a pool of the real size: the measured frames reused cyclically
    n = len(pool)
    vof = pool.video_of_frames()
    take = np.arange(n) % frames
    full_preds = [preds[j] for j in take]
    state = ALState(n)
    state.reveal(initial_labeled(n, P.initial, vof, seed=0, k=P.k, per_video=P.per_video), 0)
    ctx = type("Ctx", (), {})()
    ctx.candidates, ctx.predictions, ctx.num_classes = state.unlabeled, full_preds, pool.num_classes
    ctx.embeddings = emb[take] + np.random.default_rng(0).normal(0, 1e-3, (n, emb.shape[1])).astype(np.float32)
    ctx.labeled_class_counts = np.bincount(np.concatenate([pool.ground_truth(int(i))["labels"] for i in state.labeled]),
                                           minlength=pool.num_classes + 1)
    scores, t_score = _timed(lambda: Entropy().score(ctx))
    rows = [("detector: pool inference (every method with predictions)", t_pool, c_pred * per),
            ("embeddings (kcenter / kmeanspp / hybrid)", t_embed, c_emb * per),
            ("entropy-mean scoring", t_score, CPU["last"])]
    for sel_spec in [dict(name="topk"), dict(name="kcenter"), dict(name="kmeanspp"),
                     dict(name="hybrid", m=4, diversity="kmeanspp"), dict(name="class_balanced", lam=1.0)]:
        sel = build_selector(sel_spec)
        picked, t = _timed(lambda: sel.select(scores, ctx.candidates, P.budget, state, vof, k=P.k,
                                              per_video=P.per_video, rng=np.random.default_rng(0), ctx=ctx))
        assert len(picked) == P.budget
        rows.append((f"selector {sel_spec['name']}", t, CPU["last"]))
    rng = np.random.default_rng(1)

    def jitter(p):
        return Predictions(p.boxes + rng.normal(0, 2, p.boxes.shape), p.scores, p.labels, p.probs)

    ctx.epoch_predictions = [[jitter(p) for p in full_preds] for _ in range(checkpoints)]
    _, t_disp = _timed(lambda: LabelDispersion(checkpoints=checkpoints).score(ctx))
    rows.append((f"label dispersion: {checkpoints} extra pool predictions", checkpoints * t_pool,
                 checkpoints * c_pred * per))
    rows.append(("label dispersion: scoring (IoU matching)", t_disp, CPU["last"]))
    print(f"pool {n} frames / {pool.n_videos} videos, budget {P.budget}, k={P.k}, per_video={P.per_video}; "
          f"{frames} frames predicted and embedded ({threads} thread(s)), scaled to the pool")
    print("| per cycle | wall s | CPU s |\n|---|---|---|")
    for name, t, c in rows:
        print(f"| {name} | {t:.2f} | {c:.2f} |")
    print(json.dumps({"config": config_path, "pool_frames": n, "frames_measured": frames, "threads": threads,
                      "model": model, "wall_s_per_cycle": {name: round(t, 4) for name, t, _ in rows},
                      "cpu_s_per_cycle": {name: round(c, 4) for name, _, c in rows}}))


if __name__ == "__main__":
    main()
