"""The tokenizer and the chat template of a FastVLM checkpoint, without transformers.

:class:`Tokenizer` wraps ``tokenizers.Tokenizer.from_file(tokenizer.json)`` (the same Rust tokenizer
transformers' ``TokenizersBackend`` runs) with the special tokens of ``tokenizer_config.json`` and the
calls qplug makes of a transformers tokenizer: ``tokenizer(text, add_special_tokens=...)["input_ids"]``,
``decode``, ``batch_decode``, ``convert_ids_to_tokens`` and the ``*_token`` / ``*_token_id`` attributes.

:class:`ChatTemplate` renders the checkpoint's Jinja chat template the way transformers' processors do
(``apply_chat_template``): a sandboxed environment with ``trim_blocks`` and ``lstrip_blocks``, loop
controls, the ``{% generation %}`` block (rendered as its body), ``raise_exception``, ``tojson`` and
``strftime_now``; the tokenizer's special tokens (``bos_token``...) as variables; and
``continue_final_message`` cut after the final message's text, trailing spaces included when the
template keeps them.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

from .config import TokenSpec, Unsupported

__all__ = ["Tokenizer", "ChatTemplate"]

_CONTINUE_TAG = "CONTINUE_FINAL_MESSAGE_TAG "


class Tokenizer:
    """A ``tokenizer.json`` with the special tokens of ``tokenizer_config.json``.

    :raises Unsupported: when a special token of the config is not a token of the file (transformers
        would add it, changing the vocabulary).
    """

    def __init__(self, path: Path, tokens: TokenSpec) -> None:
        from tokenizers import Tokenizer as RustTokenizer

        self._rust = RustTokenizer.from_file(str(path / "tokenizer.json"))
        self._rust.no_padding()
        self._rust.no_truncation()
        #: qplug pads on the left (every prompt's last token at position -1); :meth:`pad` does it.
        self.padding_side = "left"
        self.bos_token, self.eos_token, self.unk_token = tokens.bos_token, tokens.eos_token, tokens.unk_token
        # As the transformers backend does for a tokenizer without a pad token: pad with the end token.
        self.pad_token = tokens.pad_token if tokens.pad_token is not None else tokens.eos_token
        self.bos_token_id, self.eos_token_id, self.pad_token_id, self.unk_token_id = (
            self._id(t) for t in (self.bos_token, self.eos_token, self.pad_token, self.unk_token))
        for token in tokens.extra_special_tokens:
            self._id(token)
        self._special = {int(i) for i, added in self._rust.get_added_tokens_decoder().items() if added.special}
        self._special |= {i for i in (self.bos_token_id, self.eos_token_id, self.pad_token_id, self.unk_token_id)
                          if i is not None}

    def _id(self, token: str | None) -> int | None:
        if token is None:
            return None
        found = self._rust.token_to_id(token)
        if found is None:
            raise Unsupported(f"the special token {token!r} is not in tokenizer.json")
        return int(found)

    @property
    def special_tokens_map(self) -> dict[str, str]:
        """``bos_token``, ``eos_token``, ``unk_token``, ``pad_token`` (those set): the chat template's variables."""
        named = {"bos_token": self.bos_token, "eos_token": self.eos_token, "unk_token": self.unk_token,
                 "pad_token": self.pad_token}
        return {k: v for k, v in named.items() if v is not None}

    @property
    def all_special_ids(self) -> list[int]:
        return sorted(self._special)

    def __len__(self) -> int:
        return int(self._rust.get_vocab_size(with_added_tokens=True))

    def __call__(self, text: str | Sequence[str], add_special_tokens: bool = True, **_: Any) -> dict[str, Any]:
        """``{"input_ids": ids}`` for one text, or a list of id lists for several (no padding)."""
        if isinstance(text, str):
            return {"input_ids": self.encode(text, add_special_tokens)}
        return {"input_ids": [self.encode(t, add_special_tokens) for t in text]}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self._rust.encode(text, add_special_tokens=add_special_tokens).ids)

    def decode(self, ids: Any, skip_special_tokens: bool = False, **_: Any) -> str:
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        return self._rust.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False, **_: Any) -> list[str]:
        return [self.decode(ids, skip_special_tokens=skip_special_tokens) for ids in sequences]

    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> Any:
        if isinstance(ids, int):
            return self._rust.id_to_token(ids)
        return [self._rust.id_to_token(int(i)) for i in ids]

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> Any:
        if isinstance(tokens, str):
            found = self._rust.token_to_id(tokens)
            return self.unk_token_id if found is None else int(found)
        return [self.convert_tokens_to_ids(t) for t in tokens]

    def pad(self, rows: Sequence[Sequence[int]]) -> tuple[list[list[int]], list[list[int]]]:
        """Left-pad id lists to the longest: (ids, attention mask)."""
        pad = self.pad_token_id
        if pad is None:
            raise ValueError("the tokenizer has neither a pad nor an end-of-sequence token to pad batches")
        width = max(len(r) for r in rows)
        ids = [[pad] * (width - len(r)) + list(r) for r in rows]
        mask = [[0] * (width - len(r)) + [1] * len(r) for r in rows]
        return ids, mask


class ChatTemplate:
    """A Jinja chat template, rendered as transformers renders it (see the module docstring)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._template = _environment().from_string(source)

    def render(self, messages: Sequence[Mapping[str, Any]], special_tokens: Mapping[str, str],
               add_generation_prompt: bool = False, continue_final_message: bool = False, **kwargs: Any) -> str:
        chat = [{k: v for k, v in m.items() if v is not None} for m in _plain(list(messages))]
        final_text = None
        if continue_final_message:
            if not chat or chat[-1].get("content") is None:
                raise ValueError("continue_final_message is set but the final message has no content to continue")
            if "content" not in self.source:
                raise ValueError('continue_final_message is set to "content" but this is not an accepted field in '
                                 "the chat_template")
            content = chat[-1]["content"]
            if isinstance(content, list):
                block = next((b for b in reversed(content) if isinstance(b, dict) and "text" in b), None)
                if block is None:
                    raise ValueError("continue_final_message is set but we could not find any text to continue in "
                                     "the final message!")
                final_text = block["text"]
                block["text"] = block["text"] + _CONTINUE_TAG
            else:
                final_text = content
                chat[-1]["content"] = content + _CONTINUE_TAG
        variables = {**special_tokens, **_plain(kwargs)}
        text = self._template.render(messages=chat, tools=None, documents=None,
                                     add_generation_prompt=add_generation_prompt, **variables)
        if final_text is not None:
            tag = _CONTINUE_TAG.strip()
            if final_text.strip() not in text or tag not in text:
                raise ValueError("continue_final_message is set but the final message does not appear in the chat "
                                 "after applying the chat template")
            at = text.rindex(tag)
            text = text[:at] if text[at:at + len(_CONTINUE_TAG)] == _CONTINUE_TAG else text[:at].rstrip()
        return text


def _plain(value: Any) -> Any:
    """A copy made of JSON types only (what the sandboxed template may see)."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    for kind in (str, bool, int, float):
        if isinstance(value, kind):
            return kind(value)
    return f"<{type(value).__name__}>"


def _environment() -> Any:
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationBlock(Extension):
        """``{% generation %}...{% endgeneration %}``: marks the assistant's text for training masks;
        rendering it gives its body unchanged."""

        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller: Any) -> str:
            return caller()

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                extensions=[GenerationBlock, loopcontrols])
    environment.filters["tojson"] = tojson
    environment.globals["raise_exception"] = raise_exception
    environment.globals["strftime_now"] = lambda format: datetime.now().strftime(format)
    return environment
