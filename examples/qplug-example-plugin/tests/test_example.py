"""Tests of the example plugin, written the way any third-party plugin's tests can be.

Most of the work is inherited: the conformance classes from ``qplug.testing`` check the contract
of each component. What is left is what is specific to this plugin, and an end-to-end run over
real image files through qplug's built-in ``images`` source.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import qplug  # noqa: E402
import qplug_example  # noqa: E402
from qplug.plugins import load_host  # noqa: E402
from qplug.testing import frames as synthetic  # noqa: E402
from qplug.testing.conformance import DescriberConformance, ScorerConformance, run_plugin  # noqa: E402
from qplug.testing.harness import builtin_plugin_names  # noqa: E402
from qplug_example.brightness import words_for  # noqa: E402

SCORER = "example.edge_density"
DESCRIBER = "example.brightness_words"


class TestEdgeDensity(ScorerConformance):
    plugin = qplug_example
    plugin_name = "example"
    scorer_name = SCORER
    direction_check = ("blur", "black")  # not "noise": noise adds edges, as the docstring warns


class TestBrightnessWords(DescriberConformance):
    plugin = qplug_example
    plugin_name = "example"
    describer_name = DESCRIBER


# ---------------------------------------------------------------------------------------------
# What is specific to this plugin


def test_edge_density_orders_blur_levels() -> None:
    from qplug_example.edge_density import EdgeDensity

    frames = [synthetic.blurred(sigma) for sigma in (0.5, 1.5, 3.0)]
    values = EdgeDensity().score([synthetic.sharp(), *frames])
    assert values == sorted(values, reverse=True)


def test_edge_density_shares_its_gradient_through_the_frame_cache() -> None:
    from qplug_example.edge_density import CACHE_KEY, EdgeDensity

    frame = synthetic.sharp()
    EdgeDensity().score([frame])
    assert frame.cache[CACHE_KEY].shape == (frame.height, frame.width)
    frame.release()
    assert CACHE_KEY not in frame.cache


def test_edge_density_threshold_is_an_option() -> None:
    from qplug_example.edge_density import EdgeDensity

    frame = synthetic.sharp()
    assert EdgeDensity(threshold=4).score([frame])[0] > EdgeDensity(threshold=40).score([frame])[0]
    with pytest.raises(ValueError):
        EdgeDensity(threshold=0)


def test_brightness_words(qplug_frames) -> None:
    assert words_for(qplug_frames.black.luma) == "very dark, flat"
    assert words_for(qplug_frames.underexposed.luma).startswith("dark")
    assert "clipped highlights" in words_for(qplug_frames.overexposed.luma)
    assert words_for(qplug_frames.sharp.luma) == "mid-tone, normal contrast"


def test_registering_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = ("import sys; import qplug_example; "
            "print(sorted(m for m in ('numpy', 'qplug_example.edge_density', 'qplug_example.brightness') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------
# The score_batch wrapper


def test_timing_wrapper_is_off_by_default(tmp_path, monkeypatch) -> None:
    from qplug.testing.synth import write_synth

    monkeypatch.delenv(qplug_example.TIMING_ENV, raising=False)
    qplug_example.STATS.clear()
    run_plugin(qplug_example, write_synth(tmp_path / "c.qsynth", frames=4), name="example")
    assert qplug_example.STATS == {}


def test_timing_wrapper_counts_batches_and_frames(tmp_path, monkeypatch) -> None:
    from qplug.testing.synth import write_synth

    monkeypatch.setenv(qplug_example.TIMING_ENV, "1")
    monkeypatch.setattr(qplug_example, "STATS", {})
    clip = write_synth(tmp_path / "c.qsynth", frames=20, width=64, height=48)
    result = run_plugin(qplug_example, clip, name="example", batch_size=8)
    stats = qplug_example.STATS[SCORER]
    # the run cuts batches of 8; the scorer prefers 16, so each batch reaches it whole
    assert (stats["batches"], stats["frames"]) == (3, 20)
    assert stats["seconds"] > 0
    assert all(v is not None for v in result.scores(SCORER))  # the wrapper passes values through


# ---------------------------------------------------------------------------------------------
# End to end, over PNG files, through the built-in images source


@pytest.fixture
def pngs(tmp_path: Path) -> list[str]:
    pytest.importorskip("qplug_images.source", reason="qplug's built-in images source is not installed")
    if "images" not in builtin_plugin_names():
        pytest.skip("QPLUG_LOAD_PLUGINS leaves out qplug's images source")
    variants = synthetic.variants(names=("sharp", "blurred", "black"))
    return [synthetic.save_png(frame, tmp_path / f"{name}.png") for name, frame in variants.items()]


def test_end_to_end_with_run_plugin(pngs: list[str]) -> None:
    result = run_plugin(qplug_example, pngs, name="example", describers=[DESCRIBER], scorers=[SCORER])
    assert not result.summary.errors
    sharp, blurred, black = result.scores(SCORER)
    assert sharp > blurred > black == 0.0
    assert result.frames[2].descriptions[DESCRIBER] == "very dark, flat"


def test_end_to_end_through_the_installed_entry_point(pngs: list[str], tmp_path: Path) -> None:
    """qplug.score with the plugins loaded the way the qplug command loads them."""
    names = {ep.name for ep in metadata.entry_points(group="qplug")}
    if "example" not in names:
        pytest.skip("qplug-example-plugin is not installed (pip install -e examples/qplug-example-plugin)")
    host = load_host(allow=["example", "images"], strict=True)
    record = {r.name: r for r in host.plugins()}["example"]
    assert record.version == qplug_example.__version__
    assert record.registers == {"scorers": [SCORER], "describers": [DESCRIBER]}
    assert "score_batch" in record.hooks
    result = qplug.score(str(tmp_path / "*.png"), scorers=[SCORER], describers=[DESCRIBER], host=host)
    by_name = {Path(f.source_id).stem: f for f in result.frames}
    assert set(by_name) == {"sharp", "blurred", "black"}
    assert by_name["sharp"].scores[SCORER] > by_name["blurred"].scores[SCORER]
    assert all(s.pooled[SCORER]["mean"] is not None for s in result.sources)
