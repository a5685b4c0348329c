"""Checkpoints that resume exactly: trainable weights, optimizer, scheduler, RNG states and the step.

``accelerate``'s ``save_state`` writes the optimizer, the registered scheduler and :class:`Progress`,
every RNG state (python, numpy, torch, CUDA) and, under DeepSpeed or FSDP, their sharded model and
optimizer states. For plain and DDP runs :class:`TrainableOnly` hooks cut the saved model down to its
trainable tensors (the frozen rest is rebuilt from the base at resume): a LoRA checkpoint of a 7B
model is then about 1 GB of adapter + optimizer instead of 14 GB of copies of the base.

The data position needs no saving: :class:`~qplug_training.dataset.BatchPlan` derives every step's
records from the seed, so the step number is the position.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECKPOINTS = "checkpoints"


@dataclass
class Progress:
    """Where the run is; saved with every checkpoint (accelerate's custom-object checkpointing)."""

    step: int = 0
    tokens: int = 0
    label_tokens: int = 0
    truncated: int = 0
    seconds: float = 0.0
    last_loss: float | None = None

    def state_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def trainable_names(model: Any) -> set[str]:
    return {name for name, parameter in model.named_parameters() if parameter.requires_grad}


def trained_state_names(model: Any) -> set[str]:
    """Trainable parameters plus the buffers of the modules that own them: a trained batch norm's running
    statistics change with its weights, and a resumed run must get them back too."""
    names = trainable_names(model)
    for prefix, module in model.named_modules():
        if any(p.requires_grad for p in module.parameters(recurse=False)):
            names.update(f"{prefix}.{b}" if prefix else b for b, _ in module.named_buffers(recurse=False))
    return names


class TrainableOnly:
    """Save-/load-state hooks for ``Accelerator.register_save_state_pre_hook`` / ``..._load_state_pre_hook``."""

    def save(self, models: list[Any], weights: list[dict[str, Any]], output_dir: str) -> None:
        # Under DeepSpeed/FSDP ``weights`` is empty: the engines write their own shards.
        for i, model in enumerate(models[:len(weights)]):
            names = trained_state_names(model)
            weights[i] = {k: v.detach().contiguous() for k, v in weights[i].items() if k in names}

    def load(self, models: list[Any], input_dir: str) -> None:
        from accelerate.utils.constants import SAFE_WEIGHTS_NAME
        from safetensors.torch import load_file

        # Taking the models out of the list tells accelerate not to load them itself (strictly).
        for i in range(len(models)):
            model = models.pop(0)
            name = SAFE_WEIGHTS_NAME if i == 0 else SAFE_WEIGHTS_NAME.replace(".safetensors", f"_{i}.safetensors")
            state = load_file(os.path.join(input_dir, name), device=str(next(model.parameters()).device))
            missing = trainable_names(model) - set(state)
            if missing:
                raise RuntimeError(f"checkpoint {input_dir} lacks trainable weights ({sorted(missing)[:3]}...): "
                                   "was it written with another recipe?")
            model.load_state_dict(state, strict=False)


def checkpoint_dir(output_dir: Path, step: int) -> Path:
    return output_dir / CHECKPOINTS / f"step-{step:07d}"


def latest_checkpoint(output_dir: Path) -> Path | None:
    candidates = sorted((output_dir / CHECKPOINTS).glob("step-*"))
    return candidates[-1] if candidates else None


def prune_checkpoints(output_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints."""
    for old in sorted((output_dir / CHECKPOINTS).glob("step-*"))[:-max(1, keep)]:
        shutil.rmtree(old, ignore_errors=True)


def truncate_log(path: Path, step: int) -> None:
    """Drop log lines past the checkpoint a run resumes from (they are about to be written again)."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


# -- pickle-free checkpoints (single-process and DDP runs) ---------------------------------------------
#
# accelerate's save_state pickles the optimizer (``optimizer.bin``), the scheduler and every RNG state
# (``*.pkl``), and load_state unpickles them: resuming from a checkpoint directory someone else wrote
# would run whatever code it holds. qplug writes tensors to safetensors and everything else to JSON
# instead. DeepSpeed and FSDP shard their own states and keep accelerate's format (trusted, local use).

MODEL_FILE = "model.safetensors"
STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"


def _rng_files(process: int) -> tuple[str, str]:
    return f"rng_{process}.safetensors", f"rng_{process}.json"


def is_safe_checkpoint(directory: Path) -> bool:
    return (directory / STATE_FILE).is_file()


def save_trainer_state(directory: Path, model: Any, optimizer: Any, scheduler: Any, progress: Progress,
                       process: int, is_main: bool) -> None:
    """Trained weights, optimizer, scheduler and progress (main process), and this process's RNG states."""
    import random

    import numpy as np
    import torch
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    if is_main:
        names = trained_state_names(model)
        save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if k in names},
                  str(directory / MODEL_FILE))
        state = optimizer.state_dict()
        tensors, scalars = {}, {}
        for index, slots in state["state"].items():
            for slot, value in slots.items():
                if torch.is_tensor(value):
                    tensors[f"{index}.{slot}"] = value.detach().contiguous().cpu()
                else:
                    scalars[f"{index}.{slot}"] = value
        save_file(tensors, str(directory / OPTIMIZER_FILE))
        meta = {"optimizer": {"param_groups": state["param_groups"], "scalars": scalars},
                "scheduler": scheduler.state_dict(), "progress": progress.state_dict()}
        (directory / STATE_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    version, internal, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    rng_tensors = {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(np.asarray(keys, dtype=np.int64))}
    if torch.cuda.is_available():
        for i, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            rng_tensors[f"cuda.{i}"] = cuda_state
    tensor_file, json_file = _rng_files(process)
    save_file(rng_tensors, str(directory / tensor_file))
    (directory / json_file).write_text(json.dumps({
        "python": [version, list(internal), gauss],
        "numpy": {"kind": kind, "position": int(position), "has_gauss": int(has_gauss), "cached": float(cached)},
    }), encoding="utf-8")


def load_trainer_state(directory: Path, model: Any, optimizer: Any, scheduler: Any, progress: Progress,
                       process: int) -> None:
    """The inverse of :func:`save_trainer_state`: nothing is unpickled."""
    import random

    import numpy as np
    import torch
    from safetensors.torch import load_file

    device = str(next(model.parameters()).device)
    weights = load_file(str(directory / MODEL_FILE), device=device)
    missing = trainable_names(model) - set(weights)
    if missing:
        raise RuntimeError(f"checkpoint {directory} lacks trainable weights ({sorted(missing)[:3]}...): "
                           "was it written with another recipe?")
    model.load_state_dict(weights, strict=False)
    meta = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
    slots: dict[int, dict[str, Any]] = {}
    for key, value in load_file(str(directory / OPTIMIZER_FILE)).items():
        index, slot = key.split(".", 1)
        slots.setdefault(int(index), {})[slot] = value
    for key, value in meta["optimizer"]["scalars"].items():
        index, slot = key.split(".", 1)
        slots.setdefault(int(index), {})[slot] = value
    optimizer.load_state_dict({"state": slots, "param_groups": meta["optimizer"]["param_groups"]})
    scheduler.load_state_dict(meta["scheduler"])
    progress.load_state_dict(meta["progress"])
    tensor_file, json_file = _rng_files(process)
    if not (directory / json_file).is_file():  # resumed on more processes than it was saved from
        tensor_file, json_file = _rng_files(0)
    rng_tensors = load_file(str(directory / tensor_file))
    rng = json.loads((directory / json_file).read_text(encoding="utf-8"))
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = rng["numpy"]
    np.random.set_state((numpy_state["kind"], rng_tensors["numpy_keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"], numpy_state["cached"]))
    torch.set_rng_state(rng_tensors["torch"])
    cuda_states = [rng_tensors[f"cuda.{i}"] for i in range(len(rng_tensors)) if f"cuda.{i}" in rng_tensors]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[:torch.cuda.device_count()])
