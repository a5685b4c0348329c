"""A small but real plugin used by the core tests: a source of synthetic clips and two scorers.

A ``.synth`` file is JSON: ``{"levels": [grey levels 0-255], "pts": [seconds] (optional),
"fps": 25, "fail_at": index (optional)}``. Each level becomes a flat grey 8x6 frame.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Sequence

import numpy as np

from qplug.errors import InputError
from qplug import ScorerInfo, SourceInfo, hookimpl
from qplug.types import Frame, MediaInfo, Sampling, Score


class SynthReader:
    def __init__(self, path: str, spec: dict[str, Any], sampling: Sampling) -> None:
        self.path, self.spec, self.sampling = path, spec, sampling
        fps = spec.get("fps", 25)
        levels = spec["levels"]
        self.info = MediaInfo(source_id=path, kind="video", fps=fps, duration=len(levels) / fps,
                              width=8, height=6, frame_count=len(levels))
        self.closed = False

    def __iter__(self) -> Iterator[Frame]:
        levels = self.spec["levels"]
        fps = self.spec.get("fps", 25)
        pts = self.spec.get("pts") or [i / fps for i in range(len(levels))]
        count = 0
        for i, level in enumerate(levels):
            if i == self.spec.get("fail_at"):
                raise InputError(self.path, f"decode error at frame {i}")
            if self.sampling.every and i % self.sampling.every:
                continue
            rgb = np.full((6, 8, 3), level, dtype=np.uint8)
            nxt = pts[i + 1] if i + 1 < len(pts) else pts[i] + 1 / fps
            yield Frame(source_id=self.path, index=i, width=8, height=6, pts=pts[i], duration=nxt - pts[i],
                        rgb_loader=lambda rgb=rgb: rgb)
            count += 1
            if self.sampling.max_frames and count >= self.sampling.max_frames:
                return

    @property
    def events(self) -> list[Any]:
        """A ``"gap": [start, end]`` in the spec stands for frames the decoder lost."""
        from qplug.types import Event

        gap = self.spec.get("gap")
        if not gap:
            return []
        return [Event(scorer="decode_gap", start=gap[0], end=gap[1], peak=0.0, peak_pts=gap[0], threshold=0.0,
                      frames=0)]

    def close(self) -> None:
        self.closed = True


class SynthSource:
    def open(self, path: str, sampling: Sampling) -> SynthReader:
        try:
            with open(path, encoding="utf-8") as stream:
                spec = json.load(stream)
        except FileNotFoundError:
            raise InputError(path, "no such file") from None
        except ValueError as exc:
            raise InputError(path, f"not a synth file: {exc}") from None
        return SynthReader(path, spec, sampling)


class Brightness:
    """Mean grey level in [0, 1]."""

    def __init__(self, fail_on: int | None = None, broken: bool = False) -> None:
        self.fail_on = fail_on  # one frame this scorer cannot score
        self.broken = broken  # it can score nothing (a model out of memory, a server down)
        self.batches: list[int] = []

    def score(self, frames: Sequence[Frame]) -> list[float]:
        self.batches.append(len(frames))
        if self.broken:
            raise RuntimeError("out of memory")
        if self.fail_on is not None and any(f.index == self.fail_on for f in frames):
            raise RuntimeError("scorer exploded")
        return [float(f.rgb.mean()) / 255.0 for f in frames]


class Change:
    """Temporal: absolute grey-level change from the previous frame (None on a source's first frame)."""

    def __init__(self) -> None:
        self.previous: float | None = None

    def reset(self) -> None:
        self.previous = None

    def score(self, frames: Sequence[Frame]) -> list[float | None]:
        out: list[float | None] = []
        for frame in frames:
            level = float(frame.rgb.mean()) / 255.0
            out.append(None if self.previous is None else abs(level - self.previous))
            self.previous = level
        return out


class Span:
    """Source-level: the range of grey levels over the whole source, from ``score_source()``; each
    frame's own value is its level (so frame and source values can be told apart in tests)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.levels: list[float] = []

    def reset(self) -> None:
        self.levels = []

    def score(self, frames: Sequence[Frame]) -> list[float]:
        self.levels.extend(float(f.rgb.mean()) / 255.0 for f in frames)
        return self.levels[-len(frames):]

    def score_source(self) -> Score | None:
        if self.fail:
            raise RuntimeError("no verdict")
        if not self.levels:
            return None
        return Score(value=max(self.levels) - min(self.levels), extra={"frames": len(self.levels)})


@hookimpl
def register_sources(register: Any) -> None:
    register(SourceInfo(name="synth", factory=SynthSource, description="synthetic test clips",
                        extensions=(".synth",), kind="video", events=("decode_gap",)))


@hookimpl
def register_scorers(register: Any) -> None:
    register(ScorerInfo(name="brightness", factory=Brightness, description="mean grey level", range=(0.0, 1.0),
                        higher_is_better=True, batch_size=4, default=True, event_threshold=0.1,
                        event_min_duration=0.5))
    register(ScorerInfo(name="change", factory=Change, description="frame-to-frame change", range=(0.0, 1.0),
                        higher_is_better=True, temporal=True, batch_size=3))
    register(ScorerInfo(name="span", factory=Span, description="range of grey levels over the source",
                        range=(0.0, 1.0), higher_is_better=True, temporal=True, batch_size=2))


class Words:
    def __init__(self, fail_on: int | None = None) -> None:
        self.fail_on = fail_on

    def describe(self, frames: Sequence[Frame]) -> list[str]:
        if any(f.index == self.fail_on for f in frames):
            raise RuntimeError(f"server refused frame {self.fail_on}")
        return ["dark" if f.rgb.mean() < 128 else "bright" for f in frames]


class BrightAsker:
    """Answers from the grey level: a deterministic stand-in for a model-backed asker."""

    def ask(self, frames: Sequence[Frame], question: str, choices: Sequence[str] | None = None) -> list[Any]:
        from qplug.types import Answer

        out = []
        for frame in frames:
            p_yes = float(frame.rgb.mean()) / 255.0
            if choices:
                probs = {c: (p_yes if i == 0 else (1 - p_yes) / (len(choices) - 1)) for i, c in enumerate(choices)}
                best = max(probs, key=probs.__getitem__)
                out.append(Answer(text=best, choice=best, probabilities=probs))
            else:
                out.append(Answer(text="it looks bright" if p_yes > 0.5 else "it looks dark"))
        return out


@hookimpl
def register_describers(register: Any) -> None:
    from qplug.registry import DescriberInfo

    register(DescriberInfo(name="words", factory=Words, description="dark or bright", needs_model=False))


@hookimpl
def register_askers(register: Any) -> None:
    from qplug.registry import AskerInfo

    register(AskerInfo(name="bright", factory=BrightAsker, description="is it bright?", needs_model=False, batch_size=2))
