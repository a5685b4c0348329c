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


#: Builders by architecture name, for parametrised tests and benchmarks.
TINY_BUILDERS = {"llava": build_tiny_llava, "idefics3": build_tiny_idefics3}
