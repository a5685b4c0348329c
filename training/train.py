"""Train a qplug model from a recipe: ``python -m qplug_training.train RECIPE [--override k=v ...] [--resume]``.

One loop for one CPU, one GPU, or many GPUs and nodes under ``accelerate launch`` (DDP, FSDP or
DeepSpeed ZeRO-3 configs in ``training/accelerate/``). ``accelerate`` places the model, runs bf16
autocast, synchronises gradients once per accumulation cycle and saves/loads sharded states; the
rest is here:

- data: ``qplug_training.data`` reads and validates the sources and mixes them by weight
  (:func:`load_data`); :class:`~qplug_training.dataset.Encoder` makes assistant-only labels;
- order: :class:`~qplug_training.dataset.BatchPlan` fixes every step's records from the seed, so a
  resumed run sees exactly the batches an uninterrupted one would;
- loss: summed over the assistant tokens of the whole global batch and divided by their count
  (each token weighs the same however the batch is split across micro-batches and processes);
- checkpoints: trainable weights + optimizer + scheduler + RNG states + the step, every
  ``train.save_every`` steps; ``--resume`` continues from the latest one exactly;
- export: a LoRA adapter (optionally merged too) or a full model, with the processor, which
  ``qplug --model DIR [--adapter DIR]`` loads; plus ``training_info.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from .checkpoint import CHECKPOINTS, Progress, TrainableOnly, checkpoint_dir, is_safe_checkpoint, latest_checkpoint, \
    load_trainer_state, prune_checkpoints, save_trainer_state, truncate_log
from .export import export_run, write_info
from .recipe import Recipe, RecipeError, load_recipe, recipe_json

LOG_NAME = "log.jsonl"


# ---------------------------------------------------------------------------------------------
# Data


@dataclass
class Data:
    """Records ready to encode, and where they came from."""

    records: list[Any]
    image_root: Path | None
    report: dict[str, Any]


def load_data(recipe: Recipe, output_dir: Path) -> Data:
    """The run's records: synthetic, or the recipe's sources mixed by weight (validated by qplug_training.data)."""
    from .data import MixSource, mix

    if recipe.data.synthetic > 0:
        from .synthetic import write_dataset

        root = output_dir / "synthetic"
        path = root / "train.json"
        if not path.is_file():  # written once: a resumed run must read the same records
            write_dataset(root, count=recipe.data.synthetic, size=max(16, recipe.model.from_config.image_size + 16),
                          seed=recipe.run.seed)
        sources = [MixSource(data=path, weight=1.0, image_root=root / "images", name="synthetic")]
        image_root: Path | None = root / "images"
    else:
        image_root = recipe.resolve_path(recipe.data.image_root) if recipe.data.image_root else None
        sources = []
        for source in recipe.data.sources:
            path = recipe.resolve_path(source.path)
            # Validation checks images under the source's own folder (image_root/prefix).
            root = image_root / source.image_prefix if image_root is not None else None
            name = source.name or f"{source.kind}:{path.name}"
            sources.append(MixSource(data=path, weight=source.weight, image_root=root,
                                     image_prefix=source.image_prefix, name=name))
    records, report = mix(sources, seed=recipe.run.seed, total=recipe.data.total or None)
    if not records:
        raise RecipeError(f"no valid records in the recipe's data ({report.skips.total_skipped} skipped):\n{report}")
    return Data(records=records, image_root=image_root, report=report.to_dict())


def check_inputs(recipe: Recipe, model: bool = True) -> None:
    """Fail before anything is written when the recipe points at files that are not there."""
    if model and recipe.model.path and not recipe.resolve_path(recipe.model.path).is_dir():
        raise RecipeError(f"model.path = {recipe.model.path!r} is not a directory (download the base checkpoint "
                          "first; the trainer never downloads)")
    if recipe.data.synthetic > 0:
        return
    missing = [s.path for s in recipe.data.sources if not recipe.resolve_path(s.path).is_file()]
    if missing:
        raise RecipeError(f"data source(s) not found: {', '.join(missing)}")
    if recipe.data.image_root and not recipe.resolve_path(recipe.data.image_root).is_dir():
        raise RecipeError(f"data.image_root = {recipe.data.image_root!r} is not a directory")


def training_texts(records: Sequence[Any]) -> list[str]:
    """Every turn's text without the image marker, as the chat template places it: after "USER: " or
    "ASSISTANT: ", so with a leading space. A from-config tokenizer is trained on these; trained on bare
    answers it would learn "Yes" but not " Yes", and an answer starting "Yes" would then begin with a
    bare-space token that lies outside the template's generation span, so its first token would never
    be trained (the first default model answered every yes/no question "No" for that reason)."""
    from .data import IMAGE_MARKER

    return [" " + turn.value.replace(IMAGE_MARKER, "").strip() for record in records for turn in record.turns]


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class StepLog:
    step: int
    epoch: float
    loss: float | None
    lr: float
    grad_norm: float | None
    tokens: int
    label_tokens: int
    tokens_per_s: float
    s_per_step: float
    #: The ranking objective's fidelity loss this step (recipes with ``[ranking]`` only).
    rank_loss: float | None = None

    def line(self) -> str:
        loss = f"{self.loss:.4f}" if self.loss is not None else "n/a"
        norm = f"{self.grad_norm:.3f}" if self.grad_norm is not None else "n/a"
        rank = f" rank_loss {self.rank_loss:.4f}" if self.rank_loss is not None else ""
        return (f"step {self.step} epoch {self.epoch:.3f} loss {loss}{rank} lr {self.lr:.3e} grad_norm {norm} "
                f"tokens/s {self.tokens_per_s:.0f} s/step {self.s_per_step:.3f}")


@dataclass
class TrainResult:
    output_dir: Path
    steps: int
    total_steps: int
    #: Loss of each step this call ran, keyed by (1-based) step number.
    losses: dict[int, float | None]
    exports: dict[str, str] = field(default_factory=dict)
    stopped_early: bool = False
    info: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# The trainer


def _mixed_precision(value: str) -> str | None:
    import torch

    if value != "auto":
        return value
    if os.environ.get("ACCELERATE_MIXED_PRECISION"):
        return None  # `accelerate launch --mixed_precision` or its config file decides
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def accumulation_steps(recipe: Recipe, processes: int) -> int:
    """Micro-batches per optimizer step on each process: from ``global_batch_size`` when it is set."""
    train = recipe.train
    if train.global_batch_size <= 0:
        return train.gradient_accumulation_steps
    per_step = train.per_device_batch_size * processes
    if train.global_batch_size % per_step:
        raise RecipeError(f"train.global_batch_size = {train.global_batch_size} is not a multiple of "
                          f"per_device_batch_size x processes = {train.per_device_batch_size} x {processes}")
    return train.global_batch_size // per_step


class Trainer:
    """Sets up and runs one training run. ``base`` replaces the recipe's model (benchmarks build their own).

    :param recipe: the run's recipe.
    :param resume: continue from the latest checkpoint in the output directory.
    :param base: a prebuilt :class:`~qplug_training.modeling.BaseModel` (skips loading; such runs export nothing).
    :param echo: print log lines (main process only).
    """

    def __init__(self, recipe: Recipe, resume: bool = False, base: Any = None, echo: bool = True) -> None:
        self.recipe = recipe
        self.resume = resume
        self.echo = echo
        self.output_dir = Path(recipe.run.output_dir)
        self._base_override = base
        self.progress = Progress()
        self.notes: list[str] = []

    # -- setup -------------------------------------------------------------------------------------

    def setup(self) -> None:
        import torch
        from accelerate import Accelerator, PartialState
        from accelerate.utils import DistributedDataParallelKwargs, DistributedType, ProjectConfiguration, set_seed

        from .dataset import BatchPlan, Encoder
        from .modeling import load_base, load_checkpoint, parameter_groups, prepare_tuning, upcast_trainable

        recipe = self.recipe
        check_inputs(recipe, model=self._base_override is None)
        # cpu=True when there is no GPU: it is what lets several CPU processes (torchrun, gloo) form one run.
        cpu = not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
        state = PartialState(cpu=cpu)
        self.accumulation = accumulation_steps(recipe, state.num_processes)
        self.accelerator = accelerator = Accelerator(
            cpu=cpu,
            gradient_accumulation_steps=self.accumulation,
            mixed_precision=_mixed_precision(recipe.train.mixed_precision),
            project_config=ProjectConfiguration(project_dir=str(self.output_dir)),
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=recipe.train.find_unused_parameters)])
        if accelerator.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / "recipe.json").write_text(recipe_json(recipe), encoding="utf-8")
        accelerator.wait_for_everyone()
        set_seed(recipe.run.seed)

        # Data first: a from-config tokenizer is trained on its texts.
        if accelerator.is_main_process:
            self.data = load_data(recipe, self.output_dir)
        accelerator.wait_for_everyone()
        if not accelerator.is_main_process:
            self.data = load_data(recipe, self.output_dir)  # synthetic files now exist

        if self._base_override is not None:
            base = self._base_override
        elif recipe.model.path:
            device_map = self._device_map()
            base = load_base(recipe, [], device_map=device_map)
        else:
            # Built once and saved, so every process, a resumed run and the export use the same base.
            base_dir = self.output_dir / "base"
            if accelerator.is_main_process and not (base_dir / "config.json").is_file():
                built = load_base(recipe, training_texts(self.data.records))
                built.model.save_pretrained(base_dir)
                built.processor.save_pretrained(base_dir)
                self.notes.extend(built.notes)
            accelerator.wait_for_everyone()
            base = load_checkpoint(base_dir, recipe, device_map=self._device_map())
            base.built = True
        self.base = base
        self.processor = base.processor

        self.encoder = Encoder(self.processor, self.data.image_root, recipe.data.max_length, recipe.image.pad_square)
        self.ranking = None
        if recipe.ranking.ladders:
            from .ranking import LadderError, RankingObjective

            try:
                self.ranking = RankingObjective(recipe.ranking, base.model, self.processor, self.encoder.load_image,
                                                recipe.run.seed, recipe.resolve_path(recipe.ranking.ladders))
            except LadderError as exc:
                raise RecipeError(str(exc)) from exc
        records, self.length_report = self.encoder.lengths(self.data.records)
        if not records:
            raise RecipeError(f"every record is longer than data.max_length = {recipe.data.max_length} before its "
                              "first answer")
        self.records = records
        self.plan = BatchPlan(size=len(records), per_device=recipe.train.per_device_batch_size,
                              accumulation=self.accumulation, processes=accelerator.num_processes,
                              seed=recipe.run.seed, epochs=recipe.train.epochs, max_steps=recipe.train.max_steps,
                              group_by_length=recipe.data.group_by_length, lengths=self.length_report.kept_lengths)

        self.base_dtype = next(base.model.parameters()).dtype
        model, self.parameters = prepare_tuning(base.model, recipe)
        from qplug_vlm.backend import prefer_channels_last

        prefer_channels_last(model)  # a convolutional tower's backward runs faster channels-last on the CPU
        if accelerator.mixed_precision != "no" and accelerator.distributed_type != DistributedType.DEEPSPEED:
            upcast_trainable(model)  # DeepSpeed keeps its own fp32 master copies
        optimizer = torch.optim.AdamW(parameter_groups(model, recipe), lr=recipe.train.learning_rate,
                                      betas=(recipe.train.adam_beta1, recipe.train.adam_beta2),
                                      eps=recipe.train.adam_epsilon, weight_decay=recipe.train.weight_decay)
        self._configure_deepspeed()
        self.model, self.optimizer = accelerator.prepare(model, optimizer)
        self.scheduler = self._scheduler(self.optimizer)
        accelerator.register_for_checkpointing(self.scheduler)
        accelerator.register_for_checkpointing(self.progress)
        hooks = TrainableOnly()
        accelerator.register_save_state_pre_hook(hooks.save)
        accelerator.register_load_state_pre_hook(hooks.load)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self._needs_all_grads = accelerator.distributed_type in (DistributedType.MULTI_GPU, DistributedType.MULTI_CPU) \
            and not recipe.train.find_unused_parameters

        if self.resume:
            checkpoint = latest_checkpoint(self.output_dir)
            if checkpoint is None:
                self.say(f"--resume: no checkpoint in {self.output_dir / CHECKPOINTS}; starting from step 0")
            else:
                if self._accelerate_states:
                    accelerator.load_state(str(checkpoint))
                elif is_safe_checkpoint(checkpoint):
                    load_trainer_state(checkpoint, accelerator.unwrap_model(self.model), self.optimizer,
                                       self.scheduler, self.progress, accelerator.process_index)
                else:
                    raise RecipeError(f"{checkpoint} is in accelerate's pickle format (written by an older qplug); "
                                      "qplug does not unpickle checkpoints: start the run again without --resume")
                self.say(f"resumed from {checkpoint} at step {self.progress.step}")
                if accelerator.is_main_process:
                    truncate_log(self.output_dir / LOG_NAME, self.progress.step)

    def _device_map(self) -> Any:
        """Load straight onto the GPU when one process owns it (no CPU copy of 14 GB); sharded setups place
        weights themselves."""
        from accelerate.utils import DistributedType

        accelerator = self.accelerator
        if accelerator.distributed_type in (DistributedType.NO, DistributedType.MULTI_GPU) and \
                accelerator.device.type == "cuda":
            return {"": accelerator.device}
        return None

    def _configure_deepspeed(self) -> None:
        """Fill the DeepSpeed config's batch sizes from the recipe: no dataloader is prepared to infer them."""
        plugin = getattr(self.accelerator.state, "deepspeed_plugin", None)
        if plugin is None:
            return
        config = plugin.deepspeed_config
        config["train_micro_batch_size_per_gpu"] = self.recipe.train.per_device_batch_size
        config["gradient_accumulation_steps"] = self.accumulation
        config["train_batch_size"] = self.plan.global_batch
        if self.recipe.train.max_grad_norm > 0:
            config["gradient_clipping"] = self.recipe.train.max_grad_norm

    def _scheduler(self, optimizer: Any) -> Any:
        from transformers import get_scheduler

        total = self.plan.total_steps
        warmup = math.ceil(self.recipe.train.warmup_ratio * total)
        name = {"constant": "constant_with_warmup"}.get(self.recipe.train.scheduler, self.recipe.train.scheduler)
        # Stepped by hand once per optimizer step (accelerate's wrapper would step it once per process).
        return get_scheduler(name, optimizer=optimizer, num_warmup_steps=warmup, num_training_steps=total)

    # -- checkpoints ---------------------------------------------------------------------------------

    @property
    def _accelerate_states(self) -> bool:
        """DeepSpeed and FSDP shard model and optimizer states their own way: accelerate saves those."""
        from accelerate.utils import DistributedType

        return self.accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP)

    def save_checkpoint(self) -> Path:
        directory = checkpoint_dir(self.output_dir, self.progress.step)
        if self._accelerate_states:
            self.accelerator.save_state(str(directory))
        else:
            accelerator = self.accelerator
            save_trainer_state(directory, accelerator.unwrap_model(self.model), self.optimizer, self.scheduler,
                               self.progress, accelerator.process_index, accelerator.is_main_process)
        if self.accelerator.is_main_process:
            prune_checkpoints(self.output_dir, self.recipe.train.keep_checkpoints)
        self.accelerator.wait_for_everyone()
        return directory

    # -- the loop ------------------------------------------------------------------------------------

    def loader(self, start: int, stop: int) -> Iterator[dict[str, Any]]:
        import torch
        from torch.utils.data import DataLoader

        from .dataset import Collator, PlanSampler, RecordDataset

        hflip = self.recipe.image.hflip
        sampler = PlanSampler(self.plan, self.accelerator.process_index, start, stop, with_step=hflip > 0)
        workers = self.recipe.data.num_workers
        # An explicit generator keeps the DataLoader from drawing on the global RNG (dropout's), which
        # would make a resumed run's random stream differ from an uninterrupted one.
        dataset = RecordDataset(self.records, self.encoder, hflip=hflip, seed=self.recipe.run.seed)
        loader = DataLoader(dataset, batch_sampler=sampler,
                            collate_fn=Collator(pad_id=self.processor.tokenizer.pad_token_id,
                                               multiple=max(1, self.recipe.data.pad_to_multiple_of)), num_workers=workers,
                            generator=torch.Generator().manual_seed(self.recipe.run.seed),
                            pin_memory=self.accelerator.device.type == "cuda", persistent_workers=False,
                            prefetch_factor=4 if workers else None)
        return iter(loader)

    def run(self) -> TrainResult:
        """Train to the end of the plan (or ``train.stop_after``), checkpoint, export."""
        if not hasattr(self, "accelerator"):
            self.setup()
        recipe, accelerator = self.recipe, self.accelerator
        total = self.plan.total_steps
        stop = total
        if recipe.train.stop_after > 0:
            stop = min(total, recipe.train.stop_after)
        start = self.progress.step
        self.say(self.summary())
        losses: dict[int, float | None] = {}
        batches = self.loader(start, stop)
        from .modeling import freeze_batch_norm

        self.model.train()
        freeze_batch_norm(self.model)
        log_path = self.output_dir / LOG_NAME
        for step in range(start, stop):
            began = time.perf_counter()
            micro = [next(batches) for _ in range(self.accumulation)]
            entry = self.train_step(micro, step, began)
            losses[step + 1] = entry.loss
            if accelerator.is_main_process and (entry.step % recipe.train.log_every == 0 or entry.step == stop):
                with open(log_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry.__dict__) + "\n")
                self.say(entry.line())
            every = recipe.train.save_every
            interrupted_here = self.progress.step == stop and stop < total
            if (every > 0 and self.progress.step % every == 0) or interrupted_here:
                self.save_checkpoint()
        stopped = stop < total
        exports: dict[str, str] = {}
        info: dict[str, Any] = {}
        if not stopped and self._base_override is None:
            exports = export_run(self)
            info = write_info(self, exports)
        return TrainResult(output_dir=self.output_dir, steps=self.progress.step, total_steps=total, losses=losses,
                           exports=exports, stopped_early=stopped, info=info)

    def train_step(self, micro: list[dict[str, Any]], step: int, began: float) -> StepLog:
        """One optimizer step over ``accumulation`` micro-batches; the loss is the mean over every assistant
        token of the global batch."""
        import torch

        accelerator = self.accelerator
        counts = torch.tensor([float(sum(int((b["labels"][:, 1:] != -100).sum()) for b in micro)),
                               float(sum(int(b["attention_mask"].sum()) for b in micro)),
                               float(sum(int(b["truncated"]) for b in micro))], device=accelerator.device)
        counts = accelerator.reduce(counts, reduction="sum")
        label_tokens, tokens, truncated = (int(x) for x in counts.tolist())
        # Backward of sum_i * accumulation * processes / N: accelerate divides by the accumulation and
        # DDP averages over processes, leaving d(sum over the global batch / N).
        scale = self.accumulation * accelerator.num_processes / max(1, label_tokens)
        loss_sum = torch.zeros((), device=accelerator.device, dtype=torch.float64)
        grad_norm = None
        dtype = next(self.model.parameters()).dtype
        rank_loss = None
        for index, batch in enumerate(micro):
            with accelerator.accumulate(self.model):
                labels = batch["labels"].to(accelerator.device)
                inputs = {k: _to(v, accelerator.device, dtype) for k, v in batch.items()
                          if k not in ("labels", "truncated")}
                logits = self.model(**inputs, use_cache=False).logits
                token_loss = _label_loss(logits, labels)
                objective = token_loss * scale
                if self.ranking is not None and index == len(micro) - 1:
                    # Once per optimizer step; accelerate divides by the accumulation, so it is undone here.
                    ranked = self.ranking.loss(self.model, step, accelerator.process_index,
                                               lambda v: _to(v, accelerator.device, dtype))
                    objective = objective + ranked * (self.recipe.ranking.weight * self.accumulation)
                    rank_loss = ranked.detach().double().reshape(1)
                if self._needs_all_grads and "pixel_values" not in inputs:
                    # A text-only micro-batch leaves the projector without gradients, and DDP's reducer
                    # would then wait for them forever; a zero-weighted term gives every trainable
                    # parameter a (zero) gradient, as LLaVA's dummy image does.
                    objective = objective + sum(p.sum() for p in self.trainable) * 0.0
                accelerator.backward(objective)
                loss_sum += token_loss.detach().double()
                if accelerator.sync_gradients and self.recipe.train.max_grad_norm > 0:
                    # All parameters, not just the trainable list: accelerate matches the list against the
                    # prepared model to route FSDP's sharded clipping (frozen ones have no gradient).
                    norm = accelerator.clip_grad_norm_(self.model.parameters(), self.recipe.train.max_grad_norm)
                    grad_norm = float(norm) if norm is not None else None
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
        lr = self.scheduler.get_last_lr()[0]
        self.scheduler.step()
        loss_sum = accelerator.reduce(loss_sum, reduction="sum")
        loss = float(loss_sum) / label_tokens if label_tokens else None
        if rank_loss is not None:
            rank_loss = float(accelerator.reduce(rank_loss, reduction="mean"))
        elapsed = time.perf_counter() - began
        progress = self.progress
        progress.step = step + 1
        progress.tokens += tokens
        progress.label_tokens += label_tokens
        progress.truncated += truncated
        progress.seconds += elapsed
        progress.last_loss = loss
        return StepLog(step=step + 1, epoch=(step + 1) / self.plan.steps_per_epoch, loss=loss, lr=lr,
                       grad_norm=grad_norm, tokens=tokens, label_tokens=label_tokens,
                       tokens_per_s=tokens / elapsed if elapsed > 0 else 0.0, s_per_step=elapsed,
                       rank_loss=rank_loss)

    # -- reporting ---------------------------------------------------------------------------------

    def summary(self) -> str:
        p = self.plan
        lines = [f"run {self.recipe.run.name}: {len(self.records)} records, {p.total_steps} steps "
                 f"({p.steps_per_epoch}/epoch), global batch {p.global_batch} = {p.per_device} x {p.accumulation} "
                 f"x {p.processes}; {self.recipe.tuning.method}; trainable {self.parameters['trainable']:,} of "
                 f"{self.parameters['total']:,} parameters; device {self.accelerator.device}, "
                 f"precision {self.accelerator.mixed_precision}",
                 f"lengths: {self.length_report.truncated} records longer than {self.recipe.data.max_length} tokens "
                 f"(cut at the end), {self.length_report.dropped} dropped (first answer past the limit)"]
        if self.ranking is not None:
            r = self.recipe.ranking
            lines.append(f"ranking: {len(self.ranking.ladders)} ladders, {r.pairs_per_step} pairs a step, weight "
                         f"{r.weight:g}, sigma {r.sigma:g}, anchor {r.anchor:g}, hold_level {r.hold_level:g}"
                         + (f", severity {r.lowest_level} and above only" if r.lowest_level else ""))
        lines.extend(self.notes + list(getattr(self.base, "notes", [])))
        return "\n".join(lines)

    def say(self, text: str) -> None:
        if self.echo and self.accelerator.is_main_process:
            print(text, flush=True)

    def close(self) -> None:
        """Forget accelerate's process-wide state so another run can start in this process (tests)."""
        from accelerate.state import AcceleratorState, GradientState

        self.accelerator.free_memory()
        AcceleratorState._reset_state()
        GradientState._reset_state()


def _to(value: Any, device: Any, dtype: Any) -> Any:
    """Move a batch tensor; floating inputs (pixels) take the weights' dtype so the tower gets what it expects."""
    import torch

    if not isinstance(value, torch.Tensor):
        return value
    if value.is_floating_point():
        return value.to(device=device, dtype=dtype)
    return value.to(device)


def _label_loss(logits: Any, labels: Any) -> Any:
    """Summed next-token cross-entropy over labelled positions (only those rows are cast to fp32)."""
    import torch

    target = labels[:, 1:]
    mask = target != -100
    if not bool(mask.any()):
        return logits.sum() * 0.0  # keeps every process's backward in step
    selected = logits[:, :-1][mask].float()
    return torch.nn.functional.cross_entropy(selected, target[mask], reduction="sum")


def train(recipe: Recipe, resume: bool = False, echo: bool = True) -> TrainResult:
    """Run a recipe to its end (or ``train.stop_after``) and return what happened."""
    trainer = Trainer(recipe, resume=resume, echo=echo)
    try:
        trainer.setup()
        return trainer.run()
    finally:
        if hasattr(trainer, "accelerator"):
            trainer.close()


# ---------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qplug_training.train", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", help="a TOML recipe (training/recipes/*.toml)")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                        help="set a recipe value, e.g. train.learning_rate=1e-4 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint of the run")
    parser.add_argument("--print-recipe", action="store_true", help="print the resolved recipe and exit")
    args = parser.parse_args(argv)
    try:
        recipe = load_recipe(args.recipe, args.override)
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.print_recipe:
        print(recipe_json(recipe))
        return 0
    try:
        result = train(recipe, resume=args.resume)
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # one process reports
    if result.stopped_early:
        print(f"stopped after step {result.steps} of {result.total_steps} (train.stop_after); continue with --resume")
    else:
        for name, path in result.exports.items():
            print(f"export {name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
