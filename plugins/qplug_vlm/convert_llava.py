"""``qplug convert llava``: an original-layout LLaVA-1.5 release into a transformers ``LlavaForConditionalGeneration``.

Q-Instruct's LLaVA-1.5 releases keep the layout of github.com/haotian-liu/LLaVA: ``config.json`` with
``architectures: ["LlavaLlamaForCausalLM"]`` and the ``mm_*`` fields, the language model and the
``mm_projector`` in the weights (``model.*``, ``lm_head.weight``), the CLIP vision tower NOT in the
weights but named by ``mm_vision_tower`` (given here as ``--vision-tower DIR``), and a LLaMA tokenizer.
qplug's backend loads a ``LlavaForConditionalGeneration`` directory with ``AutoModelForImageTextToText``
and ``AutoProcessor``; this module writes one:

- weights renamed to the transformers 5 names (``model.language_model.*``, ``model.vision_tower.*``,
  ``model.multi_modal_projector.linear_1/2``, ``lm_head.weight``), saved as safetensors;
- ``<image>`` (and ``<pad>``) added to the tokenizer at the ids transformers' own conversion used
  (32000 and 32001 for a 32,000-token LLaMA vocabulary), the embedding and LM-head matrices padded
  to a multiple of 64 rows with the new rows set to the mean of the old ones (transformers'
  ``convert_llava_weights_to_hf.py`` samples them from N(mean, 1e-5 x covariance); the mean is that
  distribution's centre and keeps the conversion deterministic);
- a ``LlavaProcessor``: the CLIP image processor of ``--vision-tower``, ``patch_size`` of the tower,
  ``vision_feature_select_strategy="default"`` (LLaVA's ``mm_vision_select_feature: patch`` drops the
  CLS token) and ``num_additional_image_tokens=1``, so the processor writes exactly as many image
  tokens as the tower yields; LLaVA-1.5's ``USER: <image>\\n... ASSISTANT:`` chat template
  (:data:`qplug_vlm.configuration.LLAVA_TEMPLATE`).

Nothing from the source directory is ever imported or executed (an ``auto_map`` is ignored: the
config is read as JSON). Safetensors shards are read directly; pickled ``.bin`` shards only with
``torch.load(weights_only=True)``, here and nowhere else. Everything is written into a temporary
directory next to the output and renamed at the end, so a failure never leaves a half-written output.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from qplug.errors import QplugError

from .configuration import LLAVA_TEMPLATE

__all__ = ["LlavaConverter", "MODEL_TYPES", "PAD_MULTIPLE", "convert", "rename_key"]

#: ``model_type`` values of original LLaVA-1.5 configs (LLaVA's own ``LlavaConfig`` says ``llava_llama``;
#: the released 1.5 checkpoints were saved as ``llava``).
MODEL_TYPES = ("llava", "llava_llama")
#: transformers' conversion padded the vocabulary to a multiple of 64 ("for performance reasons").
PAD_MULTIPLE = 64
#: Largest safetensors shard written (bytes).
SHARD_BYTES = 4 * 1024 ** 3
_DTYPES = ("float32", "float16", "bfloat16")
_WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_TEXT_KEYS = ("embed_tokens.weight", "norm.weight")
_LAYER_PARTS = ("self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
                "input_layernorm.weight", "post_attention_layernorm.weight")
_PROJECTOR = {"model.mm_projector.0.weight": "model.multi_modal_projector.linear_1.weight",
              "model.mm_projector.0.bias": "model.multi_modal_projector.linear_1.bias",
              "model.mm_projector.2.weight": "model.multi_modal_projector.linear_2.weight",
              "model.mm_projector.2.bias": "model.multi_modal_projector.linear_2.bias"}


class LlavaConverter:
    """The ``llava`` converter (``qplug convert llava SRC --vision-tower CLIP_DIR OUT``)."""

    def convert(self, source: str, output: str, vision_tower: str | None = None, dtype: str | None = None,
                **options: Any) -> str:
        if options:
            raise QplugError(f"convert llava: unknown option(s) {', '.join(sorted(options))}")
        if not vision_tower:
            raise QplugError("convert llava needs --vision-tower CLIP_DIR (the CLIP ViT-L/14-336 checkpoint the "
                             "release's mm_vision_tower names; LLaVA releases do not contain it)")
        return convert(source, output, vision_tower, dtype=dtype)


def rename_key(key: str) -> str | None:
    """The transformers 5 name of an original LLaVA language-model or projector key; None to drop it."""
    if key.endswith(".rotary_emb.inv_freq"):
        return None  # a buffer older transformers saved; recomputed from the config
    if key in _PROJECTOR:
        return _PROJECTOR[key]
    if key == "lm_head.weight":
        return key
    if key.startswith("model.") and not key.startswith(("model.mm_projector.", "model.vision_tower.")):
        return "model.language_model." + key[len("model."):]
    raise QplugError(f"unrecognised weight {key!r} in the LLaVA checkpoint (expected model.*, model.mm_projector.* "
                     "and lm_head.weight)")


def convert(source: str | os.PathLike[str], output: str | os.PathLike[str], vision_tower: str | os.PathLike[str],
            dtype: str | None = None) -> str:
    """Convert; return one line saying what was written. See the module docstring."""
    src, out, clip = Path(source), Path(output), Path(vision_tower)
    if os.path.lexists(out):
        raise QplugError(f"{out}: already exists; give a new directory to write the converted model to")
    if dtype is not None and dtype not in _DTYPES:
        raise QplugError(f"convert llava: dtype {dtype!r} is not one of {', '.join(_DTYPES)}")
    config = _read_source_config(src)
    vision_config_dict, clip_weights = _vision_tower_files(clip)
    tokenizer_files = _check_tokenizer_files(src)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.converting-", dir=out.parent))
    try:
        summary = _convert_into(staging, src, config, clip, vision_config_dict, clip_weights, tokenizer_files, dtype)
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return f"wrote {out}: {summary}"


# ---------------------------------------------------------------------------------------------
# Checks before anything is written


def read_json(path: Path, what: str = "not an original-layout LLaVA release?") -> dict[str, Any]:
    """A JSON object from ``path``; a missing or malformed file is a one-line error naming it (and ``what``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QplugError(f"{path}: missing ({what})") from None
    except (OSError, ValueError) as exc:
        raise QplugError(f"{path}: not readable JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise QplugError(f"{path}: expected a JSON object")
    return data


def _read_source_config(src: Path) -> dict[str, Any]:
    if not src.is_dir():
        raise QplugError(f"{src}: not a directory (give the LLaVA release's checkpoint directory)")
    config = read_json(src / "config.json")
    model_type = config.get("model_type")
    if model_type not in MODEL_TYPES:
        other = "; mPLUG-Owl2 releases: qplug convert mplug-owl2" if model_type == "mplug_owl2" else ""
        raise QplugError(f"{src / 'config.json'}: model_type {model_type!r} is not an original LLaVA-1.5 checkpoint "
                         f"(expected {' or '.join(MODEL_TYPES)}; llava-hf checkpoints need no conversion{other})")
    architectures = config.get("architectures") or []
    if "LlavaLlamaForCausalLM" not in architectures:
        raise QplugError(f"{src / 'config.json'}: architectures {architectures} lack LlavaLlamaForCausalLM")
    for key in ("mm_vision_tower", "mm_hidden_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "vocab_size"):
        if key not in config:
            raise QplugError(f"{src / 'config.json'}: missing key {key!r}")
    checks = {"mm_projector_type": ("mlp2x_gelu",), "mm_vision_select_feature": ("patch", "cls_patch"),
              "mm_patch_merge_type": ("flat",), "image_aspect_ratio": ("pad", "square")}
    defaults = {"mm_vision_select_feature": "patch", "mm_patch_merge_type": "flat", "image_aspect_ratio": "square"}
    for key, allowed in checks.items():
        value = config.get(key, defaults.get(key))
        if value not in allowed:
            raise QplugError(f"{src / 'config.json'}: {key} {value!r} is not supported (only {', '.join(allowed)})")
    if config.get("mm_use_im_start_end") or config.get("mm_use_im_patch_token"):
        raise QplugError(f"{src / 'config.json'}: mm_use_im_start_end/mm_use_im_patch_token are set; only "
                         "LLaVA-1.5 checkpoints without image start/end/patch tokens are supported")
    if not isinstance(config.get("mm_vision_select_layer", -2), int):
        raise QplugError(f"{src / 'config.json'}: mm_vision_select_layer must be an integer")
    return config


def _vision_tower_files(clip: Path) -> tuple[dict[str, Any], list[Path]]:
    """(the CLIP vision config as a dict, its weight files)."""
    if not clip.is_dir():
        raise QplugError(f"vision tower {clip}: no such directory (give the CLIP checkpoint, e.g. a download of "
                         "openai/clip-vit-large-patch14-336)")
    config = read_json(clip / "config.json")
    if config.get("model_type") == "clip":
        vision = config.get("vision_config")
        if not isinstance(vision, dict):
            raise QplugError(f"{clip / 'config.json'}: a CLIP config without vision_config")
    elif config.get("model_type") == "clip_vision_model":
        vision = config
    else:
        raise QplugError(f"{clip / 'config.json'}: model_type {config.get('model_type')!r} is not a CLIP model "
                         "(expected clip or clip_vision_model)")
    if not (clip / "preprocessor_config.json").is_file():
        raise QplugError(f"vision tower {clip}: missing preprocessor_config.json (the CLIP image processor settings)")
    files = _weight_files(clip, what=f"vision tower {clip}")
    return vision, files


def _weight_files(directory: Path, what: str) -> list[Path]:
    for index_name in _WEIGHT_INDEXES:
        index = directory / index_name
        if index.is_file():
            weight_map = read_json(index).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise QplugError(f"{index}: no weight_map")
            files = [directory / name for name in dict.fromkeys(weight_map.values())]
            for file in files:
                if not file.is_file():
                    raise QplugError(f"{file}: missing (listed in {index.name})")
            return files
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (directory / name).is_file():
            return [directory / name]
    raise QplugError(f"{what}: no weights (model.safetensors, pytorch_model.bin or a shard index)")


def _check_tokenizer_files(src: Path) -> list[Path]:
    files = [src / name for name in ("tokenizer.json", "tokenizer.model") if (src / name).is_file()]
    if not files:
        raise QplugError(f"{src}: missing tokenizer.model (or tokenizer.json): the release's LLaMA tokenizer")
    return files


# ---------------------------------------------------------------------------------------------
# Reading weights


def _read_tensors(file: Path) -> Iterator[tuple[str, Any]]:
    """(name, tensor) pairs of one weight file: safetensors directly, ``.bin`` with weights_only=True."""
    if file.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(file), framework="pt", device="cpu") as handle:
                for key in handle.keys():
                    yield key, handle.get_tensor(key)
        except QplugError:
            raise
        except Exception as exc:
            raise QplugError(f"{file}: not a readable safetensors file (truncated?): {_first_line(exc)}") from None
        return
    if file.suffix in (".bin", ".pt", ".pth"):
        import torch

        try:
            state = torch.load(str(file), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise QplugError(f"{file}: not a readable PyTorch weights file (truncated, or not plain tensors): "
                             f"{_first_line(exc)}") from None
        if not isinstance(state, dict):
            raise QplugError(f"{file}: expected a dictionary of tensors")
        yield from state.items()
        return
    raise QplugError(f"{file}: unknown weight file type")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _cast(tensor: Any, dtype: Any) -> Any:
    return tensor if dtype is None or tensor.dtype == dtype else tensor.to(dtype)


# ---------------------------------------------------------------------------------------------
# The conversion


def _convert_into(staging: Path, src: Path, config: dict[str, Any], clip: Path, vision_dict: dict[str, Any],
                  clip_weights: list[Path], tokenizer_files: list[Path], dtype_name: str | None) -> str:
    import torch
    from transformers import AddedToken, AutoTokenizer, CLIPImageProcessorPil, CLIPVisionConfig, LlamaConfig, \
        LlavaConfig, LlavaProcessor

    # Language model and projector.
    state: dict[str, Any] = {}
    for file in _weight_files(src, what=str(src)):
        for key, tensor in _read_tensors(file):
            new = rename_key(key)
            if new is not None:
                state[new] = tensor
    if "lm_head.weight" not in state and config.get("tie_word_embeddings") and \
            "model.language_model.embed_tokens.weight" in state:
        state["lm_head.weight"] = state["model.language_model.embed_tokens.weight"].clone()
    expected = [*_PROJECTOR, "lm_head.weight", *(f"model.{k}" for k in _TEXT_KEYS),
                *(f"model.layers.{n}.{part}" for n in range(int(config["num_hidden_layers"])) for part in _LAYER_PARTS)]
    for key in expected:
        if rename_key(key) not in state:
            raise QplugError(f"{src}: missing weight {key!r}" + (
                " (no multimodal projector: is this a language-model-only checkpoint?)" if "mm_projector" in key else ""))
    stored = state["model.language_model.embed_tokens.weight"].dtype
    dtype = getattr(torch, dtype_name) if dtype_name else stored

    # Vision tower: every vision_model.* weight of a CLIPVisionModel or CLIPModel checkpoint.
    vision_state = {}
    for file in clip_weights:
        for key, tensor in _read_tensors(file):
            if key.startswith("vision_model.") and not key.endswith(".position_ids"):
                vision_state["model.vision_tower." + key[len("vision_model."):]] = tensor
    if "model.vision_tower.embeddings.patch_embedding.weight" not in vision_state:
        raise QplugError(f"vision tower {clip}: missing weight 'vision_model.embeddings.patch_embedding.weight' "
                         "(not a CLIP vision checkpoint?)")
    vision_config = CLIPVisionConfig(**{k: v for k, v in vision_dict.items()
                                        if k not in ("model_type", "architectures", "transformers_version",
                                                     "torch_dtype", "dtype", "auto_map")})
    if vision_config.hidden_size != int(config["mm_hidden_size"]):
        raise QplugError(f"vision tower {clip}: hidden size {vision_config.hidden_size} does not match the release's "
                         f"mm_hidden_size {config['mm_hidden_size']} (wrong CLIP checkpoint?)")
    state.update(vision_state)

    # Tokenizer: <image> and <pad> appended, as transformers' conversion did (ids 32000 and 32001).
    try:
        tokenizer = _load_tokenizer(AutoTokenizer, src, staging)
    except Exception as exc:
        hint = ""
        if not (src / "tokenizer.json").is_file():
            hint = " (reading tokenizer.model needs the sentencepiece and protobuf packages: pip install sentencepiece protobuf)"
        raise QplugError(f"{src}: the tokenizer could not be loaded: {_first_line(exc)}{hint}") from None
    old_rows = state["model.language_model.embed_tokens.weight"].shape[0]
    if len(tokenizer) > old_rows:
        raise QplugError(f"{src}: the tokenizer has {len(tokenizer)} tokens but the embeddings only {old_rows} rows")
    tokenizer.add_tokens(AddedToken("<image>", special=True, normalized=False), special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": "<pad>"})
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    rows = -(-max(old_rows, len(tokenizer)) // PAD_MULTIPLE) * PAD_MULTIPLE
    for key in ("model.language_model.embed_tokens.weight", "lm_head.weight"):
        state[key] = _pad_rows(state[key], rows)

    # Config.
    select = config.get("mm_vision_select_feature", "patch")
    text_config = LlamaConfig(
        vocab_size=rows, hidden_size=int(config["hidden_size"]), intermediate_size=int(config["intermediate_size"]),
        num_hidden_layers=int(config["num_hidden_layers"]), num_attention_heads=int(config["num_attention_heads"]),
        num_key_value_heads=int(config.get("num_key_value_heads") or config["num_attention_heads"]),
        hidden_act=config.get("hidden_act", "silu"),
        max_position_embeddings=int(config.get("max_position_embeddings", 4096)),
        rms_norm_eps=float(config.get("rms_norm_eps", 1e-6)),
        rope_theta=float(config.get("rope_theta", 10000.0)),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    if config.get("rope_scaling"):
        raise QplugError(f"{src / 'config.json'}: rope_scaling {config['rope_scaling']!r} is not supported")
    patches = (vision_config.image_size // vision_config.patch_size) ** 2
    llava_config = LlavaConfig(
        vision_config=vision_config.to_dict(), text_config=text_config.to_dict(), image_token_id=image_token_id,
        projector_hidden_act="gelu", vision_feature_select_strategy="default" if select == "patch" else "full",
        vision_feature_layer=int(config.get("mm_vision_select_layer", -2)), multimodal_projector_bias=True,
        image_seq_length=patches, tie_word_embeddings=text_config.tie_word_embeddings)
    llava_config.architectures = ["LlavaForConditionalGeneration"]
    llava_config.dtype = str(dtype).replace("torch.", "")
    llava_config.save_pretrained(staging)

    # Weights: exactly the names and shapes transformers' model has (checked on the meta device, free).
    _check_against_model(state, llava_config, src, clip)
    state = {key: _cast(tensor, dtype).contiguous() for key, tensor in state.items()}
    _save_safetensors(state, staging)

    # Processor.
    try:
        image_processor = CLIPImageProcessorPil.from_pretrained(str(clip), local_files_only=True)
    except Exception as exc:
        raise QplugError(f"vision tower {clip}: preprocessor_config.json could not be read: {_first_line(exc)}") from None
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=vision_config.patch_size,
                               vision_feature_select_strategy=llava_config.vision_feature_select_strategy,
                               num_additional_image_tokens=1, chat_template=LLAVA_TEMPLATE)
    processor.save_pretrained(staging)
    _write_generation_config(staging, tokenizer)
    (staging / "CONVERTED_FROM.json").write_text(json.dumps({
        "converter": "qplug convert llava", "source": str(src.resolve()), "vision_tower": str(clip.resolve()),
        "source_mm_vision_tower": config.get("mm_vision_tower"), "image_aspect_ratio": config.get("image_aspect_ratio"),
        "new_rows": f"{old_rows}..{rows - 1} = mean of rows 0..{old_rows - 1}"}, indent=2) + "\n")
    params = sum(t.numel() for t in state.values())
    return (f"LlavaForConditionalGeneration, {params / 1e6:.1f}M parameters in {llava_config.dtype}, vocabulary "
            f"{old_rows} -> {rows} rows (<image> = {image_token_id}), {patches} image tokens per image")


def _check_against_model(state: dict[str, Any], llava_config: Any, src: Path, clip: Path) -> None:
    import torch
    from transformers import LlavaForConditionalGeneration

    with torch.device("meta"):
        model = LlavaForConditionalGeneration(llava_config)
    wanted = {key: tuple(value.shape) for key, value in model.state_dict().items()}

    def origin(key: str) -> str:
        if key.startswith("model.vision_tower."):
            return f"vision tower {clip}: weight 'vision_model.{key[len('model.vision_tower.'):]}'"
        if key.startswith("model.language_model."):
            return f"{src}: weight 'model.{key[len('model.language_model.'):]}'"
        original = {v: k for k, v in _PROJECTOR.items()}.get(key, key)
        return f"{src}: weight {original!r}"

    for key in wanted:
        if key not in state:
            raise QplugError(f"{origin(key)} is missing")
    for key, tensor in state.items():
        if key not in wanted:
            raise QplugError(f"{origin(key)} is not part of a LLaVA-1.5 model (unrecognised weight)")
        if tuple(tensor.shape) != wanted[key]:
            raise QplugError(f"{origin(key)} has shape {tuple(tensor.shape)}, the config implies {wanted[key]}")


#: The tokenizer files read from the release; nothing else of it reaches transformers' loaders.
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
                    "added_tokens.json")


def _load_tokenizer(auto: Any, src: Path, staging: Path) -> Any:
    """The release's tokenizer, loaded from a copy of its tokenizer files only: transformers never sees the
    release's config.json (an ``auto_map`` there, or in the tokenizer config, is not followed:
    ``trust_remote_code=False``)."""
    copy = staging / ".tokenizer-source"
    copy.mkdir()
    try:
        for name in _TOKENIZER_FILES:
            if (src / name).is_file():
                shutil.copyfile(src / name, copy / name)
        # legacy=True: "▁" is prepended to the text after every special token, as LLaVA's own prompts get it
        # (tokenizer_image_token tokenizes the text before and after <image> separately, each with SentencePiece's
        # dummy prefix); transformers 5's default (legacy=False) would not, and "\n" after <image> would lose its "▁".
        tokenizer = auto.from_pretrained(str(copy), local_files_only=True, trust_remote_code=False, legacy=True)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    # Saved with the tokenizer, so that loading it as a LlamaTokenizer keeps the behaviour; loading options are not.
    tokenizer.init_kwargs["legacy"] = True
    for key in ("is_local", "local_files_only", "trust_remote_code", "_commit_hash", "auto_map"):
        tokenizer.init_kwargs.pop(key, None)
    return tokenizer


def _pad_rows(matrix: Any, rows: int) -> Any:
    """``matrix`` with rows appended up to ``rows``, each the mean of the existing rows (computed in float32)."""
    import torch

    extra = rows - matrix.shape[0]
    if extra <= 0:
        return matrix
    mean = matrix.float().mean(dim=0, keepdim=True).to(matrix.dtype)
    return torch.cat([matrix, mean.expand(extra, -1)], dim=0)


def _save_safetensors(state: dict[str, Any], directory: Path, shard_bytes: int | None = None) -> None:
    from safetensors.torch import save_file

    shard_bytes = shard_bytes or SHARD_BYTES
    shards: list[dict[str, Any]] = [{}]
    size = 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = tensor
        size += nbytes
    if len(shards) == 1:
        save_file(shards[0], str(directory / "model.safetensors"), metadata={"format": "pt"})
        return
    weight_map = {}
    for n, shard in enumerate(shards, 1):
        name = f"model-{n:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(directory / name), metadata={"format": "pt"})
        weight_map.update({key: name for key in shard})
    total = sum(t.numel() * t.element_size() for t in state.values())
    (directory / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n")


def _write_generation_config(directory: Path, tokenizer: Any) -> None:
    from transformers import GenerationConfig

    GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                     pad_token_id=tokenizer.pad_token_id).save_pretrained(directory)

