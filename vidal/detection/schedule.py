"""The training schedule every detector backend shares (thesis 2.5.1).

SGD with momentum and weight decay (or, with ``optimizer="adamw"``, AdamW [Loshchilov & Hutter
2019] with decoupled weight decay), the learning rate multiplied by ``gamma`` after each epoch
listed in ``milestones`` (the thesis: "reduce the learning rate by a factor of 5"), an optional
linear warm-up from ``lr / 1000`` over the first ``warmup_iters`` iterations (as torchvision's
detection references), optional gradient-norm clipping. A backend supplies only how one batch
becomes a dict of losses; this module owns the optimizer, the schedule, the progress bar and the
per-iteration history, so the torchvision and MMDetection backends train the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vidal.detection.augment import augment


OPTIMIZERS = ("sgd", "adamw")


def check_optimizer(name: str) -> None:
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


def _type_problem(value: Any, hint: Any) -> str | None:
    """What ``value`` should be for the annotation ``hint``, or None when it fits (or the
    annotation is not one of the simple kinds checked here)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        wanted = [_type_problem(value, a) for a in args if a is not type(None)]
        if any(w is None for w in wanted):
            return None
        return " or ".join(w for w in wanted if w) + (" or None" if type(None) in args else "")
    if hint is bool:
        return None if isinstance(value, (bool, np.bool_)) else "true or false"
    if hint is int:
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
        return None if ok else "an integer"
    if hint is float:
        ok = (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
              and math.isfinite(value))
        return None if ok else "a finite number"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = "integers" if args[0] is int else "numbers" if args[0] is float else None
        if item is None:
            return None
        ok = isinstance(value, (tuple, list)) and all(_type_problem(v, args[0]) is None for v in value)
        return None if ok else f"a list of {item} such as {(5, 7) if args[0] is int else (0.5, 1.0)}"
    return None


def check_field_types(cfg: Any) -> None:
    """Every field of the config dataclass ``cfg`` has the type its annotation says (no string
    where a number or a tuple is meant, no bool where an int is meant, no NaN): a one-line
    ``ValueError`` naming the field, the value and what is expected."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        wanted = _type_problem(value, hints.get(f.name))
        if wanted:
            raise ValueError(f"{f.name} must be {wanted}, got {value!r}")


#: Bounds of the schedule's numbers: field -> (low, high, what the field is).
_BOUNDS = {
    "lr": (0.0, 10.0, "the learning rate, > 0"),
    "momentum": (0.0, 1.0, "the SGD momentum, in [0, 1)"),
    "weight_decay": (0.0, 1.0, "the weight decay, in [0, 1)"),
    "epochs": (1, 10_000, "the number of epochs, 1..10000"),
    "gamma": (0.0, 10.0, "the learning-rate factor at each milestone, > 0"),
    "warmup_iters": (0, 10_000_000, "iterations of warm-up, >= 0 (0 = off)"),
    "batch_size": (1, 4096, "frames per batch, 1..4096"),
}


def check_schedule_fields(cfg: Any) -> None:
    """The schedule fields every backend config has: types (:func:`check_field_types`), bounds,
    ``optimizer``, ``hflip``, ``repeat_threshold``..., each with a one-line ``ValueError`` naming
    the field, the value and the valid range."""
    check_field_types(cfg)
    for name, (lo, hi, what) in _BOUNDS.items():
        value = getattr(cfg, name)
        open_low = name in ("lr", "gamma")
        open_high = name in ("momentum", "weight_decay")
        if (value <= lo if open_low else value < lo) or (value >= hi if open_high else value > hi):
            raise ValueError(f"{name} is {what}, got {value!r}")
    bad = [m for m in cfg.milestones if m < 1]
    if bad:
        raise ValueError(f"milestones are the epochs (>= 1) after which lr *= gamma, got {tuple(cfg.milestones)!r}")
    if cfg.grad_clip is not None and cfg.grad_clip < 0:
        raise ValueError(f"grad_clip is a maximal gradient norm, >= 0 or None (0 / None = off), got {cfg.grad_clip}")
    check_optimizer(cfg.optimizer)
    if not 0.0 <= cfg.hflip <= 1.0:
        raise ValueError(f"hflip is a probability in [0, 1], got {cfg.hflip}")
    if not 0.0 <= cfg.repeat_threshold <= 1.0:
        raise ValueError(f"repeat_threshold is a fraction of frames in [0, 1] (0 = off), got {cfg.repeat_threshold}")
    if not 0.0 <= cfg.photometric <= 1.0:
        raise ValueError(f"photometric is a probability in [0, 1] (0 = off), got {cfg.photometric}")
    if not 0.0 <= cfg.ema_decay < 1.0:
        raise ValueError(f"ema_decay is the weight-average decay per step, in [0, 1) (0 = off), got {cfg.ema_decay}")
    if not 0.1 <= cfg.crop <= 1.0:
        raise ValueError(f"crop is the side of a random crop kept at the frame's scale, as a fraction of the "
                         f"frame's, in [0.1, 1] (1 = off), got {cfg.crop}")


@dataclass
class ScheduleConfig:
    """The training-schedule fields every backend config shares (thesis 2.5.1, SYNTHIA-AL;
    ImageNet-VID: lr 0.001, epochs 6, milestones (3, 5)); checked by :func:`check_schedule_fields`."""

    lr: float = 0.02
    optimizer: str = "sgd"                # thesis: SGD; or "adamw" (README: measured, not better here)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    epochs: int = 10
    milestones: tuple[int, ...] = (5, 7)  # epochs after which lr *= gamma
    gamma: float = 0.2                    # "reduce the learning rate by a factor of 5"
    warmup_iters: int = 0                 # linear warm-up from lr/1000 (torchvision references); 0 = off
    batch_size: int = 12
    grad_clip: float | None = 10.0        # max grad norm; guards the high lr when training from scratch
    hflip: float = 0.5                    # probability of a horizontal flip per training image
    repeat_threshold: float = 0.0         # class-balanced repeat-factor sampling (LVIS); 0 = off
    ema_decay: float = 0.0                # weight averaging (schedule.WeightAverage); 0 = off
    photometric: float = 0.0              # probability of a random colour transform (augment.py)
    crop: float = 1.0                     # side of a random crop kept at the frame's scale; 1 = off
    seed: int = 0
    amp: bool = False                     # mixed precision on CUDA (float16 autocast + loss scaling); no-op on CPU

    def __post_init__(self) -> None:
        check_field_types(self)      # before converting: "12" must not become (1, 2)
        self.milestones = tuple(int(m) for m in self.milestones)
        check_schedule_fields(self)


def optimizer_with_schedule(params: Iterable[Tensor], *, lr: float, momentum: float, weight_decay: float,
                            milestones: Sequence[int], gamma: float, warmup_iters: int, optimizer: str = "sgd"):
    """``(optimizer, epoch_scheduler, warmup_scheduler or None)`` for the thesis schedule.

    ``optimizer``: ``sgd`` (thesis 2.5.1: momentum ``momentum``, L2 ``weight_decay``) or ``adamw``
    (betas (0.9, 0.999), decoupled ``weight_decay``; ``momentum`` unused).
    """
    check_optimizer(optimizer)
    if optimizer == "adamw":
        opt = torch.optim.AdamW(list(params), lr=lr, weight_decay=weight_decay)
    else:
        opt = torch.optim.SGD(list(params), lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones), gamma=gamma)
    warm = None
    if warmup_iters > 0:
        warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1e-3, total_iters=warmup_iters)
    return opt, sched, warm


def optimizer_step(losses: dict[str, Tensor], optimizer: torch.optim.Optimizer, params: Sequence[Tensor], *,
                   grad_clip: float | None, warmup, iteration: int, ranks=None, scaler=None) -> dict[str, float]:
    """Backward the sum of ``losses``, clip, step; the row of floats the history keeps.

    ``ranks`` (a :class:`vidal.distributed.RankContext` of several processes): the loss terms and
    the gradients are averaged over the ranks (``g = (1/N) sum_r g_r``) before the check, the
    clipping and the step, so every rank takes the same step. A non-finite loss (averaged: every
    rank stops together) raises ``FloatingPointError`` naming the iteration and every loss term.
    ``scaler`` (a ``torch.amp.GradScaler``, mixed precision): the loss is scaled before the backward
    pass and the gradients unscaled before the clipping; a step whose gradients overflow is skipped
    (the same on every rank: the gradients are averaged first).
    """
    loss = sum(losses.values())
    terms = {k: v.item() for k, v in losses.items()}
    value = loss.item()
    if ranks is not None and ranks.distributed:
        both = torch.tensor([value, *terms.values()], dtype=torch.float64)
        ranks.average_([both])
        value, terms = both[0].item(), dict(zip(terms, both[1:].tolist()))
    if not math.isfinite(value):
        raise FloatingPointError(f"loss is {value} at iteration {iteration}: {terms}")
    optimizer.zero_grad(set_to_none=True)
    (scaler.scale(loss) if scaler is not None else loss).backward()
    if ranks is not None:
        ranks.average_gradients(params)
    if scaler is not None:
        scaler.unscale_(optimizer)
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    if warmup is not None:
        warmup.step()
    return {"loss": value, **terms}


class WeightAverage:
    """Exponential moving average of a module's floating-point state (parameters and BatchNorm
    statistics; integer buffers are copied): ``ema <- d ema + (1 - d) w`` after every optimizer
    step, with ``d = decay (1 - exp(-step / ramp))`` so that early, fast-changing weights are not
    averaged in for long (``ramp`` = 1 / (1 - decay) steps).

    ``swapped()`` is a context that puts the average into the module and the live weights back
    after (evaluation during training); ``apply()`` keeps the average for good.
    """

    def __init__(self, module: torch.nn.Module, decay: float):
        self.module, self.decay, self.steps = module, decay, 0
        self.ramp = 1.0 / (1.0 - decay)
        self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self) -> None:
        self.steps += 1
        d = self.decay * (1.0 - math.exp(-self.steps / self.ramp))
        for k, v in self.module.state_dict().items():
            if v.dtype.is_floating_point:
                self.state[k].mul_(d).add_(v.detach(), alpha=1.0 - d)
            else:
                self.state[k].copy_(v)

    def apply(self) -> None:
        self.module.load_state_dict(self.state)

    @contextlib.contextmanager
    def swapped(self):
        live = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        self.apply()
        try:
            yield
        finally:
            self.module.load_state_dict(live)


def schedule_of(config: ScheduleConfig, **overrides: Any) -> ScheduleConfig:
    """The schedule fields of a backend config as a plain :class:`ScheduleConfig`, with the
    ``overrides`` that are not ``None`` replacing them (checked like a config: a bad override is
    the same one-line ``ValueError``)."""
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(ScheduleConfig)}
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return ScheduleConfig(**fields)


def fit(losses_of: Callable[[Any], dict[str, Tensor]], params: Sequence[Tensor],
        epoch_batches: Callable[[], Iterable[Any]], schedule: ScheduleConfig, *, iterations: int | None = None,
        progress: bool = False, before_epoch: Callable[[], None] | None = None,
        on_epoch_end: Callable[[int, list[dict[str, float]]], None] | None = None,
        module: torch.nn.Module | None = None, ranks=None, amp_device: str | None = None) -> list[dict[str, float]]:
    """Train for ``schedule.epochs`` passes over ``epoch_batches()`` (a fresh iterable per epoch)
    with the schedule's optimizer, learning rate, milestones, warm-up, clipping and weight average.

    ``losses_of(batch)`` runs the model in training mode and returns its loss terms;
    ``before_epoch()`` puts the model in training mode (``on_epoch_end`` may have evaluated it).
    ``iterations`` caps the total number of optimizer steps. Returns one row per iteration with
    ``loss`` (the sum), each term, ``epoch`` and the epoch's ``lr``. ``schedule.ema_decay > 0``:
    keep a :class:`WeightAverage` of ``module``; ``on_epoch_end`` sees the average, and the module
    holds it when training ends. ``ranks`` (:class:`vidal.distributed.RankContext`): losses,
    gradients and ``module``'s floating buffers are averaged over the ranks at every step (each
    rank's ``epoch_batches`` yields its share of the global batch). ``amp_device`` ("cuda"):
    mixed precision, each ``losses_of`` under ``torch.autocast`` (float16) and the loss scaled
    (``torch.amp.GradScaler``); None: float32 (the caller passes None on CPU).
    """
    s = schedule
    epochs, ema_decay = s.epochs, s.ema_decay
    if ema_decay > 0 and module is None:
        raise ValueError("ema_decay needs the module whose weights are averaged")
    ema = WeightAverage(module, ema_decay) if ema_decay > 0 else None
    params = list(params)
    opt, sched, warm = optimizer_with_schedule(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay,
                                               milestones=s.milestones, gamma=s.gamma, warmup_iters=s.warmup_iters,
                                               optimizer=s.optimizer)
    scaler = torch.amp.GradScaler(amp_device) if amp_device else None
    autocast = (lambda: torch.autocast(amp_device, dtype=torch.float16)) if amp_device else contextlib.nullcontext
    history: list[dict[str, float]] = []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=epochs, desc="train", unit="epoch")
    for epoch in range(epochs):
        if iterations is not None and len(history) >= iterations:
            break
        if before_epoch is not None:
            before_epoch()
        epoch_lr = opt.param_groups[0]["lr"]
        rows = []
        for batch in epoch_batches():
            if iterations is not None and len(history) + len(rows) >= iterations:
                break
            with autocast():
                losses = losses_of(batch)
            row = optimizer_step(losses, opt, params, grad_clip=s.grad_clip, warmup=warm,
                                 iteration=len(history) + len(rows), ranks=ranks, scaler=scaler)
            if ranks is not None:
                ranks.average_buffers(module)
            if ema is not None:
                ema.update()
            rows.append(row)
        history += [{**r, "epoch": epoch, "lr": epoch_lr} for r in rows]
        sched.step()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{rows[-1]['loss']:.3f}" if rows else "-")
        if on_epoch_end is not None:
            with ema.swapped() if ema is not None else contextlib.nullcontext():
                on_epoch_end(epoch, rows)
    if bar is not None:
        bar.close()
    if ema is not None:
        ema.apply()
    return history


# --------------------------------------------------------------------------- sampling


def frame_labels(frames: Sequence[dict], k: int) -> np.ndarray:
    """Class ids of frame ``k`` without decoding its image where the sequence allows it
    (:class:`vidal.training.FrameView` has ``labels_of``)."""
    labels_of = getattr(frames, "labels_of", None)
    return np.asarray(labels_of(k) if labels_of is not None else frames[k]["labels"], np.int64).reshape(-1)


def repeat_factors(frames: Sequence[dict], threshold: float) -> np.ndarray:
    """Repeat-factor sampling (Gupta et al., LVIS, 2019): a frame is repeated
    ``r = max over its classes c of max(1, sqrt(threshold / f_c))`` times per epoch, where ``f_c``
    is the fraction of the frames that contain class ``c``. Rare classes (thesis Table 2.1:
    wheelchairs, cyclists) are then seen about as often as ``threshold`` of the frames; frames
    with only frequent classes (or none) keep ``r = 1``. ``threshold <= 0``: all ones. Shape ``[N]``."""
    n = len(frames)
    if threshold <= 0 or n == 0:
        return np.ones(n)
    per_frame = [np.unique(frame_labels(frames, k)) for k in range(n)]
    counts: dict[int, int] = {}
    for labels in per_frame:
        for c in labels.tolist():
            counts[c] = counts.get(c, 0) + 1
    r_class = {c: max(1.0, math.sqrt(threshold / (m / n))) for c, m in counts.items()}
    return np.array([max([r_class[c] for c in labels.tolist()], default=1.0) for labels in per_frame])


def epoch_order(factors: np.ndarray, generator: torch.Generator) -> list[int]:
    """One epoch's frame order: frame ``k`` appears ``floor(r_k)`` times plus once more with
    probability ``frac(r_k)`` (stochastic rounding, drawn from ``generator``), shuffled. With all
    factors 1 it is a plain permutation (the same draws as ``torch.randperm``)."""
    n = len(factors)
    if np.all(factors == 1.0):
        return torch.randperm(n, generator=generator).tolist()
    whole = np.floor(factors)
    extra = torch.rand(n, generator=generator, dtype=torch.float64).numpy() < (factors - whole)
    repeats = (whole + extra).astype(np.int64)
    items = np.repeat(np.arange(n), repeats)
    return items[torch.randperm(len(items), generator=generator).numpy()].tolist()


def epoch_batches(frames: Sequence[dict], batch_size: int, factors: np.ndarray, generator: torch.Generator,
                  rng: np.random.Generator, schedule: ScheduleConfig, *, rank: int = 0, world_size: int = 1):
    """One epoch of ``(frames, flips)`` batches: :func:`epoch_order` cut into ``batch_size`` chunks,
    each frame augmented (:func:`vidal.detection.augment.augment` with the schedule's
    ``photometric`` and ``crop``) and flipped horizontally with probability ``schedule.hflip``
    (``rng`` draws per frame, in order). Backends turn the chunk into their own tensors.

    Several ranks (``world_size`` N > 1, issue 18): every rank draws the same order (``generator``
    seeded alike), cut into *global* batches of ``batch_size x N`` frames; rank ``r`` takes the
    ``r``-th contiguous part of each (:func:`vidal.distributed.rank_share`), so the ranks together
    see exactly the global batches of one process with batch ``batch_size x N``, and every rank
    takes the same number of steps. A last global batch of fewer than N frames is completed from
    the start of the order (as ``DistributedSampler`` pads). ``rng`` is the rank's own stream."""
    from vidal.distributed import rank_share

    order = epoch_order(factors, generator)
    step = batch_size * world_size
    for s in range(0, len(order), step):
        batch = order[s:s + step]
        if len(batch) < world_size:
            batch = batch + (order * world_size)[:world_size - len(batch)]
        chunk = [augment(frames[i], rng, photometric_p=schedule.photometric, crop=schedule.crop)
                 for i in batch[rank_share(len(batch), rank, world_size)]]
        yield chunk, [bool(rng.random() < schedule.hflip) for _ in chunk]
