"""First-question cost of the question reader: process start to the first reading, and `qplug ask` on one image.

    python bench/bench_reader.py             # 5 fresh processes per figure, medians
    python bench/bench_reader.py --runs 9

Two figures, each the median over fresh Python processes (imports and file reads as a user pays them):

- **reader**: ``import torch`` excluded (every qplug model path pays it), then loading the shipped
  model's reader (encoder + head) and reading one yes/no question;
- **ask**: ``qplug ask IMG "Is the picture crisp?" --choices yes no`` on a 640x480 image with the
  shipped model, process start to exit (model load, reader load, two prefills).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "plugins" / "qplug_vlm" / "default_model"
#: One thread as in the tests; no QPLUG_MODEL, so `qplug ask` uses the shipped model.
ENV = {k: v for k, v in os.environ.items() if k != "QPLUG_MODEL"} | {"OMP_NUM_THREADS": "1"}

_READER_PROBE = f"""
import json, sys, time
import torch
torch.set_num_threads(1)
began = time.perf_counter()
from pathlib import Path
from qplug_vlm import reader
r = reader.load_reader(Path({str(MODEL)!r}))
r.read("Is the picture crisp?", ("yes", "no"))
print(json.dumps({{"seconds": time.perf_counter() - began,
                  "transformers_imported": any(m.startswith("transformers") for m in sys.modules)}}))
"""


def reader_run() -> dict:
    out = subprocess.run([sys.executable, "-c", _READER_PROBE], capture_output=True, text=True, check=True, env=ENV)
    return json.loads(out.stdout.strip().splitlines()[-1])


def ask_run(image: Path) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "qplug", "ask", str(image), "Is the picture crisp?", "--choices", "yes", "no"],
                   capture_output=True, text=True, check=True, env=ENV)
    return time.perf_counter() - began


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "frame.png"
        Image.new("RGB", (640, 480), (90, 120, 150)).save(image)
        readers = [reader_run() for _ in range(args.runs)]
        asks = [ask_run(image) for _ in range(args.runs)]
    print(json.dumps({"runs": args.runs,
                      "reader_load_and_first_reading_s": round(statistics.median(r["seconds"] for r in readers), 3),
                      "transformers_imported": any(r["transformers_imported"] for r in readers),
                      "qplug_ask_one_image_s": round(statistics.median(asks), 3)}, indent=1))


if __name__ == "__main__":
    main()
