"""Several processes, one experiment: the rank context of a ``torch.distributed`` run (issue 18).

``torchrun --nproc_per_node N tools/train.py CONFIG --launcher ddp`` (or ``tools/run_al.py``)
starts N processes; :func:`init` joins them into one process group (NCCL when CUDA is available,
gloo on CPU) and returns their :class:`RankContext`. Without a launcher, :func:`current` is the
one-process context (rank 0 of 1) and every collective below is a no-op, so the code paths of a
single process are unchanged.

What the ranks share:

- **Training** (:meth:`vidal.detection.torch_detector.TorchDetector.train`): every rank draws the
  same epoch order from the same seeded generator and takes its contiguous share of each *global*
  batch of ``batch_size x N`` frames (:func:`vidal.detection.schedule.epoch_batches`); the loss
  terms and the gradients are averaged over the ranks after each backward pass
  (:meth:`RankContext.average_gradients`: ``g <- (1/N) sum_r g_r``, one flat all-reduce), and the
  floating buffers (BatchNorm statistics) after each step, so every rank holds the same weights
  after every step. ``schedule.batch_size`` is the batch **per rank**.
- **Pool inference**: whole videos per rank (:func:`shard_videos`), gathered on rank 0.
- **The work dir**: only rank 0 writes it; the other ranks follow rank 0's commands
  (:func:`vidal.loop.follow`), so there is one writer (no MI-AOD #11: every rank writing the
  labeled-set files at once).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

LAUNCHERS = ("none", "ddp")
#: what torchrun sets in every process it starts
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


#: minutes a collective waits for the other ranks (``--dist-timeout``): longer than rank 0's solo
#: steps (evaluation and acquisition of a large pool), during which the other ranks wait
DEFAULT_TIMEOUT_MIN = 360.0


class LauncherError(RuntimeError):
    """The launcher cannot start: one line naming the cause and the fix."""


class RankTimeoutError(LauncherError):
    """A rank waited for rank 0 longer than the process group's timeout (``--dist-timeout``)."""


def is_timeout(error: BaseException) -> bool:
    """Whether ``error`` is a collective that waited past the process group's timeout (gloo:
    "Timed out waiting ... for recv"; NCCL: the watchdog's "timeout")."""
    text = str(error).lower()
    return isinstance(error, RuntimeError) and ("timed out" in text or "timeout" in text)


@contextlib.contextmanager
def waiting_for_rank0(rank: int, alone: str, *, resumable: bool = False):
    """Around a collective in which rank ``rank`` waits while rank 0 works ``alone`` (e.g.
    "evaluates, scores and selects"): a timeout becomes a one-line :class:`RankTimeoutError`
    naming ``--dist-timeout`` (and ``--resume`` when the run can be resumed) instead of gloo's /
    NCCL's message."""
    try:
        yield
    except RuntimeError as e:
        if not is_timeout(e):
            raise
        rerun = "rerun with --resume and a longer" if resumable else "rerun with a longer"
        raise RankTimeoutError(
            f"rank {rank} waited longer than the process group's timeout for rank 0, which {alone} alone; "
            f"if rank 0 was still working, {rerun} --dist-timeout (minutes, default {DEFAULT_TIMEOUT_MIN:g})"
        ) from None


@dataclasses.dataclass(frozen=True)
class RankContext:
    """This process's place in the run: ``rank`` of ``world_size`` (``local_rank`` on its machine).

    ``world_size == 1``: every collective returns its input (one process, nothing to share).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    # ---- collectives (no-ops with one process)
    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def broadcast(self, obj: Any = None) -> Any:
        """Rank 0's ``obj`` on every rank (any picklable value sent between our own processes;
        nothing read from a file is unpickled)."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any] | None:
        """``[obj of rank 0, ..., obj of rank N-1]`` on rank 0, None on the others."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def average_(self, tensors: Sequence) -> None:
        """In place: every tensor becomes its mean over the ranks (one flat all-reduce, in float32,
        or float64 when one of them is; every rank gets the same sum, so the same mean)."""
        if not self.distributed or not tensors:
            return
        import torch
        import torch.distributed as dist

        # NCCL reduces CUDA tensors only (a loss row or a mask is made on the host)
        device = torch.device("cuda", torch.cuda.current_device()) if self.backend == "nccl" else torch.device("cpu")
        dtype = torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32
        flat = torch.cat([t.detach().reshape(-1).to(device=device, dtype=dtype) for t in tensors])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.world_size
        offset = 0
        for t in tensors:
            n = t.numel()
            t.copy_(flat[offset:offset + n].view_as(t))
            offset += n

    def average_gradients(self, params: Sequence) -> None:
        """``p.grad <- mean over ranks`` for every parameter that has a gradient on any rank (one
        with none on this rank counts as zeros; one with none anywhere stays None, as in one
        process: the optimizer skips it)."""
        if not self.distributed:
            return
        import torch

        has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32)
        self.average_([has])
        for p, any_rank in zip(params, has.tolist()):
            if any_rank > 0 and p.grad is None:
                p.grad = torch.zeros_like(p)
        self.average_([p.grad for p in params if p.grad is not None])

    def average_buffers(self, module) -> None:
        """Floating buffers (BatchNorm running statistics) averaged over the ranks, so that the
        ranks' state dicts stay equal; integer buffers are equal already (same step counts)."""
        if not self.distributed or module is None:
            return
        self.average_([b for b in module.buffers() if b.dtype.is_floating_point])

    def broadcast_module_(self, module) -> None:
        """Rank 0's parameters and buffers into every rank's ``module`` (the start of training)."""
        if not self.distributed:
            return
        import torch.distributed as dist

        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def current() -> RankContext:
    """The context of this process: the initialised process group's, else rank 0 of 1."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch without distributed support
        return RankContext()
    if dist.is_available() and dist.is_initialized():
        return RankContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)),
                           dist.get_backend())
    return RankContext()


def init(launcher: str = "none", *, timeout_min: float = DEFAULT_TIMEOUT_MIN) -> RankContext:
    """Join the process group of ``launcher``: ``"none"`` (one process) or ``"ddp"`` (started by
    ``torchrun``: ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` / ``MASTER_ADDR`` / ``MASTER_PORT`` in
    the environment). NCCL when CUDA is available (each rank on ``cuda:LOCAL_RANK``), gloo on CPU.
    Threads: ``OMP_NUM_THREADS`` (torchrun sets 1) is the torch thread count of each rank.

    ``timeout_min``: how long a collective waits for the other ranks. The other ranks wait in one
    while rank 0 works alone (evaluation, scoring, selection: in the AL loop, :func:`vidal.loop.follow`;
    per-epoch evaluation in ``tools/train.py``), so it must exceed the longest of those steps; a
    rank that dies is noticed by torchrun, which stops the others, whatever the timeout."""
    if launcher not in LAUNCHERS:
        raise LauncherError(f"--launcher must be one of {', '.join(LAUNCHERS)}, got {launcher!r}")
    if not timeout_min > 0:
        raise LauncherError(f"--dist-timeout must be a positive number of minutes, got {timeout_min:g}")
    if launcher == "none":
        if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and "RANK" in os.environ:
            raise LauncherError(f"started by torchrun as one of {os.environ['WORLD_SIZE']} processes, but with "
                                f"--launcher none every process would run the whole job; add --launcher ddp")
        return current()
    missing = [k for k in TORCHRUN_ENV if k not in os.environ]
    if missing:
        raise LauncherError(f"--launcher ddp needs the environment torchrun sets ({', '.join(missing)} missing): "
                            f"start with torchrun --nproc_per_node N {os.path.basename(sys.argv[0])} ... "
                            f"--launcher ddp")
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return current()
    if os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(max(1, int(os.environ["OMP_NUM_THREADS"])))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_min))
    return current()


def shutdown() -> None:
    """Leave the process group (end of a ``--launcher ddp`` run)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard_videos(frames_per_video: Sequence[int], world_size: int) -> list[list[int]]:
    """Whole videos per rank (temporal coherence needs a frame's neighbours in one place):
    the videos, longest first, each to the rank with the fewest frames so far (greedy balance; ties
    to the lowest rank), each rank's list sorted. Deterministic; ``[[0..V-1]]`` for one rank."""
    sizes = np.asarray(frames_per_video, np.int64)
    shares: list[list[int]] = [[] for _ in range(world_size)]
    load = np.zeros(world_size, np.int64)
    for v in sorted(range(len(sizes)), key=lambda v: (-int(sizes[v]), v)):
        r = int(np.argmin(load))
        shares[r].append(v)
        load[r] += sizes[v]
    return [sorted(s) for s in shares]


def rank_share(n: int, rank: int, world_size: int) -> slice:
    """The contiguous part of ``n`` items that ``rank`` takes (sizes differ by at most one, the
    first ranks take the larger parts, as ``numpy.array_split``)."""
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))
