"""Optical-flow methods for the flow cache (``tools/compute_flow.py``), one small class each.

A method is built with :func:`build_flow_method` and called on two stacks of RGB frames::

    method = build_flow_method("dis")                 # or "raft", "pwcnet", "gt"
    flow = method(frames_a, frames_b)                 # uint8 [B,H,W,3] x2 -> float32 [B,H,W,2]

``flow[b, y, x] = (dx, dy)``: pixel ``(x, y)`` of ``frames_a[b]`` is seen at ``(x + dx, y + dy)``
in ``frames_b[b]``.

- ``dis`` (default): OpenCV's Dense Inverse Search (Kroeger et al., ECCV 2016), no weights.
  Preset **medium**: what matters here is moving boxes, and on generated driving clips medium
  gave the best box-propagation IoU of the three presets (mean IoU over δ = ±1, ±3: 0.825 vs 0.777
  ``fast`` and 0.812 ``ultrafast`` at 160x120; 0.823 vs 0.799 / 0.815 at 320x240; end-point errors
  are within 2 % of each other). Its cost, ~30 ms of one CPU core per 640x480 pair (fast: 7 ms),
  is paid once per dataset and is small beside one detector pass; ``docs/flow.md`` has the figures.
- ``raft``: torchvision's RAFT (Teed & Deng, ECCV 2020), ``raft_small`` (default) or
  ``raft_large``; weights from a user path (e.g. torchvision's BSD-licensed ``C_T_V2`` files).
- ``pwcnet``: :mod:`vidal.tracking.pwcnet` (the thesis's choice); weights from a user path
  (the public ones are non-commercial).
- ``gt``: the dataset's own ground-truth forward flow (``videos/<name>/flow``, synth ``--flow``);
  the backward flow is its inverse by fixed-point iteration ``b(q) = -f(q + b(q))`` (exact where
  no occlusion happens). A reference for evaluating trackers, not a method for real data.
"""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vidal.tracking.pwcnet import PWCNetWeightsError, load_pwcnet, pwcnet_flow
from vidal.weights import WeightsError, load_strict, read_state_dict

METHODS = ("dis", "raft", "pwcnet", "gt")
DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


class FlowWeightsError(WeightsError):
    """Flow-network weights are missing, unreadable or of another layout; one-line message."""


class DISFlow:
    """OpenCV DIS optical flow on grey frames.

    Args:
        preset: ``ultrafast``, ``fast`` or ``medium`` (default, see the module docstring).
    """

    name = "dis"
    batch_size = 1

    def __init__(self, preset: str = "medium"):
        if preset not in DIS_PRESETS:
            raise ValueError(f"DIS preset must be one of {sorted(DIS_PRESETS)}, not {preset!r}")
        self.preset = preset
        self._dis = None

    @property
    def options(self) -> dict[str, Any]:
        return {"preset": self.preset}

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self._dis is None:  # built lazily: a cv2 object does not pickle
            self._dis = cv2.DISOpticalFlow_create(DIS_PRESETS[self.preset])
        a, b = np.asarray(a), np.asarray(b)
        out = np.empty(a.shape[:3] + (2,), np.float32)
        for i in range(a.shape[0]):
            ga = cv2.cvtColor(np.ascontiguousarray(a[i]), cv2.COLOR_RGB2GRAY)
            gb = cv2.cvtColor(np.ascontiguousarray(b[i]), cv2.COLOR_RGB2GRAY)
            out[i] = self._dis.calc(ga, gb, None)
        return out


class _TorchFlow:
    """Shared plumbing of the network methods: device, batching, uint8 -> float tensors."""

    batch_size = 4

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)

    def _tensors(self, a: np.ndarray, b: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        def t(x):
            return torch.from_numpy(np.ascontiguousarray(x)).to(self.device).permute(0, 3, 1, 2).float()
        return t(a), t(b)


class RAFTFlow(_TorchFlow):
    """torchvision RAFT (``raft_small`` or ``raft_large``) with weights from ``weights``.

    Args:
        weights: path of a state dict of ``torchvision.models.optical_flow.raft_<size>``; None
            keeps random weights (only for tests and speed figures).
        size: ``small`` or ``large``.
        iterations: recurrent refinement steps (torchvision's default 12).
        device: torch device.

    Raises:
        FlowWeightsError: unreadable file or a state dict of another layout (names the file).
    """

    name = "raft"

    def __init__(self, weights: str | os.PathLike | None = None, *, size: str = "small", iterations: int = 12,
                 device: str | torch.device = "cpu"):
        super().__init__(device)
        from torchvision.models.optical_flow import raft_large, raft_small

        if size not in ("small", "large"):
            raise ValueError(f"RAFT size must be small or large, not {size!r}")
        self.size, self.iterations = size, int(iterations)
        self.weights = None if weights is None else os.path.abspath(weights)
        model = (raft_small if size == "small" else raft_large)(weights=None, progress=False)
        if weights is not None:
            state = read_state_dict(weights, f"RAFT ({size}) weights", error=FlowWeightsError,
                                    keys=("state_dict", "model", "net"))
            load_strict(model, state, weights, FlowWeightsError, f"torchvision raft_{size}")
        self.model = model.to(self.device).eval()

    @property
    def options(self) -> dict[str, Any]:
        return {"size": self.size, "iterations": self.iterations, "weights": self.weights}

    @torch.no_grad()
    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        x, y = self._tensors(a, b)
        h, w = x.shape[-2:]
        # RAFT needs multiples of 8, and at least 128 px for its 4-level correlation pyramid:
        # replicate-pad, crop after
        ph, pw = max(128, h + (-h) % 8) - h, max(128, w + (-w) % 8) - w
        x = F.pad(x / 127.5 - 1.0, (0, pw, 0, ph), mode="replicate")
        y = F.pad(y / 127.5 - 1.0, (0, pw, 0, ph), mode="replicate")
        flow = self.model(x, y, num_flow_updates=self.iterations)[-1][:, :, :h, :w]
        return flow.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)


class PWCNetFlow(_TorchFlow):
    """:mod:`vidal.tracking.pwcnet` with weights from ``weights`` (None: random, tests only).

    Raises:
        FlowWeightsError: unreadable file or another layout (names the file).
    """

    name = "pwcnet"

    def __init__(self, weights: str | os.PathLike | None = None, *, device: str | torch.device = "cpu"):
        super().__init__(device)
        self.weights = None if weights is None else os.path.abspath(weights)
        try:
            self.model = load_pwcnet(weights, device=self.device)
        except PWCNetWeightsError as exc:
            raise FlowWeightsError(str(exc)) from None

    @property
    def options(self) -> dict[str, Any]:
        return {"weights": self.weights}

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        x, y = self._tensors(a, b)
        return pwcnet_flow(self.model, x, y).permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)


def invert_flow(forward: np.ndarray, iterations: int = 8) -> np.ndarray:
    """Backward flow ``b`` of a forward flow ``f`` ``[H,W,2]``: ``b(q) = -f(q + b(q))``,
    solved by fixed-point iteration with bilinear sampling (exact for locally smooth motion)."""
    f = np.asarray(forward, np.float32)
    h, w = f.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    b = -f.copy()
    for _ in range(iterations):
        b = -cv2.remap(f, xs + b[..., 0], ys + b[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return b


class GroundTruthFlow:
    """Ground-truth flow of a dataset (``videos/<name>/flow``); call :meth:`video_flow`."""

    name = "gt"
    batch_size = 1
    options: dict[str, Any] = {}

    def check(self, dataset) -> None:
        """Every video of ``dataset`` holds ground-truth flow (before any output is created)."""
        for v in range(len(dataset.videos)):
            self._require_flow(dataset, v)

    @staticmethod
    def _require_flow(dataset, video: int):
        g = dataset._group(video)
        if "flow" not in g:
            raise ValueError(f"{dataset.videos[video].file}: video {dataset.videos[video].name} has no "
                             f"ground-truth 'flow'; regenerate it with tools/generate.py --flow, or use "
                             f"--method dis")
        return g

    def video_flow(self, dataset, video: int, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(forward t->t+1, backward t+1->t) ``[H,W,2]`` of video index ``video``."""
        g = self._require_flow(dataset, video)
        fwd = np.asarray(g["flow"][t], np.float32)
        return fwd, invert_flow(fwd)

    def __call__(self, a, b):
        raise TypeError("the gt method reads the dataset's flow; use video_flow(dataset, video, t)")


def build_flow_method(name: str, *, weights: str | os.PathLike | None = None, device: str = "cpu",
                      **options: Any):
    """Flow method ``name`` (``dis``, ``raft``, ``pwcnet`` or ``gt``).

    ``weights`` is required for ``raft``/``pwcnet`` unless ``allow_random=True`` (tests, speed
    figures); extra options go to the class (``preset=`` for DIS, ``size=``/``iterations=`` for
    RAFT).
    """
    allow_random = bool(options.pop("allow_random", False))
    if name == "dis":
        if weights is not None:
            raise ValueError("the dis method takes no --weights")
        return DISFlow(**options)
    if name == "gt":
        return GroundTruthFlow()
    if name in ("raft", "pwcnet"):
        if weights is None and not allow_random:
            raise FlowWeightsError(f"the {name} method needs --weights PATH (a state dict; see docs/flow.md "
                                   f"for where to get one)")
        cls = RAFTFlow if name == "raft" else PWCNetFlow
        return cls(weights, device=device, **options)
    raise ValueError(f"unknown flow method {name!r}; valid: {', '.join(METHODS)}")


def endpoint_error(flow: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-pixel end-point error ``||flow - reference||_2`` (pixels), float64 ``[..., H, W]``."""
    d = np.asarray(flow, np.float64) - np.asarray(reference, np.float64)
    return np.sqrt((d ** 2).sum(-1))


def compute_flow_cache(dataset, out: str | os.PathLike, method, *, dtype: str = "float16",
                       attrs: dict | None = None, progress: bool = False,
                       compression: str = "gzip", downsample: int | None = None) -> dict[str, Any]:
    """Compute forward and backward flow of every consecutive frame pair of ``dataset`` with
    ``method`` (from :func:`build_flow_method`) into the flow cache ``out``
    (:mod:`vidal.tracking.flow_cache`; written to ``out.partial``, resumed if interrupted,
    renamed when complete).

    Where the dataset holds ground-truth flow (``videos/<name>/flow``), the computed forward flow
    is compared with it: the returned dict (also stored as root attrs of ``out``) has
    ``epe_mean`` (mean end-point error, px), ``epe_over_3px`` (fraction of pixels with EPE > 3 px),
    ``epe_pixels`` and, for reference, ``zero_epe_mean`` / ``zero_epe_over_3px`` / ``*_median``
    of the zero flow. ``downsample`` (default
    :data:`vidal.tracking.flow_cache.DEFAULT_DOWNSAMPLE`, 4): with ``downsample`` > 1 the flow is stored at reduced resolution (block
    mean, :class:`vidal.tracking.flow_cache.FlowCacheWriter`); the EPE is then that of the stored
    flow upsampled bilinearly (what the tracker samples), and ``ds_epe_mean`` /
    ``ds_epe_over_1px`` give its end-point error against the full-resolution flow of the method.

    Returns:
        dict with ``out``, ``method``, ``pairs`` (frame pairs, each computed in both directions),
        ``seconds``, ``pairs_per_second``, ``resumed_videos`` and the EPE keys when available.
    """
    import time

    from tqdm import tqdm

    from vidal.tracking.flow_cache import DEFAULT_DOWNSAMPLE, FlowCacheWriter

    downsample = DEFAULT_DOWNSAMPLE if downsample is None else downsample
    if hasattr(method, "check"):  # inputs the method needs, before out.partial exists
        method.check(dataset)
    writer = FlowCacheWriter(out, dataset, method=method.name, options=dict(method.options), dtype=dtype,
                             attrs=attrs, compression=compression, downsample=downsample)
    stats = {"sum": 0.0, "over": 0, "n": 0, "zsum": 0.0, "zover": 0, "e": [], "z": [],
             "dsum": 0.0, "dover": 0, "dn": 0}
    rng = np.random.default_rng(0)

    def as_stored(fwd: np.ndarray) -> np.ndarray:
        """Full-resolution flow as the tracker sees it after storing (downsampled, upsampled)."""
        from vidal.tracking.flow_cache import downsample_flow, quantise
        if downsample == 1:
            return fwd
        return upsample(quantise(downsample_flow(fwd, downsample), dtype), *fwd.shape[:2])

    def upsample(small: np.ndarray, h: int, w: int) -> np.ndarray:
        small = np.asarray(small, np.float32)
        if downsample == 1:
            return small
        # INTER_LINEAR with half-pixel centres = the tracker's sampling (vidal.tracking.flow.to_grid)
        up = cv2.resize(small, None, fx=downsample, fy=downsample, interpolation=cv2.INTER_LINEAR)
        return up[:h, :w]

    def account_ds(fwd: np.ndarray) -> None:
        if downsample == 1:
            return
        e = endpoint_error(as_stored(fwd), fwd)
        stats["dsum"] += float(e.sum())
        stats["dover"] += int((e > 1).sum())
        stats["dn"] += e.size

    def account(fwd: np.ndarray, gt: np.ndarray) -> None:
        e = endpoint_error(fwd, gt)
        z = np.sqrt((np.asarray(gt, np.float64) ** 2).sum(-1))
        stats["sum"] += float(e.sum())
        stats["over"] += int((e > 3).sum())
        stats["zsum"] += float(z.sum())
        stats["zover"] += int((z > 3).sum())
        stats["n"] += e.size
        pick = rng.integers(0, e.size, size=min(e.size, 4096))  # medians from a fixed-size sample
        stats["e"].append(e.ravel()[pick])
        stats["z"].append(z.ravel()[pick])

    pairs = sum(max(v.n_frames - 1, 0) for v in dataset.videos)
    bar = tqdm(total=pairs, desc=f"flow ({method.name})", unit="pair", disable=not progress)
    start, computed = time.perf_counter(), 0
    try:
        for v, info in enumerate(dataset.videos):
            g = dataset._group(v)
            gt = g["flow"] if "flow" in g else None
            n_pairs = max(info.n_frames - 1, 0)
            if writer.done(info.name):
                if gt is not None:  # resumed: score the stored flow
                    stored = writer._f["videos"][info.name]["forward"]
                    for t in range(n_pairs):
                        account(upsample(stored[t], info.height, info.width), gt[t])
                bar.update(n_pairs)
                continue
            fwd_ds, bwd_ds = writer.begin_video(v)
            step = max(1, int(method.batch_size))
            for t0 in range(0, n_pairs, step):
                ts = range(t0, min(t0 + step, n_pairs))
                if isinstance(method, GroundTruthFlow):
                    flows = [method.video_flow(dataset, v, t) for t in ts]
                    fwd = np.stack([f for f, _ in flows])
                    bwd = np.stack([b for _, b in flows])
                else:
                    frames = np.stack([dataset.image(info.offset + t) for t in range(ts[0], ts[-1] + 2)])
                    a, b = frames[:-1], frames[1:]
                    both = method(np.concatenate([a, b]), np.concatenate([b, a]))
                    fwd, bwd = both[:len(ts)], both[len(ts):]
                for k, t in enumerate(ts):
                    writer.write(fwd_ds, t, fwd[k])
                    writer.write(bwd_ds, t, bwd[k])
                    account_ds(fwd[k])
                    if gt is not None:
                        account(as_stored(fwd[k]), gt[t])
                computed += len(ts)
                bar.update(len(ts))
            writer.end_video(v)
        seconds = time.perf_counter() - start
        result: dict[str, Any] = {"method": method.name, "pairs": pairs, "seconds": round(seconds, 3),
                                  "pairs_per_second": round(computed / seconds, 2) if seconds > 0 else None,
                                  "resumed_videos": writer.resumed}
        if stats["n"]:
            e, z = np.concatenate(stats["e"]), np.concatenate(stats["z"])
            epe = {"epe_mean": stats["sum"] / stats["n"], "epe_over_3px": stats["over"] / stats["n"],
                   "epe_median": float(np.median(e)), "zero_epe_mean": stats["zsum"] / stats["n"],
                   "zero_epe_over_3px": stats["zover"] / stats["n"], "zero_epe_median": float(np.median(z)),
                   "epe_pixels": stats["n"]}
            epe = {k: (round(val, 4) if isinstance(val, float) else val) for k, val in epe.items()}
            writer.set_attrs(**epe)
            result.update(epe)
        if stats["dn"]:
            ds_epe = {"ds_epe_mean": round(stats["dsum"] / stats["dn"], 4),
                      "ds_epe_over_1px": round(stats["dover"] / stats["dn"], 4)}
            writer.set_attrs(**ds_epe)
            result.update(ds_epe)
        result["out"] = writer.finish()
        return result
    finally:
        bar.close()
        writer.close()
