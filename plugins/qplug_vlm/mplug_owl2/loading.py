"""Find and load a released mPLUG-Owl2 checkpoint: safetensors only, no remote code, exact keys.

:func:`is_mplug_owl2` is a cheap file check (no torch) for the backend to route on;
:func:`load_mplug_owl2` builds the model on the meta device, reads the safetensors shards into it
and refuses, with a one-line :class:`~qplug.errors.UsageError` naming the file, anything that does
not fit: another ``model_type``, pickled ``.bin`` weights only, an unreadable or truncated shard, a
missing shard, missing or unexpected tensors, wrong shapes. Two kinds of tensor may be absent or extra
without harm: the abstractor's sine-cosine tables (computed when absent) and the RoPE ``inv_freq``
buffers older transformers versions saved (ignored).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qplug.errors import UsageError

if TYPE_CHECKING:
    import torch

    from .modeling import MPLUGOwl2ForCausalLM
    from .processing import MPLUGOwl2ImageProcessor

__all__ = ["MODEL_TYPE", "is_mplug_owl2", "load_mplug_owl2", "weight_files", "read_config"]

MODEL_TYPE = "mplug_owl2"
_INDEX = "model.safetensors.index.json"
_SINGLE = "model.safetensors"
#: Buffers a checkpoint may omit: fixed sine-cosine tables the model computes itself.
_COMPUTED = ("q_pos_embed", "k_pos_embed")
#: Derived tensors older transformers saved with LLaMA weights (RoPE frequencies): skipped, never learned.
_DERIVED = ("rotary_emb.inv_freq",)


def is_mplug_owl2(model_dir: str | os.PathLike[str]) -> bool:
    """True when ``model_dir/config.json`` declares ``"model_type": "mplug_owl2"`` (never raises)."""
    try:
        with open(Path(model_dir) / "config.json", encoding="utf-8") as handle:
            return json.load(handle).get("model_type") == MODEL_TYPE
    except (OSError, ValueError, AttributeError):
        return False


def read_config(model_dir: Path) -> dict[str, Any]:
    """``config.json`` as a dict, checked to be an mPLUG-Owl2 configuration."""
    path = model_dir / "config.json"
    if not model_dir.is_dir():
        raise UsageError(f"model directory {model_dir} does not exist")
    if not path.is_file():
        raise UsageError(f"{model_dir} is not a model directory: it has no config.json")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from exc
    kind = config.get("model_type") if isinstance(config, dict) else None
    if kind != MODEL_TYPE:
        raise UsageError(f"{path}: model_type is {kind!r}, not {MODEL_TYPE!r}; this loader reads mPLUG-Owl2 "
                         "checkpoints only")
    return config


def weight_files(model_dir: Path) -> list[Path]:
    """The safetensors shards of a checkpoint (sharded through the index, or one file)."""
    index = model_dir / _INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            names = sorted(set(weight_map.values()))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"{index} is not a safetensors index (no weight_map): {exc}") from exc
        files = [model_dir / name for name in names]
        for file in files:
            if not file.is_file():
                raise UsageError(f"{file} is listed in {index.name} but missing")
        return files
    shards = sorted(model_dir.glob("*.safetensors"))
    if shards:
        return shards
    pickled = sorted(p.name for pattern in ("*.bin", "*.pt", "*.pth") for p in model_dir.glob(pattern))
    if pickled:
        raise UsageError(f"{model_dir / pickled[0]}: only pickled weights ({', '.join(pickled[:3])}"
                         f"{'...' if len(pickled) > 3 else ''}), which qplug never unpickles; convert the checkpoint "
                         f"to safetensors first with `qplug convert` (`qplug converters` lists the converters)")
    raise UsageError(f"{model_dir} has no weights ({_SINGLE} or {_INDEX})")


def _torch_dtype(dtype: "str | torch.dtype") -> "torch.dtype":
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"float32": torch.float32, "fp32": torch.float32, "float": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16, "half": torch.float16}
    try:
        return names[str(dtype).lower()]
    except KeyError:
        raise UsageError(f"unknown dtype {dtype!r} (use float32, bfloat16 or float16)") from None


def _tokenizer_hint(path: Path) -> str:
    """Released checkpoints ship LLaMA's SentencePiece ``tokenizer.model`` only; reading it needs sentencepiece."""
    import importlib.util

    if (path / "tokenizer.model").is_file() and not (path / "tokenizer.json").is_file() \
            and importlib.util.find_spec("sentencepiece") is None:
        return (f" ({path / 'tokenizer.model'} is a SentencePiece model: `pip install sentencepiece protobuf` to read "
                "it, or save the tokenizer with tokenizer.json next to it)")
    return ""


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def load_mplug_owl2(model_dir: str | os.PathLike[str], device: "str | torch.device" = "cpu",
                    dtype: "str | torch.dtype" = "float32"
                    ) -> "tuple[MPLUGOwl2ForCausalLM, Any, MPLUGOwl2ImageProcessor]":
    """Load a local mPLUG-Owl2 checkpoint for inference: ``(model, tokenizer, image_processor)``.

    :param model_dir: a released checkpoint directory (``config.json`` with ``model_type: mplug_owl2``,
        safetensors weights, the LLaMA tokenizer, optionally ``preprocessor_config.json``).
    :param device: where the weights go (read straight onto it, no CPU copy).
    :param dtype: ``float32``, ``bfloat16`` or ``float16`` (or a ``torch.dtype``).
    :raises UsageError: one line naming the file for every checkpoint that does not fit.
    """
    import torch
    from safetensors import safe_open

    from .configuration import MPLUGOwl2Config
    from .modeling import MPLUGOwl2ForCausalLM
    from .processing import MPLUGOwl2ImageProcessor

    path = Path(os.path.realpath(os.path.expanduser(os.fspath(model_dir))))
    raw = read_config(path)
    files = weight_files(path)
    torch_dtype = _torch_dtype(dtype)
    device = torch.device(device)
    try:
        config = MPLUGOwl2Config.from_released(raw)
    except Exception as exc:
        raise UsageError(f"{path / 'config.json'}: not a usable mPLUG-Owl2 configuration: {_one_line(exc)}") from exc
    # The tokenizer and image settings first: cheap, and a broken one should fail before gigabytes are read.
    try:
        from transformers import AutoTokenizer

        # config= keeps AutoTokenizer from looking the (unregistered) model type up in AutoConfig.
        tokenizer = AutoTokenizer.from_pretrained(str(path), config=config, local_files_only=True,
                                                  trust_remote_code=False)
    except Exception as exc:
        raise UsageError(f"{path}: its tokenizer could not be loaded: {_one_line(exc)}{_tokenizer_hint(path)}") from exc
    image_processor = MPLUGOwl2ImageProcessor.from_dir(path)
    with torch.device("meta"):
        model = MPLUGOwl2ForCausalLM(config)
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}

    state: dict[str, torch.Tensor] = {}
    origin: dict[str, Path] = {}
    for file in files:
        try:
            with safe_open(str(file), framework="pt", device=str(device)) as handle:
                for name in handle.keys():
                    if name in origin:
                        raise UsageError(f"{file}: tensor {name!r} is also in {origin[name].name}")
                    origin[name] = file
                    if name not in expected or name.endswith(_DERIVED):
                        continue
                    tensor = handle.get_tensor(name)
                    if tuple(tensor.shape) != expected[name]:
                        raise UsageError(f"{file}: {name} has shape {tuple(tensor.shape)}, the configuration "
                                         f"needs {expected[name]}")
                    state[name] = tensor.to(torch_dtype) if tensor.is_floating_point() else tensor
        except UsageError:
            raise
        except Exception as exc:  # safetensors' own errors: truncated file, bad header...
            raise UsageError(f"{file}: not a readable safetensors file ({_one_line(exc)})") from exc

    unexpected = sorted(n for n in set(origin) - set(expected) if not n.endswith(_DERIVED))
    missing = sorted(n for n in set(expected) - set(origin) if n.rsplit(".", 1)[-1] not in _COMPUTED)
    if unexpected:
        raise UsageError(f"{origin[unexpected[0]]}: {len(unexpected)} unexpected tensor(s) for mPLUG-Owl2, e.g. "
                         f"{', '.join(unexpected[:3])}")
    if missing:
        where = files[0] if len(files) == 1 else path / _INDEX
        raise UsageError(f"{where}: {len(missing)} tensor(s) missing, e.g. {', '.join(missing[:3])}")
    model.load_state_dict(state, strict=False, assign=True)
    model.materialize_computed_buffers(device=device, dtype=torch_dtype, present=set(state))
    model.eval().requires_grad_(False)

    return model, tokenizer, image_processor
