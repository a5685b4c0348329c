"""Time the ``qc`` scorers on 1080p frames: ms per frame for each scorer and for the whole set.

    python bench/bench_qc_scorers.py [--image PHOTO] [--size 1920x1080] [--frames 200] [--threads 1]

Each iteration scores a fresh :class:`qplug.types.Frame` (empty cache) whose luma comes from a
``luma_loader``, as a video source delivers its Y plane, whose coded limited-range I420 planes come
from a ``planes_loader`` (for the broadcast checks), and whose RGB is already in memory. Frames
rotate over a pool of distinct pictures so memory caches do not flatter the numbers. ``--threads 1``
(the default) pins OpenCV to one thread: the numbers are then CPU cost per frame, which is what
competes with the decoder for cores.

Columns: "alone" is a scorer run by itself (paying for any shared per-frame data, such as the luma
histogram, on its own); "in set" is its share when every qc scorer runs on the frame in
registration order, as ``qplug score`` does, so the shared data is paid by the first user only.
The broadcast checks (``qplug_qc.BROADCAST``, not run by default) come after the default set; their
own subtotal is printed too, as is the whole set without them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np

from qplug.registry import resolve
from qplug.types import Frame, Planes
from qplug_qc import ALL_SCORERS, BROADCAST


def synthetic_scene(height: int, width: int, seed: int) -> np.ndarray:
    """A photo-like RGB picture: smooth multi-scale shading, shapes with anti-aliased edges, text."""
    rng = np.random.default_rng(seed)
    scale = width / 960
    shade = np.zeros((height, width), np.float32)
    for sigma in (4, 16, 64):
        shade += cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0),
                                  sigma * scale) * sigma ** 0.5
    shade = (shade - shade.mean()) / (shade.std() + 1e-6)
    tint = rng.uniform(60, 180, 3).astype(np.float32)
    img = np.clip(tint + shade[..., None] * np.float32(35) + 0.5, 0, 255).astype(np.uint8)
    for _ in range(40):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y, r = int(rng.integers(0, width)), int(rng.integers(0, height)), int(rng.integers(5, 80) * scale) + 1
        if rng.random() < 0.5:
            cv2.circle(img, (x, y), r, colour, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(img, (x, y), (x + r, y + int(r * 0.7)), colour, -1, cv2.LINE_AA)
    cv2.putText(img, "qplug 0123", (int(50 * scale), height // 2), cv2.FONT_HERSHEY_SIMPLEX, 2 * scale,
                (240, 240, 240), max(1, int(3 * scale)), cv2.LINE_AA)
    noise = rng.normal(0, 1.5, img.shape).astype(np.float32)  # a little sensor-like grain
    return np.clip(img + noise + 0.5, 0, 255).astype(np.uint8)


def load_pictures(image: str | None, width: int, height: int, count: int) -> list[np.ndarray]:
    if image is None:
        return [synthetic_scene(height, width, seed) for seed in range(count)]
    bgr = cv2.imread(image, cv2.IMREAD_COLOR)
    if bgr is None:
        sys.exit(f"cannot read {image}")
    rgb = cv2.cvtColor(cv2.resize(bgr, (width, height), interpolation=cv2.INTER_CUBIC), cv2.COLOR_BGR2RGB)
    # distinct copies (mirrored / shifted) so consecutive frames differ, as in video; the shift is
    # never a multiple of 8 so the wrap-around seam does not fall on the 8x8 block grid
    variants = [rgb, rgb[:, ::-1], rgb[::-1], rgb[::-1, ::-1]]
    return [np.ascontiguousarray(np.roll(variants[i % 4], 8 * i + 3, axis=1)) for i in range(count)]


def i420_planes(rgb: np.ndarray) -> Planes:
    """Limited-range BT.601 I420 planes of an RGB picture (OpenCV's conversion: luma 16-235)."""
    height, width = rgb.shape[:2]
    flat = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).reshape(-1)
    area, quarter = height * width, (height // 2) * (width // 2)
    return Planes(y=flat[:area].reshape(height, width), u=flat[area:area + quarter].reshape(height // 2, width // 2),
                  v=flat[area + quarter:area + 2 * quarter].reshape(height // 2, width // 2))


def with_excursions(planes: Planes) -> Planes:
    """The same planes with super-white and sub-black patches (1.5 % of the picture each), so the
    legal-range checks pay for their counts, as on a frame that fails them."""
    y = planes.y.copy()
    height, width = y.shape
    y[:height // 8, :width // 8] = 250
    y[-(height // 8):, -(width // 8):] = 2
    return Planes(y=y, u=planes.u, v=planes.v)


def make_frame(rgb: np.ndarray, luma: np.ndarray, planes: Planes, index: int) -> Frame:
    height, width = luma.shape
    return Frame(source_id="bench", index=index, width=width, height=height, _rgb=rgb,
                 luma_loader=lambda: luma, planes_loader=lambda: planes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", help="photo to use instead of the synthetic scene (resized)")
    parser.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT (default 1920x1080)")
    parser.add_argument("--frames", type=int, default=200, help="frames timed per measurement")
    parser.add_argument("--pool", type=int, default=8, help="distinct pictures to rotate over")
    parser.add_argument("--threads", type=int, default=1, help="OpenCV threads (0: OpenCV's default)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    if args.threads > 0:
        cv2.setNumThreads(args.threads)

    pictures = load_pictures(args.image, width, height, args.pool)
    lumas = [cv2.cvtColor(p, cv2.COLOR_RGB2GRAY) for p in pictures]
    # every other picture carries illegal levels, so both paths of the legal-range checks are timed
    planes = [with_excursions(i420_planes(p)) if i % 2 else i420_planes(p) for i, p in enumerate(pictures)]
    scorers = {name: resolve(info.factory)() for name, info in ALL_SCORERS.items()}

    def frames():
        for i in range(args.frames):
            k = i % len(pictures)
            yield make_frame(pictures[k], lumas[k], planes[k], i)

    for scorer in scorers.values():  # warm up: imports, OpenCV dispatch, first allocations
        scorer.score([make_frame(pictures[0], lumas[0], planes[0], 0)])

    alone: dict[str, float] = {}
    for name, scorer in scorers.items():
        getattr(scorer, "reset", lambda: None)()
        times = []
        for frame in frames():
            start = time.perf_counter()
            scorer.score([frame])
            times.append(time.perf_counter() - start)
        alone[name] = statistics.median(times) * 1e3

    shares: dict[str, list[float]] = {name: [] for name in scorers}
    totals: list[float] = []
    broadcast_totals: list[float] = []
    values: dict[str, object] = {}
    for scorer in scorers.values():
        getattr(scorer, "reset", lambda: None)()
    for frame in frames():
        total = broadcast = 0.0
        for name, scorer in scorers.items():
            start = time.perf_counter()
            values[name] = scorer.score([frame])[0]
            took = time.perf_counter() - start
            shares[name].append(took)
            total += took
            broadcast += took if name in BROADCAST else 0.0
        totals.append(total)
        broadcast_totals.append(broadcast)

    source = args.image or "synthetic scene"
    print(f"qc scorers on {width}x{height} ({source}), {args.frames} frames, OpenCV threads: "
          f"{cv2.getNumThreads()}, numpy {np.__version__}, OpenCV {cv2.__version__}")
    print(f"{'scorer':<15}{'alone ms':>10}{'in set ms':>11}   last value")
    for name in scorers:
        value = values[name]
        value = getattr(value, "value", value)  # a Score: its number
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"{name:<15}{alone[name]:>10.3f}{statistics.median(shares[name]) * 1e3:>11.3f}   {shown}")
    median_total = statistics.median(totals) * 1e3
    print(f"{'all (median)':<15}{'':>10}{median_total:>11.3f}   -> {1000 / median_total:.0f} frames/s on one core")
    print(f"{'all (mean)':<15}{'':>10}{statistics.fmean(totals) * 1e3:>11.3f}")
    default = [t - b for t, b in zip(totals, broadcast_totals)]
    print(f"{'default set':<15}{'':>10}{statistics.median(default) * 1e3:>11.3f}   (median, without the broadcast checks)")
    print(f"{'broadcast':<15}{'':>10}{statistics.median(broadcast_totals) * 1e3:>11.3f}   (median; mean "
          f"{statistics.fmean(broadcast_totals) * 1e3:.3f}, max {max(broadcast_totals) * 1e3:.3f})")


if __name__ == "__main__":
    main()
