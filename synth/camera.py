"""Pinhole camera of the ego car.

World frame: X to the right of the road, Y up, Z along the road (the ego drives towards +Z).
Camera frame: X right, Y up, Z forward (depth). Image: u = cx + f X/Z, v = cy - f Y/Z.
"""

from __future__ import annotations

import math

import numpy as np

#: 2-D points are drawn with this many fractional bits (cv2 ``shift``), so slow motion is smooth.
SHIFT = 4
SUB = 1 << SHIFT


class Camera:
    """A pinhole camera with yaw (about Y) and pitch (positive looks down).

    Args:
        width, height: image size in pixels.
        hfov_deg: horizontal field of view.
        near, far: clipping distances in metres (depth along the optical axis).
    """

    def __init__(self, width: int, height: int, *, hfov_deg: float = 75.0, near: float = 0.5,
                 far: float = 160.0):
        self.width, self.height = int(width), int(height)
        self.f = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
        self.cx, self.cy = width / 2, height / 2
        self.near, self.far = near, far
        self.set_pose(np.zeros(3), 0.0, 0.0)

    def set_pose(self, position: np.ndarray, yaw: float, pitch: float) -> None:
        """Place the camera at ``position`` [3] (metres) looking along yaw/pitch (radians)."""
        self.position = np.asarray(position, float)
        self.yaw, self.pitch = yaw, pitch
        cp, sp, cy_, sy = math.cos(pitch), math.sin(pitch), math.cos(yaw), math.sin(yaw)
        forward = np.array([sy * cp, -sp, cy_ * cp])
        right = np.array([cy_, 0.0, -sy])
        up = np.cross(forward, right)
        self.R = np.stack([right, up, forward])  # world -> camera rotation, rows = camera axes

    def to_camera(self, pts: np.ndarray) -> np.ndarray:
        """World points [...,3] -> camera coordinates [...,3]."""
        return (pts - self.position) @ self.R.T

    def project_camera(self, pc: np.ndarray) -> np.ndarray:
        """Camera points [...,3] with Z > 0 -> pixel coordinates [...,2] (float)."""
        z = pc[..., 2]
        u = self.cx + self.f * pc[..., 0] / z
        v = self.cy - self.f * pc[..., 1] / z
        return np.stack([u, v], axis=-1)

    def horizon_row(self) -> float:
        """Image row of the horizon (points at infinity on the ground plane)."""
        return self.cy - self.f * math.tan(self.pitch)

    def ray_directions(self) -> np.ndarray:
        """Camera-frame ray of every pixel with Z = 1: [H, W, 3]. Pixel (x, y) is centred on image
        coordinates (x, y), as in OpenCV drawing."""
        u = (np.arange(self.width) - self.cx) / self.f
        v = -(np.arange(self.height) - self.cy) / self.f
        rays = np.empty((self.height, self.width, 3))
        rays[..., 0] = u[None, :]
        rays[..., 1] = v[:, None]
        rays[..., 2] = 1.0
        return rays


def clip_polygon_near(pc: np.ndarray, near: float) -> np.ndarray:
    """Clip a convex camera-frame polygon [k,3] to Z >= near (Sutherland-Hodgman, one plane)."""
    out = []
    k = len(pc)
    for i in range(k):
        a, b = pc[i], pc[(i + 1) % k]
        ina, inb = a[2] >= near, b[2] >= near
        if ina:
            out.append(a)
        if ina != inb:
            t = (near - a[2]) / (b[2] - a[2])
            out.append(a + t * (b - a))
    return np.array(out) if out else np.zeros((0, 3))


def to_fixed(uv: np.ndarray) -> np.ndarray:
    """Float pixel coordinates -> int32 fixed point for cv2 drawing with ``shift=SHIFT``.

    Coordinates are clamped to +-2^20 px so polygons reaching far outside the image stay valid.
    """
    return np.clip(np.rint(uv * SUB), -(1 << 24), 1 << 24).astype(np.int32)
