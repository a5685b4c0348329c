"""The broadcast checks of the ``qc`` plugin: legal range (EBU R 103), combing and letterbox bars.

Array-level tests pin each measure's behaviour; the video tests make clips with ffmpeg (small, a
second or two, once per session) and score them through the real pipeline (``qplug.score``) and the
real video source: a flagged clip must be told from its clean original, with no alarm on the clean one.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import subprocess
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from qplug_qc import ALL_SCORERS, BROADCAST, SCORERS, measures, register_scorers
from qplug_qc.scorers import IllegalLumaScorer
from qplug_video import colour
from qplug_video.binary import ffmpeg_exe
from qplug_video.source import VideoSource

import qplug
from qplug.registry import resolve
from qplug.types import Frame, Planes, Score

from .test_qc_scorers import scene

NAMES = ["illegal_luma", "illegal_chroma", "combing", "bars"]


def build(name: str, **options: Any) -> Any:
    return resolve(ALL_SCORERS[name].factory)(**options)


def one(name: str, frame: Frame, **options: Any) -> Score | None:
    result = build(name, **options).score([frame])[0]
    assert result is None or isinstance(result, Score), result
    if result is not None:
        low, high = ALL_SCORERS[name].range
        assert low <= result.value <= high
    return result


def planes_frame(y: np.ndarray, u: np.ndarray | None = None, v: np.ndarray | None = None, bit_depth: int = 8,
                 full_range: bool = False) -> Frame:
    """A frame that has only coded planes (as a YUV video source gives them) and luma from them."""
    mid = 128 << (bit_depth - 8)
    shape = (max(y.shape[0] // 2, 1), max(y.shape[1] // 2, 1))
    u = np.full(shape, mid, y.dtype) if u is None else u
    v = np.full(shape, mid, y.dtype) if v is None else v
    planes = Planes(y=y, u=u, v=v, bit_depth=bit_depth, full_range=full_range)
    return Frame(source_id="v", index=0, width=y.shape[1], height=y.shape[0], planes_loader=lambda: planes)


# ---------------------------------------------------------------------------------------------
# Registration


def test_broadcast_group_is_registered_apart_and_not_by_default() -> None:
    collected: list[Any] = []
    register_scorers(collected.append)
    assert [i.name for i in collected] == list(SCORERS)  # the default set's own hook is unchanged
    assert list(BROADCAST) == NAMES and ALL_SCORERS == {**SCORERS, **BROADCAST}
    for info in BROADCAST.values():
        assert not info.default and not info.needs_model and info.unit == "fraction"
        assert info.range == (0.0, 1.0) and info.higher_is_better is False
        assert info.event_threshold is not None and info.range[0] <= info.event_threshold <= info.range[1]
        doc = resolve(info.factory).__doc__ or ""
        assert "Range [0, 1]" in doc and "lower is better" in doc, info.name
    thresholds = {n: (i.event_threshold, i.event_min_duration) for n, i in BROADCAST.items()}
    assert thresholds == {"illegal_luma": (0.01, 0.0), "illegal_chroma": (0.01, 0.0), "combing": (0.01, 1.0),
                          "bars": (0.02, 2.0)}


def test_loaded_through_the_entry_point_after_the_default_set() -> None:
    from qplug.plugins import load_host

    catalog = load_host(allow=["qc"]).catalog()
    assert list(catalog.scorers) == [*SCORERS, *BROADCAST] and not catalog.problems
    assert all(catalog.owners[("scorers", n)] == "qc" for n in BROADCAST)
    assert [n for n, i in catalog.scorers.items() if i.default] == list(SCORERS)


def test_bad_options_are_refused() -> None:
    for name, options in [("illegal_luma", {"limits": "ebu"}), ("combing", {"threshold": 300}),
                          ("combing", {"combpel": 0}), ("bars", {"limit": -1}), ("bars", {"min_active": 2})]:
        with pytest.raises(ValueError):
            build(name, **options)


# ---------------------------------------------------------------------------------------------
# Legal range


def test_legal_limits_follow_r103_and_the_nominal_ranges() -> None:
    assert measures.legal_limits(8, 16, 235, 0.05) == (5, 246)  # EBU R 103's own 8-bit figures
    assert measures.legal_limits(10, 16, 235, 0.05) == (20, 984)  # ... and 10-bit ones
    assert measures.legal_limits(10, 16, 235, 0.0) == (64, 940)
    assert measures.legal_limits(10, 16, 240, 0.0) == (64, 960)
    assert measures.legal_limits(8, 16, 240, 0.05) == (5, 251)


def test_illegal_luma_counts_excursions_beyond_the_tolerance() -> None:
    y = np.full((120, 160), 120, np.uint8)
    assert one("illegal_luma", planes_frame(y)).value == 0.0  # type: ignore[union-attr]
    y[:12, :40] = 250  # 2.5 % super-white beyond R 103's 246
    y[-12:, -20:] = 2  # 1.25 % sub-black below its 5
    y[50:60, :] = 240  # 8.3 % super-white inside the tolerance: not an error, but reported
    got = one("illegal_luma", planes_frame(y))
    assert got is not None and got.value == pytest.approx(0.025 + 0.0125)
    assert got.extra is not None and got.extra["above"] == pytest.approx(0.025 + 10 / 120)
    assert got.extra["below"] == pytest.approx(0.0125) and got.extra["limits"] == [5, 246]
    nominal = one("illegal_luma", planes_frame(y), limits="nominal")
    assert nominal is not None and nominal.value == pytest.approx(0.025 + 0.0125 + 10 / 120)
    assert nominal.extra is not None and nominal.extra["limits"] == [16, 235]


def test_illegal_luma_at_ten_bits_and_when_there_is_nothing_to_check() -> None:
    y = np.full((40, 40), 500, np.uint16)
    y[:4] = 1000  # beyond 984
    y[4:8] = 960  # beyond 940, inside the tolerance
    got = one("illegal_luma", planes_frame(y, bit_depth=10))
    assert got is not None and got.value == pytest.approx(0.1) and got.extra["above"] == pytest.approx(0.2)  # type: ignore[index]
    assert one("illegal_luma", planes_frame(y.astype(np.uint8), full_range=True)) is None  # full range: no illegal level
    assert one("illegal_luma", Frame.from_rgb(scene())) is None  # no coded planes (a still image)
    tiny = planes_frame(np.array([[255, 0]], np.uint8))  # fewer pixels than OpenCV's scalar quirk allows
    assert one("illegal_luma", tiny).value == 1.0  # type: ignore[union-attr]


def test_illegal_chroma_counts_both_planes() -> None:
    y = np.full((80, 80), 120, np.uint8)
    u = np.full((40, 40), 128, np.uint8)
    v = u.copy()
    u[:4] = 255  # 10 % of Cb beyond 251
    v[:2] = 0  # 5 % of Cr below 5
    got = one("illegal_chroma", planes_frame(y, u, v))
    assert got is not None and got.value == pytest.approx((0.1 + 0.05) / 2)
    assert one("illegal_luma", planes_frame(y, u, v)).value == 0.0  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------
# Combing


def woven(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """A frame whose even lines come from ``first`` and odd lines from ``second`` (two fields)."""
    out = first.copy()
    out[1::2] = second[1::2]
    return out


def combing(luma: np.ndarray) -> float:
    got = one("combing", Frame(source_id="v", index=0, width=luma.shape[1], height=luma.shape[0],
                               luma_loader=lambda: luma))
    assert got is not None
    return got.value


@pytest.mark.parametrize("size", [(360, 480), (1080, 1920)])
def test_combing_finds_woven_fields_of_a_moving_picture(size: tuple[int, int]) -> None:
    height, width = size
    picture = cv2.cvtColor(cv2.resize(scene(), (width + 16, height), interpolation=cv2.INTER_CUBIC), cv2.COLOR_RGB2GRAY)
    progressive = np.ascontiguousarray(picture[:, :width])
    interlaced = woven(progressive, np.ascontiguousarray(picture[:, 8:width + 8]))  # moved 8 px between fields
    assert combing(progressive) == 0.0
    assert combing(interlaced) > 0.05
    assert combing(woven(progressive, progressive)) == 0.0  # nothing moved: no combing to see


def test_progressive_detail_does_not_read_as_combed() -> None:
    rows = np.arange(360)[:, None]
    cols = np.arange(480)[None, :]
    rng = np.random.default_rng(0)
    clean = {
        "stripes of 3 lines": 128 + 100 * np.sin(2 * np.pi * rows / 3) * np.ones_like(cols),
        "stripes of 4 lines": np.where(rows % 4 < 2, 220, 30) * np.ones_like(cols),
        "thin lines": np.where(rows % 9 == 0, 235, 16) * np.ones_like(cols),
        "noise": 128 + rng.normal(0, 12, (360, 480)),
        "checks": np.where((rows // 3 + cols // 3) % 2, 200, 40),
        "photo": cv2.cvtColor(scene(), cv2.COLOR_RGB2GRAY),
    }
    for name, picture in clean.items():
        assert combing(np.clip(picture, 0, 255).astype(np.uint8)) == 0.0, name
    # One-line stripes are the combing pattern itself: in a single frame they cannot be told apart.
    assert combing(np.where(rows % 2, 200, 40).astype(np.uint8) * np.ones((1, 480), np.uint8)) == 1.0


# ---------------------------------------------------------------------------------------------
# Bars


def bars(luma: np.ndarray, **options: Any) -> Score | None:
    frame = Frame(source_id="v", index=0, width=luma.shape[1], height=luma.shape[0], luma_loader=lambda: luma)
    return one("bars", frame, **options)


def test_bars_measure_each_side() -> None:
    picture = cv2.cvtColor(scene(), cv2.COLOR_RGB2GRAY)  # 360x480
    boxed = cv2.copyMakeBorder(picture, 40, 20, 0, 0, cv2.BORDER_CONSTANT, value=0)
    got = bars(boxed)
    assert got is not None and got.extra is not None
    assert (got.extra["top"], got.extra["bottom"], got.extra["left"], got.extra["right"]) == (40 / 420, 20 / 420, 0, 0)
    assert got.extra["active"] == [0, 40, 480, 360] and got.value == pytest.approx(60 / 420)
    pillar = cv2.copyMakeBorder(picture, 0, 0, 60, 60, cv2.BORDER_CONSTANT, value=3)
    got = bars(pillar)
    assert got is not None and got.value == pytest.approx(120 / 600) and got.extra["left"] == 0.1  # type: ignore[index]
    assert bars(picture).value == 0.0  # type: ignore[union-attr]


def test_bars_are_not_read_into_dark_pictures() -> None:
    assert bars(np.zeros((90, 160), np.uint8)) is None  # a black frame is not a letterbox
    rng = np.random.default_rng(3)
    night = rng.integers(0, 12, (360, 480)).astype(np.uint8)  # a dark sky ...
    night[rng.integers(0, 360, 300), rng.integers(0, 480, 300)] = 200  # ... with stars everywhere
    night[250:] = 90  # and a lit street below
    got = bars(night)
    assert got is not None and got.value < 0.02
    title = np.zeros((360, 480), np.uint8)
    cv2.putText(title, "THE END", (150, 190), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 235, 2)
    assert bars(title) is None  # a title on black is not a picture in bars
    boxed = cv2.copyMakeBorder(cv2.cvtColor(scene(), cv2.COLOR_RGB2GRAY), 60, 60, 0, 0, cv2.BORDER_CONSTANT, value=0)
    cv2.putText(boxed, "subtitle", (180, 455), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 235, 2)  # text in the bottom bar
    got = bars(boxed)
    assert got is not None and got.extra["top"] == 60 / 480 and 0 < got.extra["bottom"] < 60 / 480  # type: ignore[index]


# ---------------------------------------------------------------------------------------------
# Through the real pipeline and video source


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *args], check=True)


SAMPLE = str(Path(__file__).resolve().parents[1] / "samples" / "pan.mp4")  # a pan over a real photo


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("broadcast")
    paths = {name: folder / f"{name}.mp4" for name in (
        "progressive", "interlaced", "stripes", "letterbox", "pillarbox", "legal", "illegal", "ten_bit", "ten_bit_709", "ten_bit_2020", "full_range")}
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-pix_fmt", "yuv420p"]
    pan = ["-ss", "0.5", "-t", "2.4", "-i", SAMPLE]
    # At the sample's own 1280x720: a slow pan, a few pixels between fields, as in real footage.
    _ffmpeg(*pan, *x264, str(paths["progressive"]))
    # Two fields from two moments (half the frame rate), as an interlaced master; not flagged, so the
    # source does not deinterlace it: the case where only looking at the picture finds it.
    _ffmpeg(*pan, "-vf", "tinterlace=interleave_top,setfield=prog", *x264, str(paths["interlaced"]))
    _ffmpeg("-f", "lavfi", "-i", "color=gray:s=480x270:r=25:d=1.2", "-vf",
            "geq=lum='128+90*sin(2*PI*Y/3)*(0.6+0.4*sin(2*PI*(X+7*N)/60))':cb=128:cr=128", *x264, str(paths["stripes"]))
    _ffmpeg(*pan, "-vf", "scale=480:200,pad=480:270:0:35", *x264, str(paths["letterbox"]))
    _ffmpeg(*pan, "-vf", "scale=360:270,pad=480:270:60:0", *x264, str(paths["pillarbox"]))
    _ffmpeg(*pan, "-vf", "scale=480:270", *x264, str(paths["legal"]))
    # Super-white (250) and sub-black (2) patches inside the picture, and a patch of Cb at 252.
    illegal = ("scale=480:270,geq=lum='if(between(X,100,180)*between(Y,60,120),250,"
               "if(between(X,300,380)*between(Y,150,210),2,lum(X,Y)))':"
               "cb='if(between(X,20,60)*between(Y,20,60),252,cb(X,Y))':cr='cr(X,Y)'")
    _ffmpeg(*pan, "-vf", illegal, *x264, str(paths["illegal"]))
    # 10-bit, untagged (BT.601 for ffmpeg): converted to 8 bits by the source, levels kept.
    _ffmpeg("-f", "lavfi", "-i", "color=gray:s=160x120:r=25:d=0.2", "-vf",
            "format=yuv420p10le,geq=lum='if(lt(X,40),1000,if(gt(X,120),8,lum(X,Y)))':cb='cb(X,Y)':cr='cr(X,Y)'",
            "-c:v", "libx264", "-preset", "ultrafast", "-crf", "8", "-pix_fmt", "yuv420p10le", str(paths["ten_bit"]))
    # The same levels in 10-bit BT.709 and BT.2020 streams (HD and UHD masters): still kept, as the
    # stream's matrix is.
    for name, space in (("ten_bit_709", "bt709"), ("ten_bit_2020", "bt2020nc")):
        _ffmpeg("-f", "lavfi", "-i", "color=gray:s=160x120:r=25:d=0.2", "-vf",
                "format=yuv420p10le,geq=lum='if(lt(X,40),1000,if(gt(X,120),8,lum(X,Y)))':cb='cb(X,Y)':cr='cr(X,Y)',"
                f"setparams=colorspace={space}:range=tv", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "8",
                "-pix_fmt", "yuv420p10le", str(paths[name]))
    _ffmpeg(*pan, "-frames:v", "2", "-vf", "scale=160:90", "-c:v", "libx264", "-preset", "ultrafast",
            "-pix_fmt", "yuvj420p", str(paths["full_range"]))
    return paths


def run(path: Path, *scorers: str) -> qplug.ScoreResult:
    result = qplug.score(str(path), scorers=list(scorers))
    assert not result.summary.errors and result.frames
    return result


def values(result: Any, name: str) -> list[float | None]:
    return [f.scores[name] for f in result.frames]


def events(result: Any, name: str) -> list[Any]:
    return [e for s in result.sources for e in s.events if e.scorer == name]


def test_interlaced_clip_is_told_from_its_progressive_source(clips: dict[str, Path]) -> None:
    clean, combed, stripes = (run(clips[n], "combing") for n in ("progressive", "interlaced", "stripes"))
    assert max(values(clean, "combing")) == 0.0 and not events(clean, "combing")
    assert max(values(stripes, "combing")) == 0.0  # fine horizontal stripes, moving: not combing
    assert min(values(combed, "combing")) > 0.01  # every frame of the woven pan
    found = events(combed, "combing")
    assert len(found) == 1 and found[0].duration > 2.0
    assert all(0 < f.extra["combing"]["pixels"] < 1 for f in combed.frames)


def test_letterbox_and_pillarbox_are_measured_and_full_frames_are_not(clips: dict[str, Path]) -> None:
    full, letter, pillar = (run(clips[n], "bars") for n in ("legal", "letterbox", "pillarbox"))
    assert max(values(full, "bars")) == 0.0 and not events(full, "bars")
    tops = [f.extra["bars"]["top"] for f in letter.frames]
    assert all(t == pytest.approx(35 / 270, abs=2 / 270) for t in tops)
    assert all(v == pytest.approx(70 / 270, abs=4 / 270) for v in values(letter, "bars"))  # type: ignore[arg-type]
    assert all(f.extra["bars"]["left"] == f.extra["bars"]["right"] == 0 for f in letter.frames)
    assert all(v == pytest.approx(0.25, abs=0.02) for v in values(pillar, "bars"))  # type: ignore[arg-type]
    assert all(f.extra["bars"]["left"] == pytest.approx(60 / 480, abs=2 / 480) for f in pillar.frames)
    assert len(events(letter, "bars")) == 1 and len(events(pillar, "bars")) == 1


def test_the_sample_clip_has_no_bars_through_its_fade_to_black() -> None:
    result = run(Path(SAMPLE), "bars")
    scored = [v for v in values(result, "bars") if v is not None]
    assert scored and max(scored) == 0.0 and not events(result, "bars")
    assert values(result, "bars")[-1] is None  # the black end: nothing to measure bars against


def test_illegal_levels_are_told_from_legal_ones(clips: dict[str, Path]) -> None:
    legal, illegal = (run(clips[n], "illegal_luma", "illegal_chroma") for n in ("legal", "illegal"))
    for name in ("illegal_luma", "illegal_chroma"):
        assert max(values(legal, name)) < 0.001 and not events(legal, name)  # type: ignore[type-var]
        assert len(events(illegal, name)) == 1
    patches = (81 * 61 + 81 * 61) / (480 * 270)  # the 250 and 2 patches, in luma samples
    assert all(v == pytest.approx(patches, rel=0.1) for v in values(illegal, "illegal_luma"))  # type: ignore[arg-type]
    extra = illegal.frames[0].extra["illegal_luma"]
    assert extra["above"] == pytest.approx(81 * 61 / (480 * 270), rel=0.1) and extra["limits"] == [5, 246]
    cb_patch = (41 * 41) / (2 * 240 * 135)  # geq's chroma coordinates are the 240x135 plane's; both planes count
    assert all(v == pytest.approx(cb_patch, rel=0.1) for v in values(illegal, "illegal_chroma"))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["ten_bit", "ten_bit_709", "ten_bit_2020"])
def test_video_source_delivers_coded_planes(clips: dict[str, Path], name: str) -> None:
    with VideoSource().open(str(clips[name])) as reader:
        frame = next(iter(reader))
        planes = frame.planes
        assert planes is not None and planes.bit_depth == 8 and not planes.full_range and frame.bit_depth == 10
        assert planes.y.shape == (120, 160) and planes.u.shape == planes.v.shape == (60, 80)
        assert planes.y[:, :30].min() >= 249 and planes.y[:, -30:].max() <= 3  # 1000 and 8 at 10 bits, kept
        assert IllegalLumaScorer().score([frame])[0].value == pytest.approx(0.5, abs=0.05)  # type: ignore[union-attr]
    full = run(clips["full_range"], "illegal_luma", "bars")
    assert values(full, "illegal_luma") == [None, None]  # full range: no illegal levels
    assert all(v is not None for v in values(full, "bars"))


def test_planes_only_when_delivery_keeps_the_coded_levels() -> None:
    keeps = colour.delivers_coded_planes
    assert keeps("yuv420p", "tv", "bt709", "bt709", False)  # passed through untouched
    assert keeps("yuv422p10le", None, "bt601", "bt601", False)  # converted, same matrix
    assert keeps("yuvj420p", None, "bt601", "bt601", True)  # full range, passed through (scorers: None)
    assert not keeps("yuv420p10le", "tv", "bt709", "bt601", False)  # matrix converted through RGB: clipped
    assert not keeps("yuvj422p", None, "bt601", "bt601", False)  # full range squeezed into limited
    assert not keeps("gbrp", None, "bt601", "bt601", False) and not keeps("rgb24", None, None, "bt601", False)
    assert not keeps(None, None, None, "bt601", False)
