"""Throughput of the model backend: images/s for ``qalign`` scoring and for descriptions.

    python bench/bench_vlm.py                      # CPU, tiny random LLaVA and Idefics3, batch 1 and 16
    python bench/bench_vlm.py --gpu                # CUDA, random LLaVA-1.5-7B and mPLUG-Owl2-7B in bf16, batch 1, 8, 32
    python bench/bench_vlm.py --gpu --family mplug-owl2   # one of them
    python bench/bench_vlm.py --gpu --dry-run-cpu  # the GPU code path on the CPU with shrunk models

CPU mode builds the tiny test checkpoints (:mod:`qplug_vlm.testing`), loads them back through qplug
as a user would, and times the ``qalign`` scorer and the ``vlm`` describer on 640x480 frames. The
numbers measure qplug's overhead (frame conversion, processor, padding, one prefill per batch), not a
real model's speed: the tiny models have ~0.1M parameters.

GPU mode builds random weights with the real LLaVA-1.5-7B shapes (CLIP ViT-L/14-336 + 7B Llama,
vocabulary 32064) straight on the GPU in bf16 (initialising 7B parameters on the CPU would take
minutes), and times ``qalign`` scoring on 1920x1080 frames: end to end (frame → PIL → processor →
prefill → score) and the prefill alone, with peak GPU memory per batch size. Random weights cost the
same as trained ones, so the timings stand for a real LLaVA-1.5-7B / Q-Instruct checkpoint. The same
for mPLUG-Owl2-7B (Q-Align, OneAlign, Co-Instruct: ViT-L/14 at 448 px, 65 image tokens, LLaMA-2-7B)
with qplug's own implementation and Q-Align's read-out, plus Q-Align's video mode (a clip of 8 frames
in one prompt, 520 image tokens) at batch 1.

Describing runs a fixed number of new tokens (end-of-sequence disabled), so runs are comparable.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any, Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from qplug.types import Frame


def frames_like_photos(count: int, width: int, height: int, seed: int = 0) -> list[Frame]:
    """Smooth random pictures (a noise field blurred by upsampling), cheap to make at any size."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for index in range(count):
        small = rng.integers(0, 256, (height // 32 + 1, width // 32 + 1, 3), dtype=np.uint8)
        rgb = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR))
        out.append(Frame.from_rgb(np.ascontiguousarray(rgb), source_id="bench", index=index))
    return out


def rate(call: Callable[[list[Frame]], Any], frames: list[Frame], batch: int, sync: Callable[[], None]) -> float:
    """Images per second of ``call`` over ``frames`` in batches of ``batch`` (after one warm-up batch).

    Frame caches are cleared first, so each measurement pays for converting its frames to PIL.
    """
    call(frames[:batch])
    sync()
    for frame in frames:
        frame.cache.clear()
    started = time.perf_counter()
    for offset in range(0, len(frames), batch):
        call(frames[offset:offset + batch])
    sync()
    return len(frames) / (time.perf_counter() - started)


def no_stop(backend: Any) -> None:
    """Make generation always run max_new_tokens, so descriptions cost the same every run."""
    backend.model.generation_config.eos_token_id = None


# ---------------------------------------------------------------------------------------------
# CPU: tiny checkpoints through the public factories


def run_cpu(args: argparse.Namespace) -> None:
    import torch

    from qplug_vlm import describer, scorers
    from qplug_vlm.testing import TINY_BUILDERS

    torch.set_num_threads(args.threads)
    frames = frames_like_photos(args.frames, 640, 480)
    print(f"CPU, {args.threads} thread(s), torch {torch.__version__}, {len(frames)} frames of 640x480, "
          f"descriptions of {args.new_tokens} tokens")
    print(f"{'model':<10} {'task':<9} {'batch':>5} {'images/s':>9} {'ms/image':>9}")
    with tempfile.TemporaryDirectory() as root:
        for name, build in TINY_BUILDERS.items():
            directory = build(os.path.join(root, name))
            scorer = scorers.qalign(model=directory, device="cpu")
            words = describer.build(model=directory, device="cpu", max_new_tokens=args.new_tokens)
            no_stop(words.backend)
            for task, call in (("qalign", scorer.score), ("describe", words.describe)):
                for batch in args.batches:
                    per_second = rate(call, frames, batch, lambda: None)
                    print(f"{name:<10} {task:<9} {batch:>5} {per_second:>9.1f} {1000 / per_second:>9.2f}", flush=True)


# ---------------------------------------------------------------------------------------------
# GPU: LLaVA-1.5-7B shapes, random weights, built on the device


def run_gpu(args: argparse.Namespace) -> None:
    import torch

    from qplug_vlm.testing import benchmark_device

    device, dtype, size = benchmark_device(args.dry_run_cpu, args.threads)
    width, height, batches = (320, 180, [1, 2]) if device == "cpu" else (1920, 1080, args.batches)

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    for family in args.family:
        {"llava": _gpu_llava, "mplug-owl2": _gpu_mplug_owl2}[family](args, device, dtype, size, sync, width, height,
                                                                   batches)
        if device == "cuda":
            torch.cuda.empty_cache()


def _header(args: argparse.Namespace, device: str, what: str, model: Any, dtype: Any, seconds: float, width: int,
            height: int, image_tokens: int) -> None:
    import torch

    parameters = sum(p.numel() for p in model.parameters())
    print(f"{'dry run on CPU' if device == 'cpu' else torch.cuda.get_device_name()}: {what}, "
          f"{parameters / 1e6:,.1f}M parameters in {dtype}, built in {seconds:.1f} s; "
          f"{width}x{height} frames, {image_tokens} image tokens each")
    print(f"{'batch':>5} {'images/s':>9} {'prefill/s':>10} {'ms/batch':>9} {'peak GiB':>9}")


def _measure(device: str, sync: Callable[[], None], score: Callable[[list[Frame]], Any],
             forward: Callable[[], Any], batch: int, frames: list[Frame], iterations: int) -> None:
    """One row: end to end (frames to scores) and the prefill alone (a prepared batch), peak memory."""
    import torch

    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    end_to_end = rate(score, frames, batch, sync)
    forward()
    sync()
    started = time.perf_counter()
    for _ in range(iterations):
        forward()
    sync()
    prefill = batch * iterations / (time.perf_counter() - started)
    peak = torch.cuda.max_memory_allocated() / 2 ** 30 if device == "cuda" else float("nan")
    print(f"{batch:>5} {end_to_end:>9.1f} {prefill:>10.1f} {1000 * batch / end_to_end:>9.1f} {peak:>9.2f}", flush=True)


def _gpu_llava(args: argparse.Namespace, device: str, dtype: Any, size: Any, sync: Callable[[], None], width: int,
               height: int, batches: list[int]) -> None:
    from qplug_vlm.backend import Backend
    from qplug_vlm.prompts import METHODS
    from qplug_vlm.scorers import LevelScorer
    from qplug_vlm.testing import llava_model, llava_processor, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    processor = llava_processor(tokenizer, size)
    started = time.perf_counter()
    model = llava_model(tokenizer, size, device=device, dtype=dtype)
    sync()
    _header(args, device, "LLaVA-1.5-7B layout", model, dtype, time.perf_counter() - started, width, height,
            (size.image_size // size.patch_size) ** 2)
    backend = Backend(model, processor, name="random LLaVA-1.5-7B")
    scorer = LevelScorer(backend, METHODS["qalign"])
    for batch in batches:
        frames = frames_like_photos(max(batch * args.iterations, batch), width, height)
        prepared = backend.prepare([_pil(scorer, frame) for frame in frames[:batch]], [scorer.prompt] * batch)
        _measure(device, sync, scorer.score, lambda: backend.forward(prepared), batch, frames, args.iterations)


def _gpu_mplug_owl2(args: argparse.Namespace, device: str, dtype: Any, size: Any, sync: Callable[[], None],
                    width: int, height: int, batches: list[int]) -> None:
    import torch

    from qplug_vlm.images import to_pil
    from qplug_vlm.mplug_owl2 import prepare_batch, qalign_prompt
    from qplug_vlm.mplug_owl2.processing import MPLUGOwl2ImageProcessor
    from qplug_vlm.mplug_owl2.scorer import MplugQAlignScorer
    from qplug_vlm.mplug_owl2.scoring import to_device
    from qplug_vlm.mplug_owl2.testing import MPLUG_OWL2_7B, random_model, tiny_config
    from qplug_vlm.prompts import METHODS
    from qplug_vlm.testing import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    config = MPLUG_OWL2_7B if device == "cuda" else tiny_config(len(tokenizer))
    started = time.perf_counter()
    model = random_model(config, device=device, dtype=dtype)
    sync()
    _header(args, device, "mPLUG-Owl2-7B layout" if device == "cuda" else "mPLUG-Owl2 layout (tiny)", model, dtype,
            time.perf_counter() - started, width, height, model.num_visual_tokens)
    processor = MPLUGOwl2ImageProcessor()
    scorer = MplugQAlignScorer.from_parts(model, tokenizer, processor, METHODS["qalign"])
    prompt = qalign_prompt()

    def forward(batch: dict[str, Any]) -> Any:
        with torch.inference_mode():
            return model(**batch, logits_to_keep=1).logits

    for batch in batches:
        frames = frames_like_photos(max(batch * args.iterations, batch), width, height)
        images = [to_pil(frame, scorer.image_max_side) for frame in frames[:batch]]
        prepared = to_device(prepare_batch(tokenizer, processor, images, [prompt] * batch), model.device)
        _measure(device, sync, scorer.score, lambda: forward(prepared), batch, frames, args.iterations)
    # Q-Align's video mode: one clip of 8 frames (1 fps: 8 s of video) in one prompt.
    clip = frames_like_photos(8, width, height, seed=1)
    video = to_device(prepare_batch(tokenizer, processor, [[to_pil(f, scorer.image_max_side) for f in clip]],
                                    [qalign_prompt(medium="video")]), model.device)
    print("video: a clip of 8 frames in one prompt per call (frames/s in the images/s column)")
    _measure(device, sync, lambda clips: scorer.score_video([clips]), lambda: forward(video), len(clip), clip,
             args.iterations)


def _pil(scorer: Any, frame: Frame) -> Any:
    from qplug_vlm.images import to_pil

    return to_pil(frame, scorer.image_max_side, scorer.pad_fill)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", action="store_true", help="time random LLaVA-1.5-7B and mPLUG-Owl2-7B on CUDA")
    parser.add_argument("--dry-run-cpu", action="store_true", help="with --gpu: run its code path on the CPU, shrunk")
    parser.add_argument("--family", nargs="+", choices=["llava", "mplug-owl2"], default=["llava", "mplug-owl2"],
                        help="GPU mode: which 7B layouts to time (default both)")
    parser.add_argument("--batches", type=int, nargs="+", help="batch sizes (default: 1 16 on CPU, 1 8 32 on GPU)")
    parser.add_argument("--frames", type=int, default=32, help="CPU mode: frames per measurement")
    parser.add_argument("--iterations", type=int, default=4, help="GPU mode: timed batches per batch size")
    parser.add_argument("--new-tokens", type=int, default=32, help="CPU mode: tokens per description")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    if args.gpu:
        args.batches = args.batches or [1, 8, 32]
        run_gpu(args)
    else:
        args.batches = args.batches or [1, 16]
        run_cpu(args)


if __name__ == "__main__":
    main()
