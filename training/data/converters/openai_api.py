"""Q-Pathway -> Q-Instruct conversion through any OpenAI-compatible chat-completions endpoint.

The paper had GPT rewrite each feedback into questions and answers; this does the same against
OpenAI, vLLM, llama.cpp, Ollama or anything else that speaks ``POST /v1/chat/completions``.

Operational properties, because a conversion run is long and costs money:

* **bounded concurrency** (a thread pool; the ``openai`` client is thread-safe);
* **retries** with exponential backoff and jitter on timeouts, connection errors, 429 and 5xx,
  done here (the client's own retries are off) so they are counted and configurable;
* an **on-disk cache** keyed by a hash of model + prompt + sampling options: a re-run, or a
  run resumed after a crash, only pays for requests that never got an answer;
* **strict output checking**: the model must return JSON in :data:`RESPONSE_SCHEMA`; anything
  else is rejected and counted in :class:`ConversionStats`, never raised;
* the **API key** is held in a :class:`Secret`, left out of every repr, and scrubbed from every
  message this module logs or raises.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

from ..feedback import Feedback
from ..records import IMAGE_MARKER, MPLUG_MARKER, Record, make_record
from .base import KINDS, PATHWAY_QUESTIONS, ConversionError, Converter
from .cache import ResponseCache, cache_key

log = logging.getLogger("qplug_training.data.openai")

ENV_BASE_URL = ("QPLUG_OPENAI_BASE_URL", "OPENAI_BASE_URL")
ENV_MODEL = ("QPLUG_OPENAI_MODEL",)
ENV_API_KEY = ("QPLUG_OPENAI_API_KEY", "OPENAI_API_KEY")

#: What the model must return (JSON Schema, documented in docs/training-data.md).
RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["yes_no", "what_how", "conversation"],
    "properties": {
        "yes_no": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["question", "answer"],
                "properties": {
                    "question": {"type": "string", "minLength": 1},
                    "answer": {"enum": ["yes", "no"]},
                    "explanation": {"type": "string"},
                },
            },
        },
        "what_how": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["question", "answer"],
                "properties": {"question": {"type": "string", "minLength": 1},
                               "answer": {"type": "string", "minLength": 1}},
            },
        },
        "conversation": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["question", "answer"],
                "properties": {"question": {"type": "string", "minLength": 1},
                               "answer": {"type": "string", "minLength": 1}},
            },
        },
    },
}

SYSTEM_PROMPT = """\
You turn a person's feedback on the low-level visual quality of an image into training data \
for a vision-language assistant. You cannot see the image: use only what the feedback says \
about clarity/sharpness, noise, exposure/lighting, colour, contrast, compression artifacts, \
other distortions and the overall quality verdict. Never invent facts the feedback does not support.

Return ONLY a JSON object, no markdown, with exactly these keys:
{schema}

- "yes_no": exactly {yes_no} questions answerable with yes or no about low-level attributes or \
overall quality; about half must have the answer "yes" and half "no". "answer" is the single \
word "yes" or "no"; "explanation" is one short sentence grounded in the feedback.
- "what_how": exactly {what_how} questions starting with "What" or "How" (e.g. "How is the \
exposure of this image?", "What is the most noticeable distortion?"), each with a short answer.
- "conversation": a natural multi-turn dialogue of 2 to 4 exchanges about the image's quality, \
where later questions build on earlier answers.
Questions talk about "this image"; answers speak as if looking at the image, never mention \
"the feedback"."""

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S | re.I)


class Secret:
    """A string that does not show itself: repr/str print ``'***'``; use :meth:`reveal`."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value or ""

    def reveal(self) -> str:
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the secret replaced by ``***``."""
        return text.replace(self._value, "***") if len(self._value) >= 4 else text

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # pickling would copy the key into places we do not control
        raise TypeError("Secret cannot be pickled")


def _first_env(names: Iterable[str], env: Mapping[str, str]) -> str | None:
    for name in names:
        value = env.get(name)
        if value:
            return value
    return None


@dataclass(frozen=True)
class OpenAIConfig:
    """Endpoint, model and behaviour of :class:`OpenAIConverter`.

    ``backoff`` is the first retry's wait in seconds; it doubles per retry up to ``backoff_max``.
    ``json_mode`` sends ``response_format={"type": "json_object"}``; turn it off for servers that
    reject the parameter (the output is checked either way).
    ``yes_no`` / ``what_how``: how many questions of each kind the model is asked for per feedback.
    """

    model: str
    base_url: str | None = None
    api_key: Secret = field(default_factory=lambda: Secret(None), repr=False)
    timeout: float = 60.0
    max_retries: int = 4
    backoff: float = 1.0
    backoff_max: float = 30.0
    concurrency: int = 4
    temperature: float = 0.0
    max_tokens: int = 1024
    json_mode: bool = True
    yes_no: int = 2
    what_how: int = 2
    #: Stop the run after this many feedbacks in a row got no answer at all (endpoint down);
    #: 0 never stops. Nothing is lost: unanswered requests are not cached, a re-run resumes.
    give_up_after: int = 20

    def __post_init__(self) -> None:
        if not isinstance(self.api_key, Secret):
            object.__setattr__(self, "api_key", Secret(self.api_key))
        if not self.model:
            raise ConversionError(f"no model given: pass one or set {ENV_MODEL[0]}")
        if self.concurrency < 1 or self.max_retries < 0 or self.timeout <= 0:
            raise ConversionError("concurrency must be >= 1, max_retries >= 0 and timeout > 0")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> OpenAIConfig:
        """Base URL, model and key from the environment; ``overrides`` (not ``None``) win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {
            "base_url": _first_env(ENV_BASE_URL, env),
            "model": _first_env(ENV_MODEL, env) or "",
            "api_key": Secret(_first_env(ENV_API_KEY, env)),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class OpenAIConverter(Converter):
    """LLM-backed converter; see the module docstring for its guarantees.

    ``cache``: a path to a SQLite file, a :class:`ResponseCache`, or ``None`` for no cache.
    ``retry_rejected``: re-ask the model when the cached answer fails validation (by default a
    cached answer is final, so re-runs cost nothing even for outputs that were rejected).
    """

    name = "openai"

    def __init__(
        self,
        config: OpenAIConfig,
        cache: ResponseCache | str | os.PathLike[str] | None = None,
        kinds: Iterable[str] = KINDS,
        seed: int = 0,
        retry_rejected: bool = False,
    ) -> None:
        super().__init__(kinds, seed)
        self.config = config
        self.cache = ResponseCache(cache) if isinstance(cache, (str, os.PathLike)) else cache
        self.retry_rejected = retry_rejected
        self._client: Any = None
        self._jitter = random.Random(seed)
        self._streak = 0  # feedbacks in a row without any answer from the endpoint
        self._lock = threading.Lock()
        self._gave_up = ""  # set once the endpoint is considered down: later calls fail fast

    def __repr__(self) -> str:
        return (f"OpenAIConverter(model={self.config.model!r}, base_url={self.config.base_url!r}, "
                f"cache={self.cache!r})")

    # ------------------------------------------------------------------ prompt

    def messages(self, feedback: Feedback) -> list[dict[str, str]]:
        """The chat messages sent for ``feedback`` (also the cache key's main part)."""
        system = SYSTEM_PROMPT.format(
            schema=json.dumps(RESPONSE_SCHEMA, separators=(",", ":")),
            yes_no=self.config.yes_no,
            what_how=self.config.what_how,
        )
        user = f"Feedback:\n{feedback.text}"
        if feedback.level is not None:
            user += f"\n\nOverall verdict given by the rater: {feedback.level}."
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def request_payload(self, feedback: Feedback) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.config.model,
            "messages": self.messages(feedback),
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
        }
        if self.config.json_mode:
            payload["response_format"] = {"type": "json_object"}
        return payload

    # ------------------------------------------------------------------ transport

    def _get_client(self) -> Any:
        with self._lock:  # worker threads start together: build one client, not one each
            return self._build_client()

    def _build_client(self) -> Any:
        if self._client is None:
            try:
                import openai
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise ConversionError("the openai converter needs `pip install openai`") from exc
            # Local servers usually ignore the key, but the client insists on one.
            self._client = openai.OpenAI(
                api_key=self.config.api_key.reveal() or "unused",
                base_url=self.config.base_url,
                timeout=self.config.timeout,
                max_retries=0,
            )
        return self._client

    def _safe(self, text: str) -> str:
        return self.config.api_key.redact(text)[:300]

    def _complete(self, feedback: Feedback, payload: dict[str, Any]) -> str | None:
        """One answer from the endpoint, with retries; ``None`` if every attempt failed."""
        import openai

        client = self._get_client()
        attempts = self.config.max_retries + 1
        for attempt in range(attempts):
            self.stats.add("requests")
            kind: str
            wait_hint = 0.0
            fatal: str | None = None
            try:
                resp = client.chat.completions.create(**payload)
                content = resp.choices[0].message.content if resp.choices else None
                return content if isinstance(content, str) else ""
            except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
                fatal = f"HTTP {exc.status_code}, {type(exc).__name__}"
                kind = "fatal"
                _release(exc)
            except openai.APITimeoutError:
                kind = "timeout"
            except openai.APIConnectionError:
                kind = "connection"
            except openai.APIStatusError as exc:
                kind = f"http_{exc.status_code}"
                _release(exc)
                if exc.status_code != 429 and exc.status_code < 500:
                    self.stats.count("errors", kind)
                    log.warning("request for %s refused: %s", feedback.id, self._safe(_status_text(exc)))
                    return None
                wait_hint = _retry_after(exc)
            except Exception as exc:  # a broken server answer (bad JSON body...) is this item's problem
                kind = type(exc).__name__
                self.stats.count("errors", kind)
                log.warning("request for %s failed: %s", feedback.id, self._safe(f"{kind}: {exc}"))
                return None
            if fatal is not None:
                # Retrying cannot fix a wrong key, model or URL: stop the whole run. Raised here,
                # outside the except block, so the client's exception (whose request carries the
                # Authorization header) is not chained onto ours.
                self.stats.count("errors", kind)
                raise ConversionError(f"endpoint refused the request ({fatal}): "
                                      "check the base URL, the model name and the API key")
            if attempt + 1 >= attempts:
                self.stats.count("errors", kind)
                log.warning("request for %s failed after %d attempts (%s)", feedback.id, attempts, kind)
                return None
            delay = min(self.config.backoff_max, self.config.backoff * 2**attempt)
            delay = max(wait_hint, delay * (0.5 + 0.5 * self._jitter.random()))
            delay = min(delay, self.config.backoff_max)
            self.stats.add("retries")
            log.info("request for %s: %s, retry %d/%d in %.2f s", feedback.id, kind, attempt + 1,
                     attempts - 1, delay)
            time.sleep(delay)
        return None  # pragma: no cover - the loop always returns

    def _answer(self, feedback: Feedback) -> tuple[dict[str, Any] | None, bool]:
        """The model's parsed answer (``None`` if unusable) and whether the endpoint answered."""
        payload = self.request_payload(feedback)
        key = cache_key(payload)
        if self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None:
                parsed = self._parse(cached)
                if parsed is not None or not self.retry_rejected:
                    self.stats.add("cache_hits")
                    return parsed, True
        if self.cache is not None:
            self.stats.add("cache_misses")
        content = self._complete(feedback, payload)
        if content is None:
            return None, False
        if self.cache is not None:
            self.cache.put(key, self.config.model, content)
        return self._parse(content), True

    # ------------------------------------------------------------------ output checking

    def _reject(self, reason: str, count: bool) -> None:
        if count:
            self.stats.count("rejected", reason)

    def _parse(self, content: str, count: bool = True) -> dict[str, Any] | None:
        """Check ``content`` against :data:`RESPONSE_SCHEMA`; bad items are dropped and counted.

        Returns ``{"yes_no": [(q, "yes"|"no", explanation)], "what_how": [(q, a)],
        "conversation": [(q, a)]}``, or ``None`` when the whole answer is unusable.
        """
        text = content.strip()
        m = _FENCE.match(text)
        if m:  # many models wrap JSON in a markdown fence even when told not to
            text = m.group(1)
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, ValueError):
            self._reject("not_json", count)
            return None
        wanted = [k for k in ("yes_no", "what_how", "conversation") if k in self.kinds]
        if not isinstance(doc, dict) or any(not isinstance(doc.get(k), list) for k in wanted):
            self._reject("bad_schema", count)
            return None

        out: dict[str, Any] = {"yes_no": [], "what_how": [], "conversation": []}
        for item in doc.get("yes_no", []) if "yes_no" in wanted else []:
            qa = self._qa(item, count)
            if qa is None:
                continue
            word = qa[1].strip().lower().rstrip(".!")
            if word not in ("yes", "no"):
                self._reject("bad_yes_no", count)
                continue
            explanation = item.get("explanation")
            explanation = _clean(explanation) if isinstance(explanation, str) else ""
            out["yes_no"].append((qa[0], word, explanation))
        for item in doc.get("what_how", []) if "what_how" in wanted else []:
            qa = self._qa(item, count)
            if qa is not None:
                out["what_how"].append(qa)
        if "conversation" in wanted:
            turns = [self._qa(item, count) for item in doc["conversation"]]
            if turns and all(t is not None for t in turns):
                out["conversation"] = turns
            elif turns:
                # Later turns lean on earlier ones: a dialogue with a hole is dropped whole.
                self._reject("broken_conversation", count)
        if not any(out.values()):
            self._reject("empty_output", count)
            return None
        return out

    def _qa(self, item: Any, count: bool) -> tuple[str, str] | None:
        if not isinstance(item, dict) or not isinstance(item.get("question"), str) or not isinstance(
            item.get("answer"), str
        ):
            self._reject("bad_item", count)
            return None
        q, a = _clean(item["question"]), _clean(item["answer"])
        if not q:
            self._reject("empty_question", count)
            return None
        if not a:
            self._reject("empty_answer", count)
            return None
        return q, a

    # ------------------------------------------------------------------ conversion

    def convert(self, feedback: Feedback) -> list[Record]:
        """Records for one feedback. Raises :class:`ConversionError` only for run-stopping problems
        (refused credentials, unknown model or URL, endpoint down); bad output is counted instead."""
        llm_kinds = [k for k in self.kinds if k != "pathway"]
        if llm_kinds and self._gave_up:
            raise ConversionError(self._gave_up)
        self.stats.add("feedbacks")
        rng = random.Random(f"{self.seed}:{feedback.id}")
        meta = {"source": feedback.id, "converter": self.name}
        records: list[Record] = []
        if "pathway" in self.kinds:
            # The pathway answer is the human feedback itself: no model needed, nothing to distort.
            records.append(make_record(f"{feedback.id}/pathway", [(rng.choice(PATHWAY_QUESTIONS), feedback.text)],
                                       feedback.image, {**meta, "task": "pathway"}))
        parsed = None
        if llm_kinds:
            parsed, answered = self._answer(feedback)
            self._note_outcome(answered)
        meta["model"] = self.config.model
        if parsed is not None:
            for i, (q, word, why) in enumerate(parsed["yes_no"]):
                answer = f"{word.capitalize()}. {why}" if why else f"{word.capitalize()}."
                records.append(make_record(f"{feedback.id}/yn{i}", [(q, answer)], feedback.image,
                                           {**meta, "task": "yes_no"}))
            for i, qa in enumerate(parsed["what_how"]):
                records.append(make_record(f"{feedback.id}/wh{i}", [qa], feedback.image, {**meta, "task": "what_how"}))
            if parsed["conversation"]:
                records.append(make_record(f"{feedback.id}/conv", parsed["conversation"], feedback.image,
                                           {**meta, "task": "conversation"}))
        for r in records:
            self.stats.count("records", r.task or "")
        if llm_kinds and parsed is None:
            self.stats.add("failed")
        else:
            self.stats.add("converted")
        return records

    def _note_outcome(self, answered: bool) -> None:
        with self._lock:
            self._streak = 0 if answered else self._streak + 1
            if self.config.give_up_after and self._streak >= self.config.give_up_after and not self._gave_up:
                self._gave_up = (
                    f"{self._streak} feedbacks in a row got no answer from the endpoint "
                    f"(errors so far: {dict(self.stats.errors)}); stopping. Re-run to resume from the cache."
                )
        if self._gave_up:
            raise ConversionError(self._gave_up)

    def convert_many(self, feedbacks: Iterable[Feedback]) -> list[Record]:
        """Convert concurrently (``config.concurrency`` requests in flight), keep input order."""
        items = list(feedbacks)
        results: list[list[Record]] = []
        pool = ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="qplug-convert")
        try:
            futures = [pool.submit(self.convert, fb) for fb in items]
            for fut in futures:
                results.append(fut.result())  # a ConversionError stops the run here
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return self._balance([r for rs in results for r in rs])

    def with_config(self, **changes: Any) -> OpenAIConverter:
        """A converter sharing this one's cache, with some config fields changed."""
        return OpenAIConverter(replace(self.config, **changes), self.cache, self.kinds, self.seed, self.retry_rejected)

    def __enter__(self) -> OpenAIConverter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections and the cache file."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.cache is not None:
            self.cache.close()


def _clean(text: str) -> str:
    # The record validator rejects image markers outside the first question; a model may echo them.
    return " ".join(text.replace(MPLUG_MARKER, " ").replace(IMAGE_MARKER, " ").split())


def _release(exc: Any) -> None:
    # The error's response keeps its connection checked out until closed; close it now rather
    # than whenever the exception happens to be collected.
    try:
        exc.response.close()
    except Exception:  # best effort: nothing to do if it is already gone
        pass


def _status_text(exc: Any) -> str:
    return f"HTTP {getattr(exc, 'status_code', '?')} {type(exc).__name__}: {exc}"


def _retry_after(exc: Any) -> float:
    """Seconds asked by a ``Retry-After`` header (429/503), else 0."""
    try:
        value = exc.response.headers.get("retry-after")
        return max(0.0, float(value)) if value else 0.0
    except (AttributeError, TypeError, ValueError):
        return 0.0
