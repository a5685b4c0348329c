"""Golden outputs of the reference mPLUG-Owl2 (Q-Future/Q-Align) on a tiny random checkpoint.

qplug's own mPLUG-Owl2 (``qplug_vlm.mplug_owl2``) is tested against these files
(``tests/test_mplug_owl2.py``). The reference code is under a non-commercial licence and never
enters this repository: this script imports it from an external checkout given on the command line,
in a throw-away environment outside the repository, and writes only numbers, key names and a tiny
tokenizer.

Steps (done for the committed fixtures, Q-Align commit 14dfdffb3b970c0727d48938b8f3741a65acbd6e)::

    python3 -m venv /tmp/qalign-ref-venv
    /tmp/qalign-ref-venv/bin/pip install torch==2.13.0 transformers==4.36.2 numpy pillow safetensors \\
        sentencepiece protobuf
    # a checkout of github.com/Q-Future/Q-Align (the folder that holds q_align/), outside the repository
    /tmp/qalign-ref-venv/bin/python scripts/make_mplug_owl2_fixtures.py /tmp/qalign-ref \\
        tests/fixtures/mplug_owl2_reference

Video and generation goldens (``reference_video.json``, ``reference_video.npz``), written with the same
checkpoint and the committed tokenizer, without touching the files above::

    /tmp/qalign-ref-venv/bin/python scripts/make_mplug_owl2_fixtures.py --video-and-generation /tmp/qalign-ref \
        tests/fixtures/mplug_owl2_reference

That mode runs Q-Align's video read-out (``QAlignVideoScorer``: the video prompt with one ``<|image|>``,
``images=`` a list of per-clip frame tensors) on clips made of the fixture frames, and the reference's
greedy ``generate`` (``do_sample=False``, KV cache, as its ``run_mplug_owl2.py``/``eval_qbench_mcq.py``)
on prompts built by its own ``conv_templates["mplug_owl2"]``.

What it does:

1. Trains a tiny LLaMA-style tokenizer (BPE over metaspace pieces, ``<s>`` prepended) on the Q-Align
   prompts and level words and saves it (``tokenizer/``).
2. Builds the reference ``MPLUGOwl2LlamaForCausalLM`` from ``qplug_vlm/mplug_owl2/tiny.py``'s
   ``TINY_CONFIG`` (loaded by path: numpy only) with eager attention, the constructor's hub look-ups
   (``AutoTokenizer``/``CLIPImageProcessor.from_pretrained("q-future/one-align")``) replaced by the
   tiny tokenizer and a ``CLIPImageProcessor`` with Q-Align's ``preprocessor_config.json`` values
   (448 px, bicubic, CLIP mean/std), and ``icecream`` (a debug-print dependency) stubbed.
3. Fills it with ``tiny_state_dict`` (seeded weights; the abstractor's sine-cosine position tables
   computed by qplug and checked against the reference's own buffers), strict.
4. Runs the reference's own pre-processing (``expand2square`` with ``int(mean * 255)``,
   ``CLIPImageProcessor.preprocess``) and prompt tokenization (``tokenizer_image_token``, the image as
   index -200), one forward per (image, prompt) and one batched forward of two images, in float32.
5. Also trains a LLaMA-style SentencePiece model (``sentencepiece/``: ``tokenizer.model``, a
   ``LlamaTokenizer`` config as released checkpoints have) and records the prompt and level ids the
   reference's slow ``LlamaTokenizer`` gives (``use_fast=False``, as Q-Align's builder loads it).
6. Reads the Q-Align score the reference way (``preferential_ids_`` = the second token of each level
   word, softmax over those logits at the last position, weights 5..1) and writes
   ``reference.npz`` (logits at selected positions, pixel samples) and ``reference.json``
   (token ids, scores, key names and shapes of the tiny and of the released-size layout).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TINY_PATH = REPO / "plugins" / "qplug_vlm" / "mplug_owl2" / "tiny.py"

QUALITY_PROMPT = "USER: How would you rate the quality of this image?\n<|image|>\nASSISTANT: The quality of the image is"
AESTHETICS_PROMPT = ("USER: How would you rate the aesthetics of this image?\n<|image|>\nASSISTANT: The aesthetics of "
                     "the image is")
LEVELS = ["excellent", "good", "fair", "poor", "bad"]
# Q-Align's preprocessor_config.json (repository root, also shipped with q-future/one-align).
CLIP_PROCESSOR = dict(size=448, crop_size=448, do_center_crop=True, do_normalize=True, do_resize=True, resample=3,
                      image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711])
#: Positions of the logits kept, relative: the first text token, around the image, the last four.
N_LAST = 4


def _load_tiny():
    spec = importlib.util.spec_from_file_location("qplug_mplug_owl2_tiny", TINY_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tokenizer_corpus() -> list[str]:
    lines = [QUALITY_PROMPT.replace("<|image|>", ""), AESTHETICS_PROMPT.replace("<|image|>", "")]
    for aspect in ("quality", "aesthetics"):
        for medium in ("image", "video"):
            for word in LEVELS:
                lines.append(f"USER: How would you rate the {aspect} of this {medium}?\nASSISTANT: The {aspect} of the "
                             f"{medium} is {word}.")
    lines += [" ".join(LEVELS), "The image is sharp, noisy, blurry, dark or bright; colours are fine."]
    return lines * 4


def build_tokenizer(out: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="\u2581", add_prefix_space=True)
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    tok.train_from_iterator(_tokenizer_corpus(), trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<unk>", padding_side="left")
    fast.save_pretrained(out / "tokenizer")
    return fast


def build_sentencepiece_case(out: Path, tokenizer_image_token) -> None:
    """A LLaMA-style SentencePiece tokenizer (BPE, byte fallback, dummy prefix) saved as a released
    checkpoint ships it (``tokenizer.model`` + ``LlamaTokenizer`` config), with the ids the reference
    gets from it: the slow ``LlamaTokenizer`` Q-Align's builder loads (``use_fast=False``)."""
    import sentencepiece as spm
    from transformers import AutoTokenizer

    folder = out / "sentencepiece"
    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(_tokenizer_corpus()), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(folder / "tokenizer"), vocab_size=380, hard_vocab_limit=False,
        model_type="bpe", byte_fallback=True, character_coverage=1.0, split_digits=True, add_dummy_prefix=True,
        remove_extra_whitespaces=False, normalization_rule_name="identity", unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        allow_whitespace_only_pieces=True, num_threads=1, minloglevel=2)
    corpus.unlink()
    (folder / "tokenizer.vocab").unlink()
    config = {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
              "pad_token": "<unk>", "add_bos_token": True, "add_eos_token": False, "legacy": False}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    slow = AutoTokenizer.from_pretrained(str(folder), use_fast=False)
    ids = {"tokenizer": type(slow).__name__,
           "prompts": {p: tokenizer_image_token(p, slow, -200) for p in (QUALITY_PROMPT, AESTHETICS_PROMPT)},
           "level_ids": [row[1] for row in slow(LEVELS)["input_ids"]]}
    (folder / "reference_ids.json").write_text(json.dumps(ids, indent=1) + "\n", encoding="utf-8")


def _stub_icecream() -> None:
    module = types.ModuleType("icecream")
    module.ic = lambda *args, **kwargs: None
    sys.modules.setdefault("icecream", module)


def _reference_model(reference: Path, tokenizer):
    """(the reference model on the tiny seeded weights, qplug's ``tiny`` module, the reference's
    modeling module, the largest difference between qplug's position tables and the reference's)."""
    import torch
    import transformers

    tiny = _load_tiny()
    _stub_icecream()
    sys.path.insert(0, str(reference))
    from q_align.model import modeling_mplug_owl2 as ref

    class _Tokenizers:
        @staticmethod
        def from_pretrained(*_args, **_kwargs):
            return tokenizer

    class _ImageProcessors:
        @staticmethod
        def from_pretrained(*_args, **_kwargs):
            return transformers.CLIPImageProcessor(**CLIP_PROCESSOR)

    ref.AutoTokenizer = _Tokenizers
    ref.CLIPImageProcessor = _ImageProcessors
    config_dict = json.loads(json.dumps(tiny.TINY_CONFIG))
    config_dict["vocab_size"] = len(tokenizer)
    config = ref.MPLUGOwl2Config(**config_dict)
    config._attn_implementation = "eager"
    model = ref.MPLUGOwl2LlamaForCausalLM(config).eval()
    reference_state = model.state_dict()
    shapes = {name: tuple(value.shape) for name, value in reference_state.items()}
    values = tiny.tiny_state_dict(shapes, config_dict)
    # qplug's sine-cosine tables against the reference's own buffers, before the load replaces them.
    table_error = max(float((torch.from_numpy(values[n]).double() - reference_state[n].double()).abs().max())
                      for n in values if n.endswith(("q_pos_embed", "k_pos_embed")))
    model.load_state_dict({name: torch.from_numpy(value) for name, value in values.items()}, strict=True)
    return model, tiny, ref, table_error


#: Clips of the fixture frames (indices into tiny_images(), in time order) for the video goldens.
VIDEO_CLIPS = ([0, 1, 2], [2], [1, 0], [0, 2])
#: Questions for the greedy-generation goldens (each in the mplug_owl2 conversation, image first).
GENERATION_QUESTIONS = ("Rate the quality of the image.", "How would you rate the quality of this image?")
GENERATION_TOKENS = 12


def video_and_generation(reference: Path, out: Path) -> None:
    import torch
    import transformers
    from PIL import Image

    torch.manual_seed(0)
    tokenizer = transformers.PreTrainedTokenizerFast.from_pretrained(str(out / "tokenizer"))
    model, tiny, _, _ = _reference_model(reference, tokenizer)
    from q_align.conversation import conv_templates
    from q_align.mm_utils import expand2square, tokenizer_image_token

    processor = transformers.CLIPImageProcessor(**CLIP_PROCESSOR)
    fill = tuple(int(x * 255) for x in processor.image_mean)
    images = [Image.fromarray(array) for array in tiny.tiny_images()]
    level_ids = list(model.preferential_ids_)
    weights = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0])
    video_prompt = ("USER: How would you rate the quality of this video?\n<|image|>\nASSISTANT: The quality of the "
                    "video is")
    ids = tokenizer_image_token(video_prompt, tokenizer, ref_index(), return_tensors="pt").unsqueeze(0)
    arrays: dict[str, np.ndarray] = {}
    meta: dict = {"reference": "Q-Future/Q-Align 14dfdffb3b970c0727d48938b8f3741a65acbd6e",
                  "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
                  "video_prompt": video_prompt, "video_input_ids": ids[0].tolist(), "videos": [], "generation": []}
    with torch.inference_mode():
        def clip_tensor(clip):
            frames = [expand2square(images[i], fill) for i in clip]
            return processor.preprocess(frames, return_tensors="pt")["pixel_values"]

        for number, clip in enumerate(VIDEO_CLIPS):
            logits = model(ids, images=[clip_tensor(clip)])["logits"][:, -1].float()
            probs = torch.softmax(logits[:, level_ids], -1)[0]
            arrays[f"video_{number}_last_logits"] = logits[0].numpy()
            meta["videos"].append({"frames": clip, "sequence_length": int(model(ids, images=[clip_tensor(clip)])
                                                                          ["logits"].shape[1]),
                                   "level_probabilities": probs.tolist(), "score": float(probs @ weights)})
        # Two clips of the same length in one batch (the reference pads unequal lengths on the right and
        # would read its last position at padding, so only equal lengths are a fair batch).
        pair = [VIDEO_CLIPS[2], VIDEO_CLIPS[3]]
        logits = model(ids.repeat(2, 1), images=[clip_tensor(c) for c in pair])["logits"][:, -1].float()
        meta["video_batch"] = {"clips": pair,
                               "scores": (torch.softmax(logits[:, level_ids], -1) @ weights).tolist()}
        for number, question in enumerate(GENERATION_QUESTIONS):
            conv = conv_templates["mplug_owl2"].copy()
            conv.append_message(conv.roles[0], "<|image|>" + question)
            conv.append_message(conv.roles[1], None)
            prompt = conv.get_prompt()
            prompt_ids = tokenizer_image_token(prompt, tokenizer, ref_index(), return_tensors="pt").unsqueeze(0)
            image = number % len(images)
            pixels = processor.preprocess(expand2square(images[image], fill), return_tensors="pt")["pixel_values"]
            output = model.generate(prompt_ids, images=pixels, do_sample=False, num_beams=1,
                                    max_new_tokens=GENERATION_TOKENS, use_cache=True, pad_token_id=0)
            new = output[0, prompt_ids.shape[1]:].tolist()
            meta["generation"].append({"question": question, "prompt": prompt, "image": image,
                                       "input_ids": prompt_ids[0].tolist(), "generated_ids": new,
                                       "text": tokenizer.decode(new, skip_special_tokens=True).strip()})
    np.savez_compressed(out / "reference_video.npz", **arrays)
    (out / "reference_video.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote video goldens {[v['score'] for v in meta['videos']]}, batch {meta['video_batch']['scores']}, "
          f"generation {[g['generated_ids'] for g in meta['generation']]}")


def ref_index() -> int:
    from q_align.constants import IMAGE_TOKEN_INDEX

    return IMAGE_TOKEN_INDEX


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="a Q-Future/Q-Align checkout (the folder holding q_align/)")
    parser.add_argument("out", type=Path, help="fixture folder to write")
    parser.add_argument("--video-and-generation", action="store_true",
                        help="write only reference_video.json/.npz (needs the committed tokenizer/ in OUT)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.video_and_generation:
        video_and_generation(args.reference, args.out)
        return

    import torch
    import transformers
    from PIL import Image

    torch.manual_seed(0)
    tokenizer = build_tokenizer(args.out)
    model, tiny, ref, table_error = _reference_model(args.reference, tokenizer)
    from q_align.mm_utils import expand2square, tokenizer_image_token

    build_sentencepiece_case(args.out, tokenizer_image_token)
    shapes = {name: tuple(value.shape) for name, value in model.state_dict().items()}

    # The released size (LLaMA-2-7B + ViT-L/14-448 + 6-layer abstractor, the reference's defaults):
    # only names and shapes, built on the meta device.
    released = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                    num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5)
    big_config = ref.MPLUGOwl2Config(**released)
    big_config._attn_implementation = "eager"
    with torch.device("meta"):
        big = ref.MPLUGOwl2LlamaForCausalLM(big_config)
    released_shapes = {name: list(value.shape) for name, value in big.state_dict().items()}
    del big

    processor = transformers.CLIPImageProcessor(**CLIP_PROCESSOR)
    fill = tuple(int(x * 255) for x in processor.image_mean)
    images = [Image.fromarray(array) for array in tiny.tiny_images()]
    pixels = [processor.preprocess(expand2square(image, fill), return_tensors="pt")["pixel_values"][0]
              for image in images]
    sample_rng = np.random.default_rng(7)
    sample_index = sample_rng.integers(0, 3 * 448 * 448, size=256)

    weights = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0])
    level_ids = list(model.preferential_ids_)
    cases = [(0, QUALITY_PROMPT), (1, QUALITY_PROMPT), (2, AESTHETICS_PROMPT)]
    arrays: dict[str, np.ndarray] = {}
    meta: dict = {"reference": "Q-Future/Q-Align 14dfdffb3b970c0727d48938b8f3741a65acbd6e",
                  "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
                  "pad_fill": list(fill), "level_words": LEVELS, "level_ids": level_ids,
                  "vocab_size": len(tokenizer), "position_table_max_error": table_error, "cases": [],
                  "tiny_keys": {n: list(s) for n, s in shapes.items()}, "released_keys": released_shapes}
    for k, pixel in enumerate(pixels):
        flat = pixel.reshape(-1).numpy()
        arrays[f"pixels_{k}_sample"] = flat[sample_index].astype(np.float32)
        arrays[f"pixels_{k}_moments"] = np.array([flat.astype(np.float64).sum(), np.abs(flat.astype(np.float64)).sum(),
                                                  (flat.astype(np.float64) ** 2).sum()])
    arrays["pixel_sample_index"] = sample_index
    with torch.inference_mode():
        for case, (image_index, prompt) in enumerate(cases):
            ids = tokenizer_image_token(prompt, tokenizer, ref.IMAGE_TOKEN_INDEX, return_tensors="pt")
            logits = model(ids.unsqueeze(0), images=pixels[image_index].unsqueeze(0)).logits[0].float()
            image_at = int((ids == ref.IMAGE_TOKEN_INDEX).nonzero()[0, 0])
            n_visual = logits.shape[0] - (ids.shape[0] - 1)
            positions = [0, image_at, image_at + n_visual // 2, image_at + n_visual]
            positions += list(range(logits.shape[0] - N_LAST, logits.shape[0]))
            probs = torch.softmax(logits[-1, level_ids], -1)
            arrays[f"case_{case}_logits"] = logits[positions].numpy()
            meta["cases"].append({"image": image_index, "prompt": prompt, "input_ids": ids.tolist(),
                                  "positions": positions, "sequence_length": int(logits.shape[0]),
                                  "level_probabilities": probs.tolist(), "score": float(probs @ weights)})
        batch_ids = tokenizer_image_token(QUALITY_PROMPT, tokenizer, ref.IMAGE_TOKEN_INDEX, return_tensors="pt")
        batch = model(batch_ids.unsqueeze(0).repeat(2, 1), images=torch.stack(pixels[:2])).logits[:, -1].float()
        arrays["batch_last_logits"] = batch.numpy()
        meta["batch"] = {"images": [0, 1], "prompt": QUALITY_PROMPT,
                         "scores": (torch.softmax(batch[:, level_ids], -1) @ weights).tolist()}
    np.savez_compressed(args.out / "reference.npz", **arrays)
    (args.out / "reference.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {args.out}: scores {[c['score'] for c in meta['cases']]}, batch {meta['batch']['scores']}, "
          f"position tables max error {table_error:.2e}")


if __name__ == "__main__":
    main()
