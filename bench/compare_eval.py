#!/usr/bin/env python
"""Two models side by side: the ``model`` column of two ``eval.md`` main tables (bench/eval_default_model.py)
and the headline figures of two ``blindspots.json`` (bench/eval_blindspots.py), as one Markdown table.

    bench/compare_eval.py bench/out/eval_v04 bench/out/eval_v1 [--blind bench/out/blindspots_v04 bench/out/blindspots_v1]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path


def main_table(path: Path) -> dict[str, tuple[str, str]]:
    """figure -> (target, model cell) of the first table of an eval.md."""
    rows: dict[str, tuple[str, str]] = {}
    header: list[str] | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            if header is not None and rows:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            continue
        if set(line) <= set("|-"):
            continue
        rows[cells[0]] = (cells[1], cells[header.index("model")] if "model" in header else "")
    return rows


def _number(cell: str) -> float | None:
    m = re.search(r"-?\d+(?:\.\d+)?", cell.replace("**PASS**", "").replace("**MISS**", ""))
    if not m:
        return None
    value = float(m.group(0))
    return value / 100.0 if "%" in cell else value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path, help="first eval folder (eval.md)")
    ap.add_argument("b", type=Path, help="second eval folder")
    ap.add_argument("--names", default="v0.4,v1")
    ap.add_argument("--blind", nargs=2, type=Path, metavar=("A", "B"), help="two blindspots folders")
    args = ap.parse_args(argv)
    na, nb = args.names.split(",")
    print(f"| figure | target | {na} | {nb} | {nb} - {na} |\n|---|---|---|---|---|")
    if (args.a / "eval.md").is_file() and (args.b / "eval.md").is_file():
        ta, tb = main_table(args.a / "eval.md"), main_table(args.b / "eval.md")
        for figure in list(ta) + [f for f in tb if f not in ta]:
            target, ca = ta.get(figure, ("", "–"))
            cb = tb.get(figure, ("", "–"))[1]
            va, vb = _number(ca), _number(cb)
            delta = f"{vb - va:+.3f}" if va is not None and vb is not None else ""
            print(f"| {figure} | {target or tb.get(figure, ('', ''))[0]} | {ca} | {cb} | {delta} |")
    if args.blind:
        sys.path.insert(0, str(Path(__file__).parent))
        from eval_blindspots import summary

        sa, sb = (summary(json.loads((d / "blindspots.json").read_text())) for d in args.blind)
        for key in list(sa) + [k for k in sb if k not in sa]:
            va, vb = sa.get(key), sb.get(key)
            delta = f"{vb - va:+.3f}" if isinstance(va, float) and isinstance(vb, float) else ""
            print(f"| {key} |  | {json.dumps(va)} | {json.dumps(vb)} | {delta} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
