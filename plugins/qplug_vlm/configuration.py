"""How qplug's own LLaVA-layout models are configured: the production side of model building.

``qplug_training`` builds the shipped default model from these pieces (``qplug_training.modeling``),
and :mod:`qplug_vlm.testing` builds its tiny random test models from the same ones at tiny sizes,
the way transformers keeps ``configuration_*.py`` apart from its test configs:

- :data:`LLAVA_TEMPLATE`: LLaVA-1.5's USER:/ASSISTANT: chat template with ``{% generation %}``
  markers around each answer (assistant-only training labels);
- :func:`tokenizer_corpus`: the text every qplug tokenizer is trained on, so that each level word,
  option letter and prompt of :mod:`qplug_vlm.prompts` gets its own first token;
- :class:`LlavaSize`: the dimensions of a LLaVA model (CLIP vision tower + Llama language model);
  the training recipe's ``[model.from_config]`` section extends it (``qplug_training.recipe.FromConfig``);
  :data:`LLAVA_15_7B` is LLaVA-1.5-7B's;
- :func:`text_config`, :func:`llava_config`, :func:`llava_processor`: transformers configs and a
  processor from a tokenizer and a size.

Importing this module is free (transformers is imported inside the builders). Changing any of it
changes how the next default model is built, not the shipped one: its files carry their own config,
tokenizer and template.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .prompts import DESCRIBE_PROMPT, LETTERS, MCQ_SUFFIX, METHODS, QBOOST_TRIADS

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

__all__ = ["SPECIAL_TOKENS", "LLAVA_TEMPLATE", "tokenizer_corpus", "LlavaSize", "LLAVA_15_7B", "text_config",
           "llava_config", "llava_processor"]

#: Special tokens of qplug's byte-level BPE tokenizers (Llama's names plus LLaVA's image placeholder).
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>", "<image>")

#: A LLaVA-1.5-style template (USER:/ASSISTANT:, the image before the text), with ``{% generation %}``
#: around each answer so that training can label the assistant's tokens only.
LLAVA_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}USER: {% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %} "
    "{% else %}ASSISTANT: {% generation %}{% for c in m['content'] %}{{ c['text'] }}{% endfor %}</s>"
    "{% endgeneration %}{% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}")


def tokenizer_corpus() -> list[str]:
    """Text a qplug tokenizer is trained on: every prompt, level word and option letter qplug uses."""
    lines = []
    for method in METHODS.values():
        for aspect in ("quality", "aesthetics"):
            for medium in ("image", "video"):
                question, prefix = method.prompt(aspect, medium)
                words = " ".join(w for s in (method.levels, *method.synonyms) for w in s.words)
                lines.append(f"USER: {question} ASSISTANT: {prefix} {words}")
                lines.append(f"User: {question}\nAssistant: {prefix} {words}")
    for triad in QBOOST_TRIADS:
        lines.append(" ".join(triad.words))
    lines.append(DESCRIBE_PROMPT.format(medium="image"))
    lines.append(" ".join(f"{letter}. yes no blurry sharp noisy" for letter in LETTERS[:6]) + " " + MCQ_SUFFIX)
    # Answers start with a letter after a space ("ASSISTANT: B"), so " B" must be one token as in real vocabularies.
    lines.extend(f"ASSISTANT: {letter} Assistant: {letter}" for letter in LETTERS[:8])
    lines.extend(f"ASSISTANT: {word}, it is. Assistant: {word}." for word in ("Yes", "No"))
    lines.append("The image is slightly blurry with some noise, exposure is fine, colours are dull; overall poor.")
    return lines * 4


@dataclass(frozen=True)
class LlavaSize:
    """Dimensions of a LLaVA model: a CLIP vision tower, a projector and a Llama language model.

    The defaults are tiny (a 32 px image in 8 px patches, two layers of width 32 on each side); real
    sizes are given in full, as :data:`LLAVA_15_7B` or a recipe's ``[model.from_config]`` does.
    """

    image_size: int = 32
    patch_size: int = 8
    vision_hidden: int = 32
    vision_intermediate: int = 64
    vision_layers: int = 2
    vision_heads: int = 2
    text_hidden: int = 32
    text_intermediate: int = 64
    text_layers: int = 2
    text_heads: int = 2
    vision_feature_layer: int = -1
    #: The projector's activation (LLaVA-1.5: gelu).
    projector_act: str = "gelu"
    #: Random-init spread of every weight (transformers' usual 0.02).
    initializer_range: float = 0.02
    max_position_embeddings: int = 4096
    #: Rows of the embedding matrix; 0 = the tokenizer's size (LLaVA-1.5 pads its 32,002 tokens to 32,064).
    vocab_size: int = 0


#: LLaVA-1.5-7B: CLIP ViT-L/14-336 + Vicuna-7B (llava-hf/llava-1.5-7b-hf config.json).
LLAVA_15_7B = LlavaSize(image_size=336, patch_size=14, vision_hidden=1024, vision_intermediate=4096,
                        vision_layers=24, vision_heads=16, text_hidden=4096, text_intermediate=11008,
                        text_layers=32, text_heads=32, vocab_size=32064, initializer_range=0.02,
                        vision_feature_layer=-2)


def text_config(tokenizer: "PreTrainedTokenizerFast", *, hidden: int, intermediate: int, layers: int, heads: int,
                initializer_range: float = 0.02, max_position_embeddings: int = 4096, vocab_size: int = 0) -> Any:
    """A ``LlamaConfig`` with token ids taken from ``tokenizer`` (the language side of every built model)."""
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab_size or len(tokenizer), hidden_size=hidden, intermediate_size=intermediate,
                       num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                       max_position_embeddings=max_position_embeddings, initializer_range=initializer_range,
                       pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id)


def llava_config(tokenizer: "PreTrainedTokenizerFast", size: LlavaSize) -> Any:
    """A ``LlavaConfig`` for ``size`` with token ids taken from ``tokenizer``."""
    from transformers import CLIPVisionConfig, LlavaConfig

    vision = CLIPVisionConfig(hidden_size=size.vision_hidden, intermediate_size=size.vision_intermediate,
                              num_hidden_layers=size.vision_layers, num_attention_heads=size.vision_heads,
                              image_size=size.image_size, patch_size=size.patch_size,
                              initializer_range=size.initializer_range)
    text = text_config(tokenizer, hidden=size.text_hidden, intermediate=size.text_intermediate,
                       layers=size.text_layers, heads=size.text_heads, initializer_range=size.initializer_range,
                       max_position_embeddings=size.max_position_embeddings, vocab_size=size.vocab_size)
    return LlavaConfig(vision_config=vision, text_config=text,
                       image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
                       vision_feature_select_strategy="default", vision_feature_layer=size.vision_feature_layer,
                       projector_hidden_act=size.projector_act)


def llava_processor(tokenizer: "PreTrainedTokenizerFast", size: LlavaSize, image_processor: Any = None,
                    chat_template: str = LLAVA_TEMPLATE) -> Any:
    """A LLaVA processor whose image-token count matches a vision tower of ``size``.

    :param image_processor: default: a square centre crop of ``size.image_size`` after resizing the
        shortest edge to it (``CLIPImageProcessorPil``, which needs no torchvision).
    """
    from transformers import CLIPImageProcessorPil, LlavaProcessor

    if image_processor is None:
        image_processor = CLIPImageProcessorPil(size={"shortest_edge": size.image_size},
                                                crop_size={"height": size.image_size, "width": size.image_size})
    # "default" drops the CLS token, which num_additional_image_tokens=1 accounts for: the processor then
    # writes (image_size / patch_size)^2 image tokens, as many as the tower yields.
    return LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=size.patch_size,
                          vision_feature_select_strategy="default", num_additional_image_tokens=1,
                          chat_template=chat_template)
