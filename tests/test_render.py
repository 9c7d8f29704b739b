"""Rendering and its ground truth (synth/render.py, annotate.py, sequence.py): boxes against the
instance masks, the 50-pixel rule, night lighting, determinism, depth and optical flow.

Sequences come from the synthia-al plan at scale 1 (full-length specs) but only their first
frames are rendered, at small sizes, so the whole file takes a few seconds.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import cv2
import numpy as np
import pytest

from synth.annotate import MIN_VISIBLE_PIXELS
from synth.camera import Camera
from synth.render import SequenceRenderer
from synth.scenario import load_scenario, plan_sequences
from synth.sequence import RenderOptions, render_sequence
from synth.world import World

W, H = 320, 240
N_FRAMES = 30


@pytest.fixture(scope="module")
def scenario():
    return load_scenario("synthia-al")


@pytest.fixture(scope="module")
def plan(scenario):
    return plan_sequences(scenario, scale=1.0, seed=0)


def _first(plan, **attrs):
    return next(s for s in plan if all(getattr(s, k) == v for k, v in attrs.items()))


def _world(spec, classes):
    """The world ``render_sequence`` builds for ``spec`` (same seed, same draw order)."""
    return World(spec, np.random.default_rng(spec.seed), classes)


def _render(spec, classes, n, **opts):
    return list(itertools.islice(render_sequence(spec, classes, RenderOptions(**opts)), n))


@pytest.fixture(scope="module")
def gt_specs(plan, scenario):
    """Planned specs of several kinds, plus two crowded ones (every spawn point taken) that
    stress occlusion."""
    crowded = {c: 1.0 for c in scenario.classes}
    city = _first(plan, area="city", condition="spring")
    night_hw = _first(plan, area="highway", condition="night")
    return {
        "city_spring": city,
        "town_spring": _first(plan, area="town", condition="spring"),
        "wheelchair": _first(plan, subset="wheelchair"),
        "night_city": _first(plan, area="city", condition="night"),
        "night_highway": night_hw,
        "crowded_city": dataclasses.replace(city, name="crowded_city", spawn=crowded),
        "crowded_night_highway": dataclasses.replace(night_hw, name="crowded_night_highway",
                                                     spawn={**{c: 0.0 for c in crowded}, "car": 1.0}),
    }


@pytest.fixture(scope="module")
def gt_renders(gt_specs, scenario):
    return {k: _render(s, scenario.classes, N_FRAMES, width=W, height=H, masks=True)
            for k, s in gt_specs.items()}


# -- boxes and masks ----------------------------------------------------------------------------


def test_annotations_match_masks_exactly(gt_renders, scenario):
    assert MIN_VISIBLE_PIXELS == 50  # SYNTHIA-AL: objects of more than 50 pixels are annotated
    C = len(scenario.classes)
    n_boxes = 0
    labels_seen = set()
    for key, frames in gt_renders.items():
        track_label = {}
        for t, (rgb, ann, extras) in enumerate(frames):
            mask = extras["mask"]
            assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
            assert mask.shape == (H, W) and mask.dtype == np.uint16
            n = len(ann["boxes"])
            for k in ("labels", "track_ids", "visible_fraction", "truncation", "occlusion"):
                assert len(ann[k]) == n
            assert len(set(ann["track_ids"].tolist())) == n, "one box per object and frame"
            ids, counts = np.unique(mask[mask > 0], return_counts=True)
            pixels = dict(zip(ids.tolist(), counts.tolist()))
            annotated = set(ann["track_ids"].tolist())
            where = f"{key} frame {t}"
            # every object with more than 50 visible pixels is annotated, no other one is
            assert annotated == {i for i, c in pixels.items() if c > 50}, where
            for box, label, tid, vis, trunc, occ in zip(ann["boxes"], ann["labels"], ann["track_ids"],
                                                         ann["visible_fraction"], ann["truncation"],
                                                         ann["occlusion"]):
                ys, xs = np.nonzero(mask == tid)
                assert len(ys) > 50, where
                tight = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
                assert box.dtype == np.float32 and np.array_equal(box, tight), (where, tid, box, tight)
                assert 0 <= box[0] < box[2] <= W and 0 <= box[1] < box[3] <= H
                assert 1 <= label <= C
                assert 0 < vis <= 1 and 0 <= trunc < 1 and 0 <= occ < 1, (where, tid, vis, trunc, occ)
                # visible / whole = (in-frame / whole) * (visible / in-frame)
                assert vis == pytest.approx((1 - trunc) * (1 - occ), abs=1e-5)
                # an object keeps its class in every frame
                assert track_label.setdefault(int(tid), int(label)) == label, where
                labels_seen.add(int(label))
            n_boxes += n
    assert n_boxes >= 150, n_boxes  # the checks above ran on plenty of boxes
    assert labels_seen <= set(range(1, C + 1)) and len(labels_seen) >= 3


def test_small_objects_are_in_mask_but_not_annotated(gt_renders):
    """Objects with <= 50 visible pixels appear in the instance map, never in the boxes."""
    small = 0
    for frames in gt_renders.values():
        for _, ann, extras in frames:
            ids, counts = np.unique(extras["mask"][extras["mask"] > 0], return_counts=True)
            for tid, c in zip(ids.tolist(), counts.tolist()):
                if c <= 50:
                    small += 1
                    assert tid not in ann["track_ids"]
    assert small > 0  # the case occurred


def test_classes_follow_the_spawn_rules(gt_renders, gt_specs, scenario):
    car = scenario.classes.index("car") + 1
    for key in ("night_city", "night_highway", "crowded_night_highway"):
        labels = {int(l) for _, ann, _ in gt_renders[key] for l in ann["labels"]}
        assert labels <= {car}, key
    wc = scenario.classes.index("wheelchair") + 1
    assert wc in {int(l) for key in ("wheelchair", "crowded_city") for _, ann, _ in gt_renders[key]
                  for l in ann["labels"]}


# -- night ----------------------------------------------------------------------------------------


def test_night_frames_are_dark(gt_renders):
    def mean(key):
        return float(np.mean([rgb.mean() for rgb, _, _ in gt_renders[key]]))

    day_city, night_city = mean("city_spring"), mean("night_city")
    assert night_city < 0.65 * day_city, (night_city, day_city)
    assert mean("night_highway") < 60
    # most of a night frame is dark
    rgb = gt_renders["night_highway"][0][0]
    assert np.median(rgb.max(axis=-1)) < 80


def test_moving_cars_have_their_lights_on_at_night(plan, scenario):
    """Head / tail lights are emissive: the pixels of a moving car seen at night include lights
    at (near) full brightness, which nothing else reaches under the night light map (<= 0.9).

    Frames are picked from the worlds of the night sequences where a moving car is 6..18 m from
    the camera (big enough for its lights to cover whole pixels), then rendered."""
    picked = []
    for spec in [s for s in plan if s.condition == "night"]:
        world = _world(spec, scenario.classes)
        for i in range(0, spec.n_frames, 10):
            t, ego = i / spec.fps, world.ego.position(i)
            near = [a.track_id for a in world.agents if a.cls == "car" and not a.parked
                    and 6 < a.pose(t)[1] - ego[2] < 18 and abs(a.pose(t)[0] - ego[0]) < 8]
            if near:
                picked.append((spec, world, i, near))
                break
        if len(picked) == 6:
            break
    checked = 0
    for spec, world, i, near in picked:
        renderer = SequenceRenderer(world, W, H, np.random.default_rng(spec.seed))
        rgb, ann, _ = renderer.render(i)
        mask = renderer.painter.ids
        for box, tid, vis in zip(ann["boxes"], ann["track_ids"], ann["visible_fraction"]):
            if int(tid) not in near or vis < 0.9:
                continue
            x1, y1, x2, y2 = box.astype(int)
            assert rgb[y1:y2, x1:x2].max() > 200, (spec.name, i, tid)
            assert rgb[mask == tid].max() >= 250, (spec.name, i, tid)
            checked += 1
    assert checked >= 3, checked


# -- determinism ------------------------------------------------------------------------------------


def test_rendering_is_deterministic(gt_specs, scenario):
    spec = gt_specs["crowded_city"]
    a = _render(spec, scenario.classes, 8, width=W, height=H, masks=True)
    b = _render(spec, scenario.classes, 8, width=W, height=H, masks=True)
    assert any(ex["mask"].any() for _, _, ex in a)  # objects in view
    for (rgb_a, ann_a, ex_a), (rgb_b, ann_b, ex_b) in zip(a, b):
        assert rgb_a.tobytes() == rgb_b.tobytes()
        assert ex_a["mask"].tobytes() == ex_b["mask"].tobytes()
        assert ann_a.keys() == ann_b.keys()
        for k in ann_a:
            assert ann_a[k].dtype == ann_b[k].dtype and ann_a[k].tobytes() == ann_b[k].tobytes(), k
    # weather effects draw from the sequence's generator too: still reproducible
    rain = dataclasses.replace(spec, condition="rain", weather="rain")
    r1 = _render(rain, scenario.classes, 3, width=160, height=120)
    r2 = _render(rain, scenario.classes, 3, width=160, height=120)
    assert all(x[0].tobytes() == y[0].tobytes() for x, y in zip(r1, r2))


def test_other_seed_gives_other_frames(gt_specs, scenario):
    spec = gt_specs["city_spring"]
    a = _render(spec, scenario.classes, 3, width=160, height=120)
    b = _render(dataclasses.replace(spec, seed=spec.seed + 1), scenario.classes, 3, width=160, height=120)
    for (rgb_a, _, _), (rgb_b, _, _) in zip(a, b):
        assert np.mean(rgb_a != rgb_b) > 0.05


# -- depth and flow -----------------------------------------------------------------------------------

DW, DH = 160, 120


def _moving_clear_spec(plan, scenario, area):
    """A clear spring sequence of ``area`` whose ego drives from the start, with no crosswalk
    within reach of the first frames."""
    for s in plan:
        if s.area != area or s.condition != "spring":
            continue
        world = _world(s, scenario.classes)
        z = world.ego.z
        if world.ego.v[:6].min() > 1.0 and all(abs(c - z[0]) > 15 for c in world.crosswalks):
            return s
    raise AssertionError(f"no moving clear {area} sequence")


@pytest.fixture(scope="module", params=["city", "highway"])
def dense(request, plan, scenario):
    spec = _moving_clear_spec(plan, scenario, request.param)
    frames = _render(spec, scenario.classes, 4, width=DW, height=DH, masks=True, depth=True, flow=True)
    return spec, _world(spec, scenario.classes), frames


def _camera(world, i):
    cam = Camera(DW, DH, far=world.layout.far)
    cam.set_pose(world.ego.position(i), world.ego.yaw[i], world.ego.pitch[i])
    return cam


def _ground(cam):
    """Per pixel: depth of the ground plane y=0 along the ray (inf above the horizon) and the
    world point hit."""
    dirs = cam.ray_directions() @ cam.R  # world direction of each pixel's ray (camera z = 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = -cam.position[1] / dirs[..., 1]
    s = np.where(s > 0, s, np.inf)
    return s, cam.position + dirs * np.where(np.isfinite(s), s, 0)[..., None]


def test_depth_shapes_and_values(dense):
    spec, world, frames = dense
    for i, (_, _, ex) in enumerate(frames):
        depth = ex["depth"]
        assert depth.shape == (DH, DW) and depth.dtype == np.float32
        assert not np.isnan(depth).any()
        assert (depth > 0).all()  # inf counts as positive; no zero or negative depth
        bottom = depth[-DH // 5:]
        assert np.isfinite(bottom).all() and (bottom < 30).all()
        # the camera looks slightly down: the horizon is in the upper half of the frame
        horizon = _camera(world, i).horizon_row()
        assert 0 < horizon < DH / 2
        # on the road, the depth is the exact depth of the ground plane
        ground, _ = _ground(_camera(world, i))
        with np.errstate(invalid="ignore"):  # inf - inf above the horizon
            road = np.abs(depth - ground) < 1e-4 * ground
        assert road[-DH // 5:].mean() > 0.8
        # depth increases towards the horizon along the centre column of the road
        col = depth[int(horizon) + 3:, DW // 2]
        assert (np.diff(col[np.isfinite(col)]) < 0).all()
        if spec.area == "highway":
            assert not np.isfinite(depth[0]).any()  # open sky


def test_depth_is_inf_only_at_sky(plan, scenario):
    spec = _first(plan, area="town", condition="spring")
    world = _world(spec, scenario.classes)
    (_, _, ex), = _render(spec, scenario.classes, 1, width=DW, height=DH, depth=True)
    horizon = _camera(world, 0).horizon_row()
    below = ex["depth"][int(math.ceil(horizon)) + 3:]  # the skyline reaches 2 rows below the horizon
    assert np.isfinite(below).all(), f"{int((~np.isfinite(below)).sum())} inf pixels below the horizon"


def test_flow_of_the_verge_is_ground_motion(plan, scenario):
    spec = _first(plan, area="town", condition="spring")
    world = _world(spec, scenario.classes)
    frames = _render(spec, scenario.classes, 2, width=DW, height=DH, masks=True, depth=True, flow=True)
    cam0, cam1 = _camera(world, 0), _camera(world, 1)
    ground, pts = _ground(cam0)
    # the grass beside the road: ground-plane depth, no object, beyond the sidewalks
    layout = world.layout
    with np.errstate(invalid="ignore"):
        on_ground = np.abs(frames[0][2]["depth"] - ground) < 1e-4 * ground
    verge = on_ground & (frames[0][2]["mask"] == 0) & (np.abs(pts[..., 0]) > layout.road_half + layout.sidewalk + 0.1)
    assert verge.sum() > 100
    uv1 = cam1.project_camera(cam1.to_camera(pts))
    expected = uv1 - np.stack(np.meshgrid(np.arange(DW), np.arange(DH)), -1)
    err = np.abs(frames[1][2]["flow"] - expected)[verge]
    assert err.max() < 0.05, err.max()


def test_flow_of_the_road_is_exact(dense):
    """Where the road is seen, the stored flow is the motion of the ground point under the
    pixel from the ego pose of frame t to that of frame t+1 (computed here independently)."""
    spec, world, frames = dense
    for t in range(len(frames) - 1):
        flow = frames[t + 1][2]["flow"]
        assert frames[0][2]["flow"] is None
        assert flow.shape == (DH, DW, 2) and flow.dtype == np.float32
        assert np.isfinite(flow).all()
        cam0, cam1 = _camera(world, t), _camera(world, t + 1)
        ground, pts = _ground(cam0)
        with np.errstate(invalid="ignore"):
            road = np.abs(frames[t][2]["depth"] - ground) < 1e-4 * ground
        road &= frames[t][2]["mask"] == 0
        assert road.sum() > 0.3 * DH * DW
        uv1 = cam1.project_camera(cam1.to_camera(pts))
        uv0 = np.stack(np.meshgrid(np.arange(DW), np.arange(DH)), -1)
        expected = uv1 - uv0
        err = np.abs(flow - expected)[road]
        assert err.max() < 1 / 512 + 5e-4, err.max()  # stored rounded to 1/256 px
        # the ego moves: the road at the bottom of the frame streams down
        assert np.median(flow[-10:, :, 1][road[-10:]]) > 1.0


def test_flow_warp_reproduces_previous_frame(plan, scenario):
    """Warping frame t+1 back with the stored flow (cv2.remap) explains the changes from frame
    t to t+1 on visible, non-occluded pixels much better than no motion, and the stored flow is
    better than the same flow scaled by 0.5 or 1.5 (its magnitude is right).

    Only pixels that changed between the two frames are compared with the zero-flow baseline:
    this renderer draws aliased, untextured surfaces whose long edges (lane lines, curbs) run
    along the motion, so unchanged pixels dominate any whole-frame average and no-motion is
    already nearly exact there (the aperture problem), whatever the flow.
    """
    spec = _moving_clear_spec(plan, scenario, "city")
    w, h = 320, 240
    frames = _render(spec, scenario.classes, 4, width=w, height=h, masks=True, depth=True, flow=True)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    for t in range(len(frames) - 1):
        f0 = frames[t][0].astype(np.float32)
        f1 = frames[t + 1][0].astype(np.float32)
        flow = frames[t + 1][2]["flow"]
        m0, m1 = frames[t][2]["mask"], frames[t + 1][2]["mask"]
        mx, my = gx + flow[..., 0], gy + flow[..., 1]
        inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
        # non-occluded: the same object (or none) at the target pixel
        target = m1[np.clip(np.rint(my), 0, h - 1).astype(int), np.clip(np.rint(mx), 0, w - 1).astype(int)]
        valid = inside & np.isfinite(frames[t][2]["depth"]) & (target == m0)
        err = {}
        for s in (0.5, 1.0, 1.5):
            warped = cv2.remap(f1, gx + s * flow[..., 0], gy + s * flow[..., 1], cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
            err[s] = np.abs(warped - f0).mean(axis=-1)
        zero = np.abs(f1 - f0).mean(axis=-1)
        changed = valid & (zero > 20)
        assert changed.sum() > 500
        assert err[1.0][changed].mean() < 0.6 * zero[changed].mean(), (t, err[1.0][changed].mean(),
                                                                       zero[changed].mean())
        assert err[1.0][valid].mean() < err[0.5][valid].mean()
        assert err[1.0][valid].mean() < err[1.5][valid].mean()


def test_ground_markings_do_not_pop(plan, scenario):
    """Driving over a crosswalk, the white stripes leave the bottom of the frame gradually
    (regression: stripes crossing the near plane used to be dropped whole, in one frame)."""
    found = 0
    for spec in [s for s in plan if s.area == "city" and s.condition == "spring"][:4]:
        rng = np.random.default_rng(spec.seed)
        world = World(spec, rng, scenario.classes)
        renderer = SequenceRenderer(world, DW, DH, rng)
        z = world.ego.z
        for zc in world.crosswalks:
            # frames where the stripes' near end (zc - 2) is at most 0.5 m ahead and their far
            # end (zc + 2) still more than 3 m ahead, i.e. in view at the bottom of the frame
            idx = np.flatnonzero((zc - 2 - z < 0.5) & (zc + 2 - z > 3.0))
            if len(idx) == 0 or idx[0] == 0:
                continue
            i = int(idx[0])
            white = []
            for j in (i - 1, i):
                rgb, _, _ = renderer.render(j)
                white.append(int((rgb[-DH // 4:].min(axis=-1) > 200).sum()))
            found += 1
            assert white[1] > 0.5 * white[0], (spec.name, zc, i, white)
    assert found > 0
