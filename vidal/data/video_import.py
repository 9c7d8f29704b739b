"""Raw video -> ``vidal-video-v1`` without annotations (issue 16, "bring your own video").

One input is one video: a video file (``.mp4 .avi .mov .mkv .m4v .webm``, decoded by OpenCV) or a
folder of ``.jpg / .jpeg / .png`` frames, ordered by natural sort (``frame2.png`` before
``frame10.png``). The output holds every input as ``videos/<name>`` (``name``: the file stem or the
folder name) with empty annotation arrays, the class list declared up front (the detector head
needs ``C``), ``seed = -1`` and the source path in the per-video attribute ``source``.

Options: ``stride`` keeps frames ``0, s, 2s, ...`` (``fps`` becomes ``fps / s``); ``max_side`` scales
frames down (``cv2.INTER_AREA``) so that ``max(H, W) <= max_side`` (never up).

Every input is checked completely before anything is written (:func:`probe_input` decodes a video
file once to count its frames): an unreadable or truncated video, a zero-frame video or folder, a
folder with frames of mixed sizes, a duplicate video name, an unknown extension is a one-line
:class:`VideoImportError` naming the file, and no output file appears. The write itself is atomic
(:func:`vidal.data.writer.write_videos`: shards in a hidden folder, then one rename).
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from vidal.data.h5format import VIDEO_NAME_RULE, video_name_problem

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
#: fps stored for a frame folder when ``--fps`` is not given
DEFAULT_FOLDER_FPS = 30.0


@contextlib.contextmanager
def native_stderr_silenced():
    """Silence what the video decoders write straight to file descriptor 2 (FFmpeg's "moov atom not
    found", OpenCV's AVI parser): a bad input is reported once, in our own one-line error."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class VideoImportError(ValueError):
    """An input cannot be imported; one line naming the file, what is wrong and the fix."""


@dataclass
class VideoSource:
    """One checked input.

    Attributes:
        path: the video file or frame folder. name: the video's group name.
        kind: ``"video"`` or ``"folder"``. n_source: frames in the source (before the stride).
        height, width: source frame size. fps: source frame rate (None for a folder).
        files: a folder's frame files in natural order.
    """

    path: Path
    name: str
    kind: str
    n_source: int
    height: int
    width: int
    fps: float | None
    files: list[Path] = field(default_factory=list)

    def kept(self, stride: int) -> range:
        """Source frame numbers kept with ``stride``."""
        return range(0, self.n_source, stride)


def natural_key(name: str) -> list:
    """Sort key that orders embedded numbers by value: ``f2`` < ``f10``."""
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name)]


def _check_name(path: Path, name: str) -> str:
    problem = video_name_problem(name)
    if problem:
        raise VideoImportError(f"{path}: video name {problem}; rename it to {VIDEO_NAME_RULE}")
    return name


def _probe_folder(path: Path) -> VideoSource:
    from PIL import Image, UnidentifiedImageError

    files = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
                   key=lambda p: natural_key(p.name))
    if not files:
        raise VideoImportError(f"{path}: no .jpg/.jpeg/.png frames in this folder; a frame folder holds the "
                               f"frames of one video")
    size = None
    for f in files:
        try:
            with Image.open(f) as im:
                im.verify()
            with Image.open(f) as im:
                wh = im.size
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise VideoImportError(f"{f}: unreadable image ({type(e).__name__}: {e}); replace or remove it") from None
        if size is None:
            size, first = wh, f
        elif wh != size:
            raise VideoImportError(f"{f}: frame size {wh[0]}x{wh[1]} differs from {size[0]}x{size[1]} of {first.name}; "
                                   f"every frame of a video must have the same size")
    return VideoSource(path, _check_name(path, path.name), "folder", len(files), size[1], size[0], None, files)


def _probe_video(path: Path) -> VideoSource:
    import cv2

    with native_stderr_silenced():
        return _decode_all(path, cv2)


def _decode_all(path: Path, cv2) -> VideoSource:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise VideoImportError(f"{path}: OpenCV cannot open this video (unreadable, truncated or an unknown "
                                   f"codec); convert it, e.g. ffmpeg -i {path.name} -c:v libx264 out.mp4")
        declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        n, shape = 0, None
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if shape is None:
                shape = frame.shape
            elif frame.shape != shape:
                raise VideoImportError(f"{path}: frame {n} is {frame.shape[1]}x{frame.shape[0]}, frame 0 "
                                       f"{shape[1]}x{shape[0]}; re-encode it at one size")
            n += 1
    finally:
        cap.release()
    if n == 0:
        raise VideoImportError(f"{path}: no frame could be decoded (a zero-frame, empty or corrupt video); "
                               f"check it plays, or re-encode it")
    # containers declare their frame count; decoding fewer frames means the file was cut short
    if declared > 0 and n < declared - max(1, declared // 100):
        raise VideoImportError(f"{path}: truncated: {n} frames decoded, the container declares {declared}; "
                               f"copy the file again or re-encode it")
    return VideoSource(path, _check_name(path, path.stem), "video", n, shape[0], shape[1],
                       fps if fps > 0 and np.isfinite(fps) else None)


def probe_input(path: str | os.PathLike) -> VideoSource:
    """Check one input completely (a video is decoded once) and describe it."""
    path = Path(path)
    if not path.exists():
        raise VideoImportError(f"{path}: no such file or folder")
    if path.is_dir():
        return _probe_folder(path)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise VideoImportError(f"{path}: unknown video extension {path.suffix!r}; expected one of "
                               f"{', '.join(VIDEO_EXTENSIONS)} or a folder of {'/'.join(IMAGE_EXTENSIONS)} frames")
    return _probe_video(path)


def output_size(height: int, width: int, max_side: int | None) -> tuple[int, int]:
    """``(H, W)`` after scaling down so that ``max(H, W) <= max_side`` (aspect kept, never up)."""
    if not max_side or max(height, width) <= max_side:
        return height, width
    s = max_side / max(height, width)
    return max(1, round(height * s)), max(1, round(width * s))


def _frames_bgr(src: VideoSource, stride: int) -> Iterator[np.ndarray]:
    """The kept frames of ``src`` as BGR uint8 arrays."""
    import cv2

    if src.kind == "folder":
        for t in src.kept(stride):
            img = cv2.imread(str(src.files[t]), cv2.IMREAD_COLOR)
            if img is None:
                raise VideoImportError(f"{src.files[t]}: OpenCV cannot decode this image; replace or remove it")
            yield img
        return
    cap = cv2.VideoCapture(str(src.path))
    try:
        for t in range(src.n_source):
            ok, img = cap.read()
            if not ok:
                raise VideoImportError(f"{src.path}: frame {t} could not be decoded on the second read (the file "
                                       f"changed during the import?); run the import again")
            if t % stride == 0:
                yield img
    finally:
        cap.release()


def parse_classes(text: str) -> list[str]:
    """``"car,pedestrian"`` -> ``["car", "pedestrian"]``: non-empty, unique names."""
    names = [c.strip() for c in str(text).split(",")]
    if not names or any(not c for c in names):
        raise VideoImportError(f"--classes {text!r}: expected comma-separated non-empty class names, "
                               f"e.g. --classes car,pedestrian")
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise VideoImportError(f"--classes {text!r}: class {', '.join(dup)} given twice; each class once")
    return names


def import_videos(inputs: Sequence[str | os.PathLike], out: str | os.PathLike, classes: Sequence[str], *,
                  stride: int = 1, max_side: int | None = None, split: str = "unlabeled", fps: float | None = None,
                  overwrite: bool = False, compression: str = "gzip", progress: bool = True,
                  command: str = "") -> dict:
    """Check every input, then write them into ``out`` (atomic). Returns a summary dict
    ``{"out", "videos": [{"name", "source", "frames", "height", "width"}], "frames"}``."""
    import cv2
    from tqdm import tqdm

    import vidal
    from vidal.data.writer import VideoToWrite, frame_annotations, write_videos

    if stride < 1:
        raise VideoImportError(f"--stride {stride}: expected an integer >= 1")
    if max_side is not None and max_side < 8:
        raise VideoImportError(f"--max-side {max_side}: expected at least 8 pixels")
    out = Path(out)
    if out.exists() and not overwrite:
        raise VideoImportError(f"{out}: exists; pass --overwrite to replace it or choose another --out")
    if not inputs:
        raise VideoImportError("no input given; pass video files or frame folders")
    sources, seen = [], {}
    for p in tqdm(list(inputs), desc="check inputs", unit="video", disable=not progress, leave=False):
        src = probe_input(p)
        if src.name in seen:
            raise VideoImportError(f"{src.path}: duplicate video name {src.name!r} (also {seen[src.name]}); "
                                   f"rename one of them")
        seen[src.name] = src.path
        sources.append(src)
    rate = fps
    if rate is None:
        rate = next((s.fps for s in sources if s.fps), DEFAULT_FOLDER_FPS) / stride
    empty = frame_annotations(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64))

    def video(src: VideoSource) -> VideoToWrite:
        H, W = output_size(src.height, src.width, max_side)

        def frames():
            for bgr in _frames_bgr(src, stride):
                if bgr.shape[:2] != (src.height, src.width):
                    raise VideoImportError(f"{src.path}: a frame is {bgr.shape[1]}x{bgr.shape[0]}, expected "
                                           f"{src.width}x{src.height}; every frame must have the same size")
                if (H, W) != (src.height, src.width):
                    bgr = cv2.resize(bgr, (W, H), interpolation=cv2.INTER_AREA)
                yield np.ascontiguousarray(bgr[:, :, ::-1]), empty

        attrs = {"source": str(src.path), "source_fps": float(src.fps or 0.0), "stride": int(stride)}
        return VideoToWrite(name=src.name, n_frames=len(src.kept(stride)), height=H, width=W, frames=frames,
                            attrs=attrs)

    total = sum(len(s.kept(stride)) for s in sources)
    root = {"classes": list(classes), "fps": float(rate), "split": split, "seed": -1, "command": command,
            "generator_config": {"importer": "import_video", "stride": stride, "max_side": max_side,
                                 "inputs": [str(s.path) for s in sources]},
            "created_by": f"vidal {vidal.__version__} import_video"}
    write_videos(out, (video(s) for s in sources), root, overwrite=overwrite, compression=compression,
                 progress=progress, total_frames=total, desc="import video")
    rows = [{"name": s.name, "source": str(s.path), "frames": len(s.kept(stride)),
             "height": output_size(s.height, s.width, max_side)[0], "width": output_size(s.height, s.width,
                                                                                        max_side)[1]}
            for s in sources]
    return {"out": str(out), "videos": rows, "frames": total}
