"""The report: one Markdown table per figure family, the main table with PASS/MISS against the targets."""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Sequence

from .common import TARGETS


def _runs(cli: dict[str, Any]) -> str:
    """", median of 3 runs (28.1-31.0 fps)" for a repeated speed run, nothing for a single one."""
    walls = cli.get("runs_wall_s", [])
    if len(walls) < 2:
        return ""
    low, high = cli["fps_range"]
    return f", median of {len(walls)} runs ({low:.1f}-{high:.1f} fps)"


LABELS = {"model": "model", "brisque": "BRISQUE", "laplacian": "Laplacian"}


def label(key: str) -> str:
    return LABELS.get(key, key)


def fmt(value: Any, kind: str = "r") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if kind == "%":
        return f"{100 * value:.1f}%"
    if kind == "fps":
        return f"{value:.1f} fps"
    if kind == "ms":
        return f"{value:.1f} ms"
    if kind == "int":
        return str(value)
    return f"{value:.3f}"


def verdict(target: str | None, value: Any) -> str:
    """PASS/MISS for the model's value against its target (nothing when the figure has no target)."""
    if target is None or value is None:
        return ""
    op, threshold = TARGETS[target]
    ok = value >= threshold if op == ">=" else value <= threshold
    return " **PASS**" if ok else " **MISS**"


def target_text(target: str | None, kind: str) -> str:
    if target is None:
        return ""
    op, threshold = TARGETS[target]
    return f"{'≥' if op == '>=' else '≤'} {fmt(threshold, kind)}" if kind != "fps" else f"≥ {threshold:g} fps"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def summary_rows(results: dict[str, Any], keys: Sequence[str]) -> list[list[str]]:
    """The main table: one row per figure, one column per scorer (model-only figures leave baselines blank)."""
    rows: list[list[str]] = []

    def add(figure: str, target: str | None, kind: str, get: Callable[[str], Any], model_only: bool = False) -> None:
        cells = [figure, target_text(target, kind)]
        for key in keys:
            if model_only and key != "model":
                cells.append("")
                continue
            value = get(key)
            cells.append(fmt(value, kind) + (verdict(target, value) if key == "model" else ""))
        rows.append(cells)

    assessment = results.get("assessment")
    if assessment:
        a = assessment["figures"]
        add("1a. SRCC vs severity within (crop, type) groups, mean", "within_group_srcc", "r",
            lambda k: a.get(k, {}).get("within_group", {}).get("mean"))
        add("1b. pooled SRCC per type, mean over types", None, "r",
            lambda k: a.get(k, {}).get("pooled", {}).get("mean"))
        add("1b. pooled SRCC per type, min over types", "pooled_type_srcc_min", "r",
            lambda k: a.get(k, {}).get("pooled", {}).get("min"))
        add("1b. types with pooled SRCC ≥ 0.85", None, "int",
            lambda k: (f"{a[k]['pooled']['types_at_target']}/{a[k]['pooled']['n_types']}" if k in a else None))
        add("1c. pristine above severity ≥ 3 (pairs)", "pair_accuracy", "%",
            lambda k: a.get(k, {}).get("pairs", {}).get("accuracy"))
        add("1d. SRCC vs pseudo-MOS", None, "r", lambda k: a.get(k, {}).get("mos", {}).get("srcc"))
        add("1d. PLCC (logistic) vs pseudo-MOS", None, "r", lambda k: a.get(k, {}).get("mos", {}).get("plcc"))
    perception = results.get("perception")
    if perception:
        add("2. yes/no accuracy", "yes_no_accuracy", "%", lambda k: perception["yes_no"]["overall"]["accuracy"], True)
        add("2. MCQ accuracy", "mcq_accuracy", "%", lambda k: perception["mcq"]["overall"]["accuracy"], True)
        for family, value in perception["mcq"]["by_type"].items():
            add(f"2. MCQ accuracy: {family}", None, "%", lambda k, v=value: v["accuracy"], True)
    description = results.get("description")
    if description:
        add("3a. description names the main distortion", "describe_names_main", "%",
            lambda k: description["names_main"], True)
        add("3b. description level within one step", "describe_level_within_one", "%",
            lambda k: description["level_within_one"], True)
    video = results.get("video")
    if video:
        for name, clip in video["clips"].items():
            add(f"4. video SRCC vs VMAF: {name}", None, "r", lambda k, c=clip: c["srcc"].get(k))
        add("4. video SRCC vs VMAF, min over clips", "video_srcc_min", "r", lambda k: video["min_srcc"].get(k))
    general = results.get("generalisation")
    if general:
        for split, name in (("train", "training"), ("validation", "unseen")):
            add(f"0. SRCC vs pseudo-MOS, corpus images of {name} photos (n = {general[split]['n']})", None, "r",
                lambda k, s=split: general[s]["srcc"], True)
            add(f"0. mean score of pristine crops of {name} photos", None, "r",
                lambda k, s=split: general[s]["pristine_mean"], True)
    speed = results.get("speed")
    if speed:
        # Real time is about long videos: the target is read on the long clip, where qplug's start-up
        # (imports and model loading, a few seconds) is spread over minutes; the short clip shows it.
        if "cli_long" in speed:
            add(f"5. `qplug score` 1080p, qalign, decode included, {speed['cli_long']['frames']} frames"
                f"{_runs(speed['cli_long'])}",
                "speed_fps", "fps", lambda k: speed["cli_long"]["fps"], True)
        if "cli" in speed:
            add(f"5. `qplug score` 1080p, qalign, decode and start-up included, {speed['cli']['frames']} frames"
                f"{_runs(speed['cli'])}",
                None if "cli_long" in speed else "speed_fps", "fps", lambda k: speed["cli"]["fps"], True)
        model_speeds = speed.get("model", {})
        for batch_key, value in model_speeds.items():
            if not batch_key.endswith("_ms"):
                continue
            spread = model_speeds.get(f"{batch_key}_range")
            note = (f", median of {model_speeds[batch_key.replace('_ms', '_batches')]} batches"
                    f" ({spread[0]:.1f}-{spread[1]:.1f})" if spread else "")
            add(f"5. model alone, 224 crops, {batch_key.replace('_ms', '').replace('_', ' ')}{note}", None, "ms",
                lambda k, v=value: v, True)
    return rows


def _unchanged_note(results: dict[str, Any]) -> str:
    figures = results.get("assessment", {}).get("figures", {})
    left_out = next((f["within_group"].get("unchanged_groups") for f in figures.values()), None)
    if not left_out:
        return ""
    return (f" Figures 1a-1c leave out {left_out} (crop, type) group(s) that the distortion left unchanged "
            "(a grey crop desaturated): nothing to rank there.")


def markdown(results: dict[str, Any]) -> str:
    keys = results["columns"]
    lines = [f"# qplug model evaluation: `{results['model']}`", "",
             f"Validation set `{results['corpus']}/eval` ({results.get('assessment', {}).get('n_images', 0)} images "
             f"from {results.get('assessment', {}).get('n_crops', 0)} crop(s)); every scorer oriented so that higher = "
             "better (BRISQUE, noise, blocking, under/overexposure and black negated; exposure as -|v - 0.5|). "
             "PASS/MISS marks the model against issue 5's targets." + _unchanged_note(results), ""]
    lines += table(["figure", "target", *map(label, keys)], summary_rows(results, keys)) + [""]
    assessment = results.get("assessment")
    if assessment:
        figures = assessment["figures"]
        types = sorted({t for f in figures.values() for t in f["within_group"]["by_type"]})
        for title, part in (("1a. SRCC vs severity within (crop, type) groups, mean per type", "within_group"),
                            ("1b. pooled SRCC per type (target ≥ 0.85 each)", "pooled")):
            lines += [f"## {title}", ""]
            lines += table(["type", *map(label, keys)],
                           [[t] + [fmt(figures[k][part]["by_type"].get(t)) if k in figures else "–" for k in keys]
                            for t in types]) + [""]
        lines += ["## 1c. pristine above severity ≥ 3, per type", ""]
        lines += table(["type", *map(label, keys)],
                       [[t] + [fmt(figures[k]["pairs"]["by_type"].get(t), "%") if k in figures else "–"
                               for k in keys] for t in types]) + [""]
    perception = results.get("perception")
    if perception:
        kinds = sorted({k for part in perception.values() for k in part["by_concern"]})
        lines += ["## 2. perception accuracy per distortion kind (model)", ""]
        lines += table(["kind", "yes/no", "n", "MCQ", "n"], [
            [k, fmt(perception["yes_no"]["by_concern"].get(k, {}).get("accuracy"), "%"),
             str(perception["yes_no"]["by_concern"].get(k, {}).get("n", 0)),
             fmt(perception["mcq"]["by_concern"].get(k, {}).get("accuracy"), "%"),
             str(perception["mcq"]["by_concern"].get(k, {}).get("n", 0))] for k in kinds]) + [""]
    description = results.get("description")
    if description:
        lines += [f"## 3. descriptions per main distortion (model, n = {description['n']}; level exact "
                  f"{fmt(description['level_exact'], '%')}, no level found {fmt(description['level_missing'], '%')})",
                  ""]
        lines += table(["main distortion", "n", "names it", "level within one"],
                       [[k, str(v["n"]), fmt(v["names_main"], "%"), fmt(v["level_within_one"], "%")]
                        for k, v in description["by_main"].items()]) + [""]
    video = results.get("video")
    if video:
        lines += [f"## 4. video rungs ({video['size']}, {video['seconds']:g} s, x264 {video['preset']}, "
                  f"scored at {video['fps_sampled']:g} fps, pooled mean)", ""]
        rows = []
        for name, clip in video["clips"].items():
            for rung in clip["rungs"]:
                rows.append([name, str(rung["crf"]), f"{rung['vmaf']:.1f}", fmt(rung["pooled"].get("model")),
                             fmt(rung["pooled"].get("brisque")), fmt(rung["pooled"].get("laplacian"), "r"),
                             fmt(rung["pooled"].get("qc:sharpness")), fmt(rung["pooled"].get("qc:blocking"))])
        lines += table(["clip", "CRF", "VMAF", "model", "-BRISQUE", "Laplacian", "qc:sharpness", "-qc:blocking"],
                       rows) + [""]
        lines += [f"- {note}" for note in video.get("notes", [])]
    if results.get("notes"):
        lines += ["## Notes", ""] + [f"- {note}" for note in results["notes"]] + [""]
    seconds = results["seconds"]
    lines.append("_" + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) + f"; {results['machine']}_")
    return "\n".join(lines) + "\n"
