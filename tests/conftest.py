"""Shared test helpers. Tests run single-threaded: tiny workloads are 5-12x faster that way here."""

from __future__ import annotations

import os
import signal

os.environ.setdefault("OMP_NUM_THREADS", "1")

# A test suite started in the background by a non-interactive shell (`cmd &`, some CI runners) inherits
# SIGINT ignored, and so would every qplug it starts: Python installs no KeyboardInterrupt handler for
# an ignored SIGINT, and the interrupt tests would see a run that cannot be interrupted. A handled
# signal is reset to its default at exec, so children start as from a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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
