"""Print how the pseudo-MOS responds to each distortion and severity level on real crops.

``python -m qplug_training.corpus.calibrate --photos DIR [--crops 16] [--sheet out.png]`` takes crops
of the manifest's photos, applies every distortion at the five level-centre severities (0.1, 0.3,
0.5, 0.7, 0.9) and prints the mean pseudo-MOS per type and level, plus the raw measures. This is
the check behind the constants of :mod:`qplug_training.corpus.quality` and the severity mappings of
:mod:`qplug_training.corpus.distortions`: every type should fall from ~4.5 at level 1 to ~1.5 at level 5,
with no type systematically above or below the others. ``--sheet`` writes a contact sheet (rows:
types, columns: levels) to judge by eye whether equal pseudo-MOS looks equally bad.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from .crops import ScaledPhoto, choose_crop
from .distortions import DISTORTIONS, available
from .photos import load_manifest, load_rgb, resolve
from .pipeline import usable_photos
from .quality import measure

LEVEL_SEVERITIES = (0.1, 0.3, 0.5, 0.7, 0.9)
RAW_KEYS = ("mos", "ms_ssim", "ms_ssim_aligned", "contrast_ratio", "chroma_shift", "chroma_noise", "luma_shift",
            "clipped", "detail_loss", "blockiness")


def calibration_table(crops: list[np.ndarray], types: list[str], seed: int = 0) -> dict[str, dict[str, list[float]]]:
    """type -> {"mos": [mean per level], and the same for every raw measure of :class:`Measures`}."""
    table: dict[str, dict[str, list[float]]] = {}
    for t in types:
        rows: dict[str, list[list[float]]] = {k: [[] for _ in LEVEL_SEVERITIES] for k in RAW_KEYS}
        for ci, crop in enumerate(crops):
            for li, sev in enumerate(LEVEL_SEVERITIES):
                rng = np.random.default_rng([seed, ci, list(DISTORTIONS).index(t)])
                out, _ = DISTORTIONS[t](crop, sev, rng)
                m = measure(crop, out)
                values = m.to_dict()
                for k in RAW_KEYS:
                    rows[k][li].append(values["pseudo_mos" if k == "mos" else k])
        table[t] = {k: [float(np.mean(v)) for v in vals] for k, vals in rows.items()}
    return table


def format_table(table: dict[str, dict[str, list[float]]], key: str = "mos", fmt: str = "{:5.2f}") -> str:
    head = f"{'type':<16}" + "".join(f"  L{i + 1}   " for i in range(len(LEVEL_SEVERITIES)))
    lines = [head]
    for t, cols in table.items():
        lines.append(f"{t:<16}" + "".join("  " + fmt.format(v) + " " for v in cols[key]))
    return "\n".join(lines)


def sample_crops(photos_dir: Path, n: int, size: int, seed: int) -> list[np.ndarray]:
    photos, root = load_manifest(photos_dir)
    photos, _ = usable_photos(photos, root)  # a damaged one is reported, not a traceback
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(photos))[:n]
    crops = []
    for i in order:
        sp = ScaledPhoto(load_rgb(resolve(root, photos[i])))
        try:
            crops.append(choose_crop(sp, size, rng)[1])
        except ValueError:
            continue
    return crops


def contact_sheet(crop: np.ndarray, types: list[str], path: Path, seed: int = 0) -> None:
    import cv2

    from .quality import pseudo_mos

    rows = []
    for t in types:
        tiles = [crop.copy()]
        for sev in LEVEL_SEVERITIES:
            out, _ = DISTORTIONS[t](crop, sev, np.random.default_rng(seed))
            tile = out.copy()
            cv2.putText(tile, f"{t} {sev:.1f} {pseudo_mos(crop, out):.2f}", (3, 14), cv2.FONT_HERSHEY_SIMPLEX,
                        0.42, (255, 255, 0), 1, cv2.LINE_AA)
            tiles.append(tile)
        rows.append(np.hstack(tiles))
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m qplug_training.corpus.calibrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", required=True, type=Path, help="folder with manifest.json")
    ap.add_argument("--crops", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--types", help="comma list (default: all available)")
    ap.add_argument("--raw", action="store_true", help="also print MS-SSIM and the colour/exposure terms")
    ap.add_argument("--sheet", type=Path, help="write a contact sheet of the first crop")
    args = ap.parse_args(argv)
    types = available(args.types.split(",") if args.types else None)
    crops = sample_crops(args.photos, args.crops, args.size, args.seed)
    table = calibration_table(crops, types, args.seed)
    print(f"mean pseudo-MOS over {len(crops)} crops, severity levels 1..5 (s = 0.1 .. 0.9)")
    print(format_table(table))
    if args.raw:
        for key in RAW_KEYS[1:]:
            fmt = "{:5.1f}" if key in ("chroma_shift", "chroma_noise", "luma_shift") else "{:5.3f}"
            print(f"\n{key}")
            print(format_table(table, key, fmt))
    if args.sheet:
        contact_sheet(crops[0], types, args.sheet, args.seed)
        print(f"contact sheet: {args.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
