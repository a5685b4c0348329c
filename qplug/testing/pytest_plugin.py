"""pytest plugin: qplug fixtures for plugin authors. Loaded through the ``pytest11`` entry point.

Every pytest run in an environment where qplug is installed imports this module, including runs
of unrelated projects, so it defines fixtures and nothing else: no hooks, no options, no import of
numpy or OpenCV until a test asks for a fixture that needs pixels.

Fixtures:

- ``qplug_host``: a fresh :class:`~qplug.plugins.PluginHost` with no plugin loaded; add yours with
  ``qplug_host.add_plugin(my_plugin, name="mine")``.
- ``qplug_host_with_builtins``: a fresh host with qplug's own plugins (images, video, qc,
  reports), narrowed by ``QPLUG_LOAD_PLUGINS`` when set; other installed plugins stay out.
- ``qplug_frames``: a :class:`~qplug.testing.frames.FrameSet` of synthetic variants
  (``sharp``, ``blurred``, ``noisy``, ``underexposed``, ``overexposed``, ``jpeg``, ``black``).
- ``qplug_video_frames``: twelve frames of a synthetic 25 fps clip with pts, duration and timecode.
- ``qplug_offline``: blocks connections to other machines for the test (see :mod:`qplug.testing.network`).

None of them touches the network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from qplug.plugins import PluginHost
    from qplug.testing.frames import FrameSet
    from qplug.types import Frame


@pytest.fixture
def qplug_host() -> "PluginHost":
    """A fresh plugin host with qplug's hooks and no plugin at all."""
    from qplug.plugins import new_host

    return new_host(trace=None)


@pytest.fixture
def qplug_host_with_builtins() -> "PluginHost":
    """A fresh host with qplug's built-in plugins only (honouring ``QPLUG_LOAD_PLUGINS``)."""
    from qplug.testing.harness import make_host

    return make_host(builtins=True)


@pytest.fixture
def qplug_frames() -> "FrameSet":
    """Fresh synthetic frames, one per variant, 128x96, indexed 0..6 in :data:`~qplug.testing.frames.VARIANTS` order."""
    from qplug.testing.frames import variants

    return variants()


@pytest.fixture
def qplug_video_frames() -> "list[Frame]":
    """A 12-frame synthetic clip at 25 fps: pts ``i / 25``, duration 0.04 s, timecodes 00:00:00:00 on."""
    from qplug.testing.frames import video_frames

    return video_frames(count=12, fps=25.0)


@pytest.fixture
def qplug_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any connection to another machine raise :class:`~qplug.testing.network.NetworkBlockedError`."""
    from qplug.testing.network import block_network

    block_network(monkeypatch)
