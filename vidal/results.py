"""Results of a grid (vidal.grid): rows, paired statistics, label efficiency, selection overlap.

Everything is read from JSON and npz files of the runs (``metrics.jsonl``, ``reference.json``,
``state_cycle_XXX.npz`` with ``allow_pickle=False``); no config file of a work dir is executed.

Statistics (the grid's seeds are paired: every method of a seed shares the initial labeled set,
the initial weights and the cycle-0 model):

- per method and cycle, mean and sample standard deviation (``ddof=1``) of mAP@0.5 over seeds;
- the **paired difference** of a method to a baseline at a cycle: ``d_s = mAP_m,s - mAP_b,s`` per
  seed ``s``; its mean ``d``, its std ``s_d`` and the 95 % interval ``d ± t_{0.975, n-1} s_d / sqrt(n)``
  (Student t; with n = 3 seeds, ``t = 4.30``);
- **label efficiency**: the labeled frames at which the mean curve first reaches ``f`` times the
  mean all-data mAP, by linear interpolation between cycles (None when it never does);
- **selection distance** to a baseline of the same seed: the Jaccard overlap of the frames the two
  selected (the shared initial set excluded) and the total-variation distance between their
  per-video allocations (0: the same number of frames from every video, 1: disjoint videos).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidal.grid import REFERENCE
from vidal.report import ReportError, read_json_file, read_metrics

CSV_FIELDS = ("method", "seed", "cycle", "labeled_frames", "map50", "map50_frequent", "map50_all_scores",
              "map50_all_scores_frequent", "time_train_s",
              "time_evaluate_s", "time_predict_s", "time_acquire_s", "time_select_s")
_FIRST_TIME = CSV_FIELDS.index("time_train_s")

#: The metrics a report can rank on: ``key -> (key of its frequent-class mean, label)``. ``map50`` is
#: thesis 2.5.1 (detections scored below 0.5 rejected before AP); ``map50_all_scores`` is VOC AP@0.5
#: over every detection (no score threshold: a young model's scores crossing 0.5 do not move it).
METRICS = {"map50": ("map50_frequent", "mAP@0.5 (scores ≥ 0.5, thesis 2.5.1)"),
           "map50_all_scores": ("map50_all_scores_frequent", "mAP@0.5 (every detection)")}


class ResultsError(ReportError):
    """A grid folder lacks what a report needs; the message names the file."""


def frequent_classes(pool_box_counts: dict[str, int], n: int) -> list[str]:
    """The ``n`` classes with the most boxes in the pool (ties: alphabetical)."""
    return sorted(pool_box_counts, key=lambda c: (-pool_box_counts[c], c))[:n]


def _mean_ap(ap: dict[str, Any], classes: Sequence[str]) -> float:
    vals = [ap.get(c) for c in classes]
    vals = [float(v) for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(vals)) if vals else math.nan


def collect_rows(grid_dir: str | Path, methods: Sequence[str], seeds: Sequence[int],
                 frequent: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One row per (method, seed, cycle) reached, plus one ``all-data`` row per seed with a
    reference; fields :data:`CSV_FIELDS` plus ``ap`` (per class). Unfinished runs give the cycles
    they finished."""
    grid_dir = Path(grid_dir)
    rows: list[dict[str, Any]] = []
    for m in methods:
        for s in seeds:
            path = grid_dir / m / f"seed{s}" / "metrics.jsonl"
            if not path.is_file():
                continue
            for r in read_metrics(path):
                rows.append({"method": m, "seed": s, "cycle": r["cycle"], "labeled_frames": r["labeled"],
                             "map50": r["mAP"], "map50_frequent": _mean_ap(r.get("AP") or {}, frequent) if frequent else None,
                             "map50_all_scores": r.get("mAP_all_scores"),
                             "map50_all_scores_frequent": _mean_ap(r.get("AP_all_scores") or {}, frequent)
                             if frequent and r.get("AP_all_scores") else None,
                             "ap": r.get("AP") or {}, "pool_frames": r["pool_frames"],
                             **{k: r.get(k) for k in CSV_FIELDS[_FIRST_TIME:]}})
    for s in seeds:
        path = grid_dir / REFERENCE / f"seed{s}" / "reference.json"
        if path.is_file():
            r = read_json_file(path)
            rows.append({"method": REFERENCE, "seed": s, "cycle": None, "labeled_frames": r["labeled"],
                         "map50": r["mAP"], "map50_frequent": _mean_ap(r.get("AP") or {}, frequent) if frequent else None,
                         "map50_all_scores": r.get("mAP_all_scores"),
                         "map50_all_scores_frequent": _mean_ap(r.get("AP_all_scores") or {}, frequent)
                         if frequent and r.get("AP_all_scores") else None,
                         "ap": r.get("AP") or {}, "time_train_s": r.get("time_train_s"),
                         "time_evaluate_s": r.get("time_evaluate_s")})
    return rows


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path, ap_classes: Sequence[str] = ()) -> Path:
    """The raw rows as CSV (:data:`CSV_FIELDS`, then ``ap_<class>``), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fields = list(CSV_FIELDS) + [f"ap_{c}" for c in ap_classes]
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            out = {k: r.get(k) for k in CSV_FIELDS}
            out.update({f"ap_{c}": (r.get("ap") or {}).get(c) for c in ap_classes})
            w.writerow({k: "" if v is None or (isinstance(v, float) and math.isnan(v)) else
                        (round(v, 6) if isinstance(v, float) else v) for k, v in out.items()})
    tmp.replace(path)
    return path


# ----------------------------------------------------------------------------- statistics
def t_quantile_975(dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, dof)) if dof >= 1 else math.nan


def by_method(rows: Sequence[dict], key: str = "map50") -> dict[str, dict[int, dict[int, float]]]:
    """``{method: {cycle: {seed: value}}}`` (the all-data rows under cycle -1)."""
    out: dict[str, dict[int, dict[int, float]]] = {}
    for r in rows:
        c = -1 if r["cycle"] is None else int(r["cycle"])
        v = r.get(key)
        out.setdefault(r["method"], {}).setdefault(c, {})[int(r["seed"])] = math.nan if v is None else float(v)
    return out


def curve(rows: Sequence[dict], method: str, key: str = "map50") -> dict[str, np.ndarray]:
    """``labeled``, ``mean``, ``std``, ``n`` per cycle reached by every seed of ``method``."""
    table = by_method(rows, key).get(method, {})
    seeds = sorted(set.intersection(*(set(v) for c, v in table.items() if c >= 0))) if table else []
    cycles = sorted(c for c in table if c >= 0 and all(s in table[c] for s in seeds))
    lab = {(int(r["cycle"]), int(r["seed"])): r["labeled_frames"] for r in rows
           if r["method"] == method and r["cycle"] is not None}
    vals = np.array([[table[c][s] for s in seeds] for c in cycles]) if cycles and seeds else np.zeros((0, 0))
    return {"cycle": np.array(cycles), "labeled": np.array([np.mean([lab[(c, s)] for s in seeds]) for c in cycles]),
            "mean": vals.mean(1) if vals.size else np.zeros(0),
            "std": vals.std(1, ddof=1) if vals.size and len(seeds) > 1 else np.zeros(len(cycles)),
            "n": len(seeds), "values": vals, "seeds": seeds}


def paired_difference(rows: Sequence[dict], method: str, baseline: str, cycle: int,
                      key: str = "map50") -> dict[str, Any]:
    """Paired difference ``method - baseline`` at ``cycle`` over the seeds both reached."""
    t = by_method(rows, key)
    a, b = t.get(method, {}).get(cycle, {}), t.get(baseline, {}).get(cycle, {})
    seeds = sorted(set(a) & set(b))
    d = np.array([a[s] - b[s] for s in seeds], np.float64)
    n = len(d)
    mean = float(d.mean()) if n else math.nan
    std = float(d.std(ddof=1)) if n > 1 else math.nan
    half = t_quantile_975(n - 1) * std / math.sqrt(n) if n > 1 else math.nan
    return {"method": method, "baseline": baseline, "cycle": cycle, "n": n, "diffs": d.tolist(), "mean": mean,
            "std": std, "ci95": (mean - half, mean + half), "above_2std": bool(n > 1 and mean > 2 * std),
            "p": paired_t_p(mean, std, n)}


def paired_t_p(mean: float, std: float, n: int, alternative: str = "two-sided") -> float:
    """p of the paired t test (``t = mean / (std / sqrt(n))``, ``n - 1`` degrees of freedom) of
    ``mean != 0`` (``alternative="two-sided"``) or ``mean > 0`` (``"greater"``: a registered
    one-sided hypothesis); NaN with fewer than 2 pairs; when every pair differs by the same amount,
    0 if that amount supports the alternative, else 1."""
    if alternative not in ("two-sided", "greater"):
        raise ValueError(f"alternative must be 'two-sided' or 'greater', got {alternative!r}")
    if n < 2 or math.isnan(std):
        return math.nan
    if std == 0:
        return 0.0 if (mean > 0 or (mean != 0 and alternative == "two-sided")) else 1.0
    from scipy.stats import t

    stat = mean / (std / math.sqrt(n))
    return float(2 * t.sf(abs(stat), n - 1)) if alternative == "two-sided" else float(t.sf(stat, n - 1))


def holm_adjusted(p: dict[str, float]) -> dict[str, float]:
    """Holm's step-down adjustment of the p values of ``k`` comparisons (Holm 1979): sorted
    ascending, ``p_(i) * (k - i + 1)``, made non-decreasing, capped at 1. A family-wise error of 5 %
    means adjusted p < 0.05. NaN entries are left out of ``k`` and returned as NaN."""
    ranked = sorted((v, m) for m, v in p.items() if not math.isnan(v))
    k, out, running = len(ranked), {m: math.nan for m in p}, 0.0
    for i, (v, m) in enumerate(ranked):
        running = max(running, min(1.0, v * (k - i)))
        out[m] = running
    return out


def label_efficiency(labeled: np.ndarray, mean: np.ndarray, target: float) -> float | None:
    """Labeled frames where the curve ``mean(labeled)`` first reaches ``target`` (linear
    interpolation between points); None if it never does."""
    for i in range(len(mean)):
        if mean[i] >= target:
            if i == 0:
                return float(labeled[0])
            x0, x1, y0, y1 = labeled[i - 1], labeled[i], mean[i - 1], mean[i]
            return float(x0 + (target - y0) * (x1 - x0) / (y1 - y0))
    return None


def wall_per_cycle(rows: Sequence[dict], method: str) -> dict[str, float]:
    """Mean seconds per AL cycle of ``method`` (cycles >= 1 train; cycles < last acquire), by step."""
    rs = [r for r in rows if r["method"] == method and r["cycle"] is not None]
    out = {}
    for k in ("time_train_s", "time_evaluate_s", "time_predict_s", "time_acquire_s", "time_select_s"):
        vals = [r[k] for r in rs if r.get(k) is not None and not (k == "time_train_s" and r["cycle"] == 0)]
        out[k] = float(np.mean(vals)) if vals else 0.0
    return out


# ----------------------------------------------------------------------------- selections
def selected_frames(run_dir: Path, cycles: int) -> np.ndarray:
    """Frames labeled by the run's acquisitions (cycle_of >= 1 in its last state)."""
    path = Path(run_dir) / f"state_cycle_{cycles:03d}.npz"
    if not path.is_file():
        raise ResultsError(f"{path}: missing (run not finished)")
    with np.load(path, allow_pickle=False) as z:
        cycle_of = z["cycle_of"]
    return np.flatnonzero(cycle_of >= 1)


def selection_distance(a: np.ndarray, b: np.ndarray, video_of_frames: np.ndarray) -> dict[str, float]:
    """Jaccard overlap of two selections and the total-variation distance of their per-video
    allocations (module docstring)."""
    sa, sb = set(a.tolist()), set(b.tolist())
    jacc = len(sa & sb) / len(sa | sb) if sa | sb else 1.0
    n_v = int(video_of_frames.max()) + 1 if len(video_of_frames) else 0
    ha = np.bincount(video_of_frames[a], minlength=n_v) / max(len(a), 1)
    hb = np.bincount(video_of_frames[b], minlength=n_v) / max(len(b), 1)
    return {"jaccard": float(jacc), "video_tv": float(0.5 * np.abs(ha - hb).sum()),
            "videos_used": int((ha > 0).sum())}


def selection_report(grid_dir: Path, methods: Sequence[str], seeds: Sequence[int], cycles: int,
                     video_of_frames: np.ndarray, baseline: str = "random-r") -> dict[str, dict[str, float]]:
    """Per method, mean over seeds of :func:`selection_distance` to ``baseline`` of the same seed."""
    out = {}
    for m in methods:
        vals = []
        for s in seeds:
            try:
                a = selected_frames(grid_dir / m / f"seed{s}", cycles)
                b = selected_frames(grid_dir / baseline / f"seed{s}", cycles)
            except ResultsError:
                continue
            vals.append(selection_distance(a, b, video_of_frames))
        if vals:
            out[m] = {k: float(np.mean([v[k] for v in vals])) for k in vals[0]} | {"n": len(vals)}
    return out


# ----------------------------------------------------------------------------- figures and tables
def plot_curves(rows: Sequence[dict], methods: Sequence[str], out: str | Path, *, key: str = "map50",
                title: str = "", ylabel: str = "mAP@0.5") -> Path:
    """Mean ± std over seeds of ``key`` vs labeled frames per method, the all-data mean dashed
    (thesis Fig. 2.4 style)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    styles = ["-", "--", "-.", ":"]
    for i, m in enumerate(methods):
        c = curve(rows, m, key)
        if not len(c["cycle"]):
            continue
        line, = ax.plot(c["labeled"], c["mean"], marker="o", ms=4, ls=styles[i // 10 % 4],
                        label=f"{m} (n={c['n']})")
        ax.fill_between(c["labeled"], c["mean"] - c["std"], c["mean"] + c["std"], color=line.get_color(),
                        alpha=0.15, lw=0)
    ref = [v for v in by_method(rows, key).get(REFERENCE, {}).get(-1, {}).values() if not math.isnan(v)]
    if ref:
        ax.axhline(float(np.mean(ref)), color="k", ls="--", lw=1, label=f"all data (n={len(ref)})")
    ax.set_xlabel("labeled frames")
    ax.set_ylabel(ylabel)
    ax.set_title(title or "Active learning: mean ± std over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, frameon=False)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def _f(v: float | None, digits: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _reference_mean(rows: Sequence[dict], key: str) -> tuple[float, float, int]:
    """Mean, std and count of the all-data reference rows' ``key``."""
    vals = [v for v in by_method(rows, key).get(REFERENCE, {}).get(-1, {}).values() if not math.isnan(v)]
    if not vals:
        return math.nan, math.nan, 0
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0, len(vals)


def summary_markdown(rows: Sequence[dict], methods: Sequence[str], *, baseline: str = "random-r",
                     selection: dict[str, dict[str, float]] | None = None, key: str = "map50") -> str:
    """Table 2.2-style table at the final cycle, ranked on ``key`` (one of :data:`METRICS`): its
    4-class and frequent-class mean, relative to all data, the paired difference to ``baseline``
    with its 95 % interval and the p of the paired t test, raw and Holm-adjusted over all the
    methods of the table (with a dozen methods, one raw p < 0.05 is expected by chance alone), and
    the other metric beside; then label efficiency and wall time."""
    key_frequent, label = METRICS[key]
    other = next(k for k in METRICS if k != key)
    r4, r4_std, n_ref = _reference_mean(rows, key)
    lines = [f"| Method | Seeds | Labeled | {label}, all classes | Rel. to all data | {label}, frequent classes | "
             f"{METRICS[other][1]}, all classes | Paired diff. to {baseline} (95 % CI) | p, paired t (Holm) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    if n_ref:
        lines.append(f"| all data | {n_ref} | all | {_f(r4)} ± {_f(r4_std)} | 100 % | "
                     f"{_f(_reference_mean(rows, key_frequent)[0])} | {_f(_reference_mean(rows, other)[0])} | | |")
    final = max((int(r["cycle"]) for r in rows if r["cycle"] is not None), default=0)
    curves = {m: curve(rows, m, key) for m in methods}
    paired = {m: paired_difference(rows, m, baseline, int(c["cycle"][-1]), key)
              for m, c in curves.items() if m != baseline and len(c["cycle"])}
    holm = holm_adjusted({m: p["p"] for m, p in paired.items()})  # over every method compared
    for m in methods:
        c, c3, co = curves[m], curve(rows, m, key_frequent), curve(rows, m, other)
        if not len(c["cycle"]):
            continue
        last = int(c["cycle"][-1])
        shown = m if last == final else f"{m} (unfinished: cycle {last} of {final})"
        rel = f"{100 * c['mean'][-1] / r4:.1f} ± {100 * c['std'][-1] / r4:.1f} %" if n_ref else "-"
        if m == baseline:
            diff, flag = "(baseline)", ""
        else:
            p = paired[m]
            diff = f"{p['mean']:+.3f} [{p['ci95'][0]:+.3f}, {p['ci95'][1]:+.3f}]" if p["n"] > 1 else "-"
            flag = f"{p['p']:.3f} ({holm[m]:.3f})" if p["n"] > 1 else "-"
        freq = f"{_f(c3['mean'][-1])} ± {_f(c3['std'][-1])}" if len(c3["mean"]) else "-"
        oth = f"{_f(co['mean'][-1])} ± {_f(co['std'][-1])}" if len(co["mean"]) else "-"
        lines.append(f"| {shown} | {c['n']} | {c['labeled'][-1]:.0f} | {_f(c['mean'][-1])} ± {_f(c['std'][-1])} | {rel} | "
                     f"{freq} | {oth} | {diff} | {flag} |")
    out = "\n".join(lines) + "\n"
    if n_ref:
        out += "\n| Method | Frames to 90 % of all data | Frames to 95 % |\n|---|---:|---:|\n"
        for m in methods:
            c = curve(rows, m, key)
            if len(c["cycle"]):
                e90, e95 = label_efficiency(c["labeled"], c["mean"], 0.9 * r4), label_efficiency(
                    c["labeled"], c["mean"], 0.95 * r4)
                out += f"| {m} | {_f(e90, 0) if e90 else 'not reached'} | {_f(e95, 0) if e95 else 'not reached'} |\n"
    out += ("\n| Method | Train s / cycle | Predict pool s | Acquire s | Evaluate s | Total s / cycle |"
            + (" Jaccard to " + baseline + " | Per-video TV distance | Videos used |" if selection else "")
            + "\n|---|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if selection else "") + "\n")
    for m in methods:
        w = wall_per_cycle(rows, m)
        if not any(w.values()):
            continue
        total = sum(w.values())
        sel = ""
        if selection:
            d = selection.get(m)
            sel = (f" {_f(d['jaccard'], 2)} | {_f(d['video_tv'], 2)} | {d['videos_used']:.1f} |" if d else " - | - | - |")
        out += (f"| {m} | {w['time_train_s']:.0f} | {w['time_predict_s']:.0f} | {w['time_acquire_s']:.1f} | "
                f"{w['time_evaluate_s']:.0f} | {total:.0f} |{sel}\n")
    return out


def noise_floor(rows: Sequence[dict], method: str = "random-r", other: str | None = None,
                key: str = "map50") -> str:
    """Markdown: per cycle, the seed-to-seed std of ``method``'s ``key`` and, for every other method,
    the std of its paired difference to ``method``."""
    c = curve(rows, method, key)
    others = [m for m in dict.fromkeys(r["method"] for r in rows) if m not in (method, REFERENCE)]
    if other:
        others = [other]
    head = "| Cycle | Labeled | " + f"{method} mean | {method} std | " + " | ".join(
        f"std of ({m} − {method})" for m in others) + " |"
    lines = [head, "|" + "---:|" * (4 + len(others))]
    for i, cyc in enumerate(c["cycle"]):
        cells = []
        for m in others:
            p = paired_difference(rows, m, method, int(cyc), key)
            cells.append(_f(p["std"]))
        lines.append(f"| {cyc} | {c['labeled'][i]:.0f} | {_f(c['mean'][i])} | {_f(c['std'][i])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


__all__ = ["collect_rows", "write_csv", "curve", "paired_difference", "label_efficiency", "selection_report",
           "plot_curves", "summary_markdown", "noise_floor", "frequent_classes"]


def pool_info(cfg: dict) -> tuple[np.ndarray, dict[str, int]]:
    """``video_of_frames [N]`` and box counts per class of the config's pool (train split)."""
    from vidal.build import open_split

    pool = open_split(cfg, "train")
    counts = np.zeros(pool.num_classes + 1, np.int64)
    for i in range(len(pool)):
        counts += np.bincount(pool.ground_truth(i)["labels"], minlength=pool.num_classes + 1)[:pool.num_classes + 1]
    return pool.video_of_frames(), {c: int(counts[k + 1]) for k, c in enumerate(pool.classes)}


def report_figures(name: str, metric: str, frequent: Sequence[str], n_classes: int, title: str = "") -> list[dict]:
    """The curves of a report: ``{name, file, key, ylabel, title}`` each; the first two plot the
    ranked ``metric`` (all classes, frequent classes), the third the other metric of :data:`METRICS`."""
    other = next(k for k in METRICS if k != metric)
    key_frequent, label = METRICS[metric]
    return [{"name": "curves", "file": f"{name}_curves.png", "key": metric, "ylabel": label,
             "title": title or f"{name}: {label}, {n_classes} classes, mean ± std over seeds"},
            {"name": "curves_frequent", "file": f"{name}_curves_frequent.png", "key": key_frequent,
             "ylabel": f"{label} ({', '.join(frequent)})", "title": f"{name}: {label}, the {len(frequent)} frequent classes"},
            {"name": "curves_other", "file": f"{name}_curves_other.png", "key": other, "ylabel": METRICS[other][1],
             "title": f"{name}: {METRICS[other][1]}, {n_classes} classes (not ranked on)"}]


def write_grid_report(grid_dir: str | Path, cfg: dict, methods: Sequence[str], seeds: Sequence[int], cycles: int,
                      out_dir: str | Path, *, name: str = "grid", baseline: str = "random-r",
                      title: str = "", metric: str = "map50") -> dict[str, Path]:
    """``OUT/NAME.csv`` (raw rows, both metrics), ``OUT/NAME_curves.png`` / ``_curves_frequent.png``
    (ranked ``metric``: 4 classes / frequent classes), ``OUT/NAME_curves_other.png`` (the other
    metric of :data:`METRICS`) and ``OUT/NAME.md`` (tables and noise floor of both metrics, the
    ranked one first) for the finished part of a grid."""
    if metric not in METRICS:
        raise ResultsError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    grid_dir, out_dir = Path(grid_dir), Path(out_dir)
    video_of_frames, counts = pool_info(cfg)
    classes = list(counts)
    frequent = frequent_classes(counts, max(1, len(classes) - 1))
    rows = collect_rows(grid_dir, methods, seeds, frequent)
    if not rows:
        raise ResultsError(f"{grid_dir}: no finished cycle of any run yet")
    other = next(k for k in METRICS if k != metric)
    label, other_label = METRICS[metric][1], METRICS[other][1]
    paths = {"csv": write_csv(rows, out_dir / f"{name}.csv", classes)}
    for fig in report_figures(name, metric, frequent, len(classes), title):
        paths[fig["name"]] = plot_curves(rows, methods, out_dir / fig["file"], key=fig["key"], ylabel=fig["ylabel"],
                                         title=fig["title"])
    base = baseline if baseline in methods else methods[0]
    sel = selection_report(grid_dir, methods, seeds, cycles, video_of_frames, base) if baseline in methods else None
    md = [f"Frequent classes (most boxes in the pool): {', '.join(frequent)}. Ranked on: {label}.\n",
          summary_markdown(rows, list(methods), baseline=base, selection=sel, key=metric),
          f"\nNoise floor (per cycle), {label}:\n\n" + noise_floor(rows, base, key=metric),
          f"\nThe same table on {other_label} (not ranked on):\n\n"
          + summary_markdown(rows, list(methods), baseline=base, key=other).split("\n\n")[0] + "\n",
          f"\nNoise floor (per cycle), {other_label}:\n\n" + noise_floor(rows, base, key=other)]
    md_path = out_dir / f"{name}.md"
    md_path.write_text("\n".join(md))
    paths["markdown"] = md_path
    return paths
