"""A source plugin for tests: ``.qsynth`` files describe synthetic clips in a line of JSON.

It lets a test run the whole pipeline (sources, batches, pooling, events, writers) with no image
or video plugin installed and no binary fixture in the repository::

    {"frames": 12, "fps": 25, "width": 128, "height": 96, "seed": 0,
     "variants": ["sharp"], "effects": {"5": "blurred"}, "kind": "video", "fail_at": null}

Every key is optional. Frame ``i`` is the panning texture of :func:`qplug.testing.frames.video_frames`,
turned into ``variants[i % len(variants)]``, or into ``effects[i]`` when given. ``fail_at`` makes
the reader raise :class:`~qplug.errors.InputError` at that frame, like a decode error mid-file.

Register it with ``host.add_plugin(qplug.testing.synth, name="synth")``, or let
:func:`qplug.testing.harness.run_plugin` do it.
"""

from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING, Any, Callable, Iterator

from qplug.errors import InputError
from qplug import ScorerInfo, SourceInfo, hookimpl
from qplug.types import Frame, MediaInfo, Sampling

if TYPE_CHECKING:
    import numpy as np

EXTENSION = ".qsynth"
SOURCE_NAME = "testing.synth"
#: a trivial reference scorer, so a run can be made around a source under test
MEAN_LUMA = "testing.mean_luma"
_KEYS = {"frames", "fps", "width", "height", "seed", "variants", "effects", "kind", "fail_at"}


@hookimpl
def register_sources(register: Callable[[SourceInfo], None]) -> None:
    """Offer the ``.qsynth`` source (the factory is named by import path, like a real plugin's)."""
    register(SourceInfo(name=SOURCE_NAME, factory="qplug.testing.synth:SynthSource",
                        description="synthetic test clips described by a JSON .qsynth file",
                        extensions=(EXTENSION,), kind="video"))


@hookimpl
def register_scorers(register: Callable[[ScorerInfo], None]) -> None:
    """Offer a trivial reference scorer: tests of sources need something to run."""
    register(ScorerInfo(name=MEAN_LUMA, factory="qplug.testing.synth:MeanLuma",
                        description="mean luma level: a reference scorer for tests", range=(0.0, 255.0),
                        higher_is_better=True, inputs=("luma",), batch_size=4, unit="levels"))


class MeanLuma:
    """Mean luma of each frame (None for a frame without pixels)."""

    def score(self, frames: "list[Frame]") -> "list[float | None]":
        return [float(f.luma.mean()) if f.width and f.height else None for f in frames]


def write_synth(path: "str | os.PathLike[str]", **spec: Any) -> str:
    """Write a ``.qsynth`` file (keys as in the module docstring) and return its path."""
    unknown = set(spec) - _KEYS
    if unknown:
        raise ValueError(f"unknown .qsynth keys: {sorted(unknown)}")
    if "effects" in spec:
        spec["effects"] = {str(k): v for k, v in spec["effects"].items()}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(spec, handle)
    return os.fspath(path)


def _spec(path: str) -> dict[str, Any]:
    """Read and check a spec; every problem becomes an InputError naming the file."""
    try:
        with open(path, encoding="utf-8") as handle:
            spec = json.load(handle)
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except IsADirectoryError:
        raise InputError(path, "is a directory") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not a valid .qsynth file: {exc}") from None
    if not isinstance(spec, dict):
        raise InputError(path, "not a valid .qsynth file: expected a JSON object")
    unknown = set(spec) - _KEYS
    if unknown:
        raise InputError(path, f"unknown keys {sorted(unknown)}")
    checks = {"frames": (int, 0), "width": (int, 1), "height": (int, 1), "seed": (int, 0)}
    for key, (kind, minimum) in checks.items():
        if key in spec and (not isinstance(spec[key], kind) or isinstance(spec[key], bool) or spec[key] < minimum):
            raise InputError(path, f"{key} must be a whole number >= {minimum}")
    fps = spec.get("fps", 25)
    if not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise InputError(path, "fps must be a number > 0")
    from .frames import VARIANTS  # numpy only once a file is actually opened

    variants = spec.get("variants", ["sharp"])
    effects = spec.get("effects", {})
    if (not isinstance(variants, list) or not variants or any(v not in VARIANTS for v in variants)
            or not isinstance(effects, dict) or any(v not in VARIANTS for v in effects.values())):
        raise InputError(path, f"variants and effects must name known variants ({', '.join(VARIANTS)})")
    if spec.get("kind", "video") not in ("image", "video"):
        raise InputError(path, "kind must be 'image' or 'video'")
    return spec


class SynthSource:
    """Opens ``.qsynth`` files. Stateless: one instance serves every file of a run."""

    def open(self, path: "str | os.PathLike[str]", sampling: Sampling | None = None) -> "SynthReader":
        path = os.fspath(path)
        return SynthReader(path, _spec(path), sampling or Sampling())


class SynthReader:
    """One open ``.qsynth`` clip; frames are generated as they are iterated."""

    def __init__(self, path: str, spec: dict[str, Any], sampling: Sampling) -> None:
        self.path, self.spec, self.sampling = path, spec, sampling
        self.count = int(spec.get("frames", 12))
        self.fps = float(spec.get("fps", 25))
        self.width, self.height = int(spec.get("width", 128)), int(spec.get("height", 96))
        out_w, out_h = _scaled_size(self.width, self.height, sampling.max_side)
        self.info = MediaInfo(source_id=path, kind=spec.get("kind", "video"), container="qsynth", codec="synthetic",
                              width=out_w, height=out_h, fps=self.fps, duration=self.count / self.fps,
                              frame_count=self.count, pix_fmt="rgb24", bit_depth=8, interlaced=False)
        self.closed = False

    def _wanted(self) -> Iterator[int]:
        """Frame indices the sampling asks for, in order."""
        s = self.sampling
        next_time = s.start or 0.0
        for i in range(self.count):
            pts = i / self.fps
            if s.start is not None and pts < s.start - 1e-9:
                continue
            if s.end is not None and pts >= s.end - 1e-9:
                return
            if s.every and i % s.every:
                continue
            if s.fps is not None:
                if pts < next_time - 1e-9:
                    continue
                next_time += 1 / s.fps
            yield i

    def __iter__(self) -> Iterator[Frame]:
        from .frames import video_frames

        if self.closed:
            raise InputError(self.path, "reader is closed")
        variants = self.spec.get("variants", ["sharp"])
        planted = {int(k): v for k, v in self.spec.get("effects", {}).items()}
        effects = {i: planted.get(i, variants[i % len(variants)]) for i in range(self.count)}
        clip = video_frames(self.count, self.fps, self.width, self.height, int(self.spec.get("seed", 0)),
                            source_id=self.path, effects=effects)
        still = self.info.kind == "image"
        delivered = 0
        for i in self._wanted():
            if i == self.spec.get("fail_at"):
                raise InputError(self.path, f"decode error at frame {i}")
            yield Frame(source_id=self.path, index=i, width=self.info.width or 1, height=self.info.height or 1,
                        pts=None if still else clip[i].pts, duration=None if still else clip[i].duration,
                        timecode=None if still else clip[i].timecode, pix_fmt="rgb24", bit_depth=8,
                        rgb_loader=lambda load=clip[i].rgb_loader: _downscale(load(), self.sampling.max_side))
            delivered += 1
            if self.sampling.max_frames is not None and delivered >= self.sampling.max_frames:
                return

    def close(self) -> None:
        self.closed = True


def _scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _downscale(rgb: "np.ndarray", max_side: int | None) -> "np.ndarray":
    """Nearest-neighbour downscale: good enough for a test source, and exact sizes are what matter."""
    height, width = rgb.shape[:2]
    out_w, out_h = _scaled_size(width, height, max_side)
    if (out_w, out_h) == (width, height):
        return rgb
    import numpy as np

    ys = (np.arange(out_h) * height // out_h).astype(np.intp)
    xs = (np.arange(out_w) * width // out_w).astype(np.intp)
    return np.ascontiguousarray(rgb[ys][:, xs])
