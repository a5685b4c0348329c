"""The ``vlm`` asker: multiple-choice answers from the option letters' logits, free answers by generation.

With choices the question becomes a Q-Bench-A1-style prompt (lettered options, then "Answer with the
option's letter from the given choices directly.") and the answer is read from one prefill: the
softmax over the logits of the letters A, B, ... at the answer position. This is stricter than the
reference substring match on generated text, and it always yields one of the choices.

Yes/no questions (choices that are exactly yes and no, in any case) are asked as they are and
answered from the logits of the words "Yes" and "No" at the start of the answer, the form in which
Q-Instruct's yes/no pairs train them (its answers begin "Yes, ..." / "No, ..."); ``letters=True``
asks them as lettered options instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from qplug.errors import UsageError
from qplug.types import Answer

from .backend import GenerationSettings
from .images import DEFAULT_MAX_SIDE, model_image, resolve_window
from .prompts import LETTERS, is_yes_no, mcq_prompt

if TYPE_CHECKING:
    from qplug.types import Frame

    from .backend import Backend


class Asker:
    """Answers questions about frames.

    :param backend: the loaded model.
    :param settings: generation settings for questions without choices.
    :param window: where a native-resolution model's window goes (``auto``: where the frame has the
        most detail, as the level scorers place it; ``centre``; ``detail``).
    """

    def __init__(self, backend: "Backend", settings: GenerationSettings = GenerationSettings(),
                 image_max_side: int | None = DEFAULT_MAX_SIDE, pad_square: bool | None = None,
                 letters: bool = False, window: str = "auto") -> None:
        self.backend = backend
        self.window = resolve_window(window, backend.native_crop, 1, backend.name)
        self.letters = letters
        self.settings = settings
        self.image_max_side = image_max_side
        self.pad_fill = backend.pad_fill(pad_square)
        # A run asks the same question of every frame: render and resolve its tokens once.
        self._prompts: dict[tuple[str, tuple[str, ...] | None], tuple[str, list[int]]] = {}

    def prompt(self, question: str, choices: Sequence[str] | None = None) -> tuple[str, list[int]]:
        """The rendered prompt and, with choices, the token id of each option's letter."""
        key = (question, tuple(choices) if choices is not None else None)
        cached = self._prompts.get(key)
        if cached is None:
            if not question.strip():
                raise UsageError("the question is empty")
            if key[1] is None:
                cached = (self.backend.render(question.strip()), [])
            else:
                options = key[1]
                if len(set(options)) != len(options) or len(options) < 2:
                    raise UsageError(f"give at least two different choices, not {list(options)}")
                cached = self._yes_no_prompt(question, options) if not self.letters and is_yes_no(options) else None
                if cached is None:
                    text = self.backend.render(mcq_prompt(question, options))
                    cached = (text, self.backend.first_tokens(text, LETTERS[:len(options)], "multiple-choice answering"))
            self._prompts[key] = cached
        return cached

    def _yes_no_prompt(self, question: str, options: Sequence[str]) -> tuple[str, list[int]] | None:
        """The plain question and the ids of "Yes"/"No"; None when the tokenizer cannot tell them apart."""
        text = self.backend.render(question.strip())
        words = ["Yes" if option.strip().lower() == "yes" else "No" for option in options]
        try:
            return text, self.backend.first_tokens(text, words, "yes/no answering")
        except UsageError:
            return None  # fall back to lettered options, which every checkpoint can answer

    def ask(self, frames: Sequence["Frame"], question: str, choices: Sequence[str] | None = None) -> list[Answer]:
        if not frames:
            return []
        text, letter_ids = self.prompt(question, choices)
        images = [model_image(frame, self.window, self.backend.native_crop, self.image_max_side, self.pad_fill)
                  for frame in frames]
        if choices is None:
            texts = self.backend.generate(images, [text] * len(images), self.settings)
            return [Answer(text=answer) for answer in texts]
        options = list(choices)
        probabilities = self.backend.next_token_logits(images, [text] * len(images))[:, letter_ids].double().softmax(-1)
        answers = []
        for row in probabilities.tolist():
            best = max(range(len(options)), key=row.__getitem__)
            answers.append(Answer(text=options[best], choice=options[best],
                                  probabilities={option: p for option, p in zip(options, row)}))
        return answers


def build(*, max_new_tokens: int = 64, do_sample: bool = False, temperature: float = 1.0, top_p: float | None = None,
          seed: int | None = None, image_max_side: int | None = DEFAULT_MAX_SIDE, pad_square: bool | None = None,
          letters: bool = False, window: str = "auto", **load_options: Any) -> Asker:
    """The ``vlm`` asker on the shared backend; ``load_options`` go to :func:`~qplug_vlm.backend.load_backend`.

    With ``endpoint=`` (or ``$QPLUG_ENDPOINT``) no model is loaded: the asker asks that server
    (:class:`qplug_vlm.remote.RemoteAsker`; ``endpoint_model``, ``api_key``, ``concurrency``,
    ``timeout`` and ``retries`` apply there).
    """
    from . import remote
    from .backend import load_backend

    if remote.wanted(load_options):
        return remote.asker(max_new_tokens=max_new_tokens, do_sample=do_sample,  # type: ignore[return-value]
                            temperature=temperature, top_p=top_p, seed=seed, image_max_side=image_max_side,
                            pad_square=pad_square, letters=letters, window=window, **load_options)

    settings = GenerationSettings(max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature,
                                  top_p=top_p, seed=seed)
    return Asker(load_backend(**load_options), settings=settings, image_max_side=image_max_side, pad_square=pad_square,
                 letters=letters, window=window)
