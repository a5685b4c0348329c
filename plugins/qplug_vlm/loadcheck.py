"""Refuse checkpoints whose weights do not fit the model transformers builds for them.

Why: transformers parses any ``config.json`` it can and fills the gaps with defaults. An original
LLaVA checkpoint (``model_type`` "llava", ``architectures`` ["LlavaLlamaForCausalLM"], ``mm_projector``
keys, its vision tower only named in the config) becomes a ``LlavaConfig`` of default 7B sizes, and
its weights, saved under other names, are all left "missing": transformers initialises every tensor
at random and says so only in a warning table. A model like that still produces numbers that look
like scores. qplug treats any missing or unexpected weight as a load error instead.

Two checks, both naming the checkpoint and the first few offending tensor names:

- :func:`preflight`, before loading: the model is built on the meta device (no memory), the
  checkpoint's tensor names are read from its safetensors headers (or index) and mapped through
  transformers' own renaming rules (old ``language_model.model.*`` layouts and the like). When most of
  the model's tensors have no source, loading stops here, before gigabytes of random weights are
  allocated and initialised.
- :func:`check_loading_info`, after ``from_pretrained(output_loading_info=True)``: transformers' exact
  report (tied weights such as an ``lm_head`` shared with the embeddings, non-persistent buffers and the
  model's ignore-lists already accounted for); any missing, unexpected or mismatched tensor is an error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from qplug.errors import UsageError

__all__ = ["IncompatibleWeights", "checkpoint_keys", "preflight", "check_loading_info", "SHOWN"]

#: How many tensor names an error message shows of each kind.
SHOWN = 3
#: Preflight refuses when more than this share of the model's tensors has no source in the checkpoint
#: (a different key layout); smaller gaps are left to the exact check after loading.
PREFLIGHT_MISSING_SHARE = 0.5


class IncompatibleWeights(UsageError):
    """The checkpoint's tensors do not fit the model its config describes (one line, no traceback)."""


def checkpoint_keys(path: Path) -> list[str]:
    """Every tensor name the checkpoint stores, from its safetensors index or the files' headers (cheap)."""
    index = path / "model.safetensors.index.json"
    if index.is_file():
        return sorted(json.loads(index.read_text())["weight_map"])
    from safetensors import safe_open

    keys: list[str] = []
    for file in sorted(path.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            keys.extend(handle.keys())
    return sorted(keys)


def preflight(auto: Any, path: Path, config: Any, trust_remote_code: bool = False) -> None:
    """Refuse a checkpoint whose tensors mostly do not map onto the model ``auto`` builds from ``config``.

    Best effort: anything that goes wrong while building the meta model or reading names skips the check
    (the exact check after loading still runs), so it can never block a checkpoint transformers loads.

    :raises IncompatibleWeights: when more than half of the model's tensors have no source.
    """
    try:
        expected, tied, found, unused = _compare(auto, path, config, trust_remote_code)
    except Exception:  # an architecture the meta build cannot handle, an unreadable header...
        return
    missing = sorted(set(expected) - found - tied)
    if expected and len(missing) > PREFLIGHT_MISSING_SHARE * len(expected):
        raise IncompatibleWeights(message(path, config, missing, sorted(unused), len(expected)))


def check_loading_info(path: Path, config: Any, info: Mapping[str, Any]) -> None:
    """Raise when transformers' loading report lists any missing, unexpected or mismatched tensor."""
    missing = sorted(info.get("missing_keys") or ())
    unexpected = sorted(info.get("unexpected_keys") or ())
    mismatched = sorted(str(k[0] if isinstance(k, (tuple, list)) else k) for k in (info.get("mismatched_keys") or ()))
    if missing or unexpected or mismatched:
        raise IncompatibleWeights(message(path, config, missing, unexpected, None, mismatched))


def message(path: Path, config: Any, missing: list[str], unexpected: list[str], total: int | None,
            mismatched: Iterable[str] = ()) -> str:
    """One line: what does not fit, the first names of each kind, and what to do."""
    architecture = type(config).__name__.replace("Config", "") or "model"
    parts = []
    if missing:
        of = f" of {total}" if total else ""
        parts.append(f"{len(missing)}{of} tensors missing ({_first(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({_first(unexpected)})")
    mismatched = list(mismatched)
    if mismatched:
        parts.append(f"{len(mismatched)} of the wrong shape ({_first(mismatched)})")
    return (f"{path}: its weights do not fit the {architecture} model its config.json describes: "
            f"{' and '.join(parts)}; qplug will not score with randomly initialised weights{_hint(config)}")


def _first(keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOWN])
    return shown + (", ..." if len(keys) > SHOWN else "")


def _hint(config: Any) -> str:
    """What such a layout usually is, from the config's own words."""
    architectures = list(getattr(config, "architectures", None) or ())
    fields = set(getattr(config, "to_dict", dict)())
    if "LlavaLlamaForCausalLM" in architectures or any(f.startswith("mm_") for f in fields):
        return (" (an original LLaVA-layout checkpoint, e.g. a Q-Instruct release with architectures "
                f"{architectures or '?'}: convert it first with qplug convert llava SRC --vision-tower CLIP_DIR OUT)")
    if any("mplug" in a.lower() for a in architectures):
        return " (an mPLUG-Owl2 checkpoint: it needs its own loader, not AutoModelForImageTextToText)"
    return " (saved in another key layout: convert it, or re-save it with save_pretrained)"


def _compare(auto: Any, path: Path, config: Any,
             trust_remote_code: bool) -> tuple[list[str], set[str], set[str], set[str]]:
    """(expected tensor names, tied ones, those the checkpoint provides, checkpoint names that map to none)."""
    import torch

    with torch.device("meta"):
        skeleton = auto.from_config(config, trust_remote_code=trust_remote_code)
    meta = skeleton.state_dict()
    expected = list(meta)
    tied = set(getattr(skeleton, "all_tied_weights_keys", None) or ())
    renamings, converters = _weight_mapping(skeleton)
    prefix = getattr(skeleton, "base_model_prefix", None) or None
    found: set[str] = set()
    unused: set[str] = set()
    for key in checkpoint_keys(path):
        target = _rename(key, renamings, converters, prefix, meta)
        if target in meta:
            found.add(target)
        else:
            unused.add(key)
    ignored = _ignore(getattr(skeleton, "_keys_to_ignore_on_load_unexpected", None))
    unused = {k for k in unused if not (ignored and ignored.search(k)) and not _legacy_buffer(k)}
    return expected, tied, found, unused


def _weight_mapping(model: Any) -> tuple[list[Any], list[Any]]:
    """transformers' renaming rules for this model (5.x); none on versions without them."""
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightConverter, WeightRenaming
    except ImportError:
        return [], []
    mapping = get_model_conversion_mapping(model, None, None) or []
    return ([m for m in mapping if isinstance(m, WeightRenaming)],
            [m for m in mapping if isinstance(m, WeightConverter)])


def _rename(key: str, renamings: list[Any], converters: list[Any], prefix: str | None, meta: Mapping[str, Any]) -> str:
    """The model tensor a checkpoint name loads into, as transformers' loader would decide it."""
    try:
        from transformers.core_model_loading import rename_source_key
    except ImportError:
        rename_source_key = None
    if rename_source_key is None:
        if prefix and key not in meta and f"{prefix}.{key}" in meta:
            return f"{prefix}.{key}"
        return key
    renamed, _ = rename_source_key(key, renamings, converters, prefix, meta)
    if renamed not in meta and key in meta:
        renamed, _ = rename_source_key(key, [], [], prefix, meta)
    return renamed


def _ignore(patterns: Any) -> re.Pattern[str] | None:
    patterns = [p for p in (patterns or ()) if p]
    return re.compile("|".join(f"({p})" for p in patterns)) if patterns else None


def _legacy_buffer(key: str) -> bool:
    """Buffers older checkpoints stored and transformers now recomputes (it ignores them too)."""
    return key.endswith("rotary_emb.inv_freq") or key.endswith("position_ids")
