"""Level scorers on a remote OpenAI-compatible server (``qplug serve``, vLLM, ...) instead of a local model.

Chosen by the ``endpoint`` option of ``qalign``, ``qalign-aesthetics`` and ``qbench``
(``--option qalign.endpoint=http://gpu-box:8000/v1``, or ``$QPLUG_ENDPOINT``). Each frame is sent as
a PNG data URL in one chat completion that asks the scorer's question and, with ``prefill=True``
(the default), continues the assistant turn from the method's prefix ("The quality of the image is")
through vLLM's ``continue_final_message``; the server answers one token with its top 20
log-probabilities, and the level words' probabilities are renormalised over the level words, as the
local scorer's softmax over their logits does. The scores equal local ones for the same model when the
level words are among the top 20 tokens; when one is not, or the server returns no log-probabilities,
that frame is an error (never a silently renormalised subset).

Against a server without prefill (OpenAI's own API) use ``prefill=False``: the question then asks for
one of the level words, and the score is a zero-shot approximation.

Options: ``endpoint``, ``endpoint_model`` (``$QPLUG_ENDPOINT_MODEL``; default: the server's first
model), ``api_key`` (``$OPENAI_API_KEY``), ``concurrency`` (requests in flight, default 8),
``timeout`` (seconds per request, default 60), ``retries`` (on 429, 5xx, timeouts and refused
connections, with exponential backoff: default 3), ``prefill``.
"""

from __future__ import annotations

import base64
import io
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Sequence

from qplug.errors import UsageError
from qplug.types import Score

from .images import DEFAULT_MAX_SIDE, to_pil
from .presets import Preset, level_method, select
from .prompts import ScoringMethod

if TYPE_CHECKING:
    from qplug.types import Frame

ENV_ENDPOINT = "QPLUG_ENDPOINT"
ENV_ENDPOINT_MODEL = "QPLUG_ENDPOINT_MODEL"
ENV_API_KEY = "OPENAI_API_KEY"
TOP_LOGPROBS = 20


def base_url(endpoint: str) -> str:
    """``http://host:8000`` or ``http://host:8000/v1`` -> ``http://host:8000/v1``."""
    url = endpoint.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"endpoint must be an http(s) URL, not {endpoint!r}")
    return url if url.endswith("/v1") else url + "/v1"


def png_data_url(image: Any) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class RemoteLevelScorer:
    """A level scorer (Q-Align, Q-Bench) whose model runs behind an OpenAI-compatible endpoint."""

    def __init__(self, endpoint: str, method: ScoringMethod, *, aspect: str = "quality", medium: str = "image",
                 synonyms: bool = False, image_max_side: int | None = DEFAULT_MAX_SIDE,
                 preset: "Preset | str | None" = None, endpoint_model: str | None = None,
                 api_key: str | None = None, concurrency: int = 8, timeout: float = 60.0, retries: int = 3,
                 prefill: bool = True) -> None:
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - an optional dependency
            raise UsageError("endpoint= needs the openai package: pip install openai") from exc
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise UsageError(f"concurrency must be a whole number >= 1, not {concurrency!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise UsageError(f"retries must be a whole number >= 0, not {retries!r}")
        self.endpoint = base_url(endpoint)
        self.preset = preset if isinstance(preset, Preset) or preset is None else select(preset)
        self.method = level_method(method, self.preset)
        self.question, self.prefix = self.method.prompt(aspect, medium)
        self.sets = self.method.level_sets(synonyms)
        self.low, self.high = self.sets[0].low, self.sets[0].high
        self.image_max_side = image_max_side
        self.prefill = bool(prefill)
        self.client = openai.OpenAI(base_url=self.endpoint, api_key=api_key or os.environ.get(ENV_API_KEY) or "EMPTY",
                                    timeout=float(timeout), max_retries=retries)
        self._openai = openai
        self.model = endpoint_model or os.environ.get(ENV_ENDPOINT_MODEL) or self._first_model()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="qplug-remote")

    def _first_model(self) -> str:
        try:
            models = list(self.client.models.list())
        except self._openai.AuthenticationError:
            raise UsageError(f"{self.endpoint} refused the API key (set OPENAI_API_KEY or api_key=)") from None
        except self._openai.APIError as exc:
            raise UsageError(f"{self.endpoint} could not be asked for its models: {type(exc).__name__}: "
                             f"{_short(exc)}") from None
        if not models:
            raise UsageError(f"{self.endpoint} serves no model")
        return models[0].id

    # -- scoring ---------------------------------------------------------------------------------

    def score(self, frames: Sequence["Frame"]) -> list[Score]:
        """One :class:`Score` per frame; a frame the server could not score has a NaN value and
        ``extra["error"]`` (qplug records it as that frame's error)."""
        images = [to_pil(frame, self.image_max_side) for frame in frames]
        return list(self._pool.map(self._score_one, images))

    def messages(self, image: Any) -> list[dict[str, Any]]:
        url = {"type": "image_url", "image_url": {"url": png_data_url(image)}}
        if self.prefill:
            text = {"type": "text", "text": self.question}
            content = [url, text] if self.method.image_first else [text, url]
            return [{"role": "user", "content": content}, {"role": "assistant", "content": self.prefix}]
        words = ", ".join(self.sets[0].words)
        ask = f"{self.question} Answer with one word: {words}."
        return [{"role": "user", "content": [url, {"type": "text", "text": ask}]}]

    def _score_one(self, image: Any) -> Score:
        try:
            extra = {"continue_final_message": True, "add_generation_prompt": False} if self.prefill else None
            if self.prefill and self.preset is not None and self.preset.chat_template_kwargs:
                extra = dict(extra or {}, chat_template_kwargs=dict(self.preset.chat_template_kwargs))
            response = self.client.chat.completions.create(
                model=self.model, messages=self.messages(image), max_tokens=1, temperature=0, logprobs=True,
                top_logprobs=TOP_LOGPROBS, n=1, extra_body=extra)
            top = _top_logprobs(response)
            return self._from_logprobs(top)
        except self._openai.APIStatusError as exc:
            return _failed(f"{self.endpoint} answered {exc.status_code}: {_short(exc)}")
        except self._openai.APIError as exc:  # refused connection, timeout (after the retries)
            return _failed(f"{self.endpoint}: {type(exc).__name__}: {_short(exc)}")
        except _NoLevels as exc:
            return _failed(str(exc))

    def _from_logprobs(self, top: list[tuple[str, float]]) -> Score:
        per_set = []
        for level_set in self.sets:
            found = [_match(word, top, exact=self.prefill) for word in level_set.words]
            missing = [word for word, lp in zip(level_set.words, found) if lp is None]
            if missing:
                raise _NoLevels(f"level word(s) {', '.join(map(repr, missing))} not among the server's top "
                                f"{len(top)} tokens, so this frame's levels cannot be renormalised (tokens: "
                                f"{', '.join(repr(t) for t, _ in top[:8])}...)")
            peak = max(found)  # type: ignore[type-var]
            weights = [math.exp(lp - peak) for lp in found]  # type: ignore[operator]
            total = sum(weights)
            probabilities = [w / total for w in weights]
            per_set.append((probabilities, sum(p * s for p, s in zip(probabilities, level_set.weights))))
        words = self.sets[0].words
        value = sum(v for _, v in per_set) / len(per_set)
        levels = {word: sum(p[i] for p, _ in per_set) / len(per_set) for i, word in enumerate(words)}
        extra: dict[str, Any] = {"normalised": (value - self.low) / (self.high - self.low)}
        if len(self.sets) > 1:
            extra["synonyms"] = {"/".join(s.words): v for s, (_, v) in zip(self.sets, per_set)}
        return Score(value=value, levels=levels, extra=extra)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()


class _NoLevels(Exception):
    pass


def _failed(reason: str) -> Score:
    return Score(value=float("nan"), extra={"error": reason})


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _top_logprobs(response: Any) -> list[tuple[str, float]]:
    choices = getattr(response, "choices", None) or []
    logprobs = getattr(choices[0], "logprobs", None) if choices else None
    content = getattr(logprobs, "content", None) if logprobs is not None else None
    if not content:
        raise _NoLevels("the server returned no logprobs (it must support logprobs and top_logprobs; for vLLM "
                        "see docs/serving.md)")
    top = [(entry.token, float(entry.logprob)) for entry in (content[0].top_logprobs or [])]
    if not top:
        raise _NoLevels("the server returned no top_logprobs")
    return top


def _match(word: str, top: list[tuple[str, float]], exact: bool) -> float | None:
    """The log-probability of the token that starts ``word``: the longest token text (leading space
    dropped) that is a prefix of the word, a spaced one first on ties. Case-sensitive with prefill (the
    local scorer reads exactly that token); without, any case."""
    best: tuple[int, int, float] | None = None
    for token, logprob in top:
        text = token.lstrip()
        candidate, target = (text, word) if exact else (text.lower(), word.lower())
        if not text or not target.startswith(candidate):
            continue
        rank = (len(text), 1 if token[:1].isspace() else 0, logprob)
        if best is None or rank[:2] > best[:2]:
            best = rank
    return None if best is None else best[2]


def build(endpoint: str, method: ScoringMethod, *, windows: int = 1, window_pool: str = "mean",
          pad_square: bool | None = None, preset: str | None = None, **options: Any) -> RemoteLevelScorer:
    """The remote scorer; options that only mean something for a local model are refused when set."""
    if windows != 1:
        raise UsageError("windows= needs the model in this process; it is not available with endpoint=")
    if pad_square is not None:
        raise UsageError("pad_square= is decided by the server with endpoint= (qplug serve pads as the model wants)")
    # "auto" cannot see the remote checkpoint's config: the generic prompt unless a preset is named.
    return RemoteLevelScorer(endpoint, method, preset=None if preset in (None, "auto") else preset, **options)
