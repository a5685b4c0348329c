"""Weight averaging ("model soup") of full models that share one parent, architecture and tokenizer.

A run continued from another (v9 from v5) moves its weights a short way inside the same basin, and
each end is better at different things (v9: held-out multiple choice and within-crop ranking; v5:
held-out yes/no and the spread of pristine crops). Interpolating the weights of such a pair is a known
way to keep most of both gains without training again (Wortsman et al. 2022, "Robust fine-tuning of
zero-shot models", WiSE-FT; "Model soups", ICML 2022). It costs one pass over the weights.

``python -m qplug_training.soup --model A --model B --weights 0.5 0.5 --out DIR`` writes a model
directory qplug loads like any export: the weighted mean of every floating tensor, stored in the
first model's dtypes; integer tensors (batch-norm counters) taken from the first model. Everything
beside the weights (config, tokenizer, processor, chat template) must be byte-identical across the
models, since a soup of two vocabularies or two layouts means nothing; it is copied from the first.
Only safetensors are read (a single ``model.safetensors`` per directory).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .export import INFO_NAME

WEIGHTS_NAME = "model.safetensors"
#: Files that must agree byte for byte: what makes two weight sets the same model.
SAME_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "processor_config.json",
              "chat_template.jinja", "generation_config.json")


class SoupError(ValueError):
    """The models cannot be averaged (the message names the model and the reason)."""


@dataclass(frozen=True)
class Ingredient:
    path: Path
    weight: float


def check(ingredients: Sequence[Ingredient]) -> None:
    """Refuse anything that would make the mean meaningless, naming the file and the reason."""
    if len(ingredients) < 2:
        raise SoupError("a soup needs at least two models")
    if any(i.weight < 0 for i in ingredients) or sum(i.weight for i in ingredients) <= 0:
        raise SoupError("weights must be non-negative and not all zero")
    first = ingredients[0].path
    for ingredient in ingredients:
        if not (ingredient.path / WEIGHTS_NAME).is_file():
            raise SoupError(f"{ingredient.path}: no {WEIGHTS_NAME} (a full model exported as one safetensors file "
                            "is needed; merge adapters first with python -m qplug_training.export merge)")
    for name in SAME_FILES:
        reference = first / name
        for ingredient in ingredients[1:]:
            other = ingredient.path / name
            if reference.is_file() != other.is_file() or (
                    reference.is_file() and reference.read_bytes() != other.read_bytes()):
                raise SoupError(f"{other}: differs from {reference}; only models with the same {name} can be averaged")


def average(ingredients: Sequence[Ingredient]) -> tuple[dict[str, object], dict[str, str]]:
    """The weighted mean of every floating tensor, computed in float32 one tensor at a time and stored
    in the first model's dtype (memory: the output plus one tensor per model); the first file's metadata."""
    import contextlib

    import torch
    from safetensors import safe_open

    total = sum(i.weight for i in ingredients)
    with contextlib.ExitStack() as stack:
        handles = [stack.enter_context(safe_open(str(i.path / WEIGHTS_NAME), framework="pt")) for i in ingredients]
        first = handles[0]
        names = set(first.keys())
        for ingredient, handle in zip(ingredients[1:], handles[1:]):
            other = set(handle.keys())
            if other != names:
                example = ", ".join(sorted(names ^ other)[:3])
                raise SoupError(f"{ingredient.path / WEIGHTS_NAME}: other tensor names than the first model's "
                                f"(for example {example})")
        out: dict[str, torch.Tensor] = {}
        for name in sorted(names):
            tensor = first.get_tensor(name)
            if not tensor.is_floating_point():
                out[name] = tensor  # counters (batch-norm steps): the first model's
                continue
            mean = torch.zeros(tensor.shape, dtype=torch.float32)
            for ingredient, handle in zip(ingredients, handles):
                part = tensor if handle is first else handle.get_tensor(name)
                if part.shape != tensor.shape:
                    raise SoupError(f"{ingredient.path / WEIGHTS_NAME}: {name} has shape {tuple(part.shape)}, "
                                    f"the first model's {tuple(tensor.shape)}")
                mean += part.float() * (ingredient.weight / total)
            out[name] = mean.to(tensor.dtype).contiguous()
        return out, dict(first.metadata() or {})


def soup(ingredients: Sequence[Ingredient], out_dir: Path) -> Path:
    """Write the averaged model to ``out_dir`` and say what went into it."""
    from safetensors.torch import save_file

    check(ingredients)
    state, metadata = average(ingredients)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in SAME_FILES:
        if (ingredients[0].path / name).is_file():
            shutil.copyfile(ingredients[0].path / name, out_dir / name)
    save_file(state, str(out_dir / WEIGHTS_NAME), metadata=metadata or {"format": "pt"})
    info = {"soup": [{"model": str(i.path), "weight": i.weight} for i in ingredients]}
    first_info = ingredients[0].path / INFO_NAME
    if first_info.is_file():
        info["first_model_info"] = json.loads(first_info.read_text(encoding="utf-8"))
    (out_dir / INFO_NAME).write_text(json.dumps(info, indent=2), encoding="utf-8")
    return out_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qplug_training.soup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, action="append", required=True, help="an exported model directory")
    parser.add_argument("--weights", type=float, nargs="+", default=None,
                        help="one weight per --model (default: equal); normalised to sum to 1")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    weights = args.weights or [1.0] * len(args.model)
    if len(weights) != len(args.model):
        print(f"error: {len(args.model)} models but {len(weights)} weights", file=sys.stderr)
        return 2
    try:
        path = soup([Ingredient(m, w) for m, w in zip(args.model, weights)], args.out)
    except SoupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"averaged model: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
