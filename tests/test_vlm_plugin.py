"""The ``vlm`` plugin without a model: registration, import cost, methods as data, frame preparation.

These tests need neither torch nor transformers (the backend's own tests are in test_vlm_backend.py).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import qplug_vlm
from qplug.errors import UsageError
from qplug.types import Frame
from qplug_vlm.images import to_pil
from qplug_vlm.prompts import METHODS, mcq_prompt, method


def test_registers_model_components(qplug_host):
    qplug_host.add_plugin(qplug_vlm, name="vlm")
    catalog = qplug_host.catalog()
    assert {"qalign", "qalign-aesthetics", "qbench"} <= set(catalog.scorers)
    assert catalog.scorer("qalign").range == (1.0, 5.0) and catalog.scorer("qbench").range == (0.0, 1.0)
    assert all(catalog.scorer(n).needs_model and not catalog.scorer(n).default
               for n in ("qalign", "qalign-aesthetics", "qbench"))
    assert catalog.describer("vlm").needs_model and catalog.asker("vlm").needs_model
    assert catalog.problems == []


ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(level, module, names) of every import statement of a file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            out.append((node.level, node.module or "", [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((0, a.name, []) for a in node.names)
    return out


def test_prompts_are_one_public_module_that_scoring_and_training_share():
    plugin = ROOT / "plugins" / "qplug_vlm"
    # prompts.py is the bottom of the plugin: pure data, nothing of qplug_vlm or torch below it.
    assert all(level == 0 and module.split(".")[0] in ("__future__", "dataclasses", "qplug")
               for level, module, _ in _imports(plugin / "prompts.py"))
    for name in ("scorers.py", "describer.py", "asker.py", "configuration.py"):
        assert any(level == 1 and module == "prompts" for level, module, _ in _imports(plugin / name)), name
    # Training depends on the plugin's public modules only: never its test helpers or private names.
    for path in (ROOT / "training").rglob("*.py"):
        for _, module, names in _imports(path):
            if module.split(".")[0] == "qplug_vlm":
                assert module != "qplug_vlm.testing" and not any(part.startswith("_") for part in module.split(".")), \
                    (path, module)
                assert not any(n.startswith("_") for n in names), (path, module, names)
    from qplug_training.corpus import questions

    assert (questions.QALIGN_QUESTION, questions.QALIGN_PREFIX) == METHODS["qalign"].prompt("quality", "image")


def test_production_configuration_is_apart_from_the_tiny_test_models():
    from qplug_vlm import configuration, testing

    # testing builds from the production pieces; it does not define its own.
    assert testing.LLAVA_TEMPLATE is configuration.LLAVA_TEMPLATE and testing.LlavaSize is configuration.LlavaSize
    assert testing.TINY_LLAVA.initializer_range == 0.2 and configuration.LlavaSize().initializer_range == 0.02
    corpus = "\n".join(configuration.tokenizer_corpus())
    assert all(word in corpus for m in METHODS.values() for s in (m.levels, *m.synonyms) for word in s.words)
    assert not any(level == 1 and module == "testing"
                   for level, module, _ in _imports(ROOT / "plugins" / "qplug_vlm" / "configuration.py"))


def test_import_does_not_load_torch():
    code = ("import sys, qplug_vlm; heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_methods_are_data_with_templated_prompts():
    question, prefix = METHODS["qalign"].prompt("aesthetics", "video")
    assert question == "How would you rate the aesthetics of this video?"
    assert prefix == "The aesthetics of the video is"
    assert METHODS["qbench"].prompt() == ("Rate the quality of the image.", "The quality of the image is")
    assert [len(s.words) for s in METHODS["qbench"].level_sets(synonyms=True)] == [3, 3, 3]
    with pytest.raises(UsageError, match="synonyms=True works with: qbench"):
        METHODS["qalign"].level_sets(synonyms=True)
    with pytest.raises(UsageError, match="aspect='sharpness'"):
        METHODS["qalign"].prompt("sharpness")
    with pytest.raises(UsageError, match="unknown scoring method"):
        method("mos")


def test_mcq_prompt_letters_options():
    text = mcq_prompt("Is it blurry? ", ("yes", "no"))
    assert text == "Is it blurry?\nA. yes\nB. no\nAnswer with the option's letter from the given choices directly."


def test_large_frames_are_shrunk_and_padding_is_optional():
    frame = Frame.from_rgb(np.zeros((100, 3000, 3), dtype=np.uint8))
    image = to_pil(frame, max_side=2048)
    assert image.size == (2048, 68) and image.mode == "RGB"
    padded = to_pil(frame, max_side=300, pad_fill=(1, 2, 3))
    assert padded.size == (300, 300)
    assert padded.getpixel((0, 0)) == (1, 2, 3) and padded.getpixel((150, 150)) == (0, 0, 0)
    assert to_pil(frame, max_side=None).size == (3000, 100)
    assert to_pil(frame, max_side=2048) is image  # converted once per frame, shared by every component
    frame.cache.clear()  # what Frame.release() frees
    assert to_pil(frame, max_side=2048) is not image
