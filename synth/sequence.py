"""Generate one sequence into its own HDF5 shard (runs inside a worker process)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from synth.render import SequenceRenderer
from synth.scenario import SequenceSpec
from synth.world import World
from vidal.data.writer import ShardWriter


@dataclasses.dataclass(frozen=True)
class RenderOptions:
    """What to render and store for every sequence."""

    width: int = 640
    height: int = 480
    masks: bool = False
    depth: bool = False
    flow: bool = False
    compression: str = "gzip"


@dataclasses.dataclass
class SequenceResult:
    name: str
    split: str
    shard: str
    n_frames: int
    n_boxes: int
    seconds: float


def render_sequence(spec: SequenceSpec, classes: tuple[str, ...], opts: RenderOptions):
    """Yield (rgb, annotations, extras) for every frame of ``spec``; extras holds the
    requested ``mask``, ``depth`` and ``flow`` (flow from the previous frame) arrays."""
    rng = np.random.default_rng(spec.seed)
    world = World(spec, rng, classes)
    renderer = SequenceRenderer(world, opts.width, opts.height, rng,
                                surfaces=opts.depth or opts.flow)
    prev_flow = None
    for i in range(spec.n_frames):
        rgb, ann, _ = renderer.render(i)
        extras = {}
        if opts.masks:
            extras["mask"] = renderer.painter.ids
        if opts.depth:
            extras["depth"] = renderer.painter.depth()
        if opts.flow:
            extras["flow"] = prev_flow
            prev_flow = renderer.flow_to_next(i) if i + 1 < spec.n_frames else None
        yield rgb, ann, extras


def generate_sequence(spec: SequenceSpec, classes: tuple[str, ...], opts: RenderOptions,
                      shard_dir: str | Path) -> SequenceResult:
    """Render ``spec`` and write it to ``shard_dir/<name>.h5``."""
    start = time.perf_counter()
    shard = Path(shard_dir) / f"{spec.name}.h5"
    n_boxes = 0
    with ShardWriter(shard, spec.name, n_frames=spec.n_frames, height=opts.height, width=opts.width,
                     attrs=spec.attrs, masks=opts.masks, depth=opts.depth, flow=opts.flow,
                     compression=opts.compression) as writer:
        for rgb, ann, extras in render_sequence(spec, classes, opts):
            writer.add_frame(rgb, ann, mask=extras.get("mask"), depth=extras.get("depth"),
                             flow=extras.get("flow"))
            n_boxes += len(ann["boxes"])
    return SequenceResult(spec.name, spec.split, str(shard), spec.n_frames, n_boxes,
                          time.perf_counter() - start)
