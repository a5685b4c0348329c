"""The built-in ``qc`` scorers: registration, monotonic behaviour, calibration, ranges, tiny frames."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import subprocess
import sys
from itertools import pairwise
from typing import Any

import cv2
import numpy as np
import pytest
from qplug_qc import SCORERS, measures, register_scorers

from qplug.registry import ScorerInfo, resolve
from qplug.types import Frame


def scene(height: int = 360, width: int = 480, seed: int = 0) -> np.ndarray:
    """A natural-ish RGB picture: smooth multi-scale shading, flat shapes with soft edges, text."""
    rng = np.random.default_rng(seed)
    shade = np.zeros((height, width), np.float32)
    for sigma in (3, 12, 48):
        shade += cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), sigma) * sigma ** 0.5
    shade = (shade - shade.mean()) / shade.std()
    img = np.clip(np.array([150, 120, 90], np.float32) + shade[..., None] * np.float32(30) + 0.5, 0, 255).astype(np.uint8)
    for _ in range(25):
        colour = tuple(int(v) for v in rng.integers(20, 236, 3))
        x, y, r = int(rng.integers(0, width)), int(rng.integers(0, height)), int(rng.integers(4, 40))
        if rng.random() < 0.5:
            cv2.circle(img, (x, y), r, colour, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(img, (x, y), (x + r, y + r // 2 + 1), colour, -1, cv2.LINE_AA)
    cv2.putText(img, "qplug", (20, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (240, 240, 240), 2, cv2.LINE_AA)
    return img


def with_noise(rgb: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    """Add the same grey Gaussian noise to all three channels, so luma gets exactly ``sigma``."""
    noise = np.random.default_rng(seed).normal(0, sigma, rgb.shape[:2])[..., None]
    return np.clip(rgb + noise + 0.5, 0, 255).astype(np.uint8) if sigma else rgb


def build(name: str, **options: Any) -> Any:
    return resolve(SCORERS[name].factory)(**options)


def value(name: str, rgb: np.ndarray, **options: Any) -> float:
    """The score of one RGB picture; fails the test if the scorer gave None."""
    result = build(name, **options).score([Frame.from_rgb(np.ascontiguousarray(rgb))])[0]
    assert isinstance(result, float), (name, result)
    return result


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    assert decoded is not None
    return np.ascontiguousarray(decoded[..., ::-1])


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    return scene()


# ---------------------------------------------------------------------------------------------
# Registration


def test_importing_the_plugin_stays_light() -> None:
    code = ("import sys, qplug_qc; heavy = [m for m in ('numpy', 'cv2', 'qplug_qc.scorers') if m in sys.modules];"
            "print(heavy); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_registers_every_scorer_with_metadata() -> None:
    collected: list[ScorerInfo] = []
    register_scorers(collected.append)
    assert [i.name for i in collected] == list(SCORERS) == [
        "sharpness", "noise", "blocking", "exposure", "underexposure", "overexposure", "contrast",
        "colorfulness", "black", "frozen"]
    for info in collected:
        assert isinstance(info.factory, str) and info.factory.startswith("qplug_qc.scorers:")
        assert callable(resolve(info.factory))
        assert info.default and info.unit and info.description
        assert not info.needs_model and not info.needs_gpu
        doc = resolve(info.factory).__doc__ or ""
        assert "Range [" in doc and "better" in doc, info.name  # each class documents range and direction
    black, frozen = SCORERS["black"], SCORERS["frozen"]
    assert (black.event_threshold, black.event_min_duration, black.higher_is_better) == (0.98, 2.0, False)
    assert (frozen.event_threshold, frozen.event_min_duration, frozen.higher_is_better) == (0.001, 2.0, True)
    assert frozen.temporal and "previous" in frozen.inputs
    assert [n for n, i in SCORERS.items() if i.temporal] == ["frozen"]
    assert [n for n, i in SCORERS.items() if "rgb" in i.inputs] == ["colorfulness"]


def test_loaded_through_the_entry_point() -> None:
    from qplug.plugins import load_host

    catalog = load_host(allow=["qc"]).catalog()
    assert set(SCORERS) <= set(catalog.scorers)
    assert catalog.owners[("scorers", "sharpness")] == "qc"


def test_bad_options_are_refused() -> None:
    bad: list[tuple[str, dict[str, Any]]] = [
        ("black", {"pix_th": 2}), ("underexposure", {"level": 300}), ("noise", {"keep": 0}), ("blocking", {"grid": 1}),
        ("colorfulness", {"max_side": 2}), ("sharpness", {"reference_lines": "x"})]
    for name, options in bad:
        with pytest.raises(ValueError):
            build(name, **options)
    with pytest.raises(TypeError):
        build("contrast", typo=1)


# ---------------------------------------------------------------------------------------------
# Each measure responds the right way


def test_sharpness_falls_with_blur(picture: np.ndarray) -> None:
    values = [value("sharpness", cv2.GaussianBlur(picture, (0, 0), s) if s else picture) for s in (0, 1, 2, 4)]
    assert all(a > b for a, b in pairwise(values)), values
    assert values[0] > 1.5 and values[-1] < 1.0


def test_sharpness_is_comparable_between_uhd_and_its_hd_downscale(picture: np.ndarray) -> None:
    uhd = cv2.resize(picture, (3840, 2160), interpolation=cv2.INTER_CUBIC)
    hd = cv2.resize(uhd, (1920, 1080), interpolation=cv2.INTER_AREA)
    assert value("sharpness", uhd) == pytest.approx(value("sharpness", hd), abs=0.1)


def test_noise_rises_with_added_noise_and_is_calibrated(picture: np.ndarray) -> None:
    smooth = cv2.GaussianBlur(picture, (0, 0), 2)
    sigmas = (0, 5, 10, 20)
    values = [value("noise", with_noise(smooth, s)) for s in sigmas]
    assert all(a < b for a, b in pairwise(values)), values
    assert values[0] < 1.0
    for sigma, estimate in zip(sigmas[1:], values[1:]):
        assert estimate == pytest.approx(sigma, rel=0.3)


def test_noise_ignores_edges_and_texture(picture: np.ndarray) -> None:
    # The sharp, edge-rich picture must not read as much noisier than its smooth version.
    assert value("noise", picture) < 1.5
    assert value("noise", with_noise(picture, 8)) == pytest.approx(8, rel=0.3)


def test_blocking_rises_as_jpeg_quality_falls(picture: np.ndarray) -> None:
    assert value("blocking", picture) < 0.05
    values = [value("blocking", jpeg(picture, q)) for q in (95, 75, 50, 30, 10)]
    assert all(a < b for a, b in pairwise(values)), values
    assert values[-1] > 0.3


def test_exposure_and_clipping_follow_brightness(picture: np.ndarray) -> None:
    dark = (picture * 0.1).astype(np.uint8)
    bright = np.clip(picture.astype(np.int16) + 110, 0, 255).astype(np.uint8)
    exposure = [value("exposure", p) for p in (dark, picture, bright)]
    assert exposure[0] < exposure[1] < exposure[2]
    assert 0.3 < exposure[1] < 0.7
    under = [value("underexposure", p) for p in (dark, picture, bright)]
    over = [value("overexposure", p) for p in (dark, picture, bright)]
    assert under[0] > 0.01 and under[1] < 0.01 and under[2] == 0.0
    assert over[2] > 0.1 and over[1] < 0.05 and over[0] == 0.0
    grey = np.full((8, 8, 3), 128, np.uint8)
    assert value("exposure", grey) == pytest.approx(128 / 255)
    edges = np.zeros((2, 2, 3), np.uint8)
    edges[0] = 5  # exactly at the underexposure level: counted
    edges[1, 0] = 250
    edges[1, 1] = 249
    assert value("underexposure", edges) == 0.5 and value("overexposure", edges) == 0.25


def test_contrast_falls_with_contrast_reduction(picture: np.ndarray) -> None:
    mean = picture.mean()
    values = [value("contrast", np.clip(mean + (picture - mean) * k + 0.5, 0, 255).astype(np.uint8))
              for k in (1.0, 0.5, 0.25, 0.0)]
    assert all(a > b for a, b in pairwise(values)), values
    assert values[-1] == 0.0
    half = np.zeros((4, 4, 3), np.uint8)
    half[:2] = 255
    assert value("contrast", half) == pytest.approx(0.5)


def test_colorfulness_is_zero_for_grey_and_high_for_saturated(picture: np.ndarray) -> None:
    grey = np.repeat(cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    assert value("colorfulness", grey) == pytest.approx(0.0, abs=1e-6)
    saturated = np.zeros((64, 64, 3), np.uint8)
    saturated[:32, :32] = (255, 0, 0)
    saturated[:32, 32:] = (0, 255, 0)
    saturated[32:, :32] = (0, 0, 255)
    saturated[32:, 32:] = (255, 255, 0)
    washed = (grey * 0.7 + picture * 0.3).astype(np.uint8)
    values = [value("colorfulness", p) for p in (washed, picture, saturated)]
    assert 0 < values[0] < values[1] < values[2] and values[2] > 100


def test_colorfulness_sample_matches_full_picture() -> None:
    big = cv2.resize(scene(seed=3), (1920, 1080), interpolation=cv2.INTER_CUBIC)
    assert value("colorfulness", big) == pytest.approx(measures.hasler_susstrunk(big), rel=0.02)


def test_black_follows_ffmpeg_blackdetect(picture: np.ndarray) -> None:
    assert value("black", np.zeros((90, 160, 3), np.uint8)) == 1.0
    assert value("black", np.full((90, 160, 3), 16, np.uint8)) == 1.0
    assert value("black", picture) < 0.05
    levels = np.zeros((1, 2, 3), np.uint8)
    levels[0, 0], levels[0, 1] = 25, 26  # pix_th 0.10 of 255: 25 is black, 26 is not
    assert value("black", levels) == 0.5
    assert value("black", levels, pix_th=0.2) == 1.0


def test_frozen_compares_with_the_previous_frame_of_the_source(picture: np.ndarray) -> None:
    scorer = build("frozen")
    still = [Frame.from_rgb(picture, source_id="a.mp4", index=i) for i in range(3)]
    assert scorer.score(still) == [None, 0.0, 0.0]
    moved = Frame.from_rgb(np.ascontiguousarray(np.roll(picture, 5, axis=1)), source_id="a.mp4", index=3)
    change = scorer.score([moved])[0]
    assert change is not None and change > 0.001
    assert scorer.score([Frame.from_rgb(picture, source_id="a.mp4", index=4)])[0] == pytest.approx(change, rel=0.2)
    scorer.reset()
    assert scorer.score([Frame.from_rgb(picture, source_id="a.mp4", index=5)]) == [None]
    # a new source without reset(), or a size change, starts over instead of comparing across
    assert scorer.score([Frame.from_rgb(picture, source_id="b.mp4", index=0)]) == [None]
    assert scorer.score([Frame.from_rgb(picture[:100], source_id="b.mp4", index=1)]) == [None]
    flat = [Frame.from_rgb(np.full((9, 9, 3), v, np.uint8), source_id="c") for v in (0, 255)]
    assert scorer.score(flat) == [None, 1.0]


# ---------------------------------------------------------------------------------------------
# Ranges, tiny frames, luma-only frames, sampling


def varied_frames() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((1, 1), (2, 2), (7, 9), (16, 16), (3, 40))]
    frames += [np.zeros((16, 16, 3), np.uint8), np.full((16, 16, 3), 255, np.uint8),
               np.full((1, 1, 3), 255, np.uint8), rng.integers(0, 256, (120, 200, 3), dtype=np.uint8),
               scene(), jpeg(scene(seed=1), 5), (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)[..., None]
               .repeat(3, axis=2)]
    return [np.ascontiguousarray(f) for f in frames]


@pytest.mark.parametrize("name", list(SCORERS))
def test_values_stay_in_the_declared_range(name: str) -> None:
    info = SCORERS[name]
    low, high = info.range
    scorer = build(name)
    frames = varied_frames()
    values = []
    for rgb in frames:
        values += scorer.score([Frame.from_rgb(rgb, source_id="s"), Frame.from_rgb(rgb[:, ::-1].copy(), source_id="s")])
    for v in values:
        assert v is None or (isinstance(v, float) and low <= v <= high), (name, v)
    if not info.temporal:
        # Only frames too small to measure, or with nothing measurable (fully clipped: noise), give None.
        for rgb, v in zip(frames, values[::2]):
            luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            clipped = bool(np.all((luma <= 5) | (luma >= 250)))
            if rgb.shape[0] >= 16 and rgb.shape[1] >= 16 and not (name == "noise" and clipped):
                assert v is not None, (name, rgb.shape)


def test_tiny_frames_give_sensible_values() -> None:
    one = Frame.from_rgb(np.full((1, 1, 3), 200, np.uint8))
    assert build("sharpness").score([one]) == [0.0]
    assert build("noise").score([one]) == [None]
    assert build("blocking").score([one]) == [None]
    assert build("exposure").score([one])[0] == pytest.approx(200 / 255)
    assert build("colorfulness").score([one]) == [0.0]


def luma_only_frame(luma: np.ndarray, calls: list[str]) -> Frame:
    def rgb_loader() -> np.ndarray:
        calls.append("rgb")
        raise AssertionError("a luma-only scorer asked for RGB")

    return Frame(source_id="video.mp4", index=0, width=luma.shape[1], height=luma.shape[0],
                 luma_loader=lambda: luma, rgb_loader=rgb_loader)


def test_luma_scorers_never_touch_rgb(picture: np.ndarray) -> None:
    luma = cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY)
    # a Y plane handed out as a view into a padded decoder buffer (row stride > width)
    padded = np.zeros((luma.shape[0], luma.shape[1] + 32), np.uint8)
    padded[:, :luma.shape[1]] = luma
    calls: list[str] = []
    luma_names = [n for n, i in SCORERS.items() if "rgb" not in i.inputs]
    from_rgb = Frame.from_rgb(picture)
    for name in luma_names:
        frames = [luma_only_frame(luma, calls), luma_only_frame(padded[:, :luma.shape[1]], calls)]
        got = build(name).score(frames)
        expected = build(name).score([from_rgb, from_rgb])
        if SCORERS[name].temporal:
            assert got == [None, 0.0] and expected == [None, 0.0]
        else:
            assert got[1] == pytest.approx(got[0])
            assert got[0] == pytest.approx(expected[0], abs=0.02)
    assert calls == []


def test_scorers_share_per_frame_work(picture: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    counts: dict[str, int] = {}

    def counting(fn_name: str) -> Any:
        original = getattr(measures, fn_name)

        def wrapper(*args: Any, **kw: Any) -> Any:
            counts[fn_name] = counts.get(fn_name, 0) + 1
            return original(*args, **kw)
        return wrapper

    for fn_name in ("luma_moments", "row_bands"):
        monkeypatch.setattr(measures, fn_name, counting(fn_name))
    frame = Frame.from_rgb(picture)
    for name in SCORERS:
        build(name).score([frame])
    assert counts == {"luma_moments": 1, "row_bands": 1}
    assert {k for k in frame.cache if k.startswith("qc.")} >= {"qc.luma_moments", "qc.luma_bands.1"}


def test_row_band_sampling_matches_the_full_frame() -> None:
    luma = cv2.cvtColor(cv2.resize(scene(seed=2), (1920, 1080), interpolation=cv2.INTER_CUBIC), cv2.COLOR_RGB2GRAY)
    noisy = cv2.cvtColor(with_noise(cv2.resize(scene(seed=2), (1920, 1080)), 4), cv2.COLOR_RGB2GRAY)
    stack, band = measures.row_bands(luma)
    assert band == measures.BAND_ROWS and stack.size <= 1.1 * measures.SAMPLE_PIXELS and stack.size < luma.size / 3
    full = measures.laplacian_variance(luma, luma.shape[0])
    assert measures.laplacian_variance(stack, band) == pytest.approx(full, rel=0.15)
    sampled = measures.immerkaer_sigma(*measures.row_bands(noisy))
    assert sampled == pytest.approx(measures.immerkaer_sigma(noisy, noisy.shape[0]), rel=0.05)
    assert sampled == pytest.approx(4, rel=0.15)
