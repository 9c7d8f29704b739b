"""Static scenery (buildings, houses, trees, street lamps) packed for fast drawing.

The scenery never moves, so all its 3-D points are laid out once per video in one array per
kind, sorted along the road; each frame transforms only the slice in view, with one matrix
product, and projects it with one vectorised division. Python then only loops over the
handful of items in view to issue the OpenCV fills.
"""

from __future__ import annotations


import numpy as np

from synth.camera import SUB, Camera
from synth.painter import Painter, Shape, project_part
from synth.palette import Palette, fog_amount, mix

WINDOW_DAY = (56, 66, 80)
WINDOW_DARK = (30, 32, 40)
WINDOW_LIT = (255, 214, 140)


def _fixed(cam: Camera, pc: np.ndarray) -> np.ndarray:
    """Camera points [...,3] -> fixed-point pixels [...,2] int32 (no near-plane check)."""
    z = np.maximum(pc[..., 2], 1e-6)
    uv = np.empty(pc.shape[:-1] + (2,))
    uv[..., 0] = (cam.cx + cam.f * pc[..., 0] / z) * SUB
    uv[..., 1] = (cam.cy - cam.f * pc[..., 1] / z) * SUB
    return np.clip(np.rint(uv), -(1 << 24), 1 << 24).astype(np.int32)


class PackedBuildings:
    """All buildings of a world: per building, its point block is

    facade quad (4) | front quad (4) | [gable triangle (3) | roof slope (4)] | [door (4)] | windows (4 each)
    """

    def __init__(self, buildings: list):
        self.items = sorted(buildings, key=lambda b: b.lo[2])
        blocks, self.offsets, self.layout = [], [0], []
        for b in self.items:
            side = 1.0 if b.lo[0] > 0 else -1.0
            xf = b.lo[0] if side > 0 else b.hi[0]
            x_back = b.hi[0] if side > 0 else b.lo[0]
            y1, z0, z1 = b.hi[1], b.lo[2], b.hi[2]
            facade = [[xf, 0, z0], [xf, y1, z0], [xf, y1, z1], [xf, 0, z1]]
            front = [[xf, 0, z0], [xf, y1, z0], [x_back, y1, z0], [x_back, 0, z0]]
            pts = facade + front
            has_roof = b.roof > 0
            if has_roof:
                xc = (b.lo[0] + b.hi[0]) / 2
                pts += [[xf, y1, z0], [x_back, y1, z0], [xc, y1 + b.roof, z0]]
                pts += [[xf, y1, z0], [xf, y1, z1], [xc, y1 + b.roof, z1], [xc, y1 + b.roof, z0]]
            has_door = b.door is not None
            if has_door:
                pts += b.door.tolist()
            block = np.concatenate([np.array(pts, float), b.windows.reshape(-1, 3)])
            blocks.append(block)
            self.offsets.append(self.offsets[-1] + len(block))
            self.layout.append((has_roof, has_door, len(b.windows)))
        self.points = np.concatenate(blocks) if blocks else np.zeros((0, 3))
        self.lo_z = np.array([b.lo[2] for b in self.items])
        self.hi_z = np.array([b.hi[2] for b in self.items])

    def draw(self, p: Painter, pal: Palette, far: float, night: bool, behind: float) -> None:
        """Draw the buildings in view, far to near."""
        if not self.items:
            return
        cam = p.cam
        cz = cam.position[2]
        i0 = int(np.searchsorted(self.lo_z, cz - 60.0))
        i1 = int(np.searchsorted(self.lo_z, cz + far))
        idx = [i for i in range(i0, i1) if self.hi_z[i] > cz - behind]
        if not idx:
            return
        start, stop = self.offsets[idx[0]], self.offsets[idx[-1] + 1]
        pc = cam.to_camera(self.points[start:stop])
        fx = _fixed(cam, pc)
        near = cam.near
        idx.sort(key=lambda i: -max(self.lo_z[i] - cz, 0.0))
        for i in idx:
            b = self.items[i]
            o = self.offsets[i] - start
            has_roof, has_door, n_win = self.layout[i]
            dist = max(b.lo[2] - cz, 0.0)
            a = fog_amount(dist, 30.0, far)
            amb = pal.ambient

            def quad(k: int, n: int, colour, emissive: bool = False):
                q = pc[o + k:o + k + n]
                if q[:, 2].min() < near:
                    shape = project_part(cam, "poly", q)
                    if shape is None:
                        return
                else:
                    shape = Shape("poly", fx[o + k:o + k + n], 0, q)
                p.draw(shape, colour, 0, emissive=emissive)

            quad(0, 4, mix(b.colour, pal.fog, a, amb * 0.78))
            front_visible = cz < b.lo[2]
            if front_visible:
                quad(4, 4, mix(b.colour, pal.fog, a, amb * 0.9))
            k = 8
            if has_roof:
                if front_visible:
                    quad(k, 3, mix(b.colour, pal.fog, a, amb * 0.88))
                quad(k + 3, 4, mix(pal.roof or b.roof_colour, pal.fog, a, amb * 0.85))
                k += 7
            if has_door:
                if dist < 60:
                    quad(k, 4, mix((90, 60, 40), pal.fog, a, amb))
                k += 4
            if n_win and dist < 90:
                wpc = pc[o + k:o + k + 4 * n_win].reshape(n_win, 4, 3)
                wfx = fx[o + k:o + k + 4 * n_win].reshape(n_win, 4, 2)
                ok = wpc[:, :, 2].min(axis=1) >= near
                if night:
                    p.fill_many(wfx[ok & ~b.lit], WINDOW_DARK, wpc[ok & ~b.lit])
                    p.fill_many(wfx[ok & b.lit], WINDOW_LIT, wpc[ok & b.lit], emissive=True)
                else:
                    p.fill_many(wfx[ok], mix(WINDOW_DAY, pal.fog, a, amb), wpc[ok])


class PackedProps:
    """Trees and street lamps: per prop a block of points (trunk foot first), sorted by z.

    lamp: foot, pole top, lamp head (3) | tree: foot, trunk top, 3 canopy centres or a fork
    and 4 branch tips.
    """

    def __init__(self, props: list, bare_trees: bool):
        self.items = sorted(props, key=lambda q: q.z)
        blocks, self.offsets = [], [0]
        self.bare = bare_trees
        for q in self.items:
            base = np.array([q.x, 0.0, q.z])
            if q.kind == "lamp":
                side = -1.0 if q.x > 0 else 1.0
                pts = [base, base + [0, q.size, 0], base + [side * 1.4, q.size - 0.1, 0]]
            else:
                trunk = 2.2 * q.size
                balls, tips = q.shape
                pts = [base, base + [0, trunk, 0]]
                if bare_trees:
                    pts += [base + [0, trunk * 0.8, 0]] + [base + np.array(t) for t in tips]
                else:
                    pts += [base + np.array(b[:3]) for b in balls]
            blocks.append(np.array(pts, float))
            self.offsets.append(self.offsets[-1] + len(pts))
        self.points = np.concatenate(blocks) if blocks else np.zeros((0, 3))
        self.z = np.array([q.z for q in self.items])

    def in_view(self, cam: Camera, far: float, behind: float):
        """(indices, camera points, fixed pixels, slice start) of the props in view."""
        cz = cam.position[2]
        i0 = int(np.searchsorted(self.z, cz - behind))
        i1 = int(np.searchsorted(self.z, cz + far))
        if i1 <= i0:
            return [], None, None, 0
        start, stop = self.offsets[i0], self.offsets[i1]
        pc = cam.to_camera(self.points[start:stop])
        return list(range(i0, i1)), pc, _fixed(cam, pc), start

    def draw_one(self, p: Painter, i: int, pc: np.ndarray, fx: np.ndarray, start: int,
                 pal: Palette, night: bool, a: float) -> None:
        """Draw prop ``i`` (of ``in_view``) with fog amount ``a``."""
        q = self.items[i]
        o = self.offsets[i] - start
        n = self.offsets[i + 1] - self.offsets[i]
        P, F = pc[o:o + n], fx[o:o + n]
        if P[:, 2].min() < p.cam.near:
            return
        f = p.cam.f
        amb, fog = pal.ambient, pal.fog

        def seg(j, k, colour, width):
            thick = max(1, int(width * f * 2 / (P[j, 2] + P[k, 2]) + 0.5))
            p.draw(Shape("line", F[[j, k]], thick, P[[j, k]]), colour, 0)

        def ball(j, colour, radius, emissive=False):
            p.draw(Shape("ball", F[j], max(SUB, int(radius * f / P[j, 2] * SUB)), P[j:j + 1]), colour, 0,
                   emissive=emissive)

        if q.kind == "lamp":
            grey = mix((70, 72, 76), fog, a, amb)
            seg(0, 1, grey, 0.14)
            seg(1, 2, grey, 0.08)
            if night:
                ball(2, (255, 236, 190), 0.22, emissive=True)
            else:
                ball(2, mix((200, 200, 190), fog, a, amb), 0.18)
            return
        s = q.size
        trunk = mix(pal.trunk, fog, a, amb)
        seg(0, 1, trunk, 0.28 * s)
        balls, _tips = q.shape
        if self.bare:
            for j in range(3, 7):
                seg(2, j, trunk, 0.09 * s)
            return
        for j, b in enumerate(balls):
            ball(2 + j, mix(pal.canopy[b[4] % len(pal.canopy)], fog, a, amb), b[3])
