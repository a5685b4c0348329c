"""The ``vlm`` describer: a short text on each frame's low-level quality, generated in batches."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from .backend import GenerationSettings
from .images import DEFAULT_MAX_SIDE, model_image, resolve_window
from .prompts import DESCRIBE_PROMPT, MEDIA, check_choice
from .reader import check_reader_option, reader_for

if TYPE_CHECKING:
    from qplug.types import Frame

    from .backend import Backend


class Describer:
    """Describes frames with one prompt and fixed generation settings.

    :param backend: the loaded model.
    :param prompt: the question (``{medium}`` is filled in); default :data:`~qplug_vlm.prompts.DESCRIBE_PROMPT`.
    :param medium: ``"image"`` or ``"video"``.
    :param settings: generation settings (greedy by default: the same frame always gets the same text).
    :param window: where a native-resolution model's window goes (``auto``: where the frame has the
        most detail, as the level scorers place it; ``centre``; ``detail``).
    :param reader: ``auto``: a prompt of the user's that the model's question reader reads as a request
        for a description is replaced by the model's trained description prompt (:mod:`.reader`);
        ``off``: the prompt is used as written; a directory: that directory's reader.
    """

    def __init__(self, backend: "Backend", prompt: str | None = None, medium: str = "image",
                 settings: GenerationSettings = GenerationSettings(),
                 image_max_side: int | None = DEFAULT_MAX_SIDE, pad_square: bool | None = None,
                 window: str = "auto", reader: str = "auto") -> None:
        check_choice("medium", medium, MEDIA)
        check_reader_option(reader)
        self.backend = backend
        self.window = resolve_window(window, backend.native_crop, 1, backend.name)
        if prompt is not None:
            question_reader = reader_for(backend.name, reader)
            if question_reader is not None:
                prompt = question_reader.free_prompt(prompt)
        self.prompt = backend.render((prompt or DESCRIBE_PROMPT).replace("{medium}", medium))
        self.settings = settings
        self.image_max_side = image_max_side
        self.pad_fill = backend.pad_fill(pad_square)

    def describe(self, frames: Sequence["Frame"]) -> list[str]:
        if not frames:
            return []
        images = [model_image(frame, self.window, self.backend.native_crop, self.image_max_side, self.pad_fill)
                  for frame in frames]
        return self.backend.generate(images, [self.prompt] * len(images), self.settings)


def build(*, prompt: str | None = None, medium: str = "image", max_new_tokens: int = 160, do_sample: bool = False,
          temperature: float = 1.0, top_p: float | None = None, seed: int | None = None,
          image_max_side: int | None = DEFAULT_MAX_SIDE, pad_square: bool | None = None, window: str = "auto",
          reader: str = "auto", **load_options: Any) -> Describer:
    """The ``vlm`` describer on the shared backend; ``load_options`` go to :func:`~qplug_vlm.backend.load_backend`.

    With ``endpoint=`` (or ``$QPLUG_ENDPOINT``) no model is loaded: the describer asks that server
    (:class:`qplug_vlm.remote.RemoteDescriber`; ``endpoint_model``, ``api_key``, ``concurrency``,
    ``timeout`` and ``retries`` apply there).
    """
    from . import remote
    from .backend import load_backend

    if remote.wanted(load_options):
        return remote.describer(max_new_tokens=max_new_tokens, do_sample=do_sample,  # type: ignore[return-value]
                                temperature=temperature, top_p=top_p, seed=seed, image_max_side=image_max_side,
                                pad_square=pad_square, prompt=prompt, medium=medium, window=window, reader=reader,
                                **load_options)

    settings = GenerationSettings(max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature,
                                  top_p=top_p, seed=seed)
    return Describer(load_backend(**load_options), prompt=prompt, medium=medium, settings=settings,
                     image_max_side=image_max_side, pad_square=pad_square, window=window, reader=reader)
