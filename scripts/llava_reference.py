"""Golden outputs for ``qplug convert llava`` from the LLaVA authors' own code (issue 15, part 3).

Our own harness: it builds a TINY random checkpoint in the original LLaVA-1.5 layout (the config
fields and weight names ``LlavaLlamaForCausalLM`` saves; the CLIP tower in its own directory, named
by ``mm_vision_tower``), then loads it with the reference implementation, imported from an
external checkout of github.com/haotian-liu/LLaVA that never enters this repository, and records
the logits of a few image + prompt pairs built the way LLaVA builds them (``expand2square`` +
``process_images``, ``tokenizer_image_token`` with -200, the ``llava_v1`` conversation).

It runs in a throw-away venv outside the repository (LLaVA pins transformers 4.37.2), see
docs/model-backend.md "Converting original LLaVA releases"::

    python3 -m venv /tmp/llava-ref-venv
    /tmp/llava-ref-venv/bin/pip install torch==2.13.0 transformers==4.37.2 tokenizers==0.15.1 \\
        sentencepiece==0.1.99 protobuf accelerate==0.21.0 numpy pillow safetensors einops
    LLAVA_COMMIT=$(git -C /path/to/LLaVA rev-parse HEAD) OMP_NUM_THREADS=1 \\
        /tmp/llava-ref-venv/bin/python scripts/llava_reference.py --llava /path/to/LLaVA \\
        --out tests/fixtures/llava_reference

Writes under ``--out``: ``original/`` (config.json, two safetensors shards + index, tokenizer.model,
tokenizer_config.json), ``clip/`` (a tiny CLIPVisionModel directory), ``images/*.png`` and
``golden.npz`` + ``golden.json`` (the prompts, the reference input ids, the logits).
Everything is deterministic for a given SEED and torch version.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

SEED = 20261204
#: Shrunk LLaVA-1.5 sizes (7B: hidden 4096, 32 layers, CLIP ViT-L/14-336 1024 wide, 24 layers).
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=4, max_position_embeddings=4096, rms_norm_eps=1e-5)
VISION = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
              image_size=56, patch_size=14, projection_dim=32, layer_norm_eps=1e-5, hidden_act="quick_gelu")
VOCAB = 320  # sentencepiece BPE with byte fallback: 3 specials + 256 bytes + merges
SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the user's questions.")
#: (question, assistant prefix or "", with the llava_v1 system prompt?)
CASES = [
    ("Rate the quality of the image.", "The quality of the image is", True),
    ("How would you rate the quality of this image?", "The quality of the image is", False),
    ("Is this image blurry?", "", True),
]
IMAGES = [(40, 28), (24, 50), (56, 56)]  # (width, height): wide, tall, square
CORPUS = [SYSTEM, *(f"USER: <image>\n{q} ASSISTANT: {p}" for q, p, _ in CASES),
          "excellent good fair poor bad average high medium low fine acceptable blurry sharp noisy yes no",
          "A. B. C. D. Answer with the option's letter from the given choices directly."]


def tensor(generator, shape, std):
    import torch

    return torch.randn(*shape, generator=generator) * std


def original_state_dict(vocab: int):
    """Weights under the names LlavaLlamaForCausalLM saves (no vision tower: it lives in its own checkpoint)."""
    import torch

    g = torch.Generator().manual_seed(SEED)
    h, i = TEXT["hidden_size"], TEXT["intermediate_size"]
    sd = {"model.embed_tokens.weight": tensor(g, (vocab, h), 1.0)}
    for n in range(TEXT["num_hidden_layers"]):
        p = f"model.layers.{n}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            sd[p + f"self_attn.{name}.weight"] = tensor(g, (h, h), 1 / math.sqrt(h))
        sd[p + "mlp.gate_proj.weight"] = tensor(g, (i, h), 1 / math.sqrt(h))
        sd[p + "mlp.up_proj.weight"] = tensor(g, (i, h), 1 / math.sqrt(h))
        sd[p + "mlp.down_proj.weight"] = tensor(g, (h, i), 1 / math.sqrt(i))
        sd[p + "input_layernorm.weight"] = 1 + tensor(g, (h,), 0.1)
        sd[p + "post_attention_layernorm.weight"] = 1 + tensor(g, (h,), 0.1)
    sd["model.norm.weight"] = 1 + tensor(g, (h,), 0.1)
    v = VISION["hidden_size"]
    sd["model.mm_projector.0.weight"] = tensor(g, (h, v), 1 / math.sqrt(v))
    sd["model.mm_projector.0.bias"] = tensor(g, (h,), 0.1)
    sd["model.mm_projector.2.weight"] = tensor(g, (h, h), 1 / math.sqrt(h))
    sd["model.mm_projector.2.bias"] = tensor(g, (h,), 0.1)
    sd["lm_head.weight"] = tensor(g, (vocab, h), 1 / math.sqrt(h))
    return sd


def clip_state_dict():
    """A CLIPVisionModel's weights (``vision_model.*``), random with O(1) activations."""
    import torch

    g = torch.Generator().manual_seed(SEED + 1)
    v, i = VISION["hidden_size"], VISION["intermediate_size"]
    patch = VISION["patch_size"]
    positions = (VISION["image_size"] // patch) ** 2 + 1
    p0 = "vision_model."
    sd = {p0 + "embeddings.class_embedding": tensor(g, (v,), 1.0),
          p0 + "embeddings.patch_embedding.weight": tensor(g, (v, 3, patch, patch), 1 / math.sqrt(3 * patch * patch)),
          p0 + "embeddings.position_embedding.weight": tensor(g, (positions, v), 0.5),
          p0 + "pre_layrnorm.weight": 1 + tensor(g, (v,), 0.1), p0 + "pre_layrnorm.bias": tensor(g, (v,), 0.1)}
    for n in range(VISION["num_hidden_layers"]):
        p = f"{p0}encoder.layers.{n}."
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            sd[p + f"self_attn.{name}.weight"] = tensor(g, (v, v), 1 / math.sqrt(v))
            sd[p + f"self_attn.{name}.bias"] = tensor(g, (v,), 0.1)
        for name in ("layer_norm1", "layer_norm2"):
            sd[p + f"{name}.weight"] = 1 + tensor(g, (v,), 0.1)
            sd[p + f"{name}.bias"] = tensor(g, (v,), 0.1)
        sd[p + "mlp.fc1.weight"] = tensor(g, (i, v), 1 / math.sqrt(v))
        sd[p + "mlp.fc1.bias"] = tensor(g, (i,), 0.1)
        sd[p + "mlp.fc2.weight"] = tensor(g, (v, i), 1 / math.sqrt(i))
        sd[p + "mlp.fc2.bias"] = tensor(g, (v,), 0.1)
    sd[p0 + "post_layernorm.weight"] = 1 + tensor(g, (v,), 0.1)
    sd[p0 + "post_layernorm.bias"] = tensor(g, (v,), 0.1)
    return sd


def make_tokenizer(directory: Path) -> int:
    """A LLaMA-style sentencepiece model (BPE, byte fallback, <unk>=0 <s>=1 </s>=2)."""
    import sentencepiece as spm

    corpus = directory / "corpus.txt"
    corpus.write_text("\n".join(CORPUS * 8) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(directory / "tokenizer"), model_type="bpe", vocab_size=VOCAB,
        byte_fallback=True, split_digits=True, add_dummy_prefix=True, remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True, normalization_rule_name="identity", character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2, hard_vocab_limit=False)
    corpus.unlink()
    (directory / "tokenizer.vocab").unlink()
    # The fields liuhaotian/llava-v1.5-7b's tokenizer_config.json has.
    (directory / "tokenizer_config.json").write_text(json.dumps({
        "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "pad_token": None, "clean_up_tokenization_spaces": False, "legacy": False, "model_max_length": 2048,
        "padding_side": "right", "sp_model_kwargs": {}, "tokenizer_class": "LlamaTokenizer"}, indent=2) + "\n")
    # Releases often ship the fast tokenizer too; transformers 4.37 converts it from the slow one.
    from transformers import LlamaTokenizerFast

    LlamaTokenizerFast.from_pretrained(directory, from_slow=True, legacy=False).backend_tokenizer.save(
        str(directory / "tokenizer.json"))
    return spm.SentencePieceProcessor(model_file=str(directory / "tokenizer.model")).get_piece_size()


def make_checkpoint(out: Path) -> None:
    from safetensors.torch import save_file

    original, clip = out / "original", out / "clip"
    original.mkdir(parents=True, exist_ok=True)
    clip.mkdir(parents=True, exist_ok=True)
    vocab = make_tokenizer(original)
    sd = original_state_dict(vocab)
    # The layout a sharded release has: two shards and an index (real releases: pytorch_model-0000N-of-00002.bin).
    names = list(sd)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    weight_map = {}
    for file, keys in shards.items():
        save_file({k: sd[k].contiguous() for k in keys}, str(original / file), metadata={"format": "pt"})
        weight_map.update({k: file for k in keys})
    total = sum(t.numel() * t.element_size() for t in sd.values())
    (original / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n")
    config = {
        "_name_or_path": "./checkpoints/llava-v1.5-7b-tiny", "architectures": ["LlavaLlamaForCausalLM"],
        "bos_token_id": 1, "eos_token_id": 2, "freeze_mm_mlp_adapter": False, "hidden_act": "silu",
        "image_aspect_ratio": "pad", "initializer_range": 0.02, "max_length": 4096, "mm_hidden_size": VISION["hidden_size"],
        "mm_projector_type": "mlp2x_gelu", "mm_use_im_patch_token": False, "mm_use_im_start_end": False,
        "mm_vision_select_feature": "patch", "mm_vision_select_layer": -2,
        "mm_vision_tower": "openai/clip-vit-large-patch14-336", "model_type": "llava", "pad_token_id": 0,
        "pretraining_tp": 1, "rope_scaling": None, "tie_word_embeddings": False, "torch_dtype": "float32",
        "transformers_version": "4.31.0", "tune_mm_mlp_adapter": False, "use_cache": True, "use_mm_proj": True,
        "vocab_size": vocab, **TEXT}
    (original / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file({k: v.contiguous() for k, v in clip_state_dict().items()}, str(clip / "model.safetensors"),
              metadata={"format": "pt"})
    (clip / "config.json").write_text(json.dumps({
        "architectures": ["CLIPVisionModel"], "model_type": "clip_vision_model", "attention_dropout": 0.0,
        "initializer_factor": 1.0, "initializer_range": 0.02, "num_channels": 3, "torch_dtype": "float32",
        **VISION}, indent=2) + "\n")
    # openai/clip-vit-large-patch14-336's preprocessor_config.json at the tiny size.
    size = VISION["image_size"]
    (clip / "preprocessor_config.json").write_text(json.dumps({
        "crop_size": size, "do_center_crop": True, "do_normalize": True, "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor",
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "resample": 3, "size": size}, indent=2) + "\n")


def make_images(out: Path) -> list[Path]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(SEED)
    (out / "images").mkdir(parents=True, exist_ok=True)
    paths = []
    for n, (w, h) in enumerate(IMAGES):
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], axis=-1)
        pixels = np.clip(base + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
        path = out / "images" / f"image{n}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def golden(llava: Path, out: Path, images: list[Path]) -> None:
    import numpy as np
    import torch
    from PIL import Image

    sys.path.insert(0, str(llava))
    from llava.constants import IMAGE_TOKEN_INDEX
    from llava.conversation import conv_templates
    from llava.mm_utils import process_images, tokenizer_image_token
    from llava.model.language_model.llava_llama import LlavaConfig, LlavaLlamaForCausalLM
    from transformers import AutoTokenizer

    torch.set_num_threads(1)
    original = out / "original"
    config = LlavaConfig.from_pretrained(original)
    # The config names the hub's CLIP; the vision tower builder loads any existing path instead.
    config.mm_vision_tower = str((out / "clip").resolve())
    model = LlavaLlamaForCausalLM.from_pretrained(original, config=config, torch_dtype=torch.float32).eval()
    tower = model.get_vision_tower()
    if not tower.is_loaded:
        tower.load_model()
    tower.to(dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(original, use_fast=False)
    if getattr(config, "mm_use_im_patch_token", True):
        raise SystemExit("the tiny config must have mm_use_im_patch_token false, as LLaVA-1.5 releases do")
    records, logits_last, logits_tail = [], [], []
    for case, ((question, prefix, system), path) in enumerate(zip(CASES, images)):
        conv = conv_templates["llava_v1"].copy()
        if not system:
            conv.system = ""
        conv.append_message(conv.roles[0], "<image>\n" + question)
        conv.append_message(conv.roles[1], None)
        prompt = conv.get_prompt()
        if not system:
            prompt = prompt.lstrip()  # "USER: ..." without the system sentence and its separator
        if prefix:
            prompt += " " + prefix
        ids = tokenizer_image_token(prompt, tokenizer, IMAGE_TOKEN_INDEX, return_tensors="pt").unsqueeze(0)
        image = Image.open(path).convert("RGB")
        pixels = process_images([image], tower.image_processor, model.config)
        with torch.inference_mode():
            output = model(input_ids=ids, images=pixels.to(torch.float32), use_cache=False)
        logits = output.logits[0].float()
        logits_last.append(logits[-1].numpy())
        logits_tail.append(logits[-4:].numpy())
        records.append({"case": case, "image": f"images/{path.name}", "prompt": prompt, "input_ids": ids[0].tolist(),
                        "pixel_values_shape": list(pixels.shape), "sequence_length": int(logits.shape[0])})
    np.savez_compressed(out / "golden.npz", last=np.stack(logits_last), tail=np.stack(logits_tail),
                        pixel_sum=np.array([float(process_images([Image.open(p).convert("RGB")], tower.image_processor,
                                                                  model.config).sum()) for p in images]))
    import transformers

    (out / "golden.json").write_text(json.dumps({
        "seed": SEED, "text": TEXT, "vision": VISION, "vocab": int(model.config.vocab_size),
        "reference": {"repository": "https://github.com/haotian-liu/LLaVA", "commit": os.environ.get("LLAVA_COMMIT", "?"),
                      "transformers": transformers.__version__, "torch": torch.__version__,
                      "threads": torch.get_num_threads()},
        "image_token_index": IMAGE_TOKEN_INDEX, "cases": records}, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llava", required=True, type=Path, help="a checkout of github.com/haotian-liu/LLaVA")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    make_checkpoint(args.out)
    images = make_images(args.out)
    golden(args.llava, args.out, images)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
