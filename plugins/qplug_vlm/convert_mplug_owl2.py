"""``qplug convert mplug-owl2``: a downloaded mPLUG-Owl2 release into a directory qplug loads.

Q-Align / OneAlign, Co-Instruct and Q-Instruct's mPLUG-Owl2 build are published for their authors'
remote code: ``config.json`` with ``model_type: mplug_owl2`` (LLaMA fields + ``visual_config``), the
weights as PyTorch ``.bin`` shards with ``pytorch_model.bin.index.json`` (some as safetensors), the
LLaMA tokenizer (``tokenizer.model``), ``preprocessor_config.json`` (CLIP values at 448 px). qplug's own
implementation (:mod:`qplug_vlm.mplug_owl2`) reads the released tensor names as they are but only from
safetensors, so this step:

- reads each weight file once: safetensors directly, ``.bin`` with ``torch.load(weights_only=True,
  map_location="cpu")`` (plain tensors only: anything else in the pickle is refused), here and nowhere
  else;
- checks every tensor against the model the config describes: names (the abstractor's sine-cosine
  tables may be absent, old RoPE ``inv_freq`` buffers are dropped) and shapes;
- writes them as safetensors, one output shard per input shard, with ``model.safetensors.index.json``
  when there are several (memory: one shard at a time), optionally cast (``--dtype``);
- copies ``config.json`` (without ``auto_map``: nothing points at remote code), the tokenizer files
  and ``preprocessor_config.json`` (Q-Align's values are written when the release has none);
- checks the result by loading it: tokenizer, image settings and the safetensors headers against the
  model's layout always, and the whole model when it is small (under 2 GB: tests, tiny models).

Nothing from the release is imported or executed. Everything is written into a hidden temporary
directory next to OUTPUT and renamed at the end, so a failure leaves nothing behind. Anything not
recognised is refused with one line naming the file and the key or tensor.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from qplug.errors import QplugError

from .convert_llava import _read_tensors, _weight_files, read_json

__all__ = ["MplugOwl2Converter", "convert", "REQUIRED_KEYS", "TOKENIZER_FILES"]

MODEL_TYPE = "mplug_owl2"
#: config.json keys without which the architecture is not known.
REQUIRED_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
#: Tokenizer files copied when present (tokenizer.model or tokenizer.json must be).
TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json")
_DTYPES = ("float32", "float16", "bfloat16")
_COMPUTED = ("q_pos_embed", "k_pos_embed")
_DERIVED = ".rotary_emb.inv_freq"
#: Models smaller than this are loaded in full after conversion; larger ones are checked from headers.
FULL_CHECK_BYTES = 2 * 1024 ** 3


class MplugOwl2Converter:
    """The ``mplug-owl2`` converter (``qplug convert mplug-owl2 SRC OUT [--dtype D]``)."""

    def convert(self, source: str, output: str, dtype: str | None = None, **options: Any) -> str:
        if options:
            raise QplugError(f"convert mplug-owl2: unknown option(s) {', '.join(sorted(options))}")
        return convert(source, output, dtype=dtype)


def convert(source: str | os.PathLike[str], output: str | os.PathLike[str], dtype: str | None = None) -> str:
    """Convert; return one line saying what was written. See the module docstring."""
    src, out = Path(source), Path(output)
    if os.path.lexists(out):
        raise QplugError(f"{out}: already exists; give a new directory to write the converted model to")
    if dtype is not None and dtype not in _DTYPES:
        raise QplugError(f"convert mplug-owl2: dtype {dtype!r} is not one of {', '.join(_DTYPES)}")
    config = _read_config(src)
    tokenizer_files = _tokenizer_files(src)
    files = _weight_files(src, what=f"mPLUG-Owl2 release {src}")
    expected = _expected_shapes(src, config)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.converting-", dir=out.parent))
    try:
        summary = _convert_into(staging, src, config, files, tokenizer_files, expected, dtype)
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return f"wrote {out}: {summary}"


# ---------------------------------------------------------------------------------------------
# Checks before anything is written


def _read_config(src: Path) -> dict[str, Any]:
    if not src.is_dir():
        raise QplugError(f"{src}: not a directory (give the downloaded mPLUG-Owl2 release's directory)")
    path = src / "config.json"
    config = read_json(path, "not an mPLUG-Owl2 release?")
    kind = config.get("model_type")
    if kind != MODEL_TYPE:
        hint = " (original LLaVA releases: qplug convert llava)" if kind in ("llava", "llava_llama") else ""
        raise QplugError(f"{path}: model_type {kind!r} is not {MODEL_TYPE!r}{hint}")
    for key in REQUIRED_KEYS:
        if key not in config:
            raise QplugError(f"{path}: missing key {key!r}")
    visual = config.get("visual_config")
    if visual is not None and not (isinstance(visual, dict) and all(
            isinstance(visual.get(part, {}), dict) for part in ("visual_model", "visual_abstractor"))):
        raise QplugError(f"{path}: visual_config must hold the visual_model and visual_abstractor sections")
    return config


def _tokenizer_files(src: Path) -> list[Path]:
    if not any((src / name).is_file() for name in ("tokenizer.model", "tokenizer.json")):
        raise QplugError(f"{src / 'tokenizer.model'}: missing (the release's LLaMA tokenizer; tokenizer.json also "
                         "does)")
    return [src / name for name in TOKENIZER_FILES if (src / name).is_file()]


def _expected_shapes(src: Path, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    from .mplug_owl2.testing import state_dict_shapes

    try:
        return state_dict_shapes(config)
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        raise QplugError(f"{src / 'config.json'}: not a usable mPLUG-Owl2 configuration: {type(exc).__name__}: "
                         f"{lines[0] if lines else ''}") from None


# ---------------------------------------------------------------------------------------------
# The conversion


def _torch_dtype(name: str | None) -> Any:
    if name is None:
        return None
    import torch

    return getattr(torch, name)


def _convert_into(staging: Path, src: Path, config: dict[str, Any], files: list[Path], tokenizer_files: list[Path],
                  expected: dict[str, tuple[int, ...]], dtype: str | None) -> str:
    from safetensors.torch import save_file

    cast = _torch_dtype(dtype)
    seen: dict[str, Path] = {}
    weight_map: dict[str, str] = {}
    total = 0
    dropped = 0
    count = len(files)
    for number, file in enumerate(files, 1):
        shard: dict[str, Any] = {}
        for name, tensor in _read_tensors(file):
            if not hasattr(tensor, "shape") or not hasattr(tensor, "dtype"):
                raise QplugError(f"{file}: entry {name!r} is not a tensor")
            if name in seen:
                raise QplugError(f"{file}: tensor {name!r} is also in {seen[name].name}")
            seen[name] = file
            if name.endswith(_DERIVED):
                dropped += 1
                continue
            if name not in expected:
                raise QplugError(f"{file}: unknown tensor {name!r} for mPLUG-Owl2 (is this an mPLUG-Owl2 release?)")
            if tuple(tensor.shape) != expected[name]:
                raise QplugError(f"{file}: tensor {name!r} has shape {tuple(tensor.shape)}, config.json needs "
                                 f"{expected[name]}")
            if cast is not None and tensor.is_floating_point() and tensor.dtype != cast:
                tensor = tensor.to(cast)
            shard[name] = tensor.contiguous()
        if not shard:
            continue
        out_name = "model.safetensors" if count == 1 else f"model-{number:05d}-of-{count:05d}.safetensors"
        save_file(shard, str(staging / out_name), metadata={"format": "pt"})
        total += sum(t.numel() * t.element_size() for t in shard.values())
        weight_map.update({name: out_name for name in shard})
        del shard
    missing = sorted(n for n in expected if n not in weight_map and n.rsplit(".", 1)[-1] not in _COMPUTED)
    if missing:
        where = src / ("pytorch_model.bin.index.json" if (src / "pytorch_model.bin.index.json").is_file()
                       else files[0].name)
        raise QplugError(f"{where}: missing weight {missing[0]!r}" + (f" and {len(missing) - 1} more"
                                                                      if len(missing) > 1 else ""))
    shards = sorted(set(weight_map.values()))
    if len(shards) > 1 or shards != ["model.safetensors"]:
        (staging / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))},
                       indent=2) + "\n", encoding="utf-8")

    written = {k: v for k, v in config.items() if k != "auto_map"}
    if dtype is not None:
        written["torch_dtype"] = dtype
    (staging / "config.json").write_text(json.dumps(written, indent=2) + "\n", encoding="utf-8")
    for file in tokenizer_files:
        if file.name == "tokenizer_config.json":
            tokenizer_config = read_json(file, "tokenizer settings")
            tokenizer_config.pop("auto_map", None)
            (staging / file.name).write_text(json.dumps(tokenizer_config, indent=2) + "\n", encoding="utf-8")
        else:
            shutil.copyfile(file, staging / file.name)
    notes = []
    if (src / "preprocessor_config.json").is_file():
        read_json(src / "preprocessor_config.json", "image settings")
        shutil.copyfile(src / "preprocessor_config.json", staging / "preprocessor_config.json")
    else:
        from .mplug_owl2.testing import PREPROCESSOR_CONFIG

        (staging / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR_CONFIG, indent=2) + "\n")
        notes.append("no preprocessor_config.json in the release: Q-Align's (448 px, CLIP mean/std) written")
    record = {"source": str(src.resolve()), "converter": "mplug-owl2", "weights": [f.name for f in files],
              "dtype": dtype, "dropped": dropped, "notes": notes}
    (staging / "CONVERTED_FROM.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    _check_by_loading(staging, total)
    size = f"{total / 1e9:.2f} GB" if total >= 1e8 else f"{total / 1e6:.1f} MB"
    summary = f"{len(weight_map)} tensors in {len(shards)} safetensors file(s), {size}"
    if dropped:
        summary += f", {dropped} RoPE buffer(s) dropped"
    return summary + ("; " + "; ".join(notes) if notes else "")


def _check_by_loading(directory: Path, total_bytes: int) -> None:
    """Open what was written the way ``--model`` will: tokenizer and image settings, then the whole
    model when small, else every safetensors header against the model's layout."""
    from qplug.errors import UsageError

    from .mplug_owl2.loading import load_mplug_owl2, weight_files

    try:
        if total_bytes < FULL_CHECK_BYTES:
            load_mplug_owl2(directory, device="cpu", dtype="float32")
            return
        from safetensors import safe_open
        from transformers import AutoTokenizer

        from .mplug_owl2.configuration import MPLUGOwl2Config
        from .mplug_owl2.processing import MPLUGOwl2ImageProcessor

        config = MPLUGOwl2Config.from_released(json.loads((directory / "config.json").read_text()))
        AutoTokenizer.from_pretrained(str(directory), config=config, local_files_only=True, trust_remote_code=False)
        MPLUGOwl2ImageProcessor.from_dir(directory)
        for file in weight_files(directory):
            with safe_open(str(file), framework="pt", device="cpu") as handle:
                list(handle.keys())
    except UsageError as exc:
        raise QplugError(f"the converted model does not load: {exc}") from None
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        raise QplugError(f"the converted model does not load: {type(exc).__name__}: {lines[0] if lines else ''}") \
            from None
