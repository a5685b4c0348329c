"""What a run leaves for qplug: model directories that ``qplug --model DIR [--adapter DIR]`` loads.

- LoRA: ``export/adapter`` (``adapter_config.json`` + ``adapter_model.safetensors``, with the
  processor beside it), ``export/base`` when the base was built from config (it exists nowhere
  else), and with ``export.merge`` a merged full model in ``export/merged``.
- Full fine-tuning: ``export/model`` (``save_pretrained``, safetensors, with the processor).
- ``training_info.json`` in the run directory and in each exported directory.

``python -m qplug_training.export merge --base DIR --adapter DIR --out DIR`` merges an adapter offline
(for runs sharded with DeepSpeed or FSDP, which cannot merge in place).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Protocol, Sequence

INFO_NAME = "training_info.json"
DTYPES = ("", "float32", "bfloat16", "float16")


class Run(Protocol):
    """What exporting needs of a finished run: :class:`qplug_training.train.Trainer` is one. (A protocol, so
    that this module does not import the trainer, which imports it.)"""

    recipe: Any  # qplug_training.recipe.Recipe
    accelerator: Any  # accelerate.Accelerator
    output_dir: Path
    model: Any  # the prepared (possibly wrapped or sharded) model
    processor: Any
    base: Any  # qplug_training.modeling.BaseModel: .built, .path
    base_dtype: Any
    notes: list[str]
    progress: Any  # qplug_training.checkpoint.Progress
    plan: Any  # qplug_training.dataset.BatchPlan
    records: list[Any]
    data: Any  # qplug_training.train.Data: .report
    length_report: Any
    parameters: dict[str, int]


def _dtype(name: str) -> Any:
    import torch

    return {"": None, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def save_full(model: Any, processor: Any, directory: Path, state: dict[str, Any] | None = None,
              dtype: str = "") -> Path:
    """``save_pretrained`` (safetensors) of a full model plus its processor, optionally cast to ``dtype``."""
    target = _dtype(dtype)
    source = state if state is not None else model.state_dict()
    # contiguous(): a tower trained channels-last has strided weights, which safetensors refuses.
    state = {k: (v.to(target) if target is not None and v.is_floating_point() else v).contiguous()
             for k, v in source.items()}
    if target is not None:
        model.config.dtype = target
    model.save_pretrained(str(directory), state_dict=state, safe_serialization=True)
    processor.save_pretrained(str(directory))
    return directory


def export_run(trainer: Run) -> dict[str, str]:
    """Write the run's exports; every process must call it (sharded weights are gathered)."""
    from accelerate.utils import DistributedType

    accelerator, recipe = trainer.accelerator, trainer.recipe
    root = trainer.output_dir / "export"
    state = accelerator.get_state_dict(trainer.model)  # gathers ZeRO-3 / FSDP shards onto the main process
    model = accelerator.unwrap_model(trainer.model)
    if getattr(model, "config", None) is not None:
        model.config.use_cache = True  # turned off for gradient checkpointing; generation wants it back
    main = accelerator.is_main_process
    exports: dict[str, str] = {}
    if recipe.tuning.method == "lora":
        adapter = root / "adapter"
        if trainer.base.built:
            base_dir = root / "base"
            if main and recipe.export.save_base:
                shutil.copytree(trainer.output_dir / "base", base_dir, dirs_exist_ok=True)
            exports["base"] = str(base_dir)
        else:
            exports["base"] = str(trainer.base.path)
        if main:
            model.peft_config["default"].base_model_name_or_path = exports["base"]
            model.save_pretrained(str(adapter), state_dict=state, safe_serialization=True)
            # The training processor (and chat template) travels with the adapter.
            trainer.processor.save_pretrained(str(adapter))
        exports["adapter"] = str(adapter)
        if recipe.export.merge:
            if accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP):
                trainer.notes.append(f"merged export skipped under {accelerator.distributed_type}: run python -m "
                                     f"qplug_training.export merge --base {exports['base']} --adapter {adapter} "
                                     f"--out {root / 'merged'}")
            elif main:
                # Default to the base's dtype: the fp32 trainable copies would otherwise leave a mixed checkpoint.
                dtype = recipe.export.dtype or str(trainer.base_dtype).replace("torch.", "")
                save_full(model.merge_and_unload(), trainer.processor, root / "merged", dtype=dtype)
                exports["merged"] = str(root / "merged")
    else:
        if main:
            save_full(model, trainer.processor, root / "model", state, dtype=recipe.export.dtype)
        exports["model"] = str(root / "model")
    accelerator.wait_for_everyone()
    return exports


def write_info(trainer: Run, exports: dict[str, str]) -> dict[str, Any]:
    """``training_info.json``: the recipe, data counts, steps, final loss, time, versions."""
    import platform

    import accelerate
    import peft
    import torch
    import transformers

    progress, plan = trainer.progress, trainer.plan
    info = {
        "recipe": trainer.recipe.to_dict(),
        "data": {"records": len(trainer.records), "mix": trainer.data.report,
                 "lengths": trainer.length_report.to_dict(), "truncated_seen": progress.truncated},
        "steps": progress.step,
        "global_batch": plan.global_batch,
        "epochs": progress.step / plan.steps_per_epoch,
        "final_loss": progress.last_loss,
        "tokens": progress.tokens,
        "label_tokens": progress.label_tokens,
        "train_seconds": round(progress.seconds, 3),
        "parameters": trainer.parameters,
        "processes": trainer.accelerator.num_processes,
        "device": str(trainer.accelerator.device),
        "mixed_precision": str(trainer.accelerator.mixed_precision),
        "exports": exports,
        "notes": trainer.notes,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "peft": peft.__version__,
                     "accelerate": accelerate.__version__},
    }
    if trainer.accelerator.is_main_process:
        text = json.dumps(info, indent=2, default=str)
        (trainer.output_dir / INFO_NAME).write_text(text, encoding="utf-8")
        for key in ("adapter", "merged", "model"):
            if key in exports and Path(exports[key]).is_dir():
                (Path(exports[key]) / INFO_NAME).write_text(text, encoding="utf-8")
    return info


def merge(base: Path, adapter: Path, out: Path, dtype: str = "") -> Path:
    """Load ``base`` + ``adapter`` on the CPU, fold the adapter in, save a full model qplug loads."""
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(base, local_files_only=True, use_safetensors=True,
                                                        dtype=_dtype(dtype) or "auto")
    # Prefer the processor saved with the adapter: it carries the training chat template.
    processor_dir = adapter if (adapter / "processor_config.json").is_file() else base
    processor = AutoProcessor.from_pretrained(processor_dir, local_files_only=True)
    merged = PeftModel.from_pretrained(model, str(adapter), is_trainable=False).merge_and_unload()
    return save_full(merged, processor, out, dtype=dtype)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qplug_training.export", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    merge_parser = commands.add_parser("merge", help="fold a LoRA adapter into its base model")
    merge_parser.add_argument("--base", type=Path, required=True)
    merge_parser.add_argument("--adapter", type=Path, required=True)
    merge_parser.add_argument("--out", type=Path, required=True)
    merge_parser.add_argument("--dtype", choices=DTYPES[1:], default=None, help="cast the merged weights")
    args = parser.parse_args(argv)
    if not (args.adapter / "adapter_config.json").is_file():
        print(f"error: {args.adapter} is not a peft adapter directory", file=sys.stderr)
        return 2
    path = merge(args.base, args.adapter, args.out, args.dtype or "")
    print(f"merged model: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
