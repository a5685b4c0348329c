"""A small synthetic low-level dataset: distorted PNGs with Q-Instruct-style conversations and eval files.

For smoke runs, tests and benchmarks (no download). Each image is a random smooth scene (gradients
and shapes) with one known distortion (none, blur, noise, JPEG blocking, darkening) at a known
level, so the conversations, the multiple-choice questions and the "MOS" are all true by
construction. Records cover the formats the trainer must handle: one-turn and multi-turn answers,
yes-or-no and multiple-choice questions, and text-only records (no image).
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

from qplug_vlm.prompts import mcq_prompt

DISTORTIONS = ("none", "blur", "noise", "jpeg", "dark")
#: Words the describer check looks for, by distortion (matched by qplug_training.data.attributes too).
DISTORTION_WORDS = {"blur": "blurry", "noise": "noisy", "jpeg": "compression artifacts", "dark": "underexposed"}
LEVELS = ("excellent", "good", "fair", "poor", "bad")
QUALITY_QUESTION = "How would you rate the quality of this image?"
TEXT_ONLY = [
    ("What does strong JPEG compression do to an image?", "It causes blocking artifacts and loss of fine detail."),
    ("Why does a long exposure blur a handheld photo?", "The camera moves while the shutter is open, so edges smear."),
    ("What is sensor noise?", "Random grain from the sensor, most visible in dark, flat areas."),
]


@dataclass(frozen=True)
class Sample:
    name: str
    distortion: str
    strength: int  # 0 (none) .. 3 (strong)

    @property
    def level(self) -> str:
        return LEVELS[min(4, self.strength + (1 if self.distortion != "none" else 0))]

    @property
    def mos(self) -> float:
        """A 1..5 opinion score that falls with the distortion's strength."""
        return 5.0 - LEVELS.index(self.level)


def _scene(rng: random.Random, size: int) -> "object":
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(image)
    top = [rng.randrange(40, 220) for _ in range(3)]
    bottom = [rng.randrange(40, 220) for _ in range(3)]
    for y in range(size):
        t = y / max(1, size - 1)
        draw.line([(0, y), (size, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))
    for _ in range(4):
        x0, y0 = rng.randrange(size), rng.randrange(size)
        x1, y1 = x0 + rng.randrange(4, size // 2), y0 + rng.randrange(4, size // 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=colour)
    return image


def _distort(image: "object", sample: Sample, rng: random.Random) -> "object":
    import numpy as np
    from PIL import Image, ImageFilter

    s = sample.strength
    if sample.distortion == "blur":
        return image.filter(ImageFilter.GaussianBlur(radius=0.8 * s))
    if sample.distortion == "noise":
        pixels = np.asarray(image, dtype=np.float32)
        noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 12 * s, pixels.shape)
        return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))
    if sample.distortion == "jpeg":
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=max(2, 30 - 9 * s))
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    if sample.distortion == "dark":
        pixels = np.asarray(image, dtype=np.float32) * (1 - 0.25 * s)
        return Image.fromarray(pixels.astype(np.uint8))
    return image


def _samples(count: int, seed: int) -> list[Sample]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        distortion = DISTORTIONS[i % len(DISTORTIONS)]
        strength = 0 if distortion == "none" else rng.randrange(1, 4)
        out.append(Sample(name=f"img{i:04d}.png", distortion=distortion, strength=strength))
    return out


def write_images(directory: Path, samples: list[Sample], size: int, seed: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for sample in samples:
        image = _distort(_scene(rng, size), sample, rng)
        image.save(directory / sample.name)


def _describe(sample: Sample) -> str:
    if sample.distortion == "none":
        return f"The image is sharp and clean, with good exposure. The quality of the image is {sample.level}."
    return (f"The image is {DISTORTION_WORDS[sample.distortion]}. "
            f"The quality of the image is {sample.level}.")


def _conversation(sample: Sample, kind: int) -> list[dict[str, str]]:
    """One of four record shapes, by ``kind``."""
    marker = "<image>\n"
    if kind == 0:
        return [{"from": "human", "value": marker + QUALITY_QUESTION},
                {"from": "gpt", "value": f"The quality of the image is {sample.level}."}]
    if kind == 1:
        word = "blurry"
        answer = "Yes." if sample.distortion == "blur" else "No."
        return [{"from": "human", "value": marker + f"Is this image {word}?"}, {"from": "gpt", "value": answer}]
    if kind == 2:
        choices = ("blur", "noise", "jpeg", "dark")
        if sample.distortion == "none":
            return [{"from": "human", "value": marker + "Describe the low-level quality of this image."},
                    {"from": "gpt", "value": _describe(sample)}]
        letter = "ABCD"[choices.index(sample.distortion)]
        return [{"from": "human", "value": marker + mcq_prompt("Which distortion is the most obvious?", choices)},
                {"from": "gpt", "value": letter}]
    return [{"from": "human", "value": marker + "Describe the low-level quality of this image."},
            {"from": "gpt", "value": _describe(sample)},
            {"from": "human", "value": QUALITY_QUESTION},
            {"from": "gpt", "value": f"The quality of the image is {sample.level}."}]


def write_dataset(directory: str | Path, count: int = 24, size: int = 48, seed: int = 0,
                  text_only: bool = True) -> Path:
    """Write ``count`` images under ``directory/images`` and ``directory/train.json`` (LLaVA format).

    Returns the JSON path; images are relative to ``directory/images``.
    """
    root = Path(directory)
    samples = _samples(count, seed)
    write_images(root / "images", samples, size, seed)
    records = [{"id": f"syn-{i}", "image": s.name, "conversations": _conversation(s, i % 4), "task": "synthetic"}
               for i, s in enumerate(samples)]
    if text_only:
        for j, (question, answer) in enumerate(TEXT_ONLY):
            records.append({"id": f"text-{j}", "conversations": [{"from": "human", "value": question},
                                                                 {"from": "gpt", "value": answer}]})
    path = root / "train.json"
    path.write_text(json.dumps(records, indent=1), encoding="utf-8")
    return path


def write_eval_set(directory: str | Path, count: int = 10, size: int = 48, seed: int = 1) -> dict[str, Path]:
    """Evaluation files over fresh synthetic images: a Q-Bench-style MCQ file, a MOS CSV and a
    description file with reference texts. Returns their paths; image paths in them are relative
    to ``directory`` (the evaluator's default image folder is the file's own)."""
    root = Path(directory)
    samples = _samples(count, seed)
    write_images(root / "images", samples, size, seed)
    mcq = []
    for i, s in enumerate(samples):
        if i % 2 == 0:
            mcq.append({"img_path": f"images/{s.name}", "question": "Is this image blurry?",
                        "candidates": ["Yes", "No"],
                        "correct_ans": "Yes" if s.distortion == "blur" else "No", "type": 0, "concern": 0})
        else:
            mcq.append({"img_path": f"images/{s.name}", "question": "How is the overall quality of this image?",
                        "candidates": ["Good", "Fair", "Poor"],
                        "correct_ans": {"excellent": "Good", "good": "Good", "fair": "Fair"}.get(s.level, "Poor"),
                        "type": 2, "concern": 1})
    paths = {"mcq": root / "mcq.json", "mos": root / "mos.csv", "describe": root / "describe.json",
             "images": root / "images"}
    paths["mcq"].write_text(json.dumps(mcq, indent=1), encoding="utf-8")
    with open(paths["mos"], "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "mos"])
        for s in samples:
            writer.writerow([f"images/{s.name}", f"{s.mos:.2f}"])
    describe = [{"image": f"images/{s.name}", "reference": _describe(s)} for s in samples]
    paths["describe"].write_text(json.dumps(describe, indent=1), encoding="utf-8")
    return paths

