"""Rendering one sequence frame by frame: scenery, agents, weather and night lighting, and the
ground truth read off the instance-id buffer.

Draw order (painter's algorithm): sky and skyline (a per-video background image), the ground
(verge, sidewalks, road, markings, crosswalks), buildings far to near, then every tree, lamp
and agent sorted far to near by ground distance to the camera, then weather. Objects stand on
the ground and beside-the-road buildings never stand between the camera and the sidewalk, so
this order is exact for occlusion between those layers; within the last layer it is exact for
objects that do not interpenetrate.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from synth.annotate import annotate_frame, measure_drawn
from synth.camera import Camera
from synth.painter import Painter, project_parts
from synth.scenery import PackedBuildings, PackedProps
from synth.agents import local_to_world
from synth.palette import Palette, fog_amount, mix, palette_for, shade, sky_image
from synth.world import World

#: ground strips are drawn from a little behind the camera to the far distance
BEHIND = 2.0
#: objects smaller than this (projected height, px) are not drawn at all
MIN_DRAW_PX = 2.5
#: agents smaller than this are drawn with fewer parts
COARSE_PX = 24.0


class SequenceRenderer:
    """Renders the frames of one ``World``.

    Args:
        world: the sequence's world.
        width, height: frame size.
        rng: generator for per-frame randomness (rain, snow); seeded with the sequence.
        surfaces: also compute depth and flow (slower).
    """

    def __init__(self, world: World, width: int, height: int, rng: np.random.Generator, *,
                 surfaces: bool = False):
        self.world = world
        spec = world.spec
        self.pal: Palette = palette_for(spec.season, spec.daytime, spec.weather)
        self.night = spec.daytime == "night"
        self.rain = spec.weather == "rain"
        self.snowing = spec.season == "winter" and rng.random() < 0.5
        self.cam = Camera(width, height, far=world.layout.far)
        self.rng = rng
        self.surfaces = surfaces
        self.cam.set_pose(world.ego.position(0), world.ego.yaw[0], world.ego.pitch[0])
        self.background = self._background(rng)
        self.lightmap = self._lightmap() if self.night else None
        self.buildings = PackedBuildings(world.buildings)
        self.props = PackedProps(world.props, bare_trees=not self.pal.canopy)
        self.painter: Painter | None = None

    # -- per-video images ----------------------------------------------------------------------
    def _background(self, rng) -> np.ndarray:
        """Sky gradient and a distant skyline / hills silhouette (fixed for the video)."""
        W, H = self.cam.width, self.cam.height
        horizon = self.cam.horizon_row()
        img = sky_image(W, H, horizon, self.pal)
        scenery = self.world.layout.scenery
        base = np.asarray(self.pal.fog, float)
        if scenery == "buildings":
            x = 0
            while x < W:
                w = int(rng.uniform(0.03, 0.09) * W)
                h = rng.uniform(0.04, 0.2) * H
                c = shade(base, rng.uniform(0.75, 0.9))
                cv2.rectangle(img, (x, int(horizon - h)), (x + w, int(horizon) + 2), c, -1)
                x += w
        else:
            xs = np.linspace(0, W, 24)
            ys = horizon - (np.abs(np.cumsum(rng.normal(0, 0.012, 24))) + 0.01) * H * (2.5 if scenery == "open" else 1.5)
            poly = np.concatenate([np.stack([xs, ys], 1), [[W, horizon + 2], [0, horizon + 2]]]).astype(np.int32)
            green = np.asarray(self.pal.verge, float) * 0.5 + base * 0.5
            cv2.fillPoly(img, [poly], shade(green, 0.9))
        # the ground beyond the road (the verge) fills everything below the horizon; the road,
        # sidewalks and markings are drawn over it every frame
        img[int(math.ceil(horizon)):] = shade(self.pal.verge, self.pal.ambient)
        return img

    def _lightmap(self) -> np.ndarray:
        """Night light level per pixel (uint8, 255 = full): dim ambient plus the ego headlights."""
        W, H = self.cam.width, self.cam.height
        horizon = self.cam.horizon_row()
        yy, xx = np.mgrid[0:H, 0:W].astype(float)
        cy = horizon + 0.45 * (H - horizon)
        lobe = np.exp(-(((xx - W / 2) / (0.42 * W)) ** 2 + ((yy - cy) / (0.32 * H)) ** 2))
        lobe *= 1 / (1 + np.exp(-(yy - horizon) / (0.01 * H)))  # soft cut at the horizon
        level = 0.15 + 0.75 * lobe
        return (np.clip(level, 0, 1) * 255).astype(np.uint8)

    # -- frame ---------------------------------------------------------------------------------
    def render(self, i: int) -> tuple[np.ndarray, dict, dict]:
        """Frame ``i``: (rgb uint8 [H,W,3], annotations, extras with mask / painter)."""
        world, ego = self.world, self.world.ego
        t = i / world.spec.fps
        self.cam.set_pose(ego.position(i), ego.yaw[i], ego.pitch[i])
        p = Painter(self.cam, self.background, emissive=self.night, surfaces=self.surfaces)
        self.painter = p
        self._ground(p)
        self.buildings.draw(p, self.pal, self.world.layout.far, self.night, BEHIND)
        shapes = self._objects(p, t)
        if self.night:
            self._darken(p)
        if self.rain:
            self._rain(p)
        if self.snowing:
            self._snow(p)
        ann = annotate_frame(p.ids, shapes)
        return p.rgb, ann, {"painter": p, "time": t}

    def _to_cam(self, pts: np.ndarray) -> np.ndarray:
        return self.cam.to_camera(pts)

    def _ground(self, p: Painter) -> None:
        L, pal, cam = self.world.layout, self.pal, self.cam
        z0, z1 = cam.position[2] - BEHIND, cam.position[2] + L.far

        def strip(xa, xb, colour, za=z0, zb=z1, y=0.0):
            q = np.array([[xa, y, za], [xb, y, za], [xb, y, zb], [xa, y, zb]])
            p.part("poly", self._to_cam(q), colour)

        a = pal.ambient
        if p.surface is not None:
            # the verge is part of the background image; for depth / flow it must also be a
            # ground surface (same colour, so the frames are identical with or without it)
            strip(-400, 400, shade(pal.verge, a))
        rh = L.road_half
        if L.sidewalk > 0:
            for s in (-1, 1):
                xa, xb = sorted((s * rh, s * (rh + L.sidewalk)))
                strip(xa, xb, shade(pal.sidewalk, a))
                xa, xb = sorted((s * rh, s * (rh + 0.25)))
                strip(xa, xb, shade(pal.curb, a))
        else:
            for s in (-1, 1):
                xa, xb = sorted((s * rh, s * (rh + 2.5)))
                strip(xa, xb, shade(pal.road, a * 1.1))
        strip(-rh, rh, shade(pal.road, a))
        if pal.snow_ground:  # ploughed snow along the curbs and the median
            for s in (-1, 1):
                xa, xb = sorted((s * rh, s * (rh - 0.7)))
                strip(xa, xb, shade((228, 232, 238), a))
        if L.median > 0:
            strip(-L.median, L.median, shade((150, 150, 146), a))
        self._markings(p, z0, z1)

    def _markings(self, p: Painter, z0: float, z1: float) -> None:
        L, pal = self.world.layout, self.pal
        colour = shade(pal.marking, pal.ambient * (0.85 if pal.snow_ground else 1.0))
        quads = []
        w = 0.15
        period, dash = (12.0, 4.0) if L.scenery == "open" else (9.0, 3.0)
        start = math.floor(z0 / period) * period
        dz = np.arange(start, z1, period)
        for s in (-1, 1):
            for k in range(1, L.lanes_each_way):  # dashed lane separators
                x = s * (L.median + k * L.lane_width)
                for z in dz:
                    quads.append([[x - w / 2, 0.01, z], [x + w / 2, 0.01, z], [x + w / 2, 0.01, z + dash], [x - w / 2, 0.01, z + dash]])
        for z in self.world.crosswalks:  # zebra stripes across the road
            if z0 - 5 < z < z1:
                for x in np.arange(-L.road_half + 0.5, L.road_half - 0.4, 1.0):
                    quads.append([[x, 0.01, z - 2.0], [x + 0.5, 0.01, z - 2.0], [x + 0.5, 0.01, z + 2.0], [x, 0.01, z + 2.0]])
        if quads:
            p.polygons(self._to_cam(np.array(quads)), colour)
        # solid lines: centre line (no median) and road edges, clipped by ``part``
        xs = [L.road_half - 0.3, -(L.road_half - 0.3)]
        if L.median == 0:
            xs.append(0.0)
        else:
            xs += [L.median + 0.2, -(L.median + 0.2)]
        for x in xs:
            q = np.array([[x - w / 2, 0.01, z0], [x + w / 2, 0.01, z0], [x + w / 2, 0.01, z1], [x - w / 2, 0.01, z1]])
            p.part("poly", self._to_cam(q), colour)

    def _objects(self, p: Painter, t: float) -> dict[int, tuple]:
        """Props and agents, far to near. Returns {track id: (label, [shapes])} of agents in view."""
        world, cam, pal = self.world, self.cam, self.pal
        cz, cx = cam.position[2], cam.position[0]
        far = world.layout.far
        items = []
        prop_ids, prop_pc, prop_fx, prop_start = self.props.in_view(cam, far, BEHIND)
        for i in prop_ids:
            prop = self.props.items[i]
            d = math.hypot(prop.x - cx, prop.z - cz)
            if prop.size * 4 * cam.f / max(d, 1e-3) >= MIN_DRAW_PX:
                items.append((d, 0, i, None))
        for agent in world.agents:
            x, z, h = agent.pose(t)
            if cz - agent.reach - 1 < z < cz + world.layout.agent_range:
                d = math.hypot(x - cx, z - cz)
                px = agent.height_m * cam.f / max(d, 1e-3)
                if px >= MIN_DRAW_PX:
                    items.append((d, 1, agent, (x, z, h, px)))
        items.sort(key=lambda it: -it[0])
        shapes: dict[int, tuple] = {}
        for dist, is_agent, obj, pose in items:
            if is_agent:
                drawn = self._agent(p, obj, t, dist, pose)
                if drawn:
                    m = measure_drawn(p.ids, obj.track_id, drawn)
                    if m is not None:
                        shapes[obj.track_id] = (obj.label,) + m
            else:
                self.props.draw_one(p, obj, prop_pc, prop_fx, prop_start, pal, self.night,
                                    fog_amount(dist, 30.0, far))
        return shapes

    def _agent(self, p: Painter, agent, t: float, dist: float, pose) -> list:
        """Draw one agent; returns its shapes (for the annotation)."""
        x, z, h, px = pose
        cam, pal = self.cam, self.pal
        c, s = math.cos(h), math.sin(h)
        d = cam.position - np.array([x, 0.0, z])
        cam_local = np.array([d[0] * c - d[2] * s, d[1], d[0] * s + d[2] * c])
        parts = agent.local_parts(t, cam_local, self.night, coarse=px < COARSE_PX)
        pts = np.concatenate([np.asarray(q[1], float).reshape(-1, 3) for q in parts])
        pc_all = cam.to_camera(local_to_world(pts, x, z, h))
        if pc_all[:, 2].max() < cam.near:
            return []
        a = fog_amount(dist, 35.0, self.world.layout.far)
        fog, amb = pal.fog, pal.ambient
        drawn = []
        for part, shape in zip(parts, project_parts(cam, parts, pc_all)):
            if shape is None:
                continue
            emissive = part[4]
            col = part[2] if emissive else mix(part[2], fog, a, amb)
            p.draw(shape, col, agent.track_id, emissive=emissive, plane_pts=shape.plane)
            drawn.append(shape)
        return drawn

    # -- effects -------------------------------------------------------------------------------
    def _darken(self, p: Painter) -> None:
        """Night: scale every pixel by the light map, except lights; then add light halos."""
        light = np.maximum(self.lightmap, p.emissive)
        cv2.multiply(p.rgb, cv2.merge([light, light, light]), p.rgb, scale=1 / 255)
        small = cv2.resize(p.emissive, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
        if not small.any():
            return
        glow = cv2.GaussianBlur(cv2.dilate(small, np.ones((3, 3), np.uint8)), (0, 0), 1.6)
        glow = cv2.resize(glow, (p.rgb.shape[1], p.rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
        halo = cv2.merge([glow, cv2.multiply(glow, 0.9), cv2.multiply(glow, 0.7)])
        cv2.addWeighted(p.rgb, 1.0, halo, 0.5, 0.0, p.rgb)

    def _rain(self, p: Painter) -> None:
        """Rain streaks: short slanted light lines, a fresh random set each frame."""
        H, W = p.rgb.shape[:2]
        n = int(0.0012 * W * H)
        rng = self.rng
        x = rng.integers(0, W, n)
        y = rng.integers(0, H, n)
        length = rng.integers(H // 40, H // 14, n)
        pts = np.stack([x, y, x + length // 5, y + length], 1)
        colour = (190, 194, 200)
        for x1, y1, x2, y2 in pts.tolist():
            cv2.line(p.rgb, (x1, y1), (x2, y2), colour, 1, cv2.LINE_8)

    def _snow(self, p: Painter) -> None:
        """Falling snow: small white flakes over the frame."""
        H, W = p.rgb.shape[:2]
        n = int(0.002 * W * H)
        x = self.rng.integers(0, W - 1, n)
        y = self.rng.integers(0, H - 1, n)
        for dy in (0, 1):
            for dx in (0, 1):
                p.rgb[y + dy, x + dx] = 245
    # -- dense ground truth ----------------------------------------------------------------------
    def flow_to_next(self, i: int) -> np.ndarray:
        """Exact forward flow [H,W,2] (pixels) from frame ``i`` (just rendered) to ``i + 1``.

        Each pixel's 3-D point (depth along its ray) moves with what it belongs to: static
        scenery stays, an agent's point moves rigidly with the agent's pose (position and
        heading); sky points (at infinity) move only with the camera's rotation. Values are
        rounded to 1/256 px (far below rendering accuracy; it makes them compress 3x better).
        """
        p, world, cam = self.painter, self.world, self.cam
        depth = p.depth()
        if getattr(self, "_rays", None) is None:
            self._rays = cam.ray_directions().astype(np.float32)
            W, H = cam.width, cam.height
            self._uv0 = np.stack(np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32)), -1)
        rays = self._rays
        sky = ~np.isfinite(depth)
        pts_c = rays * np.where(sky, np.float32(1), depth)[..., None]
        ego, n = world.ego, world.spec.n_frames
        cam1 = Camera(cam.width, cam.height, far=cam.far)
        if i + 1 < n:
            cam1.set_pose(ego.position(i + 1), ego.yaw[i + 1], ego.pitch[i + 1])
        else:  # past the last frame: extrapolate the ego motion by one step
            pos = 2 * ego.position(i) - ego.position(i - 1) if i > 0 else ego.position(i)
            cam1.set_pose(pos, ego.yaw[i], ego.pitch[i])
        R0 = cam.R.astype(np.float32)
        world_pts = pts_c @ R0 + cam.position.astype(np.float32)
        owners = np.array(p.owners + [0], np.int64)
        owner = owners[np.where(p.surface >= 0, p.surface, len(p.owners))]
        t0 = i / world.spec.fps
        t1 = t0 + 1 / world.spec.fps
        by_id = {a.track_id: a for a in world.agents}
        for tid in np.unique(owner[owner > 0]).tolist():
            m = owner == tid
            x0, z0, h0 = by_id[tid].pose(t0)
            x1, z1, h1 = by_id[tid].pose(t1)
            q = world_pts[m] - np.array([x0, 0.0, z0], np.float32)
            c, s = math.cos(h1 - h0), math.sin(h1 - h0)
            world_pts[m] = np.stack([q[:, 0] * c + q[:, 2] * s + x1, q[:, 1], -q[:, 0] * s + q[:, 2] * c + z1], 1)
        R1 = cam1.R.astype(np.float32)
        pc1 = (world_pts - cam1.position.astype(np.float32)) @ R1.T
        pc1[sky] = (pts_c[sky] @ R0) @ R1.T  # sky: direction only
        with np.errstate(divide="ignore", invalid="ignore"):
            uv1 = cam1.project_camera(pc1)
        flow = uv1 - self._uv0
        flow[~np.isfinite(flow)] = 0.0
        return (np.round(flow * 256) / 256).astype(np.float32)
