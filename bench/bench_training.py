"""Training throughput: tokens/s and s/step of the tiny recipe on the CPU, or of the LoRA recipe on a GPU.

    python bench/bench_training.py                      # CPU: tiny_cpu.toml, LoRA and full fine-tuning
    python bench/bench_training.py --gpu                # CUDA: llava15_7b_lora.toml on random LLaVA-1.5-7B
    python bench/bench_training.py --gpu --dry-run-cpu  # the GPU code path on the CPU with a shrunk model
    python bench/bench_training.py --recipe training/recipes/qplug_fast_stage2.toml --threads 2 \
        --precision no bf16 -o model.path=DIR           # a real recipe on its own data, per precision
    python bench/bench_training.py --recipe R --precision bf16 --group-by-length 0 50 --steps 40
                                                        # ... and per length grouping (mean s/step counts)
    python bench/bench_training.py --recipe R ... --contiguous-tower   # the tower not channels-last (as before)

Both modes run the real trainer (:class:`qplug_training.train.Trainer`: encoder, batch plan, accelerate,
loss over assistant tokens, optimizer and scheduler) on synthetic records written to a temporary
folder, and read the step log it writes. The first step is a warm-up and is left out of the medians.
tokens/s counts every attended token (image tokens included), as the trainer's log does.

GPU mode builds random weights with the real LLaVA-1.5-7B shapes (CLIP ViT-L/14-336 + 7B Llama,
vocabulary 32064) straight on the GPU in bf16, puts the recipe's LoRA on it (r = 128 on every
projection of the language model, projector trained) with gradient checkpointing, and reports
s/step, samples/s, tokens/s and peak GPU memory for a few per-device batch sizes, one micro-batch
per optimizer step; the estimated hours for one epoch of Q-Instruct (~200K records) follow from the
samples/s. Synthetic records are ~30 text tokens + 576 image tokens; Q-Instruct's are longer
(pathway answers of ~100 words), so real steps cost somewhat more.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

RECIPES = ROOT / "training" / "recipes"
QINSTRUCT_RECORDS = 200_000


def timed_run(recipe: Any, base: Any = None) -> dict[str, Any]:
    """Run a recipe with the trainer; medians over its logged steps after the first."""
    from qplug_training.train import Trainer

    trainer = Trainer(recipe, base=base, echo=False)
    try:
        trainer.setup()
        started = time.perf_counter()
        trainer.run()
        wall = time.perf_counter() - started
        parameters = trainer.parameters
    finally:
        if hasattr(trainer, "accelerator"):
            trainer.close()
    log = [json.loads(line) for line in (Path(recipe.run.output_dir) / "log.jsonl").read_text().splitlines()]
    steady = log[1:] or log
    per_step = statistics.median(e["s_per_step"] for e in steady)
    # The mean is what a run's length follows when step costs vary (length-grouped batches).
    return {"steps": len(log), "s_per_step": per_step, "mean_s_per_step": statistics.fmean(e["s_per_step"] for e in steady),
            "tokens_per_s": statistics.median(e["tokens_per_s"] for e in steady),
            "tokens_per_step": statistics.median(e["tokens"] for e in steady),
            "first_loss": log[0]["loss"], "last_loss": log[-1]["loss"], "wall_s": wall, "parameters": parameters}


# ---------------------------------------------------------------------------------------------
# CPU: the tiny recipe as shipped


def run_cpu(args: argparse.Namespace) -> None:
    import torch

    from qplug_training.recipe import load_recipe

    torch.set_num_threads(args.threads)
    print(f"CPU, {args.threads} thread(s), torch {torch.__version__}; tiny_cpu.toml, {args.steps} steps, "
          f"{args.records} synthetic records")
    print(f"{'tuning':<6} {'batch':>5} {'s/step':>8} {'tokens/s':>9} {'tokens/step':>11} {'loss':>14} "
          f"{'trainable':>10}")
    for method in ("lora", "full"):
        for batch in args.batches:
            with tempfile.TemporaryDirectory() as out:
                recipe = load_recipe(RECIPES / "tiny_cpu.toml", [
                    f"run.output_dir={out}", f"tuning.method={method}", f"train.max_steps={args.steps}",
                    f"train.per_device_batch_size={batch}", "train.gradient_accumulation_steps=1",
                    "train.save_every=0", "export.merge=false", f"data.synthetic={args.records}"])
                result = timed_run(recipe)
            loss = f"{result['first_loss']:.2f}->{result['last_loss']:.2f}"
            print(f"{method:<6} {batch:>5} {result['s_per_step']:>8.3f} {result['tokens_per_s']:>9.0f} "
                  f"{result['tokens_per_step']:>11.0f} {loss:>14} {result['parameters']['trainable']:>10,}",
                  flush=True)


# ---------------------------------------------------------------------------------------------
# A real recipe (a default-model stage on its corpus), once per mixed precision


def run_recipe(args: argparse.Namespace) -> None:
    import torch

    from qplug_training.recipe import load_recipe

    torch.set_num_threads(args.threads)
    print(f"{torch.cuda.get_device_name() if torch.cuda.is_available() else f'CPU, {args.threads} thread(s)'}, "
          f"torch {torch.__version__}; {args.recipe}, {args.steps} steps per precision")
    print(f"{'precision':<9} {'group':>5} {'s/step':>8} {'mean':>8} {'tokens/s':>9} {'tokens/step':>11} {'loss':>14}")
    if getattr(args, "contiguous_tower", False):
        import qplug_vlm.backend

        qplug_vlm.backend.prefer_channels_last = lambda model: False  # the trainer before channels-last towers
    for precision in args.precision:
        for group in args.group_by_length or [None]:
            grouping = [] if group is None else [f"data.group_by_length={group}"]
            with tempfile.TemporaryDirectory() as out:
                recipe = load_recipe(Path(args.recipe), [*args.override, *grouping, f"run.output_dir={out}",
                                                         f"train.max_steps={args.steps}", "train.save_every=0",
                                                         "train.log_every=1", f"train.mixed_precision={precision}",
                                                         "export.merge=false"])
                result = timed_run(recipe)
            loss = f"{result['first_loss']:.4f}->{result['last_loss']:.4f}"
            print(f"{precision:<9} {recipe.data.group_by_length:>5} {result['s_per_step']:>8.3f} "
                  f"{result['mean_s_per_step']:>8.3f} {result['tokens_per_s']:>9.0f} "
                  f"{result['tokens_per_step']:>11.0f} {loss:>14}", flush=True)


# ---------------------------------------------------------------------------------------------
# GPU: the LoRA recipe on random LLaVA-1.5-7B shapes


def run_gpu(args: argparse.Namespace) -> None:
    import torch

    from qplug_vlm.testing import benchmark_device, llava_model, llava_processor, tiny_tokenizer

    from qplug_training.modeling import BaseModel
    from qplug_training.recipe import load_recipe

    device, dtype, size = benchmark_device(args.dry_run_cpu, args.threads)
    precision = "no" if device == "cpu" else "bf16" if dtype == torch.bfloat16 else "fp16"
    batches = args.batches or ([1, 2] if device == "cpu" else [4, 8, 16])

    tokenizer = tiny_tokenizer()
    name = "dry run on CPU" if args.dry_run_cpu else torch.cuda.get_device_name()
    print(f"{name}: llava15_7b_lora.toml on random LLaVA-1.5-7B shapes"
          f"{' (shrunk)' if args.dry_run_cpu else ''}, weights in {dtype}, {args.steps} steps per batch size, "
          f"{(size.image_size // size.patch_size) ** 2} image tokens per record")
    print(f"{'batch':>5} {'s/step':>8} {'samples/s':>10} {'tokens/s':>9} {'peak GiB':>9} {'epoch h (est.)':>15}")
    for batch in batches:
        if device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        model = llava_model(tokenizer, size, device=device, dtype=dtype)
        base = BaseModel(model=model, processor=llava_processor(tokenizer, size), path=None, built=True)
        with tempfile.TemporaryDirectory() as out:
            recipe = load_recipe(RECIPES / "llava15_7b_lora.toml", [
                f"run.output_dir={out}", f"train.max_steps={args.steps}", f"train.per_device_batch_size={batch}",
                "train.global_batch_size=0", "train.gradient_accumulation_steps=1", "train.save_every=0",
                f"train.mixed_precision={precision}", f"data.synthetic={max(2 * batch, 8)}", "data.num_workers=2",
                f"model.from_config.image_size={size.image_size}"])
            try:
                result = timed_run(recipe, base=base)
            except torch.cuda.OutOfMemoryError:
                print(f"{batch:>5} out of memory", flush=True)
                break
            finally:
                del model, base
        peak = torch.cuda.max_memory_allocated() / 2 ** 30 if device == "cuda" else float("nan")
        samples = batch / result["s_per_step"]
        hours = QINSTRUCT_RECORDS / samples / 3600
        print(f"{batch:>5} {result['s_per_step']:>8.3f} {samples:>10.2f} {result['tokens_per_s']:>9.0f} "
              f"{peak:>9.2f} {hours:>15.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", action="store_true", help="time the LoRA recipe on random LLaVA-1.5-7B (CUDA)")
    parser.add_argument("--dry-run-cpu", action="store_true", help="with --gpu: run its code path on the CPU, shrunk")
    parser.add_argument("--batches", type=int, nargs="+", help="per-device batch sizes (CPU default 2 8; GPU 4 8 16)")
    parser.add_argument("--steps", type=int, help="steps per measurement (default: CPU 30, GPU 6)")
    parser.add_argument("--records", type=int, default=24, help="CPU mode: synthetic records")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--recipe", help="time this recipe on its own data instead (default 8 steps)")
    parser.add_argument("--precision", nargs="+", default=["no", "bf16"], choices=["no", "bf16", "fp16"],
                        help="with --recipe: the mixed precisions to time")
    parser.add_argument("--group-by-length", type=int, nargs="+", metavar="G",
                        help="with --recipe: time each data.group_by_length value (0 = off)")
    parser.add_argument("--contiguous-tower", action="store_true",
                        help="with --recipe: leave a convolutional tower in the default layout (no channels-last)")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                        help="with --recipe: a recipe override (repeatable)")
    args = parser.parse_args()
    if args.recipe:
        args.steps = args.steps or 8
        run_recipe(args)
    elif args.gpu:
        args.steps = args.steps or 6
        run_gpu(args)
    else:
        args.steps = args.steps or 30
        args.batches = args.batches or [2, 8]
        run_cpu(args)


if __name__ == "__main__":
    main()
