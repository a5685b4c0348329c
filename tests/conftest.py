"""Shared test helpers. Tests run single-threaded: tiny workloads are 5-12x faster that way here."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")


import pytest  # noqa: E402


@pytest.fixture
def no_model_env(monkeypatch):
    """No model, adapter, device or dtype from the environment: each model test says what it loads."""
    from qplug_vlm import backend

    for name in (backend.ENV_MODEL, backend.ENV_ADAPTER, backend.ENV_DEVICE, backend.ENV_DTYPE):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def odd_frames():
    """Four frames of different sizes and aspect ratios (different token counts for processors that keep
    the aspect ratio: Idefics3, Qwen, any-res tiles)."""
    import numpy as np

    from qplug.types import Frame

    rng = np.random.default_rng(7)
    sizes = [(48, 64), (120, 40), (32, 32), (90, 160)]
    return [Frame.from_rgb(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), source_id="mem", index=i)
            for i, (h, w) in enumerate(sizes)]
