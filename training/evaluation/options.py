"""What an evaluation run measures and where: :class:`EvalOptions`."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qplug_vlm.choices import DEFAULT_OPTION_ORDER

from .brisque import DEFAULT_BENCH_VENV


@dataclass(kw_only=True)
class EvalOptions:
    """Every setting of :func:`qplug_training.evaluation.evaluate_model`, recorded as ``settings`` in
    ``eval.json``. The names are ``bench/eval_default_model.py``'s option names (``--max-new-tokens`` is
    ``max_new_tokens``), and that script documents each one.

    ``limit`` caps every section at about N items: it is the default of ``images`` and ``questions``
    and caps ``describe``. ``speed_clip`` / ``speed_long_clip`` are 1080p H.264 clips for ``qplug score``'s
    speed (reused when present, else made by the ``make_clip`` given to ``evaluate_model``); None
    skips that measurement.
    """

    model: str
    corpus: Path
    out: Path = Path("eval")
    limit: int | None = None
    images: int | None = None
    questions: int | None = None
    describe: int = 200
    #: How the asker reads lettered options (:mod:`qplug_vlm.choices`; ``given``: the protocol before v5).
    option_order: str = DEFAULT_OPTION_ORDER
    max_new_tokens: int = 80
    batch_size: int = 16
    threads: int = 2
    skip_assessment: bool = False
    skip_perception: bool = False
    skip_description: bool = False
    skip_video: bool = False
    skip_speed: bool = False
    #: Corpus images per split (training photos, validation photos) for the seen/unseen comparison; 0 skips it.
    generalisation: int = 744
    #: The corpus whose ``metadata.jsonl`` holds those images (default: ``corpus``).
    generalisation_corpus: Path | None = None
    skip_brisque: bool = False
    video_photos: int = 3
    real_videos: bool = True
    video_clips: int | None = None
    video_size: str = "960x540"
    video_seconds: float = 4.0
    video_fps: float = 2.0
    video_windows: int = 1
    x264_preset: str = "veryfast"
    vmaf_subsample: int = 1
    speed_clip: Path | None = None
    speed_long_clip: Path | None = None
    speed_repeat: int = 4
    cli_repeat: int = 3
    bench_venv: Path = DEFAULT_BENCH_VENV
    #: BRISQUE's model files and the real videos (default: ``bench_venv / "assets"``).
    assets: Path | None = None

    def __post_init__(self) -> None:
        for name in ("corpus", "out", "generalisation_corpus", "speed_clip", "speed_long_clip", "bench_venv",
                     "assets"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                setattr(self, name, Path(value))
        self.assets = self.assets or self.bench_venv / "assets"
        self.images = self.images if self.images is not None else self.limit
        self.questions = self.questions if self.questions is not None else self.limit
        self.describe = min(self.describe, self.limit) if self.limit is not None else self.describe
        self.model = os.path.realpath(self.model)

    def settings(self) -> dict[str, Any]:
        """The options as JSON values (paths as strings), in declaration order."""
        return {f.name: str(v) if isinstance(v, Path) else v
                for f in dataclasses.fields(self) for v in (getattr(self, f.name),)}
