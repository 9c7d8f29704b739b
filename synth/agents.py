"""Dynamic objects: pedestrians, cyclists, cars, wheelchairs.

Every agent follows a predefined path on the ground (a polyline in the X-Z plane) at its own
speed, and describes itself at time t as a list of 3-D *parts* in world coordinates, in the
order they must be drawn (back to front within the object, given the camera position):

    (kind, points [k,3] or [3], colour (r,g,b), size in metres, emissive)

kinds are those of ``synth.painter.project_part``. Shapes vary per instance (size, colours,
body proportions, car type) and with time (walking and pedalling cycles, turning wheels).

Local object frame: x to the object's right, y up, z forward (its heading). A heading h is a
yaw about Y; heading 0 faces +Z (the ego's driving direction).
"""

from __future__ import annotations

import math

import numpy as np

PED, CYC, CAR, WHC = "pedestrian", "cyclist", "car", "wheelchair"

CAR_COLOURS = [(230, 230, 228), (190, 192, 196), (40, 40, 44), (110, 112, 118), (164, 28, 30),
               (30, 60, 140), (24, 90, 60), (200, 160, 40), (120, 80, 50), (90, 20, 30),
               (60, 120, 170), (240, 120, 30)]
SKIN = [(241, 194, 160), (224, 172, 130), (198, 134, 92), (160, 102, 64), (110, 72, 46)]
HAIR = [(30, 24, 20), (70, 46, 30), (140, 100, 60), (200, 170, 110), (120, 120, 120)]


def _clothes(rng: np.random.Generator) -> tuple:
    h = rng.uniform(0, 1)
    s = rng.uniform(0.2, 0.9)
    v = rng.uniform(0.25, 0.95)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return tuple(int(255 * c) for c in rgb)


class Path:
    """A polyline on the ground [(x, z), ...] walked at constant speed from arc length ``s0``.

    ``wrap``: the path is a loop over the area (lanes): positions wrap modulo its length.
    Otherwise the agent stops at the end. ``t_start``: the agent waits until then.
    """

    def __init__(self, points, *, s0: float, speed: float, wrap: bool, t_start: float = 0.0):
        self.p = np.asarray(points, float)
        seg = np.diff(self.p, axis=0)
        self.seg_len = np.hypot(seg[:, 0], seg[:, 1])
        self.cum = np.concatenate([[0.0], np.cumsum(self.seg_len)])
        self.length = float(self.cum[-1])
        self.s0, self.speed, self.wrap, self.t_start = s0, speed, wrap, t_start

    def arc(self, t: float) -> float:
        s = self.s0 + self.speed * max(0.0, t - self.t_start)
        return s % self.length if self.wrap else min(max(s, 0.0), self.length)

    def pose(self, t: float) -> tuple[float, float, float]:
        """(x, z, heading) at time t (seconds)."""
        s = self.arc(t)
        i = int(np.clip(np.searchsorted(self.cum, s, side="right") - 1, 0, len(self.seg_len) - 1))
        a = (s - self.cum[i]) / max(self.seg_len[i], 1e-9)
        x, z = self.p[i] + a * (self.p[i + 1] - self.p[i])
        dx, dz = self.p[i + 1] - self.p[i]
        if self.speed < 0:
            dx, dz = -dx, -dz
        return float(x), float(z), math.atan2(dx, dz)

    def travelled(self, t: float) -> float:
        """Distance travelled by time t (drives walking / wheel animations)."""
        if self.wrap:
            return abs(self.speed) * max(0.0, t - self.t_start)
        return abs(self.arc(t) - min(max(self.s0, 0.0), self.length))


def local_to_world(pts: np.ndarray, x: float, z: float, heading: float) -> np.ndarray:
    """Object-frame points [...,3] -> world [...,3] for an object at (x, 0, z) facing heading."""
    c, s = math.cos(heading), math.sin(heading)
    out = np.empty_like(pts, dtype=float)
    out[..., 0] = pts[..., 0] * c + pts[..., 2] * s + x
    out[..., 1] = pts[..., 1]
    out[..., 2] = -pts[..., 0] * s + pts[..., 2] * c + z
    return out


def _circle(center, radius: float, n: int, plane: str = "yz", phase: float = 0.0) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False) + phase
    pts = np.repeat(np.asarray(center, float)[None], n, axis=0)
    if plane == "yz":
        pts[:, 1] += radius * np.sin(a)
        pts[:, 2] += radius * np.cos(a)
    else:  # "xz": a disc lying on the ground
        pts[:, 0] += radius * np.cos(a)
        pts[:, 2] += radius * np.sin(a)
    return pts


class Agent:
    """Base class: an identity, a class, a path and an appearance."""

    cls: str = ""
    label: int = 0  # class id, set by the world
    reach: float = 3.0  # bounding radius in metres (for culling and draw order)

    def __init__(self, track_id: int, path: Path, rng: np.random.Generator):
        self.track_id = track_id
        self.path = path

    def pose(self, t: float) -> tuple[float, float, float]:
        return self.path.pose(t)

    #: height in metres, for the level of detail and culling
    height_m: float = 1.7

    def local_parts(self, t: float, cam_local: np.ndarray, night: bool, coarse: bool = False) -> list:
        """Parts in the object frame at time t, in drawing order.

        Args:
            cam_local: camera position [3] in the object frame (decides visible faces / order).
            night: lights on.
            coarse: the object is small in the image; draw a simplified shape.
        """
        raise NotImplementedError


def _view_side(cam_local: np.ndarray) -> float:
    """+1 when the camera is on the object's right (x > 0) side, -1 on its left."""
    return 1.0 if cam_local[0] >= 0 else -1.0


def _apparent_width(cam_local: np.ndarray, front: float, side: float) -> float:
    """Width of a body seen from the camera: ``front`` face-on, ``side`` in profile."""
    n = math.hypot(cam_local[0], cam_local[2]) + 1e-9
    return front * abs(cam_local[2]) / n + side * abs(cam_local[0]) / n


class Pedestrian(Agent):
    cls = PED
    reach = 1.2

    def __init__(self, track_id: int, path: Path, rng: np.random.Generator):
        super().__init__(track_id, path, rng)
        child = rng.random() < 0.12
        self.height = rng.uniform(1.05, 1.35) if child else rng.uniform(1.55, 1.95)
        self.height_m = self.height
        self.girth = rng.uniform(0.85, 1.25)
        self.shirt, self.pants = _clothes(rng), _clothes(rng)
        self.skin = SKIN[rng.integers(len(SKIN))]
        self.hair = HAIR[rng.integers(len(HAIR))]
        self.stride = 0.75 * self.height
        self.phase0 = rng.uniform(0, 2 * np.pi)
        self.bag = rng.random() < 0.3
        self.bag_colour = _clothes(rng)

    def local_parts(self, t, cam_local, night, coarse=False):
        H = self.height
        dist = self.path.travelled(t)
        walking = abs(self.path.speed) > 0.05 and (self.path.wrap or 0 < self.path.arc(t) < self.path.length)
        phi = self.phase0 + 2 * np.pi * dist / self.stride
        amp = 0.42 if walking else 0.0
        idle = 0.03 * math.sin(2 * t + self.phase0)  # weight shift when standing
        hip_y, leg = 0.52 * H, 0.5 * H
        hip_w, sh_w = 0.09 * H * self.girth, 0.13 * H * self.girth
        sh_y = 0.81 * H
        if coarse:
            s = amp * math.sin(phi) * 0.5 * leg
            width = _apparent_width(cam_local, 0.26 * H * self.girth, 0.15 * H * self.girth)
            return [("line", [[-hip_w, hip_y, 0], [-hip_w, 0.02, s]], self.pants, 0.075 * H, False),
                    ("line", [[hip_w, hip_y, 0], [hip_w, 0.02, -s]], self.pants, 0.075 * H, False),
                    ("line", [[0, hip_y - 0.02 * H, 0], [0, 0.86 * H, 0]], self.shirt, width, False),
                    ("ball", [0, 0.925 * H, 0], self.hair if cam_local[2] < 0 else self.skin, 0.065 * H, False)]
        parts_by_side = {}
        for side, sign in ((-1, 1.0), (1, -1.0)):
            a = amp * sign * math.sin(phi) + idle
            knee_bend = 0.5 * amp * max(0.0, math.sin(phi * 1.0 + sign * np.pi / 2) * sign) if walking else 0.0
            hip = np.array([side * hip_w, hip_y, 0.0])
            knee = hip + 0.5 * leg * np.array([0.0, -math.cos(a), math.sin(a)])
            foot = knee + 0.5 * leg * np.array([0.0, -math.cos(a - knee_bend), math.sin(a - knee_bend)])
            arm_a = -0.7 * amp * sign * math.sin(phi)
            sh = np.array([side * sh_w, sh_y, 0.0])
            elbow = sh + 0.17 * H * np.array([side * 0.15, -math.cos(arm_a), math.sin(arm_a)])
            hand = elbow + 0.16 * H * np.array([side * 0.05, -math.cos(arm_a * 1.4), math.sin(arm_a * 1.4) + 0.1])
            parts_by_side[side] = (
                [("line", [hip, knee], self.pants, 0.075 * H * self.girth, False),
                 ("line", [knee, foot], self.pants, 0.06 * H * self.girth, False),
                 ("line", [foot, foot + [0, 0, 0.07 * H]], (40, 36, 34), 0.05 * H, False)],
                [("line", [sh, elbow], self.shirt, 0.05 * H * self.girth, False),
                 ("line", [elbow, hand], self.skin, 0.04 * H, False)])
        near_side = 1 if cam_local[0] >= 0 else -1
        far_side = -near_side
        width = _apparent_width(cam_local, 0.26 * H * self.girth, 0.15 * H * self.girth)
        torso = ("line", [[0, hip_y - 0.02 * H, 0], [0, sh_y + 0.02 * H, 0]], self.shirt, width, False)
        neck = ("line", [[0, sh_y, 0], [0, 0.88 * H, 0]], self.skin, 0.05 * H, False)
        head = ("ball", [0, 0.925 * H, 0], self.skin, 0.062 * H, False)
        hair = ("ball", [0, 0.945 * H, -0.01 * H], self.hair, 0.055 * H, False)
        legs_far, arm_far = parts_by_side[far_side]
        legs_near, arm_near = parts_by_side[near_side]
        facing_away = cam_local[2] < 0
        out = arm_far + legs_far + legs_near + [torso, neck]
        if self.bag:
            out.append(("ball", [near_side * sh_w * 1.1, 0.6 * H, -0.02], self.bag_colour, 0.07 * H, False))
        out += [head, hair] if facing_away else [hair, head]
        return out + arm_near


class Cyclist(Agent):
    cls = CYC
    reach = 1.6

    def __init__(self, track_id: int, path: Path, rng: np.random.Generator):
        super().__init__(track_id, path, rng)
        self.scale = rng.uniform(0.9, 1.08)
        self.height_m = 1.75 * self.scale
        self.frame_colour = _clothes(rng)
        self.shirt, self.pants = _clothes(rng), _clothes(rng)
        self.skin = SKIN[rng.integers(len(SKIN))]
        self.helmet = _clothes(rng) if rng.random() < 0.6 else None
        self.phase0 = rng.uniform(0, 2 * np.pi)

    def local_parts(self, t, cam_local, night, coarse=False):
        k = self.scale
        r = 0.34 * k
        dist = self.path.travelled(t)
        rot = dist / r
        crank = self.phase0 + dist / (2.1 * k)  # pedal turns: ~2.1 m per crank turn
        rear, front = np.array([0, r, -0.52 * k]), np.array([0, r, 0.52 * k])
        bb = np.array([0, 0.3 * k, -0.05 * k])
        seat = np.array([0, 0.92 * k, -0.26 * k])
        bar = np.array([0, 1.0 * k, 0.42 * k])
        tyre = (30, 30, 32)
        hip = seat + [0, 0.06 * k, 0]
        neck = np.array([0, 1.5 * k, 0.12 * k])
        if coarse:
            width = _apparent_width(cam_local, 0.4 * k, 0.22 * k)
            return [("polyline", _circle(rear, r, 8), tyre, 0.06 * k, False),
                    ("polyline", _circle(front, r, 8), tyre, 0.06 * k, False),
                    ("line", [rear, bar], self.frame_colour, 0.05 * k, False),
                    ("line", [hip, bb], self.pants, 0.12 * k, False),
                    ("line", [hip, neck], self.shirt, width, False),
                    ("ball", neck + [0, 0.14 * k, 0.05 * k], self.helmet or self.skin, 0.12 * k, False)]
        wheels = []
        for c in (rear, front):
            wheels.append(("polyline", _circle(c, r, 14), tyre, 0.05 * k, False))
            for a in (rot, rot + np.pi / 2):
                sp = np.array([0, math.sin(a), math.cos(a)]) * r
                wheels.append(("line", [c - sp, c + sp], (150, 150, 155), 0.012 * k, False))
        frame = [("line", [rear, bb], self.frame_colour, 0.035 * k, False),
                 ("line", [bb, seat], self.frame_colour, 0.035 * k, False),
                 ("line", [seat, bar - [0, 0.05 * k, 0]], self.frame_colour, 0.035 * k, False),
                 ("line", [bb, bar - [0, 0.05 * k, 0]], self.frame_colour, 0.035 * k, False),
                 ("line", [bar, front], self.frame_colour, 0.035 * k, False),
                 ("line", [bar + [-0.25 * k, 0, 0], bar + [0.25 * k, 0, 0]], (40, 40, 40), 0.03 * k, False)]
        legs = []
        for side, ph in ((-1, 0.0), (1, np.pi)):
            pedal = bb + 0.17 * k * np.array([0, -math.cos(crank + ph), math.sin(crank + ph)])
            h = hip + [side * 0.1 * k, 0, 0]
            mid = (h + pedal) / 2
            knee = mid + [0, 0.04 * k, 0.2 * k]
            legs.append((side, [("line", [h, knee], self.pants, 0.07 * k, False),
                                ("line", [knee, pedal], self.pants, 0.055 * k, False)]))
        near = 1 if cam_local[0] >= 0 else -1
        legs_far = [p for s, ps in legs if s != near for p in ps]
        legs_near = [p for s, ps in legs if s == near for p in ps]
        width = _apparent_width(cam_local, 0.4 * k, 0.22 * k)
        body = [("line", [hip, neck], self.shirt, width, False),
                ("line", [neck + [0.16 * k, -0.05 * k, 0], bar + [0.2 * k, 0.02, 0]], self.shirt, 0.05 * k, False),
                ("line", [neck + [-0.16 * k, -0.05 * k, 0], bar + [-0.2 * k, 0.02, 0]], self.shirt, 0.05 * k, False),
                ("ball", neck + [0, 0.14 * k, 0.05 * k], self.skin, 0.11 * k, False)]
        if self.helmet is not None:
            body.append(("ball", neck + [0, 0.19 * k, 0.03 * k], self.helmet, 0.1 * k, False))
        return legs_far + wheels + frame + legs_near + body


#: car types: (length, width, body height, cabin height, cabin length fraction, cabin offset)
CAR_TYPES = {
    "sedan": ((4.2, 4.9), (1.72, 1.9), (0.55, 0.65), (0.5, 0.58), 0.5, -0.04),
    "hatchback": ((3.6, 4.2), (1.65, 1.8), (0.55, 0.65), (0.55, 0.62), 0.55, -0.12),
    "suv": ((4.3, 4.9), (1.8, 2.0), (0.75, 0.9), (0.6, 0.7), 0.6, -0.08),
    "van": ((4.8, 5.6), (1.9, 2.05), (0.8, 0.95), (0.9, 1.1), 0.78, -0.09),
}


def box_faces(lo: np.ndarray, hi: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The six faces of an axis-aligned box as (corners [4,3], outward normal [3])."""
    x0, y0, z0 = lo
    x1, y1, z1 = hi
    return [
        (np.array([[x0, y0, z0], [x0, y1, z0], [x0, y1, z1], [x0, y0, z1]]), np.array([-1.0, 0, 0])),
        (np.array([[x1, y0, z0], [x1, y0, z1], [x1, y1, z1], [x1, y1, z0]]), np.array([1.0, 0, 0])),
        (np.array([[x0, y1, z0], [x1, y1, z0], [x1, y1, z1], [x0, y1, z1]]), np.array([0, 1.0, 0])),
        (np.array([[x0, y0, z0], [x1, y0, z0], [x1, y1, z0], [x0, y1, z0]]), np.array([0, 0, -1.0])),
        (np.array([[x0, y0, z1], [x0, y1, z1], [x1, y1, z1], [x1, y0, z1]]), np.array([0, 0, 1.0])),
    ]  # the bottom face is never seen from a camera above the ground


def visible_faces(lo, hi, cam_local) -> list[tuple[np.ndarray, np.ndarray]]:
    """Faces of a box that face the camera (back-face culling; a convex box needs no sort)."""
    out = []
    for corners, n in box_faces(np.asarray(lo, float), np.asarray(hi, float)):
        if float(n @ (cam_local - corners[0])) > 0:
            out.append((corners, n))
    return out


#: face shading by outward normal: sides darker than the top, front/back in between
def face_shade(n: np.ndarray) -> float:
    return 1.0 if n[1] > 0 else (0.78 if n[0] != 0 else 0.88)


def inset(corners: np.ndarray, f: float) -> np.ndarray:
    c = corners.mean(axis=0)
    return c + (corners - c) * (1 - f)


class Car(Agent):
    cls = CAR
    reach = 3.2

    def __init__(self, track_id: int, path: Path, rng: np.random.Generator, *, parked: bool = False):
        super().__init__(track_id, path, rng)
        self.kind = list(CAR_TYPES)[rng.choice(4, p=[0.4, 0.25, 0.25, 0.1])]
        L, W, hb, hc, cl, co = CAR_TYPES[self.kind]
        self.L, self.W = rng.uniform(*L), rng.uniform(*W)
        self.hb, self.hc = rng.uniform(*hb), rng.uniform(*hc)
        self.cab_len, self.cab_off = cl * self.L, co * self.L
        self.clear = 0.22
        base = np.asarray(CAR_COLOURS[rng.integers(len(CAR_COLOURS))], float)
        self.colour = tuple(int(c) for c in np.clip(base * rng.uniform(0.85, 1.12), 0, 255))
        self.parked = parked
        self.reach = 0.5 * math.hypot(self.L, self.W) + 0.3
        self.height_m = self.clear + self.hb + self.hc

    def local_parts(self, t, cam_local, night, coarse=False):
        L, W = self.L, self.W
        y0, y1 = self.clear, self.clear + self.hb
        lo, hi = np.array([-W / 2, y0, -L / 2]), np.array([W / 2, y1, L / 2])
        out = []
        lights_on = night and not self.parked
        r = 0.33
        wheel_zs = (-L / 2 + 0.8, L / 2 - 0.8)
        side = _view_side(cam_local)
        for corners, n in visible_faces(lo, hi, cam_local):
            out.append(("poly", corners, tuple(int(c * face_shade(n)) for c in self.colour), 0.0, False))
            if coarse and not lights_on:
                continue
            if n[2] != 0:  # front or rear: lights and a dark bumper strip
                zf = corners[0, 2]
                bumper = np.array([[-W / 2, y0, zf], [W / 2, y0, zf], [W / 2, y0 + 0.12, zf], [-W / 2, y0 + 0.12, zf]])
                out.append(("poly", bumper, (36, 36, 38), 0.0, False))
                front = n[2] > 0
                col = ((255, 250, 225) if lights_on else (225, 225, 210)) if front else \
                      ((255, 40, 30) if lights_on else (150, 20, 20))
                for sx in (-1, 1):
                    xa, xb = sorted((sx * (W / 2 - 0.08), sx * (W / 2 - 0.38)))
                    ya, yb = y1 - 0.22, y1 - 0.07
                    quad = np.array([[xa, ya, zf], [xb, ya, zf], [xb, yb, zf], [xa, yb, zf]])
                    out.append(("poly", quad, col, 0.0, lights_on))
                    if lights_on:  # a lamp of at least one pixel, so far cars show their lights
                        out.append(("ball", quad.mean(axis=0) + [0, 0, 0.02 * n[2]], col, 0.07, True))
            if n[0] != 0 and not coarse:  # the side we see: wheels with a turning hub
                for wz in wheel_zs:
                    c = np.array([side * (W / 2 + 0.01), r, wz])
                    disc = _circle(c, r, 12)
                    disc[:, 0] = c[0]
                    out.append(("poly", disc, (26, 26, 28), 0.0, False))
                    hub = _circle(c, r * 0.45, 8, phase=self.path.travelled(t) / r)
                    hub[:, 0] = c[0] + side * 0.005
                    out.append(("poly", hub, (150, 150, 156), 0.0, False))
        c0 = np.array([-W / 2 + 0.1, y1, self.cab_off - self.cab_len / 2])
        c1 = np.array([W / 2 - 0.1, y1 + self.hc, self.cab_off + self.cab_len / 2])
        glass = (40, 52, 66) if not night else (16, 18, 24)
        for corners, n in visible_faces(c0, c1, cam_local):
            out.append(("poly", corners, tuple(int(c * face_shade(n)) for c in self.colour), 0.0, False))
            if n[1] == 0 and not coarse:
                out.append(("poly", inset(corners, 0.14), glass, 0.0, False))
        return out


class Wheelchair(Agent):
    cls = WHC
    reach = 1.0

    def __init__(self, track_id: int, path: Path, rng: np.random.Generator):
        super().__init__(track_id, path, rng)
        self.scale = rng.uniform(0.92, 1.08)
        self.height_m = 1.3 * self.scale
        self.chair = [(40, 40, 44), (60, 70, 140), (150, 30, 30), (90, 90, 96)][rng.integers(4)]
        self.shirt, self.pants = _clothes(rng), _clothes(rng)
        self.skin = SKIN[rng.integers(len(SKIN))]
        self.hair = HAIR[rng.integers(len(HAIR))]

    def local_parts(self, t, cam_local, night, coarse=False):
        k = self.scale
        r = 0.3 * k
        rot = self.path.travelled(t) / r
        near = 1 if cam_local[0] >= 0 else -1
        seat_y, back_z = 0.5 * k, -0.22 * k
        hip, sh = np.array([0, 0.58 * k, -0.1 * k]), np.array([0, 1.05 * k, -0.12 * k])
        if coarse:
            width = _apparent_width(cam_local, 0.55 * k, 0.7 * k)
            return [("line", [[0, 0.1 * k, -0.05 * k], [0, seat_y, 0.1 * k]], (30, 30, 32), width, False),
                    ("line", [hip, sh], self.shirt, 0.4 * k, False),
                    ("ball", sh + [0, 0.2 * k, 0.02], self.skin, 0.11 * k, False)]

        def wheel(sx):
            c = np.array([sx * 0.3 * k, r, -0.05 * k])
            ring = _circle(c, r, 14)
            ring[:, 0] = c[0]
            parts = [("polyline", ring, (30, 30, 32), 0.045 * k, False)]
            for a in (rot, rot + np.pi / 3, rot + 2 * np.pi / 3):
                sp = np.array([0, math.sin(a), math.cos(a)]) * r
                parts.append(("line", [c - sp, c + sp], (170, 170, 176), 0.012 * k, False))
            caster = np.array([sx * 0.24 * k, 0.07 * k, 0.38 * k])
            parts.append(("ball", caster, (30, 30, 32), 0.07 * k, False))
            parts.append(("line", [caster, [sx * 0.24 * k, seat_y, 0.32 * k]], self.chair, 0.025 * k, False))
            return parts

        seat = np.array([[-0.24 * k, seat_y, back_z], [0.24 * k, seat_y, back_z],
                         [0.24 * k, seat_y, 0.25 * k], [-0.24 * k, seat_y, 0.25 * k]])
        back = np.array([[-0.24 * k, seat_y, back_z], [0.24 * k, seat_y, back_z],
                         [0.24 * k, 0.95 * k, back_z - 0.05 * k], [-0.24 * k, 0.95 * k, back_z - 0.05 * k]])
        person = []
        for sx in (-1, 1):
            knee = np.array([sx * 0.1 * k, 0.6 * k, 0.3 * k])
            foot = np.array([sx * 0.1 * k, 0.12 * k, 0.36 * k])
            person += [("line", [hip + [sx * 0.1 * k, 0, 0], knee], self.pants, 0.12 * k, False),
                       ("line", [knee, foot], self.pants, 0.09 * k, False)]
        width = _apparent_width(cam_local, 0.42 * k, 0.24 * k)
        person += [("line", [hip, sh], self.shirt, width, False),
                   ("ball", sh + [0, 0.2 * k, 0.02], self.skin, 0.1 * k, False),
                   ("ball", sh + [0, 0.23 * k, -0.01], self.hair, 0.09 * k, False)]
        push = 0.1 * math.sin(rot)
        arms = [("line", [sh + [sx * 0.2 * k, -0.03, 0], [sx * 0.33 * k, 0.62 * k, push]], self.shirt, 0.06 * k, False)
                for sx in (-near, near)]
        facing_back = cam_local[2] < 0
        chair = [("poly", seat, self.chair, 0.0, False), ("poly", back, self.chair, 0.0, False)]
        if facing_back:   # seen from behind: person first, backrest over them
            return wheel(-near) + person + chair + arms + wheel(near)
        return wheel(-near) + chair + person + arms + wheel(near)


AGENT_TYPES = {PED: Pedestrian, CYC: Cyclist, CAR: Car, WHC: Wheelchair}
