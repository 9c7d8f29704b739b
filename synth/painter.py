"""Rasterising 3-D parts into the frame buffers (painter's algorithm).

A part is a small 3-D shape in world coordinates: a planar polygon, a thick line segment, a
ball, or a closed thick polyline (a wheel). The painter projects it with the camera, draws it
into the RGB image, and writes the owner's instance id into the id map so that the last part
drawn at a pixel owns it: after everything is drawn back to front, the id map is exactly the
visible part of every object, occlusion and truncation included.

Optional buffers: ``emissive`` (pixels of lights, kept bright at night) and ``surface`` (index
of the planar surface seen at each pixel, from which exact depth and flow are derived).
"""

from __future__ import annotations

import cv2
import numpy as np

from synth.camera import SHIFT, SUB, Camera, clip_polygon_near, to_fixed

LINE = cv2.LINE_8


class Painter:
    """Frame buffers of one frame and the drawing operations on them.

    Args:
        camera: the posed camera of this frame.
        background: uint8 [H,W,3] image copied into the frame first (sky and skyline).
        emissive: keep an emissive mask (night).
        surfaces: keep the surface index map (depth / flow outputs).
    """

    def __init__(self, camera: Camera, background: np.ndarray, *, emissive: bool = False,
                 surfaces: bool = False):
        self.cam = camera
        H, W = camera.height, camera.width
        self.rgb = background.copy()
        self.ids = np.zeros((H, W), np.uint16)
        self.emissive = np.zeros((H, W), np.uint8) if emissive else None
        self.surface = np.full((H, W), -1, np.int32) if surfaces else None
        #: until the first object is drawn the id map is all zeros, so scenery (owner 0)
        #: need not be written into it: this halves the cost of the ground and buildings
        self.ids_dirty = False
        #: per surface: plane normal n [3] and offset d (n.X + d = 0, camera frame), owner key
        self.planes: list[tuple[np.ndarray, float]] = []
        self.owners: list[int] = []

    # -- bookkeeping -------------------------------------------------------------------------
    def _surface_index(self, pc: np.ndarray, owner: int) -> int:
        """Register the plane of camera points ``pc`` [k,3] and return its index.

        A polygon's plane passes through its first three vertices; a line or a ball gets a
        camera-facing plane at its mean depth. Plain floats: this runs once per drawn part.
        """
        if self.surface is None:
            return -1
        n = (0.0, 0.0, 1.0)
        if len(pc) >= 3:
            (ax, ay, az), (bx, by, bz), (cx, cy, cz) = pc[0].tolist(), pc[1].tolist(), pc[2].tolist()
            ux, uy, uz, vx, vy, vz = bx - ax, by - ay, bz - az, cx - ax, cy - ay, cz - az
            nx, ny, nz = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
            norm = (nx * nx + ny * ny + nz * nz) ** 0.5
            if norm > 1e-9:
                n = (nx / norm, ny / norm, nz / norm)
        mx, my, mz = pc.mean(axis=0).tolist()
        self.planes.append((n, -(n[0] * mx + n[1] * my + n[2] * mz)))
        self.owners.append(owner)
        return len(self.planes) - 1

    # -- primitives (camera-frame input) ------------------------------------------------------
    def draw(self, shape: "Shape", color, owner: int = 0, *, emissive: bool = False,
             plane_pts: np.ndarray | None = None) -> None:
        """Draw a projected shape into every buffer; ``plane_pts`` [k,3] (camera) give its plane."""
        kind, pts = shape.kind, shape.pts
        write_ids = owner != 0 or self.ids_dirty
        if owner:
            self.ids_dirty = True
        if kind == "poly":  # the hot path, inlined
            cv2.fillConvexPoly(self.rgb, pts, color, LINE, SHIFT)
            if write_ids:
                cv2.fillConvexPoly(self.ids, pts, owner, LINE, SHIFT)
        else:
            draw_shape(self.rgb, shape, color)
            if write_ids:
                draw_shape(self.ids, shape, owner)
        if self.emissive is not None:
            draw_shape(self.emissive, shape, 255 if emissive else 0)
        if self.surface is not None:
            surf = self._surface_index(plane_pts if plane_pts is not None else shape.plane, owner)
            draw_shape(self.surface, shape, surf)

    def part(self, kind: str, pc: np.ndarray, color, size: float = 0.0, owner: int = 0, *,
             emissive: bool = False) -> "Shape | None":
        """Project and draw one part given in camera coordinates; returns its shape (or None)."""
        shape = project_part(self.cam, kind, pc, size)
        if shape is not None:
            self.draw(shape, color, owner, emissive=emissive, plane_pts=shape.plane)
        return shape

    def polygons(self, pcs: np.ndarray, color, owner: int = 0) -> None:
        """Fill many polygons [n,k,3] (camera frame) of one colour (lane dashes, zebra stripes).

        Polygons in front of the near plane are filled in one call; those crossing it are
        clipped one by one, so markings do not pop out of the bottom of the image.
        """
        if len(pcs) == 0:
            return
        zmin, zmax = pcs[:, :, 2].min(axis=1), pcs[:, :, 2].max(axis=1)
        front = zmin >= self.cam.near
        for pc in pcs[~front & (zmax >= self.cam.near)]:
            self.part("poly", pc, color, owner=owner)
        pcs = pcs[front]
        if len(pcs):
            self.fill_many(to_fixed(self.cam.project_camera(pcs)), color, pcs, owner)

    def fill_many(self, pts: np.ndarray, color, pcs: np.ndarray, owner: int = 0, *,
                  emissive: bool = False) -> None:
        """Fill polygons given as fixed-point pixels [n,k,2] (camera points ``pcs`` [n,k,3])."""
        if len(pts) == 0:
            return
        if self.surface is not None:  # one plane per polygon
            for p, pc in zip(pts, pcs):
                self.draw(Shape("poly", p, 0, pc), color, owner, emissive=emissive)
            return
        polys = list(pts)
        cv2.fillPoly(self.rgb, polys, color, LINE, SHIFT)
        if owner != 0 or self.ids_dirty:
            self.ids_dirty = self.ids_dirty or owner != 0
            cv2.fillPoly(self.ids, polys, owner, LINE, SHIFT)
        if self.emissive is not None:
            cv2.fillPoly(self.emissive, polys, 255 if emissive else 0, LINE, SHIFT)

    # -- derived buffers ------------------------------------------------------------------------
    def depth(self) -> np.ndarray:
        """Depth along the optical axis [H,W] float32 (inf where only sky is seen); cached.

        For the plane n.X + d = 0 seen at a pixel with ray r = ((x - cx)/f, -(y - cy)/f, 1),
        depth = -d / (n.r). The ray is separable in x and y, so no [H,W,3] array is built.
        """
        if self.surface is None:
            raise RuntimeError("Painter was built without surfaces=True")
        if getattr(self, "_depth", None) is not None:
            return self._depth
        cam = self.cam
        S = len(self.planes)
        normals = np.array([p[0] for p in self.planes] + [[0.0, 0.0, 1.0]], np.float32)
        offsets = np.array([p[1] for p in self.planes] + [np.inf], np.float32)
        idx = np.where(self.surface >= 0, self.surface, S)
        rx = ((np.arange(cam.width) - cam.cx) / cam.f).astype(np.float32)
        ry = (-(np.arange(cam.height) - cam.cy) / cam.f).astype(np.float32)
        denom = normals[idx, 0] * rx[None, :] + normals[idx, 1] * ry[:, None] + normals[idx, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = -offsets[idx] / denom
        z[(idx == S) | ~np.isfinite(z) | (z <= 0)] = np.inf
        self._depth = z
        return z


class Shape:
    """A projected part: ``kind`` in poly / line / polyline / ball, fixed-point pixel points
    (cv2 ``shift=SHIFT``), a thickness or radius in fixed-point pixels, and its camera points."""

    __slots__ = ("kind", "pts", "size", "plane")

    def __init__(self, kind: str, pts: np.ndarray, size: int, plane: np.ndarray):
        self.kind, self.pts, self.size, self.plane = kind, pts, size, plane

    def bounds(self) -> tuple[int, int, int, int]:
        """Integer pixel bounds (x0, y0, x1, y1), exclusive upper, including thickness."""
        p = self.pts.reshape(-1, 2)
        pad = self.size if self.kind == "ball" else ((self.size + 1) // 2) * SUB
        lo = (p.min(axis=0) - pad) >> SHIFT
        hi = ((p.max(axis=0) + pad) >> SHIFT) + 2
        return int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])


def project_part(cam: Camera, kind: str, pc: np.ndarray, size: float = 0.0) -> Shape | None:
    """Project a part given in camera coordinates.

    Args:
        kind: ``poly`` (convex planar polygon [k,3], clipped at the near plane), ``line``
            (segment [2,3]), ``polyline`` (closed thick loop [k,3]) or ``ball`` (centre [3]).
        size: width of a line / polyline or radius of a ball, in metres.
    Returns None when the part is behind the camera.
    """
    near = cam.near
    if kind == "poly":
        if pc[:, 2].min() < near:
            if pc[:, 2].max() < near:
                return None
            pc = clip_polygon_near(pc, near)
            if len(pc) < 3:
                return None
        return Shape("poly", to_fixed(cam.project_camera(pc)), 0, pc)
    if kind == "ball":
        if pc[2] < near:
            return None
        r = max(SUB, int(round(size * cam.f / pc[2] * SUB)))
        return Shape("ball", to_fixed(cam.project_camera(pc)), r, pc[None])
    if pc[:, 2].min() < near:
        return None
    thick = max(1, int(round(size * cam.f / float(pc[:, 2].mean()))))
    return Shape(kind, to_fixed(cam.project_camera(pc)), thick, pc)


def draw_shape(img: np.ndarray, shape: Shape, value, offset: tuple[int, int] | None = None) -> None:
    """Rasterise ``shape`` into ``img`` with ``value``; ``offset`` (x, y) pixels is subtracted."""
    pts = shape.pts
    if offset is not None:
        pts = pts - np.array(offset, np.int32) * SUB
    kind = shape.kind
    if kind == "poly":
        cv2.fillConvexPoly(img, pts, value, LINE, SHIFT)
    elif kind == "line":
        cv2.line(img, tuple(pts[0].tolist()), tuple(pts[1].tolist()), value, shape.size, LINE, SHIFT)
    elif kind == "polyline":
        cv2.polylines(img, [pts], True, value, shape.size, LINE, SHIFT)
    else:
        cv2.circle(img, tuple(pts.tolist()), shape.size, value, -1, LINE, SHIFT)


def project_parts(cam: Camera, parts: list, pc_all: np.ndarray) -> list:
    """Project an object's parts at once.

    Args:
        parts: [(kind, points, colour, size, emissive), ...] as produced by an agent; the
            points of all parts, concatenated in order, are ``pc_all`` [P,3] (camera frame).
    Returns one ``Shape`` or None (behind the camera) per part. Parts entirely in front of
    the near plane share one vectorised projection; the others go through ``project_part``.
    """
    z = pc_all[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        zs = np.maximum(z, 1e-6)
        fx = np.rint((cam.cx + cam.f * pc_all[:, 0] / zs) * SUB)
        fy = np.rint((cam.cy - cam.f * pc_all[:, 1] / zs) * SUB)
    fixed = np.stack([np.clip(fx, -(1 << 24), 1 << 24), np.clip(fy, -(1 << 24), 1 << 24)], 1).astype(np.int32)
    near, f = cam.near, cam.f
    out = []
    k = 0
    zl = z.tolist()
    for kind, pts, _colour, size, _em in parts:
        n = 1 if kind == "ball" else len(pts)
        zmin = min(zl[k:k + n])
        if zmin < near:
            pc = pc_all[k] if kind == "ball" else pc_all[k:k + n]
            out.append(project_part(cam, kind, pc, size) if kind == "poly" else None)
        elif kind == "poly":
            out.append(Shape("poly", fixed[k:k + n], 0, pc_all[k:k + n]))
        elif kind == "ball":
            r = max(SUB, int(size * f / zl[k] * SUB + 0.5))
            out.append(Shape("ball", fixed[k], r, pc_all[k:k + 1]))
        else:
            thick = max(1, int(size * f * n / sum(zl[k:k + n]) + 0.5))
            out.append(Shape(kind, fixed[k:k + n], thick, pc_all[k:k + n]))
        k += n
    return out
