"""Learning curves and result tables of AL runs (thesis Fig. 2.4 and Table 2.2).

A *run* is a work dir of :mod:`vidal.loop` (``config.py``, ``experiment.json``, ``metrics.jsonl``,
optionally ``reference.json``). Runs are grouped into *methods* by the acquisition section of
their saved config (name and arguments, plus the tracker for methods that use one), so the seeds
of one method form one curve / one table row.

Statistics over seeds: mean and sample standard deviation (``ddof=1``; 0 for a single seed).
The x position of a curve point is the mean number of labeled frames of that cycle (the seeds of
one method label the same counts). "Rel." in the table is the mAP divided by the mean mAP of the
all-data reference runs (``reference.json`` of any given run, thesis Table 2.2 first row); its
± is the std of the per-seed mAPs divided by the same mean.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class ReportError(ValueError):
    """A run folder is missing or unreadable; the message names it."""


#: Fields every row of ``metrics.jsonl`` must have, and their JSON types (None allowed for mAP).
METRICS_ROW_FIELDS = {"cycle": (int,), "labeled": (int,), "mAP": (int, float, type(None))}
#: Fields checked when present.
METRICS_ROW_OPTIONAL = {"labeled_fraction": (int, float), "AP": (dict,), "mAP_all_scores": (int, float, type(None))}


def read_json_file(path: str | Path) -> Any:
    """A JSON file of a run; unreadable or invalid JSON is a one-line :class:`ReportError`."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ReportError(f"{path}: not readable JSON ({' '.join(str(e).split())[:160]}); the run folder was "
                          f"changed outside vidal: rerun it with tools/run_al.py --resume") from None


def read_jsonl(path: str | Path, fix: str) -> list[tuple[int, dict]]:
    """``(line number, object)`` of every non-empty line of a JSON-lines file; an unreadable file,
    a line that is not JSON or not an object is a one-line :class:`ReportError` naming the file and
    the line, ending with ``fix`` (how to rewrite the file)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(f"{path}: unreadable ({e})") from None
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise ReportError(f"{path}: line {n} is not JSON ({e}); the file was changed outside vidal: {fix}") from None
        if not isinstance(row, dict):
            raise ReportError(f"{path}: line {n} is not a JSON object; {fix}")
        out.append((n, row))
    return out


def read_metrics(path: str | Path) -> list[dict]:
    """The rows of a ``metrics.jsonl``, each checked for :data:`METRICS_ROW_FIELDS`; a bad line is a
    one-line :class:`ReportError` naming the file, the line and the field."""
    rows = []
    for n, row in read_jsonl(path, "rerun the run with tools/run_al.py --resume to rewrite it"):
        for key, types in [*METRICS_ROW_FIELDS.items(), *((k, t) for k, t in METRICS_ROW_OPTIONAL.items() if k in row)]:
            if key not in row or not isinstance(row[key], types) or isinstance(row[key], bool):
                got = repr(row[key])[:40] if key in row else "missing"
                raise ReportError(f"{path}: line {n}: field {key!r} is {got}, expected "
                                  f"{' or '.join('null' if t is type(None) else t.__name__ for t in types)}; "
                                  f"rerun the run with tools/run_al.py --resume to rewrite it")
        rows.append(row)
    return rows


PRETTY = {"random": "Random", "random_r": "Random+R", "least_confidence": "Least confidence",
          "margin": "Margin sampling", "entropy": "Entropy", "oracle_fp": "Oracle (FP)",
          "oracle_fn": "Oracle (FN)", "temporal_coherence": "Temporal coherence",
          "label_dispersion": "Label dispersion"}
#: Table order (thesis Table 2.2); unknown names follow, alphabetically.
ORDER = list(PRETTY)


@dataclass
class Run:
    path: Path
    label: str
    acquisition: str
    seed: int
    rows: list[dict[str, Any]]
    reference: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)


def method_label(cfg: dict[str, Any]) -> str:
    """``Entropy (aggregation=mean)``, ``Temporal coherence [flow] (target=fp)``, ``Random+R``;
    ``... · mmdet`` for runs of a detector backend other than torchvision's."""
    acq = dict(cfg.get("acquisition", {}))
    name = str(acq.pop("name", "?"))
    selector = acq.pop("selector", None)
    label = PRETTY.get(name, name)
    tracker = cfg.get("tracker")
    if name == "temporal_coherence" and isinstance(tracker, dict) and tracker.get("name"):
        label += f" [{tracker['name']}]"
    args = ", ".join(f"{k}={v}" for k, v in sorted(acq.items()) if v not in (None, False))
    label = f"{label} ({args})" if args else label
    if isinstance(selector, dict) and selector.get("name", "topk") != "topk":  # issue 17: + kcenter (m=4)
        opts = ", ".join(f"{k}={v}" for k, v in sorted(selector.items()) if k != "name" and v not in (None, False))
        label += f" + {selector['name']}" + (f" ({opts})" if opts else "")
    budget_unit = (cfg.get("al") or {}).get("budget_unit", "frames")
    if budget_unit != "frames":
        label += f" [budget in {budget_unit}]"
    backend = (cfg.get("detector") or {}).get("backend", "torchvision_frcnn")
    if backend != "torchvision_frcnn":  # runs of another detector backend are another method
        label += f" · {backend}"
    return label


def load_run(path: str | Path) -> Run:
    from vidal.config import ConfigError, read_snapshot

    path = Path(path)
    metrics = path / "metrics.jsonl"
    if not metrics.is_file():
        raise ReportError(f"{path}: no metrics.jsonl (not an AL run folder of tools/run_al.py, or not started)")
    try:
        cfg = read_snapshot(path / "config.py")  # parsed, never executed: run folders may come from others
    except ConfigError as e:
        raise ReportError(f"{path}: cannot read the config snapshot: {e}") from None
    exp = read_json_file(path / "experiment.json") if (path / "experiment.json").is_file() else {}
    rows = read_metrics(metrics)
    if not rows:
        raise ReportError(f"{path}: metrics.jsonl has no completed cycle yet")
    ref = read_json_file(path / "reference.json") if (path / "reference.json").is_file() else None
    return Run(path=path, label=method_label(cfg), acquisition=str(cfg.get("acquisition", {}).get("name", "?")),
               seed=int(exp.get("seed", rows[0].get("seed", 0))), rows=rows, reference=ref, config=cfg)


def load_runs(paths) -> list[Run]:
    runs = [load_run(p) for p in paths]
    if not runs:
        raise ReportError("no run folders given")
    seen: dict[tuple[str, int], Path] = {}
    for r in runs:
        key = (r.label, r.seed)
        if key in seen:
            raise ReportError(f"two runs of {r.label} with seed {r.seed}: {seen[key]} and {r.path}; "
                              f"give each seed once")
        seen[key] = r.path
    return runs


def _nan(v) -> float:
    return math.nan if v is None else float(v)


def _stats(values) -> tuple[float, float]:
    v = np.asarray([x for x in values if not math.isnan(x)], np.float64)
    if not len(v):
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def group(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs per method label, methods in thesis order."""
    out: dict[str, list[Run]] = {}
    for r in sorted(runs, key=lambda r: (ORDER.index(r.acquisition) if r.acquisition in ORDER else len(ORDER),
                                         r.label, r.seed)):
        out.setdefault(r.label, []).append(r)
    return out


def curves(runs: list[Run]) -> dict[str, dict[str, np.ndarray]]:
    """Per method: ``cycle``, ``labeled``, ``fraction``, ``mean``, ``std`` (mAP), ``n`` (seeds) per
    cycle reached by every seed of the method."""
    out = {}
    for label, rs in group(runs).items():
        n_cycles = min(len(r.rows) for r in rs)
        cyc = np.arange(n_cycles)
        labeled = np.array([np.mean([r.rows[c]["labeled"] for r in rs]) for c in cyc])
        boxes = np.array([np.mean([labeled_boxes(r)[c] for r in rs]) for c in cyc])
        frac = np.array([np.mean([r.rows[c]["labeled_fraction"] for r in rs]) for c in cyc])
        st = [_stats([_nan(r.rows[c]["mAP"]) for r in rs]) for c in cyc]
        out[label] = {"cycle": cyc, "labeled": labeled, "boxes": boxes, "fraction": frac, "mean": np.array([s[0] for s in st]),
                      "std": np.array([s[1] for s in st]), "n": len(rs)}
    return out


_BOX_COUNTS: dict[str, np.ndarray] = {}


def labeled_boxes(run: Run) -> list[float]:
    """Labeled ground-truth boxes per cycle of ``run``: the rows' ``labeled_boxes`` (issue 17), or
    for older runs counted from the run's ``state_cycle_XXX.npz`` and the train split of its config
    snapshot (NaN where neither is available)."""
    if all("labeled_boxes" in r for r in run.rows):
        return [float(r["labeled_boxes"]) for r in run.rows]
    out = []
    path = str((run.config.get("dataset") or {}).get("train", ""))
    try:
        if path not in _BOX_COUNTS:
            from vidal.data import VideoDataset

            ds = VideoDataset(path)
            _BOX_COUNTS[path] = np.array([len(ds.ground_truth(i)["labels"]) for i in range(len(ds))], np.int64)
            ds.close()
        counts = _BOX_COUNTS[path]
        for r in run.rows:
            with np.load(run.path / f"state_cycle_{int(r['cycle']):03d}.npz", allow_pickle=False) as z:
                out.append(float(counts[z["cycle_of"] >= 0].sum()))
    except Exception:  # noqa: BLE001 - a moved dataset or a missing state: the curve point is unknown
        return [float(r["labeled_boxes"]) if "labeled_boxes" in r else math.nan for r in run.rows]
    return out


def _train_split_labels(run: Run):
    """``(class names, per-frame int64 label arrays)`` of the train split of ``run``'s config (cached)."""
    path = str((run.config.get("dataset") or {}).get("train", ""))
    key = "labels:" + path
    if key not in _BOX_COUNTS:
        from vidal.data import VideoDataset

        try:
            ds = VideoDataset(path)
        except Exception as e:  # noqa: BLE001 - a moved or missing split: one line
            raise ReportError(f"{run.path}: cannot open its train split {path!r} ({type(e).__name__}); "
                              f"run from the folder the grid ran in") from None
        _BOX_COUNTS[key] = (list(ds.classes), [np.asarray(ds.ground_truth(i)["labels"], np.int64)
                                               for i in range(len(ds))])
        ds.close()
    return _BOX_COUNTS[key]


def labeled_class_histogram(run: Run, cycle: int | None = None) -> dict[str, int]:
    """Ground-truth boxes per class in the labeled set of ``cycle`` (default: the last row's), from
    the run's ``state_cycle_XXX.npz`` and its train split."""
    names, labels = _train_split_labels(run)
    c = int(run.rows[-1]["cycle"]) if cycle is None else int(cycle)
    path = run.path / f"state_cycle_{c:03d}.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            chosen = np.flatnonzero(z["cycle_of"] >= 0)
    except (OSError, KeyError, ValueError) as e:
        raise ReportError(f"{path}: unreadable ({type(e).__name__}); rerun the run with --resume") from None
    counts = np.zeros(len(names) + 1, np.int64)
    for i in chosen:
        counts += np.bincount(labels[int(i)], minlength=len(names) + 1)[:len(names) + 1]
    return {n: int(counts[j + 1]) for j, n in enumerate(names)}


def histogram_entropy(counts) -> float:
    """Entropy (nats) of a class histogram; ``log(C)`` when uniform over ``C`` classes."""
    c = np.asarray(list(counts.values()) if isinstance(counts, dict) else counts, np.float64)
    p = c[c > 0] / c.sum() if c.sum() > 0 else np.zeros(0)
    return float(-(p * np.log(p)).sum())


def class_balance_table(runs: list[Run]) -> list[dict[str, Any]]:
    """Per method (mean ± std over seeds, at the last cycle every seed reached): the labeled boxes
    per class, the entropy of that histogram, and the AP of the rarest class of the pool (fewest
    ground-truth boxes, at least one) in both metrics (``AP``, ``AP_all_scores``)."""
    out = []
    for label, rs in group(runs).items():
        last = min(len(r.rows) for r in rs) - 1
        hists = [labeled_class_histogram(r, r.rows[last]["cycle"]) for r in rs]
        names, frame_labels = _train_split_labels(rs[0])
        pool = np.bincount(np.concatenate(frame_labels) if frame_labels else np.zeros(0, np.int64),
                           minlength=len(names) + 1)[1:]
        present = [j for j in range(len(names)) if pool[j] > 0]
        rare = names[min(present, key=lambda j: pool[j])] if present else None
        ent = _stats([histogram_entropy(h) for h in hists])
        row = {"method": label, "seeds": len(rs), "cycle": int(rs[0].rows[last]["cycle"]),
               "labeled": float(np.mean([r.rows[last]["labeled"] for r in rs])),
               "boxes": {n: _stats([h[n] for h in hists]) for n in names}, "entropy": ent, "rare_class": rare}
        for key in ("AP", "AP_all_scores"):
            row[f"rare_{key}"] = _stats([_nan((r.rows[last].get(key) or {}).get(rare)) for r in rs]) if rare \
                else (math.nan, math.nan)
        out.append(row)
    return out


def class_balance_markdown(rows: list[dict[str, Any]]) -> str:
    """:func:`class_balance_table` as a markdown table."""
    if not rows:
        return ""
    names = list(rows[0]["boxes"])
    rare = rows[0]["rare_class"]
    head = ("| Method | Seeds | Labeled frames | " + " | ".join(f"{n} boxes" for n in names)
            + f" | Histogram entropy (nats) | {rare} AP@0.5 (every detection) | {rare} AP@0.5 (scores >= 0.5) |")
    lines = [head, "|" + "---|" * (6 + len(names))]
    f = lambda ms, d=1: f"{ms[0]:.{d}f} ± {ms[1]:.{d}f}"  # noqa: E731
    for r in rows:
        lines.append(f"| {r['method']} | {r['seeds']} | {r['labeled']:.0f} | "
                     + " | ".join(f(r["boxes"][n]) for n in names)
                     + f" | {f(r['entropy'], 3)} | {f(r['rare_AP_all_scores'], 3)} | {f(r['rare_AP'], 3)} |")
    return "\n".join(lines) + "\n"


def reference_stats(runs: list[Run]) -> tuple[float, float, int]:
    """(mean, std, n) of the all-data reference mAP over the runs that hold one."""
    vals = [_nan(r.reference["mAP"]) for r in runs if r.reference]
    m, s = _stats(vals)
    return m, s, len(vals)


def curve_style(k: int) -> tuple[str, str, str]:
    """``(colour, marker, line style)`` of the ``k``-th curve of a plot: the ten tab10 colours,
    then the same colours with other markers and dashed lines, so no two of 30 curves look alike."""
    colours = [f"C{i}" for i in range(10)]
    markers, dashes = ("o", "s", "^"), ("-", "--", ":")
    return colours[k % 10], markers[(k // 10) % 3], dashes[(k // 10) % 3]


def plot_curves(runs: list[Run], out: str | Path, *, x: str = "labeled", title: str | None = None) -> Path:
    """mAP@0.5 vs labeled frames (``x="labeled"`` / ``"frames"``), labeled boxes (``"boxes"``) or
    labeled fraction in % (``"fraction"``), one
    curve per method with a ±std band, the all-data reference dashed (like thesis Fig. 2.4)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = "labeled" if x == "frames" else x
    if x not in ("labeled", "fraction", "boxes"):
        raise ReportError(f"x must be 'frames' (or 'labeled'), 'boxes' or 'fraction', got {x!r}")
    cs = curves(runs)
    many = len(cs) > 6  # the legend goes below the axes, where it hides no curve
    fig, ax = plt.subplots(figsize=(7.5, 4.5 + (0.16 * len(cs) + 0.5 if many else 0)), dpi=120)
    for k, (label, c) in enumerate(cs.items()):
        xs = {"labeled": c["labeled"], "boxes": c["boxes"], "fraction": 100 * c["fraction"]}[x]
        if np.isnan(xs).any():
            raise ReportError(f"{label}: labeled boxes unknown for some cycle (no labeled_boxes in its metrics rows "
                              f"and its states or train split cannot be read); plot with --x frames")
        color, marker, dash = curve_style(k)
        ax.plot(xs, c["mean"], color=color, marker=marker, ls=dash, ms=4, label=f"{label} (n={c['n']})")
        ax.fill_between(xs, c["mean"] - c["std"], c["mean"] + c["std"], color=color, alpha=0.12 if many else 0.2, lw=0)
    rm, rs, rn = reference_stats(runs)
    if rn and not math.isnan(rm):
        ax.axhline(rm, color="k", ls="--", lw=1, label=f"All data (n={rn})")
        if rs > 0:
            ax.axhspan(rm - rs, rm + rs, color="k", alpha=0.08, lw=0)
    ax.set_xlabel({"labeled": "labeled frames", "boxes": "labeled boxes (ground truth)",
                   "fraction": "labeled frames (% of the pool)"}[x])
    ax.set_ylabel("mAP@0.5")
    ax.set_title(title or "Active learning: mean ± std over seeds")
    ax.grid(alpha=0.3)
    if many:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=1, frameon=False)
    else:
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def table(runs: list[Run]) -> list[dict[str, Any]]:
    """Thesis Table 2.2: per method, mAP at the final cycle reached by all its seeds, absolute and
    relative to the all-data reference (mean ± std over seeds). First row: All data (if any)."""
    rm, rs, rn = reference_stats(runs)
    rows = []
    if rn:
        rows.append({"method": "All data", "seeds": rn, "cycle": None, "labeled": None, "fraction": 1.0,
                     "mAP_mean": rm, "mAP_std": rs, "rel_mean": 1.0 if rn else math.nan,
                     "rel_std": rs / rm if rm else math.nan})
    for label, c in curves(runs).items():
        last = len(c["cycle"]) - 1
        m, s = c["mean"][last], c["std"][last]
        rows.append({"method": label, "seeds": c["n"], "cycle": int(c["cycle"][last]),
                     "labeled": float(c["labeled"][last]), "fraction": float(c["fraction"][last]),
                     "mAP_mean": float(m), "mAP_std": float(s),
                     "rel_mean": float(m / rm) if rn and rm else math.nan,
                     "rel_std": float(s / rm) if rn and rm else math.nan})
    return rows


def _pm(m: float, s: float, pct: bool = False) -> str:
    if math.isnan(m):
        return "-"
    if pct:
        return f"{100 * m:.1f} ± {100 * s:.1f} %"
    return f"{m:.3f} ± {s:.3f}"


def table_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| Method | Seeds | Labeled (frames, %) | mAP@0.5 | Rel. to all data |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        lab = "all" if r["labeled"] is None else f"{r['labeled']:.0f} ({100 * r['fraction']:.1f} %)"
        lines.append(f"| {r['method']} | {r['seeds']} | {lab} | {_pm(r['mAP_mean'], r['mAP_std'])} | "
                     f"{_pm(r['rel_mean'], r['rel_std'], pct=True)} |")
    return "\n".join(lines) + "\n"


CSV_FIELDS = ("method", "seeds", "cycle", "labeled", "fraction", "mAP_mean", "mAP_std", "rel_mean", "rel_std")


def write_table(rows: list[dict[str, Any]], prefix: str | Path) -> tuple[Path, Path]:
    """``PREFIX.md`` and ``PREFIX.csv``."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    md, cs = prefix.with_name(prefix.name + ".md"), prefix.with_name(prefix.name + ".csv")
    md.write_text(table_markdown(rows))
    with open(cs, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r[k] is None or (isinstance(r[k], float) and math.isnan(r[k])) else r[k])
                        for k in CSV_FIELDS})
    return md, cs
