#!/usr/bin/env python3
"""BRISQUE scores of image files, for bench/eval_default_model.py: JSON paths in, JSON scores out.

    /work/bench-venv/bin/python bench/baselines_brisque.py MODEL_YML RANGE_YML < paths.json > scores.json

Runs in its own virtual environment (``/work/bench-venv``: ``opencv-contrib-python-headless`` and
numpy), never in qplug's: the contrib wheel ships the ``cv2.quality`` module, and installing it next to
the project's ``opencv-python-headless`` would overwrite one ``cv2`` with the other. So this file
imports nothing but the standard library, OpenCV and numpy.

Input: a JSON list of image paths on stdin. Output: a JSON list of the same length on stdout, the
BRISQUE score of each image (lower = better quality; typically 0..100) or ``null`` where the image
could not be read or scored. The model/range files are OpenCV's LIVE-trained ones
(``brisque_model_live.yml``, ``brisque_range_live.yml`` from Debian's opencv-doc package).
"""

from __future__ import annotations

import json
import math
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    import cv2

    # One thread: the caller decides how many processes run beside this one.
    cv2.setNumThreads(1)
    model_yml, range_yml = argv[1], argv[2]
    # One QualityBRISQUE object loads the SVM once; the static compute() would reload it per image.
    brisque = cv2.quality.QualityBRISQUE_create(model_yml, range_yml)
    scores: list[float | None] = []
    for path in json.load(sys.stdin):
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            scores.append(None)
            continue
        value = float(brisque.compute(image)[0])
        scores.append(value if math.isfinite(value) else None)
    json.dump(scores, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
