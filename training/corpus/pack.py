"""Pack a corpus's single-question records into one multi-turn conversation per image and view.

Training a small model from scratch on CPU is bound by the vision tower's forward pass, which a
separate record per question repeats for every question about the same picture. A conversation
that asks the Q-Align question, some yes/no and multiple-choice questions and the pathway
description about one image pays for the picture once and trains every answer (assistant-only
loss keeps each answer's tokens in the loss).

    python -m qplug_training.corpus.pack /work/corpus/train.json --out /work/corpus/train_packed.json --views 2
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

IMAGE_MARKER = "<image>"
#: Per view: how many questions of each task to ask. The order is shuffled per view so that every
#: kind of question is sometimes asked first, with no earlier answer to lean on, as at inference.
TASK_PLAN: tuple[tuple[str, int], ...] = (("qalign", 1), ("yes_no", 2), ("mcq", 1), ("what_how", 1), ("pathway", 1))


def _turns(record: dict[str, Any]) -> list[dict[str, str]]:
    turns = [dict(t) for t in record["conversations"]]
    if turns and turns[0]["from"] == "human":
        turns[0]["value"] = turns[0]["value"].replace(IMAGE_MARKER + "\n", "").replace(IMAGE_MARKER, "").strip()
    return turns


def pack(records: Iterable[dict[str, Any]], views: int, seed: int,
         plan: tuple[tuple[str, int], ...] = TASK_PLAN) -> list[dict[str, Any]]:
    """One record per (image, view); each view draws its questions from that image's records."""
    by_image: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record.get("image"):
            by_image[record["image"]][record.get("task", "other")].append(record)
    rng = random.Random(seed)
    packed: list[dict[str, Any]] = []
    for image in sorted(by_image):
        tasks = by_image[image]
        for view in range(views):
            turns: list[dict[str, str]] = []
            for task, count in plan:
                pool = tasks.get(task, [])
                for record in rng.sample(pool, min(count, len(pool))):
                    turns.extend(_turns(record))
            if not turns:
                continue
            pairs = [turns[i:i + 2] for i in range(0, len(turns), 2)]
            rng.shuffle(pairs)
            turns = [turn for pair in pairs for turn in pair]
            turns[0]["value"] = f"{IMAGE_MARKER}\n{turns[0]['value']}"
            source = next(iter(next(iter(tasks.values()))))
            packed.append({"id": f"{source.get('source', image)}/packed{view}", "image": image,
                           "conversations": turns, "task": "packed"})
    rng.shuffle(packed)
    return packed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("records", help="a corpus train.json (LLaVA-format records)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--views", type=int, default=2, help="conversations per image (different questions)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", default=",".join(f"{t}:{n}" for t, n in TASK_PLAN),
                        help="questions per view as TASK:COUNT,... (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        plan = tuple((task, int(count)) for task, _, count in (item.partition(":") for item in args.tasks.split(",")))
    except ValueError:
        print(f"pack: error: --tasks {args.tasks!r} must look like qalign:1,yes_no:2", file=sys.stderr)
        return 2
    try:
        records = json.loads(Path(args.records).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"pack: error: {args.records}: {exc}", file=sys.stderr)
        return 2
    packed = pack(records, args.views, args.seed, plan)
    Path(args.out).write_text(json.dumps(packed, ensure_ascii=False), encoding="utf-8")
    turns = sum(len(r["conversations"]) // 2 for r in packed)
    print(f"pack: {len(records)} records -> {len(packed)} conversations ({turns} answers) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
