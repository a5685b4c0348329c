"""Records to model inputs with assistant-only labels, and the fixed order batches are drawn in.

Labels come from the processor's chat template: ``apply_chat_template(..., return_assistant_tokens_mask=True)``
marks the characters inside ``{% generation %}`` blocks, and only those tokens keep their id as a
label; every other position (system text, user turns, role names, image tokens, padding) is -100,
so the loss is the assistant's answers and nothing else, over every turn of a multi-turn record.

The batch order is a pure function of (seed, epoch, step), so a resumed run draws exactly the
batches an uninterrupted one would have (:class:`BatchPlan`).
"""

from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from .data import IMAGE_MARKER, Record

if TYPE_CHECKING:
    import torch
    from PIL import Image

IGNORE = -100


def to_messages(record: Record, with_image_data: bool = False) -> list[dict[str, Any]]:
    """Chat messages for a record. The image goes first in the turn that carries the marker, as LLaVA's
    own preprocessing does and as qplug prompts at scoring time."""
    messages = []
    for turn in record.turns:
        if turn.role == "human":
            content: list[dict[str, Any]] = []
            text = turn.value
            if IMAGE_MARKER in text:
                content.append({"type": "image"})
                text = text.replace(IMAGE_MARKER, "").strip()
            content.append({"type": "text", "text": text})
            messages.append({"role": "user", "content": content})
        else:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": turn.value}]})
    return messages


@dataclass
class Example:
    """One encoded record."""

    input_ids: "torch.Tensor"  # (L,) long
    labels: "torch.Tensor"  # (L,) long, IGNORE outside assistant tokens
    extras: dict[str, "torch.Tensor"]  # pixel_values and any other processor output, batch dim 1
    truncated: bool = False


@dataclass
class LengthReport:
    """What the pre-pass found: how many records are longer than ``max_length``."""

    max_length: int
    image_tokens: int
    kept: int = 0
    truncated: int = 0
    dropped: int = 0  # not even the first answer would fit
    longest: int = 0
    dropped_ids: list[str] = field(default_factory=list)
    #: The estimated token count of each kept record, in order (what length grouping sorts by).
    kept_lengths: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"max_length": self.max_length, "image_tokens_per_image": self.image_tokens, "kept": self.kept,
                "truncated": self.truncated, "dropped_too_long": self.dropped, "longest_tokens": self.longest,
                "dropped_examples": self.dropped_ids[:5]}


class Encoder:
    """Encodes records with a processor: images loaded and padded, assistant-only labels, truncation.

    :param processor: a multimodal processor whose chat template has ``{% generation %}`` markers.
    :param image_root: where relative image paths live.
    :param max_length: longest sequence in tokens; longer ones are cut at the end (never inside the
        image tokens, which must all be present for the vision features to fit).
    :param pad_square: pad images to a square with the processor's mean colour first.
    """

    def __init__(self, processor: Any, image_root: str | Path | None, max_length: int, pad_square: bool) -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.image_root = Path(image_root) if image_root else None
        self.max_length = max_length
        self.pad_square = pad_square
        self.image_token_id = _image_token_id(processor)
        mean = getattr(processor.image_processor, "image_mean", None) or (0.5, 0.5, 0.5)
        self.fill = tuple(int(round(float(m) * 255)) for m in mean[:3])
        # Right padding for training: positions line up from the start, and padding carries no loss.
        self.tokenizer.padding_side = "right"

    # -- images ------------------------------------------------------------------------------------

    def load_image(self, path: str, mirror: bool = False) -> "Image.Image":
        from PIL import Image, ImageOps

        full = Path(path)
        if not full.is_absolute() and self.image_root is not None:
            full = self.image_root / full
        try:
            with Image.open(full) as image:
                image = image.convert("RGB")
        except Exception as exc:  # Pillow raises many kinds for missing or corrupt files
            raise UnreadableImage(f"cannot read image {full}: {type(exc).__name__}: {exc} (check the data first "
                                  "with python -m qplug_training.data validate --verify-images)") from exc
        if mirror:
            image = ImageOps.mirror(image)
        if self.pad_square and image.width != image.height:
            side = max(image.size)
            square = Image.new("RGB", (side, side), self.fill)
            square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
            image = square
        return image

    # -- encoding ----------------------------------------------------------------------------------

    def encode(self, record: Record, mirror: bool = False) -> Example:
        """Token ids, labels and processor tensors of one record (batch dimension removed from ids).

        ``mirror`` flips the record's image left-right (training augmentation).
        """
        messages = to_messages(record)
        processor_kwargs: dict[str, Any] = {}
        if record.image is not None:
            processor_kwargs["images"] = [[self.load_image(record.image, mirror)]]
        out = self.processor.apply_chat_template(
            [messages], tokenize=True, return_dict=True, return_assistant_tokens_mask=True, return_tensors="pt",
            processor_kwargs=processor_kwargs)
        input_ids = out["input_ids"][0]
        mask = out["assistant_masks"][0].bool()
        labels = input_ids.masked_fill(~mask, IGNORE)
        if self.image_token_id is not None:
            labels = labels.masked_fill(input_ids == self.image_token_id, IGNORE)
        extras = {k: v for k, v in out.items() if k not in ("input_ids", "attention_mask", "assistant_masks")}
        truncated = False
        if input_ids.numel() > self.max_length:
            keep = self.max_length
            if self.image_token_id is not None:
                positions = (input_ids == self.image_token_id).nonzero()
                if positions.numel():
                    keep = max(keep, int(positions.max()) + 1)
            length = input_ids.numel()
            input_ids, labels, truncated = input_ids[:keep], labels[:keep], True
            # Per-token extras (token type ids of some processors) are cut with the ids.
            extras = {k: (v[:, :keep] if v.ndim == 2 and v.shape[1] == length else v) for k, v in extras.items()}
        return Example(input_ids=input_ids, labels=labels, extras=extras, truncated=truncated)

    def lengths(self, records: Sequence[Record]) -> tuple[list[Record], LengthReport]:
        """Estimate each record's length without loading images; drop those whose first answer cannot fit.

        A record's length is its rendered text's token count plus the image's tokens (measured once
        on a blank image: exact for fixed-size processors such as LLaVA's, an estimate for tiling ones).
        One template rendering and one batched tokenization per record (~0.2 ms): Q-Instruct's 200K
        records take well under a minute.
        """
        import bisect

        image_tokens = self._image_token_count()
        report = LengthReport(max_length=self.max_length, image_tokens=image_tokens)
        kept: list[Record] = []
        adds_bos = self._adds_bos()
        bos = self.tokenizer.bos_token or ""
        for start in range(0, len(records), 1024):
            chunk = records[start:start + 1024]
            texts, answer_starts = self._render([to_messages(r) for r in chunk])
            encoded = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
            for record, text, offsets, answer_at in zip(chunk, texts, encoded["offset_mapping"], answer_starts):
                # The processor adds BOS unless the template wrote it already.
                extra = (adds_bos and not (bos and text.startswith(bos))) + \
                    ((image_tokens - 1) if record.image is not None else 0)
                total = len(offsets) + extra
                prefix = bisect.bisect_left([o[0] for o in offsets], answer_at) + extra
                report.longest = max(report.longest, total)
                if prefix >= self.max_length:
                    report.dropped += 1
                    report.dropped_ids.append(record.id)
                    continue
                report.truncated += total > self.max_length
                kept.append(record)
                report.kept_lengths.append(min(total, self.max_length))
        report.kept = len(kept)
        return kept, report

    def _render(self, conversations: list[list[dict[str, Any]]]) -> tuple[list[str], list[int]]:
        """Rendered texts and the character where each one's first answer starts."""
        template = getattr(self.processor, "chat_template", None)
        if isinstance(template, str):
            try:
                from transformers.utils.chat_template_utils import render_jinja_template

                texts, generations = render_jinja_template(
                    conversations=conversations, chat_template=template, return_assistant_tokens_mask=True,
                    **self.tokenizer.special_tokens_map)
                return list(texts), [g[0][0] if g else len(t) for t, g in zip(texts, generations)]
            except ImportError:  # a transformers without the helper: render through the processor
                pass
        texts, starts = [], []
        for messages in conversations:
            text = self.processor.apply_chat_template(messages, tokenize=False)
            prefix = self.processor.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
            texts.append(text)
            starts.append(len(prefix))
        return texts, starts

    def _adds_bos(self) -> int:
        bos = self.tokenizer.bos_token_id
        ids = self.tokenizer("a", add_special_tokens=True)["input_ids"]
        return int(bos is not None and bool(ids) and ids[0] == bos)

    def _image_token_count(self) -> int:
        """Image tokens the processor writes for one image (on a blank square image)."""
        from PIL import Image

        if self.image_token_id is None:
            return 1
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "a"}]}]
        side = int(getattr(self.processor.image_processor, "crop_size", {}).get("height", 0) or 336)
        out = self.processor.apply_chat_template([messages], tokenize=True, return_dict=True, return_tensors="pt",
                                                 processor_kwargs={"images": [[Image.new("RGB", (side, side))]]})
        return int((out["input_ids"] == self.image_token_id).sum())


def _image_token_id(processor: Any) -> int | None:
    token_id = getattr(processor, "image_token_id", None)
    if token_id is not None:
        return int(token_id)
    token = getattr(processor, "image_token", None) or "<image>"
    token_id = processor.tokenizer.convert_tokens_to_ids(token)
    return None if token_id in (None, processor.tokenizer.unk_token_id) else int(token_id)


class UnreadableImage(RuntimeError):
    """A record's image cannot be read (missing, truncated, not an image); the message names the file."""


class RecordDataset:
    """A map-style dataset over records (works with ``torch.utils.data.DataLoader`` and workers).

    Items are looked up by record index, or by ``(index, step)`` as :class:`PlanSampler` yields them
    when ``hflip > 0``: whether that visit of the record is mirrored is then a pure function of the
    seed, the step and the index, so a resumed run mirrors exactly what an uninterrupted one would.
    """

    def __init__(self, records: Sequence[Record], encoder: Encoder, hflip: float = 0.0, seed: int = 0) -> None:
        self.records = list(records)
        self.encoder = encoder
        self.hflip = hflip
        self.seed = seed
        self._reported: set[str] = set()  # unreadable images already warned about (per process)

    def __len__(self) -> int:
        return len(self.records)

    def mirrored(self, index: int, step: int) -> bool:
        """Whether record ``index`` is mirrored when optimizer step ``step`` uses it."""
        return self.hflip > 0 and random.Random(f"{self.seed}:hflip:{step}:{index}").random() < self.hflip

    def __getitem__(self, key: int | tuple[int, int]) -> Example:
        index, step = key if isinstance(key, tuple) else (key, None)
        # A record whose image went bad after validation (a truncated file) must not end a run of
        # hours: the next record stands in, the same one every time, so a resumed run still matches.
        for offset in range(len(self.records)):
            at = (index + offset) % len(self.records)
            try:
                return self.encoder.encode(self.records[at], mirror=step is not None and self.mirrored(at, step))
            except UnreadableImage as exc:
                self._report(str(exc))
        raise UnreadableImage(f"no record of the {len(self.records)} has a readable image")

    def _report(self, message: str) -> None:
        """Once per file and process (DataLoader workers each hold a copy), on stderr."""
        if message not in self._reported:
            self._reported.add(message)
            print(f"warning: record skipped, the next one used instead: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Batching


@dataclass
class Collator:
    """Right-pads ids (pad id) and labels (-100) and joins the processor's tensors.

    Images are stacked for the records that have one (LLaVA takes ``n_images`` pixel rows for a batch
    whose records may or may not carry an image); tensors whose shapes differ past the first
    dimension (tiling processors) are zero-padded to the largest, as the processors themselves do.

    ``multiple`` > 1 pads every batch to a multiple of that many tokens, and per-token tensors of the
    processor alike: a few sequence lengths instead of a new one almost every batch. Right padding
    changes no loss (causal attention, no labels there); it bounds the per-shape caches of the CPU's
    bf16 path, whose memory otherwise grows with every new length (3.1 -> 4.4 GB over 20 steps of
    the fast chain's stage 2; flat at a multiple of 128).
    """

    pad_id: int
    multiple: int = 1

    def __call__(self, examples: Sequence[Example]) -> dict[str, Any]:
        import torch

        natural = max(e.input_ids.numel() for e in examples)
        longest = -(-natural // self.multiple) * self.multiple if self.multiple > 1 else natural
        ids = torch.full((len(examples), longest), self.pad_id, dtype=torch.long)
        labels = torch.full((len(examples), longest), IGNORE, dtype=torch.long)
        attention = torch.zeros((len(examples), longest), dtype=torch.long)
        for row, example in enumerate(examples):
            n = example.input_ids.numel()
            ids[row, :n] = example.input_ids
            labels[row, :n] = example.labels
            attention[row, :n] = 1
        batch: dict[str, Any] = {"input_ids": ids, "attention_mask": attention, "labels": labels}
        keys = sorted({k for e in examples for k in e.extras})
        for key in keys:
            tensors = [e.extras[key] for e in examples if key in e.extras]
            joined = _concat(tensors)
            if longest > natural and joined.ndim == 2 and joined.shape == (len(examples), natural):
                joined = torch.nn.functional.pad(joined, (0, longest - natural))  # per token, like the ids
            batch[key] = joined
        batch["truncated"] = sum(e.truncated for e in examples)
        return batch


def _concat(tensors: list["torch.Tensor"]) -> "torch.Tensor":
    import torch

    shapes = {tuple(t.shape[1:]) for t in tensors}
    if len(shapes) == 1:
        return torch.cat(tensors, dim=0)
    target = [max(s[i] for s in shapes) for i in range(len(next(iter(shapes))))]
    padded = []
    for t in tensors:
        out = t.new_zeros((t.shape[0], *target))
        out[(slice(None), *(slice(0, n) for n in t.shape[1:]))] = t
        padded.append(out)
    return torch.cat(padded, dim=0)


@dataclass(frozen=True)
class BatchPlan:
    """Which records every optimizer step uses, on every process: a pure function of the seed.

    Epoch ``e`` shuffles all records with ``Random(f"{seed}:{e}")``; global step ``s`` takes the next
    ``global_batch`` of that order (the last batch of an epoch wraps around to its start, so every step
    has the same size), split into ``accumulation`` micro-batches per process. Resuming at step ``k``
    is starting the plan at ``k``: no iterator state to save.

    Length grouping (``group_by_length`` = G > 0, with ``lengths``): the shuffled order is cut into
    windows of G global batches, each window sorted by length, cut into its batches, and the epoch's
    batches shuffled again. Batches then hold records of about one length, so less of each is padding
    (right padding costs compute and carries no loss), while which records share an epoch, and the
    order batches come in, stay random. Still a pure function of the seed and the lengths.
    """

    size: int
    per_device: int
    accumulation: int
    processes: int
    seed: int
    epochs: float
    max_steps: int = 0
    group_by_length: int = 0
    lengths: Sequence[int] = ()
    #: The current epoch's order, kept so each step does not shuffle (and sort) the whole epoch again.
    _orders: dict[int, list[int]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.group_by_length and len(self.lengths) != self.size:
            raise ValueError(f"length grouping needs one length per record ({len(self.lengths)} for {self.size})")

    @property
    def global_batch(self) -> int:
        return self.per_device * self.accumulation * self.processes

    @property
    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self.size / self.global_batch))

    @property
    def total_steps(self) -> int:
        if self.max_steps > 0:
            return self.max_steps
        return max(1, math.ceil(self.epochs * self.steps_per_epoch))

    def order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            self._orders.clear()  # one epoch at a time: steps walk through epochs in order
            self._orders[epoch] = self._order(epoch)
        return self._orders[epoch]

    def _order(self, epoch: int) -> list[int]:
        indices = list(range(self.size))
        random.Random(f"{self.seed}:{epoch}").shuffle(indices)
        if not self.group_by_length:
            return indices
        window = self.group_by_length * self.global_batch
        batches = []
        for start in range(0, self.size, window):
            # Stable sort: records of one length keep their shuffled order.
            ordered = sorted(indices[start:start + window], key=lambda i: -self.lengths[i])
            batches += [ordered[b:b + self.global_batch] for b in range(0, len(ordered), self.global_batch)]
        # The epoch's one short batch (if any) stays last, where step_indices pads it by wrapping around.
        tail = [batches.pop()] if len(batches[-1]) < self.global_batch else []
        random.Random(f"{self.seed}:{epoch}:batches").shuffle(batches)
        return [i for batch in batches + tail for i in batch]

    def step_indices(self, step: int) -> list[int]:
        """The global batch of optimizer step ``step`` (0-based)."""
        epoch, position = divmod(step, self.steps_per_epoch)
        order = self.order(epoch)
        start = position * self.global_batch
        window = order[start:start + self.global_batch]
        while len(window) < self.global_batch:  # wrap around within the epoch's own order
            window += order[:self.global_batch - len(window)]
        return window

    def micro_batches(self, step: int, rank: int) -> list[list[int]]:
        """This process's ``accumulation`` micro-batches for ``step`` (interleaved across processes)."""
        window = self.step_indices(step)
        out = []
        for micro in range(self.accumulation):
            start = (micro * self.processes + rank) * self.per_device
            out.append(window[start:start + self.per_device])
        return out


class PlanSampler:
    """A batch sampler yielding this process's micro-batches from ``start_step`` to the end of the plan.

    With ``with_step``, each item is ``(record index, step)`` (what :class:`RecordDataset` needs to
    decide augmentations reproducibly) instead of the bare index.
    """

    def __init__(self, plan: BatchPlan, rank: int, start_step: int, stop_step: int | None = None,
                 with_step: bool = False) -> None:
        self.plan = plan
        self.rank = rank
        self.start_step = start_step
        self.stop_step = plan.total_steps if stop_step is None else stop_step
        self.with_step = with_step

    def __iter__(self) -> Iterator[list[Any]]:
        for step in range(self.start_step, self.stop_step):
            for micro in self.plan.micro_batches(step, self.rank):
                yield [(index, step) for index in micro] if self.with_step else micro

    def __len__(self) -> int:
        return max(0, self.stop_step - self.start_step) * self.plan.accumulation
