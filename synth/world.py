"""The world of one sequence: an area's road layout, static scenery, the ego trajectory and the
agents spawned at predefined positions (thesis 2.4).

Everything is drawn from one ``numpy.random.Generator`` seeded by the sequence's seed, in a
fixed order, so a sequence is a pure function of its ``SequenceSpec``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from synth.agents import CAR, CYC, PED, WHC, AGENT_TYPES, Agent, Path
from synth.scenario import SequenceSpec


@dataclasses.dataclass(frozen=True)
class Layout:
    """Cross-section of an area's road, in metres from the road centre (X), and its scenery."""

    lane_width: float
    lanes_each_way: int
    median: float          # half-width of the central median (highway barrier), 0 = none
    ego_lane: int          # index of the ego's lane counted from the centre (0 = inner)
    sidewalk: float        # sidewalk width (0 = none)
    verge: float           # grass / yard between sidewalk and buildings
    scenery: str           # "buildings", "houses" or "open"
    speed: tuple           # ego cruise speed range, m/s
    far: float             # far clipping distance / draw range of the scenery, m
    agent_range: float     # agents farther than this are not drawn (lost in the haze)
    traffic_lanes: tuple   # lane indices (from centre, each way) used by moving cars
    parking: bool          # parked cars along the outer edge of the road
    stop_probability: float
    spacing: dict          # spawn point spacing per class, metres along the road

    @property
    def road_half(self) -> float:
        return self.median + self.lanes_each_way * self.lane_width

    def lane_x(self, lane: int) -> float:
        """X of the centre of lane ``lane`` on the right-hand (ego) side."""
        return self.median + (lane + 0.5) * self.lane_width


LAYOUTS = {
    "city": Layout(lane_width=3.4, lanes_each_way=2, median=0.0, ego_lane=0, sidewalk=4.2,
                   verge=0.6, scenery="buildings", speed=(7.0, 11.0), far=150.0, agent_range=70.0,
                   traffic_lanes=(0,), parking=True, stop_probability=0.6,
                   spacing={PED: 32.0, CYC: 70.0, CAR: 90.0, WHC: 40.0, "parked": 40.0}),
    "town": Layout(lane_width=3.2, lanes_each_way=1, median=0.0, ego_lane=0, sidewalk=2.4,
                   verge=6.0, scenery="houses", speed=(6.0, 9.0), far=140.0, agent_range=65.0,
                   traffic_lanes=(0,), parking=False, stop_probability=0.5,
                   spacing={PED: 30.0, CYC: 60.0, CAR: 80.0, WHC: 40.0, "parked": 0.0}),
    "highway": Layout(lane_width=3.7, lanes_each_way=3, median=1.2, ego_lane=1, sidewalk=0.0,
                      verge=12.0, scenery="open", speed=(21.0, 29.0), far=220.0, agent_range=110.0,
                      traffic_lanes=(0, 1, 2), parking=False, stop_probability=0.0,
                      spacing={PED: 0.0, CYC: 0.0, CAR: 130.0, WHC: 0.0, "parked": 0.0}),
}

CAMERA_HEIGHT = 1.5
BUILDING_COLOURS = [(176, 168, 156), (150, 146, 142), (196, 180, 150), (160, 96, 76), (120, 124, 134),
                    (214, 206, 188), (132, 110, 96), (188, 190, 194), (96, 100, 110), (170, 140, 110)]
HOUSE_COLOURS = [(232, 220, 190), (210, 170, 140), (190, 200, 210), (236, 236, 226), (200, 140, 110),
                 (170, 190, 160), (220, 196, 150)]
ROOF_COLOURS = [(120, 60, 50), (80, 80, 90), (140, 80, 60), (60, 60, 66)]


@dataclasses.dataclass
class Building:
    """An axis-aligned box beside the road with windows on its road-facing facade."""

    lo: np.ndarray        # [3] min corner (x, y, z)
    hi: np.ndarray        # [3] max corner
    colour: tuple
    windows: np.ndarray   # [n,4,3] window quads on the facade
    lit: np.ndarray       # [n] bool, lit at night
    roof: float           # gable height above the box (houses), 0 = flat
    roof_colour: tuple
    door: np.ndarray | None


@dataclasses.dataclass
class Prop:
    """A small static occluder: a tree or a street lamp at (x, z).

    ``shape`` holds a tree's fixed random shape: canopy balls as (dx, dy, dz, radius, colour
    index) and bare-branch tips as (dx, dy, dz), relative to the foot of the trunk (x, 0, z).
    """

    kind: str
    x: float
    z: float
    size: float
    shape: tuple = ()


class Ego:
    """The ego car's trajectory, one pose per frame.

    It cruises at a speed drawn from the area's range; with the area's stop probability it
    brakes (2.5 m/s^2) to a stop line before a crosswalk, waits a few seconds, and accelerates
    again (1.5 m/s^2); sometimes it starts the sequence standing in traffic. Waiting periods
    are where consecutive frames are most redundant, as in real driving logs.
    """

    def __init__(self, layout: Layout, n_frames: int, fps: float, rng: np.random.Generator):
        dt = 1.0 / fps
        v0 = rng.uniform(*layout.speed)
        self.x_lane = layout.lane_x(layout.ego_lane)
        duration = n_frames * dt
        self.stop_line = None
        self.stop_time = 0.0
        if rng.random() < layout.stop_probability:
            self.stop_line = v0 * duration * rng.uniform(0.2, 0.55) + v0 * v0 / 5.0
            self.stop_time = rng.uniform(2.0, 8.0)
        initial_wait = rng.uniform(1.0, 4.0) if rng.random() < 0.15 else 0.0
        z, v, waited, state = 0.0, (0.0 if initial_wait else v0), 0.0, "wait0" if initial_wait else "cruise"
        zs, vs = np.empty(n_frames), np.empty(n_frames)
        for i in range(n_frames):
            zs[i], vs[i] = z, v
            if state == "wait0":
                waited += dt
                if waited >= initial_wait:
                    state = "accel"
            elif state == "cruise" and self.stop_line is not None and z < self.stop_line:
                remaining = self.stop_line - z
                if v * v / (2 * 2.5) >= remaining - v * dt:
                    state = "brake"
            if state == "brake":
                remaining = max(self.stop_line - z, 0.0)
                v = math.sqrt(max(2 * 2.5 * max(remaining - v * dt, 0.0), 0.0))
                if v < 0.3:
                    v, state, waited = 0.0, "stopped", 0.0
            elif state == "stopped":
                waited += dt
                if waited >= self.stop_time:
                    state = "accel"
            elif state == "accel":
                v = min(v0, v + 1.5 * dt)
                if v >= v0:
                    state = "cruise"
            z += v * dt
        self.z, self.v = zs, vs
        self.v0 = v0
        t = np.arange(n_frames) * dt
        sway_period = rng.uniform(6, 12)
        ph = rng.uniform(0, 2 * np.pi)
        self.x = self.x_lane + 0.15 * np.sin(2 * np.pi * t / sway_period + ph)
        self.yaw = 0.012 * np.sin(2 * np.pi * t / (sway_period * 1.3) + ph)
        bob = np.sin(2 * np.pi * np.cumsum(vs) * dt / 7.0)
        self.pitch = rng.uniform(0.025, 0.05) + 0.003 * bob * (vs > 0.5)
        self.y = CAMERA_HEIGHT + 0.01 * bob

    def position(self, i: int) -> np.ndarray:
        return np.array([self.x[i], self.y[i], self.z[i]])


class World:
    """Static scenery and agents of one sequence (see module docstring)."""

    def __init__(self, spec: SequenceSpec, rng: np.random.Generator, classes: tuple[str, ...]):
        self.spec = spec
        self.layout = L = LAYOUTS[spec.area]
        self.ego = Ego(L, spec.n_frames, spec.fps, rng)
        self.z_min = float(self.ego.z.min()) - 60.0
        self.z_max = float(self.ego.z.max()) + L.far + 60.0
        self.crosswalks = self._crosswalks(rng)
        self.buildings = self._scenery(rng)
        self.props = self._props(rng)
        self.class_ids = {c: i + 1 for i, c in enumerate(classes)}
        self.agents: list[Agent] = []
        self._spawn(rng)

    # -- static ------------------------------------------------------------------------------
    def _crosswalks(self, rng) -> list[float]:
        L = self.layout
        if L.sidewalk <= 0:
            return []
        zs = []
        if self.ego.stop_line is not None:
            zs.append(self.ego.stop_line + 4.0)
        z = self.z_min + rng.uniform(40, 120)
        while z < self.z_max:
            if all(abs(z - c) > 40 for c in zs):
                zs.append(z)
            z += rng.uniform(90, 200)
        return sorted(zs)

    def _scenery(self, rng) -> list[Building]:
        L = self.layout
        out = []
        if L.scenery == "open":
            return out
        x_in = L.road_half + L.sidewalk + L.verge
        for side in (-1, 1):
            z = self.z_min
            while z < self.z_max:
                if L.scenery == "buildings":
                    length, depth, height = rng.uniform(10, 32), rng.uniform(12, 25), rng.uniform(9, 40)
                    setback = rng.uniform(0.0, 1.5)
                    gap = rng.uniform(0, 4) if rng.random() < 0.5 else 0.0
                    colour = BUILDING_COLOURS[rng.integers(len(BUILDING_COLOURS))]
                    roof, door = 0.0, None
                else:
                    length, depth, height = rng.uniform(8, 14), rng.uniform(8, 12), rng.uniform(3.0, 6.5)
                    setback = rng.uniform(0.0, 4.0)
                    gap = rng.uniform(4, 12)
                    colour = HOUSE_COLOURS[rng.integers(len(HOUSE_COLOURS))]
                    roof = rng.uniform(1.8, 3.5)
                if any(abs(z + length / 2 - c) < length / 2 + 6 for c in self.crosswalks) and L.scenery == "houses":
                    z += length + gap
                    continue
                x_face = x_in + setback
                x0, x1 = (x_face, x_face + depth) if side > 0 else (-x_face - depth, -x_face)
                lo, hi = np.array([x0, 0.0, z]), np.array([x1, height, z + length])
                xf = (x0 if side > 0 else x1) - side * 0.02
                windows, lit, door = self._windows(rng, xf, z, length, height, L.scenery)
                out.append(Building(lo, hi, tuple(int(c) for c in colour), windows, lit, roof,
                                    ROOF_COLOURS[rng.integers(len(ROOF_COLOURS))], door))
                z += length + gap
        out.sort(key=lambda b: b.lo[2])
        return out

    @staticmethod
    def _windows(rng, xf, z0, length, height, scenery):
        quads, door = [], None
        if scenery == "buildings":
            ww, wh, dx, dy, y0 = rng.uniform(1.0, 1.8), rng.uniform(1.2, 2.0), rng.uniform(2.2, 3.4), 3.2, 4.0
            if rng.random() < 0.6:  # shop front
                quads.append((z0 + 1.0, z0 + length - 1.0, 0.6, 3.0))
        else:
            ww, wh, dx, dy, y0 = 1.2, 1.2, rng.uniform(3.0, 4.2), 2.8, 1.0
            dz = z0 + length * rng.uniform(0.3, 0.6)
            door = np.array([[xf, 0.0, dz], [xf, 2.1, dz], [xf, 2.1, dz + 1.0], [xf, 0.0, dz + 1.0]])
        y = y0
        while y + wh < height - 0.6:
            zz = z0 + 1.0
            while zz + ww < z0 + length - 0.8:
                if door is None or not (door[0, 2] - ww - 0.3 < zz < door[2, 2] + 0.3):
                    quads.append((zz, zz + ww, y, y + wh))
                zz += dx
            y += dy
        arr = np.array([[[xf, ya, za], [xf, yb, za], [xf, yb, zb], [xf, ya, zb]]
                        for za, zb, ya, yb in quads]).reshape(-1, 4, 3)
        return arr, rng.random(len(arr)) < 0.35, door

    def _props(self, rng) -> list[Prop]:
        L = self.layout
        props = []
        edge = L.road_half + 0.6
        if L.scenery == "buildings":  # street lamps and a few trees on the sidewalk edge
            for side in (-1, 1):
                for z in np.arange(self.z_min + rng.uniform(0, 25), self.z_max, 25.0):
                    props.append(Prop("lamp", side * edge, float(z), rng.uniform(6.0, 7.5), ()))
                for z in np.arange(self.z_min + rng.uniform(0, 20), self.z_max, 20.0):
                    if rng.random() < 0.45:
                        props.append(Prop("tree", side * (edge + 0.4), float(z + 12.5), rng.uniform(0.7, 1.0), ()))
        elif L.scenery == "houses":
            for side in (-1, 1):
                for z in np.arange(self.z_min + rng.uniform(0, 12), self.z_max, 12.0):
                    if rng.random() < 0.7:
                        x = side * (L.road_half + L.sidewalk + rng.uniform(0.8, L.verge - 0.5))
                        props.append(Prop("tree", float(x), float(z + rng.uniform(-3, 3)), rng.uniform(0.8, 1.3), ()))
                for z in np.arange(self.z_min + rng.uniform(0, 40), self.z_max, 40.0):
                    props.append(Prop("lamp", side * (L.road_half + 0.4), float(z), rng.uniform(4.5, 5.5), ()))
        else:
            for side in (-1, 1):
                for z in np.arange(self.z_min, self.z_max, 9.0):
                    if rng.random() < 0.55:
                        x = side * (L.road_half + rng.uniform(6.0, 30.0))
                        props.append(Prop("tree", float(x), float(z + rng.uniform(-4, 4)), rng.uniform(1.0, 1.6), ()))
        for p in props:
            if p.kind == "tree":
                s, trunk = p.size, 2.2 * p.size
                balls = [(rng.uniform(-0.6, 0.6) * s, trunk + rng.uniform(0.6, 1.6) * s, rng.uniform(-0.4, 0.4),
                          rng.uniform(1.0, 1.5) * s, int(rng.integers(1 << 16))) for _ in range(3)]
                tips = []
                for _ in range(4):
                    a = rng.uniform(-0.9, 0.9)
                    tips.append((math.sin(a) * 1.5 * s, trunk + math.cos(a) * 1.8 * s, rng.uniform(-0.5, 0.5)))
                p.shape = (balls, tips)
        return props

    # -- agents ------------------------------------------------------------------------------
    def _lane_path(self, x: float, direction: int, z_start: float, speed: float) -> Path:
        """A straight loop along the whole area at lateral position x, direction +1 / -1."""
        pts = [(x, self.z_min), (x, self.z_max)]
        return Path(pts, s0=z_start - self.z_min, speed=direction * speed, wrap=True)

    def _crossing_path(self, rng, zc: float, side: int) -> Path:
        """A pedestrian walking along the sidewalk to the crosswalk at ``zc``, crossing, going on.

        The crossing is timed so nobody walks through the camera: at the crosswalk where the
        ego stops, the pedestrian leaves the ego's lane before the ego drives on (the ego
        waits for them, as a driver would); at other crosswalks, the crossing happens while the
        ego is more than 25 m away.
        """
        L, ego = self.layout, self.ego
        dt = 1.0 / self.spec.fps
        xs = side * (L.road_half + L.sidewalk * 0.5)
        zc = zc + rng.uniform(-1.2, 1.2)
        speed = rng.uniform(1.0, 1.5)
        approach = rng.uniform(3, 12)
        pts = [(xs, zc - approach), (xs, zc), (-xs, zc), (-xs, zc + rng.uniform(6, 20))]
        crossing = (approach, approach + 2 * abs(xs))  # arc-length interval on the road
        if ego.stop_line is not None and abs(ego.stop_line + 4.0 - zc) < 3.0:
            stopped = np.flatnonzero(ego.v < 0.05)
            if len(stopped):
                stop_start = stopped[0] * dt
                # arc length at which the pedestrian has left the ego's lane (+-2 m around it)
                lane_far_edge = abs(xs - (ego.x_lane - 2.0 * side))
                t_exit = stop_start + rng.uniform(0.3, 0.9) * ego.stop_time
                return Path(pts, s0=0.0, speed=speed, wrap=False,
                            t_start=t_exit - (approach + lane_far_edge) / speed)
        t_start = rng.uniform(-crossing[1] / speed, self.spec.n_frames * dt)
        near = np.flatnonzero(np.abs(ego.z + 6 - zc) < 25)
        t_on, t_off = t_start + crossing[0] / speed, t_start + crossing[1] / speed
        if len(near) and t_off > near[0] * dt - 1.0 and t_on < near[-1] * dt + 1.0:
            t_start = near[0] * dt - 1.5 - crossing[1] / speed
        return Path(pts, s0=0.0, speed=speed, wrap=False, t_start=t_start)

    def _add(self, cls: str, path: Path, rng, **kw) -> None:
        agent = AGENT_TYPES[cls](len(self.agents) + 1, path, rng, **kw)
        agent.label = self.class_ids[cls]
        self.agents.append(agent)

    def _points(self, spacing: float, rng) -> np.ndarray:
        """Predefined spawn positions along the area every ``spacing`` metres (jittered)."""
        if spacing <= 0:
            return np.zeros(0)
        zs = np.arange(self.z_min + rng.uniform(0, spacing), self.z_max, spacing)
        return zs + rng.uniform(-0.2, 0.2, len(zs)) * spacing

    def _spawn(self, rng) -> None:
        """Spawn agents at the predefined positions with the scenario's probabilities."""
        L, p = self.layout, self.spec.spawn
        sp = L.spacing
        if L.sidewalk > 0:
            for side in (-1, 1):
                for z in self._points(sp[PED], rng):
                    if PED in p and rng.random() < p[PED]:
                        x = side * (L.road_half + L.sidewalk * rng.uniform(0.25, 0.8))
                        moving = rng.random() < 0.8
                        speed = rng.uniform(0.9, 1.7) if moving else 0.0
                        self._add(PED, self._lane_path(x, rng.choice((-1, 1)), z, speed), rng)
                for z in self._points(sp[WHC], rng):
                    if WHC in p and rng.random() < p[WHC]:
                        x = side * (L.road_half + L.sidewalk * rng.uniform(0.3, 0.7))
                        self._add(WHC, self._lane_path(x, rng.choice((-1, 1)), z, rng.uniform(0.6, 1.2)), rng)
            for zc in self.crosswalks:
                # the crosswalk where the ego waits has more spawn points: people cross there
                stop = self.ego.stop_line is not None and abs(self.ego.stop_line + 4.0 - zc) < 1.0
                for side in (-1, 1):
                    for _ in range(3 if stop else 1):
                        if PED in p and rng.random() < p[PED]:
                            self._add(PED, self._crossing_path(rng, zc, side), rng)
            cyc_x = L.road_half - 0.9 if L.parking is False else L.road_half - 2.6
            if L.scenery == "houses":
                cyc_x = L.road_half + L.sidewalk * 0.5
            for direction in (-1, 1):
                for z in self._points(sp[CYC], rng):
                    if CYC in p and rng.random() < p[CYC]:
                        self._add(CYC, self._lane_path(direction * cyc_x, direction, z,
                                                       rng.uniform(3.0, 6.0)), rng)
        if CAR in p:
            for direction in (-1, 1):
                for lane in L.traffic_lanes:
                    if direction > 0 and lane == L.ego_lane:
                        continue  # the ego's own lane stays free ahead and behind it
                    speed = rng.uniform(*L.speed) * (1.05 if direction > 0 else 1.0)
                    for z in self._points(sp[CAR], rng):
                        if rng.random() < p[CAR]:
                            self._add(CAR, self._lane_path(direction * L.lane_x(lane), direction, z, speed), rng)
            if L.parking:
                for side in (-1, 1):
                    x = side * (L.road_half - 1.15)
                    for z in self._points(sp["parked"], rng):
                        if rng.random() < p[CAR] and all(abs(z - c) > 8 for c in self.crosswalks):
                            heading = 1 if side > 0 else -1
                            self._add(CAR, Path([(x, z - 0.01 * heading), (x, z)], s0=0.0, speed=0.0,
                                                wrap=False), rng, parked=True)
