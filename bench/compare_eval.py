#!/usr/bin/env python
"""Models side by side: the ``model`` column of ``eval.md`` main tables (bench/eval_default_model.py) and
the headline figures of ``blindspots.json`` (bench/eval_blindspots.py), as one Markdown table with each
model's difference from the first.

    bench/compare_eval.py bench/out/eval_v5 bench/out/eval_v9 [--names v5,v9]
      [--blind bench/out/blindspots_v5 bench/out/blindspots_v9] [--para bench/out/para_v5_b bench/out/para_v9_b]
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


def _deltas(values: list[object]) -> list[str]:
    """Each value after the first minus the first (blank where either is not a number)."""
    base = values[0]
    return [f"{v - base:+.3f}" if isinstance(base, float) and isinstance(v, float) else "" for v in values[1:]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("evals", type=Path, nargs="+", help="eval folders (eval.md); the first is the baseline")
    ap.add_argument("--names", default="", help="comma-separated column names (default: the folder names)")
    ap.add_argument("--blind", nargs="+", type=Path, metavar="DIR",
                    help="blindspots folders, one per eval folder (held-out set b runs may follow: --para)")
    ap.add_argument("--para", nargs="+", type=Path, metavar="DIR",
                    help="paraphrase-only blindspots folders (another held-out set), one per eval folder")
    args = ap.parse_args(argv)
    names = args.names.split(",") if args.names else [d.name for d in args.evals]
    for option, folders in (("--names", names), ("--blind", args.blind), ("--para", args.para)):
        if folders is not None and len(folders) != len(args.evals):
            ap.error(f"{option} needs one entry per eval folder ({len(args.evals)})")
    base = names[0]
    print("| figure | target | " + " | ".join(names) + " | " + " | ".join(f"{n} - {base}" for n in names[1:]) + " |")
    print("|---|---|" + "---|" * (2 * len(names) - 1))
    tables = [main_table(d / "eval.md") if (d / "eval.md").is_file() else {} for d in args.evals]
    figures: list[str] = []
    for table in tables:
        figures += [f for f in table if f not in figures]
    for figure in figures:
        target = next((t[figure][0] for t in tables if figure in t and t[figure][0]), "")
        cells = [t.get(figure, ("", "–"))[1] for t in tables]
        values = [_number(c) for c in cells]
        print(f"| {figure} | {target} | " + " | ".join(cells + _deltas(values)) + " |")
    for label, folders in (("", args.blind), ("set b: ", args.para)):
        if not folders:
            continue
        sys.path.insert(0, str(Path(__file__).parent))
        from eval_blindspots import summary

        summaries = [summary(json.loads((d / "blindspots.json").read_text())) for d in folders]
        keys: list[str] = []
        for item in summaries:
            keys += [k for k in item if k not in keys]
        for key in keys:
            values = [item.get(key) for item in summaries]
            print(f"| {label}{key} |  | " + " | ".join(json.dumps(round(v, 3) if isinstance(v, float) else v) for v in values) + " | "
                  + " | ".join(_deltas(values)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
