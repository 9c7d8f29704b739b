"""Video datasets in the ``vidal-video-v1`` HDF5 format (see docs/format.md)."""

from vidal.data.dataset import VideoDataset, collate
from vidal.data.h5format import FORMAT_NAME

__all__ = ["FORMAT_NAME", "VideoDataset", "collate"]
