"""Tiny random multimodal checkpoints for tests, benchmarks and training smoke runs (no download).

Test helpers only: the production pieces they are built from (the LLaVA chat template, the
tokenizer corpus, :class:`~qplug_vlm.configuration.LlavaSize` and the config builders) live in
:mod:`qplug_vlm.configuration`, which ``qplug_training`` builds the real default model with.

Each builder makes a complete checkpoint directory (model in safetensors, processor, tokenizer and
a chat template with ``{% generation %}`` markers for assistant-only training labels) that loads back
through :func:`qplug_vlm.backend.load_backend` like a real one. Weights are random: tests may check
shapes, ranges and consistency, never what the model "thinks" of an image.

- :func:`build_tiny_llava`: CLIP vision tower + Llama, LLaVA-1.5 layout (square centre-crop processor).
- :func:`build_tiny_idefics3`: Idefics3 (SmolVLM's architecture), which tiles large images, so the
  number of image tokens depends on the frame's size: the case left padding must get right.
- :func:`llava_model`: the same LLaVA layout at any size, e.g. ``LLAVA_15_7B`` for benchmarks.
- :func:`build_tiny_qwen3_5`: Qwen3.5 (Q-ReAlign's architecture: hybrid linear/full attention, M-RoPE,
  native-resolution images), with a Qwen-style template that honours ``enable_thinking``.
- :func:`build_tiny_llava_onevision`: LLaVA-OneVision (Q-SiT's architecture), SigLIP + Qwen2, any-res tiling.
- :func:`build_tiny_qwen2_5_vl`: Qwen2.5-VL (VisualQuality-R1's and Q-Insight's architecture).
- :func:`build_tiny_original_llava`: weights saved in the *original* LLaVA key layout
  (``LlavaLlamaForCausalLM``, ``model.mm_projector``, flat config): a checkpoint transformers would load
  as random weights, which qplug must refuse.

Qwen3.5's, Qwen2.5-VL's and LLaVA-OneVision's processors carry a video processor that needs torchvision; they are
built image-only (:func:`qplug_vlm.backend.image_only_processor_class`) and saved under their own
class names, so a full install loads them as usual.

The ``CLIPImageProcessorPil``/``Idefics3ImageProcessorPil`` classes are used because the default
image processor classes need torchvision (ANCHORS §6).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .configuration import LLAVA_15_7B, LLAVA_TEMPLATE, SPECIAL_TOKENS, LlavaSize, llava_config, \
    llava_processor as _llava_processor, tokenizer_corpus

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

#: LoRA target for the language model only: vision towers (CLIP, SigLIP) also have q_proj/v_proj,
#: and the text stack is called ``language_model`` (LLaVA, PaliGemma) or ``text_model`` (Idefics3).
LANGUAGE_LORA_TARGETS = r".*(language_model|text_model).*\.(q_proj|k_proj|v_proj|o_proj)"

#: Idefics3's processor looks these up by name (tiles are announced as ``<row_i_col_j>``).
IDEFICS3_TOKENS = ("<fake_token_around_image>", "<end_of_utterance>", "<global-img>",
                   *(f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)))

#: An Idefics3-style template (BOS in the template, ``<end_of_utterance>`` closes each turn).
IDEFICS3_TEMPLATE = (
    "<s>{% for m in messages %}{% if m['role'] == 'user' %}User:{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% else %} {{ c['text'] }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% else %}Assistant: {% generation %}{% for c in m['content'] %}{{ c['text'] }}{% endfor %}"
    "<end_of_utterance>{% endgeneration %}\n{% endif %}{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}")


def tiny_tokenizer(merges: bool = True, vocab_size: int = 480, add_bos: bool = True,
                   extra_special: Iterable[str] = ()) -> "PreTrainedTokenizerFast":
    """A byte-level BPE tokenizer trained on :func:`~qplug_vlm.configuration.tokenizer_corpus` (Llama-like:
    it adds BOS, pads with ``<pad>``).

    :param merges: False leaves only single bytes, so every word starting with a space begins with
        the same token 'Ġ': a tokenizer that cannot tell level words apart (an error case).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(dict.fromkeys([*SPECIAL_TOKENS, *extra_special]))
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    size = vocab_size if merges else len(alphabet) + len(specials)
    trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=specials, initial_alphabet=alphabet,
                                  show_progress=False)
    tok.train_from_iterator(tokenizer_corpus(), trainer)
    if add_bos:
        bos = tok.token_to_id("<s>")
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                           special_tokens=[("<s>", bos)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>")
    fast.add_special_tokens({"additional_special_tokens": [t for t in specials if t not in
                                                           ("<unk>", "<s>", "</s>", "<pad>")]})
    return fast


# ---------------------------------------------------------------------------------------------
# LLaVA


#: The tiny test size. Its random-init spread is larger than the usual 0.02 so a tiny model's next-token
#: distribution is far from uniform and score differences (batch vs single, adapter vs none) are visible.
TINY_LLAVA = LlavaSize(initializer_range=0.2)
#: The same layout shrunk (56 px images in 14 px patches: 16 image tokens; 2-layer towers), for
#: checking the GPU benchmarks' code path on a CPU.
LLAVA_15_7B_SHRUNK = replace(LLAVA_15_7B, image_size=56, vision_hidden=64, vision_intermediate=128, vision_layers=2,
                             vision_heads=4, text_hidden=64, text_intermediate=128, text_layers=2, text_heads=4)


def benchmark_device(dry_run_cpu: bool, threads: int) -> tuple[str, Any, LlavaSize]:
    """(device, dtype, model size) for a GPU benchmark: LLaVA-1.5-7B in bf16 (fp16 where bf16 is
    unsupported) on CUDA, or its shrunk twin in float32 on the CPU for a dry run."""
    import torch

    if dry_run_cpu:
        torch.set_num_threads(threads)
        return "cpu", torch.float32, LLAVA_15_7B_SHRUNK
    if not torch.cuda.is_available():
        raise SystemExit("--gpu needs a CUDA device (try --dry-run-cpu to check the code path)")
    return "cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16, LLAVA_15_7B


def llava_processor(tokenizer: "PreTrainedTokenizerFast", size: LlavaSize = TINY_LLAVA) -> Any:
    """A LLaVA processor whose image-token count matches a vision tower of ``size`` (default: the tiny one)."""
    return _llava_processor(tokenizer, size)


def llava_model(tokenizer: "PreTrainedTokenizerFast", size: LlavaSize = TINY_LLAVA, seed: int = 0,
                device: str | None = None, dtype: Any = None) -> Any:
    """A random-init ``LlavaForConditionalGeneration``; built directly on ``device`` in ``dtype`` when given
    (a 7B model initialised on the CPU would take minutes)."""
    import torch
    from transformers import LlavaForConditionalGeneration

    config = llava_config(tokenizer, size)
    torch.manual_seed(seed)
    if device is None and dtype is None:
        return LlavaForConditionalGeneration(config).eval()
    with torch.device(device or "cpu"):
        model = LlavaForConditionalGeneration._from_config(config, dtype=dtype or torch.float32)
    return model.eval()


def build_tiny_llava(directory: str | os.PathLike[str], tokenizer: "PreTrainedTokenizerFast | None" = None,
                     seed: int = 0) -> Path:
    """Save a tiny random LLaVA checkpoint (model + processor + chat template) into ``directory``."""
    tokenizer = tokenizer or tiny_tokenizer()
    processor = llava_processor(tokenizer)
    model = llava_model(tokenizer, seed=seed)
    return _save(directory, model, processor)


# ---------------------------------------------------------------------------------------------
# Idefics3


def build_tiny_idefics3(directory: str | os.PathLike[str], tokenizer: "PreTrainedTokenizerFast | None" = None,
                        seed: int = 0) -> Path:
    """Save a tiny random Idefics3 checkpoint into ``directory``.

    Frames are resized to at most 64 px on the long side and cut into 32 px tiles plus a global view,
    so a 64x32 frame and a 64x64 frame get different numbers of image tokens.
    """
    import torch
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessorPil, \
        Idefics3Processor, Idefics3VisionConfig, LlamaConfig

    tokenizer = tokenizer or tiny_tokenizer(extra_special=IDEFICS3_TOKENS)
    image_processor = Idefics3ImageProcessorPil(size={"longest_edge": 64}, max_image_size={"longest_edge": 32},
                                                do_image_splitting=True)
    image_size, patch_size, scale_factor = 32, 8, 2
    # The connector's pixel shuffle merges scale_factor^2 patches into one token:
    # (32 / 8)^2 / 2^2 = 4 image tokens per tile.
    image_seq_len = (image_size // patch_size) ** 2 // scale_factor ** 2
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=image_seq_len,
                                  chat_template=IDEFICS3_TEMPLATE)
    tokenizer = processor.tokenizer  # the processor may have added its special tokens
    vision = Idefics3VisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                  image_size=image_size, patch_size=patch_size, initializer_range=0.2)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                       initializer_range=0.2, pad_token_id=tokenizer.pad_token_id,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    config = Idefics3Config(vision_config=vision, text_config=text, scale_factor=scale_factor,
                            image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
                            pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config).eval()
    # Generation stops at the end of the assistant turn, as real Idefics3 checkpoints do.
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_utterance>")
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, end_of_turn]
    return _save(directory, model, processor)


# ---------------------------------------------------------------------------------------------
# PaliGemma (refused: kept to test that refusal)


def build_tiny_paligemma(directory: str | os.PathLike[str], seed: int = 0) -> Path:
    """Save a tiny random PaliGemma checkpoint (SigLIP + Gemma) with a LLaVA-style chat template.

    The backend refuses it: PaliGemma's processor appends its prefix/suffix separator ``"\\n"`` to
    every prompt, so the next token cannot be read right after an assistant prefix.
    """
    import torch
    from transformers import GemmaConfig, PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor, \
        SiglipImageProcessorPil, SiglipVisionConfig

    image_processor = SiglipImageProcessorPil(size={"height": 32, "width": 32})
    image_processor.image_seq_length = (32 // 8) ** 2  # the processor reads it from here
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tiny_tokenizer(),
                                   chat_template=LLAVA_TEMPLATE)
    tokenizer = processor.tokenizer
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                image_size=32, patch_size=8)
    text = GemmaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=1, head_dim=16, pad_token_id=tokenizer.pad_token_id)
    config = PaliGemmaConfig(vision_config=vision, text_config=text, projection_dim=32,
                             image_token_id=tokenizer.convert_tokens_to_ids("<image>"))
    config.vision_config.projection_dim = 32
    torch.manual_seed(seed)
    return _save(directory, PaliGemmaForConditionalGeneration(config).eval(), processor)


def _save(directory: str | os.PathLike[str], model: Any, processor: Any) -> Path:
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    model.save_pretrained(path)  # safetensors by default
    processor.save_pretrained(path)
    return path


# ---------------------------------------------------------------------------------------------
# Qwen3.5 (Q-ReAlign) and LLaVA-OneVision (Q-SiT)

#: Qwen's chat and vision markers, which its processors look up by name.
QWEN_TOKENS = ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>",
               "<think>", "</think>")

#: A ChatML template in the Qwen3.5 style: an empty think block opens the answer when
#: ``enable_thinking`` is false (as Q-ReAlign was trained), an open ``<think>`` otherwise.
QWEN_TEMPLATE = (
    "{% set think = '<think>\n\n</think>\n\n' if enable_thinking is defined and not enable_thinking "
    "else '<think>\n' %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['role'] == 'assistant' %}{{ think }}{% endif %}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{{ think }}{% endif %}")

#: A LLaVA-OneVision (Qwen2) template: the image placeholder wherever the content puts the image.
ONEVISION_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _tiny_qwen_processor(processor_class: Any, patch_size: int, smallest: int,
                         largest: int) -> tuple[Any, Any, dict[str, int]]:
    """A Qwen-family processor without its video part, on the tiny tokenizer, and its special token ids.

    Frames keep their aspect ratio between ``smallest``² and ``largest``² pixels (patches merged 2x2).
    """
    from transformers import Qwen2VLImageProcessorPil

    from .backend import image_only_processor_class

    tokenizer = tiny_tokenizer(add_bos=False, extra_special=QWEN_TOKENS)
    image_processor = Qwen2VLImageProcessorPil(size={"shortest_edge": smallest * smallest,
                                                     "longest_edge": largest * largest},
                                               patch_size=patch_size, merge_size=2, temporal_patch_size=2)
    processor = image_only_processor_class(processor_class)(image_processor=image_processor, tokenizer=tokenizer,
                                                            chat_template=QWEN_TEMPLATE)
    tokenizer = processor.tokenizer
    ids = {name: tokenizer.convert_tokens_to_ids(f"<|{name}|>") for name in
           ("image_pad", "video_pad", "vision_start", "vision_end", "im_end")}
    return processor, tokenizer, ids


def build_tiny_qwen3_5(directory: str | os.PathLike[str], seed: int = 0) -> Path:
    """Save a tiny random Qwen3.5 checkpoint (``Qwen3_5ForConditionalGeneration``) into ``directory``.

    One linear-attention and one full-attention layer, 16 px patches merged 2x2; frames are resized to
    keep their aspect ratio between 32x32 and 64x64 pixels, so different frames get different token counts.
    """
    import torch
    from transformers import Qwen3_5Config, Qwen3_5ForConditionalGeneration, Qwen3VLProcessor

    processor, tokenizer, ids = _tiny_qwen_processor(Qwen3VLProcessor, patch_size=16, smallest=32, largest=64)
    config = Qwen3_5Config(
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16,
                           spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=32,
                           num_position_embeddings=64, initializer_range=0.2),
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=16, linear_key_head_dim=8,
                         linear_value_head_dim=8, linear_num_key_heads=2, linear_num_value_heads=2,
                         layer_types=["linear_attention", "full_attention"], initializer_range=0.2,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=None, eos_token_id=ids["im_end"],
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 1, 1],
                                          "mrope_interleaved": True, "partial_rotary_factor": 0.5}),
        image_token_id=ids["image_pad"], video_token_id=ids["video_pad"],
        vision_start_token_id=ids["vision_start"], vision_end_token_id=ids["vision_end"])
    torch.manual_seed(seed)
    model = Qwen3_5ForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = [ids["im_end"]]
    return _save(directory, model, processor)


def build_tiny_qwen2_5_vl(directory: str | os.PathLike[str], seed: int = 0) -> Path:
    """Save a tiny random Qwen2.5-VL checkpoint (VisualQuality-R1's and Q-Insight's architecture).

    Frames keep their aspect ratio between 28x28 and 56x56 pixels (14 px patches merged 2x2).
    """
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    processor, tokenizer, ids = _tiny_qwen_processor(Qwen2_5_VLProcessor, patch_size=14, smallest=28, largest=56)
    config = Qwen2_5_VLConfig(
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=32, window_size=56,
                           fullatt_block_indexes=[1], initializer_range=0.2),
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, initializer_range=0.2,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=None, eos_token_id=ids["im_end"],
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}),
        image_token_id=ids["image_pad"], video_token_id=ids["video_pad"],
        vision_start_token_id=ids["vision_start"], vision_end_token_id=ids["vision_end"])
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = [ids["im_end"]]
    return _save(directory, model, processor)


def build_tiny_llava_onevision(directory: str | os.PathLike[str], seed: int = 0) -> Path:
    """Save a tiny random LLaVA-OneVision checkpoint (SigLIP + Qwen2, any-res tiles) into ``directory``."""
    import torch
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration, \
        LlavaOnevisionImageProcessorPil, LlavaOnevisionProcessor, Qwen2Config, SiglipVisionConfig

    from .backend import image_only_processor_class

    tokenizer = tiny_tokenizer(add_bos=False, extra_special=QWEN_TOKENS)
    pinpoints = [[32, 32], [32, 64], [64, 32], [64, 64]]
    image_processor = LlavaOnevisionImageProcessorPil(size={"height": 32, "width": 32}, image_grid_pinpoints=pinpoints)
    processor = image_only_processor_class(LlavaOnevisionProcessor)(
        image_processor=image_processor, tokenizer=tokenizer, num_image_tokens=(32 // 8) ** 2,
        vision_feature_select_strategy="full", chat_template=ONEVISION_TEMPLATE)
    tokenizer = processor.tokenizer
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                image_size=32, patch_size=8)
    text = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, initializer_range=0.2,
                       pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"))
    config = LlavaOnevisionConfig(vision_config=vision, text_config=text, image_grid_pinpoints=pinpoints,
                                  image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                                  video_token_index=tokenizer.convert_tokens_to_ids("<|video_pad|>"),
                                  vision_feature_select_strategy="full", vision_feature_layer=-1)
    torch.manual_seed(seed)
    model = LlavaOnevisionForConditionalGeneration(config).eval()
    with torch.no_grad():  # a visible spread: the default 0.02 init makes a tiny model's logits nearly flat
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.2)
    return _save(directory, model, processor)


# ---------------------------------------------------------------------------------------------
# The original LLaVA layout (refused)


def build_tiny_original_llava(directory: str | os.PathLike[str], seed: int = 0) -> Path:
    """Save a tiny checkpoint in the *original* LLaVA repository's layout, as Q-Instruct's LLaVA releases are.

    ``config.json`` is flat (the Llama sizes at the top level) with ``model_type`` "llava",
    ``architectures`` ["LlavaLlamaForCausalLM"] and the vision tower only named (``mm_vision_tower``);
    the weights are named ``model.embed_tokens.weight``, ``model.layers.N...``, ``model.mm_projector.0.weight``,
    ``lm_head.weight``. transformers reads this config as a default-size ``LlavaConfig`` and would load
    none of these tensors. The processor files are a working tiny LLaVA processor's, so loading gets as
    far as the weights.
    """
    import json

    import torch
    from safetensors.torch import save_file

    tokenizer = tiny_tokenizer()
    model = llava_model(tokenizer, seed=seed)
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    llava_processor(tokenizer).save_pretrained(path)
    renames = (("model.language_model.", "model."), ("model.multi_modal_projector.linear_1.", "model.mm_projector.0."),
               ("model.multi_modal_projector.linear_2.", "model.mm_projector.2."))
    tensors = {}
    for key, value in model.state_dict().items():
        if key.startswith("model.vision_tower."):
            continue  # the original layout loads the tower by name, it is not stored
        for old, new in renames:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        tensors[key] = value.detach().to(torch.float16).contiguous()
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    text = model.config.text_config
    config = {
        "architectures": ["LlavaLlamaForCausalLM"], "model_type": "llava", "hidden_size": text.hidden_size,
        "intermediate_size": text.intermediate_size, "num_hidden_layers": text.num_hidden_layers,
        "num_attention_heads": text.num_attention_heads, "num_key_value_heads": text.num_key_value_heads,
        "vocab_size": text.vocab_size, "max_position_embeddings": text.max_position_embeddings, "rms_norm_eps": 1e-5,
        "hidden_act": "silu", "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id, "tie_word_embeddings": False, "torch_dtype": "float16",
        "mm_vision_tower": "openai/clip-vit-large-patch14-336", "mm_projector_type": "mlp2x_gelu",
        "mm_hidden_size": model.config.vision_config.hidden_size, "mm_vision_select_layer": -2,
        "mm_vision_select_feature": "patch", "mm_use_im_start_end": False, "mm_use_im_patch_token": False,
        "image_aspect_ratio": "pad", "freeze_mm_mlp_adapter": False, "tune_mm_mlp_adapter": False,
    }
    (path / "config.json").write_text(json.dumps(config, indent=2))
    return path


#: Builders by architecture name, for parametrised tests and benchmarks.
TINY_BUILDERS = {"llava": build_tiny_llava, "idefics3": build_tiny_idefics3}
#: Builders of the families that have presets (:mod:`qplug_vlm.presets`).
PRESET_BUILDERS = {"qwen3_5": build_tiny_qwen3_5, "llava_onevision": build_tiny_llava_onevision,
                   "qwen2_5_vl": build_tiny_qwen2_5_vl}
