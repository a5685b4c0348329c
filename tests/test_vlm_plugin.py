"""The ``vlm`` plugin without a model: registration, import cost, methods as data, frame preparation.

These tests need neither torch nor transformers (the backend's own tests are in test_vlm_backend.py).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import qplug_vlm
from qplug.errors import UsageError
from qplug.types import Frame
from qplug_vlm.images import to_pil
from qplug_vlm.methods import METHODS, mcq_prompt, method


def test_registers_model_components(qplug_host):
    qplug_host.add_plugin(qplug_vlm, name="vlm")
    catalog = qplug_host.catalog()
    assert {"qalign", "qalign-aesthetics", "qbench"} <= set(catalog.scorers)
    assert catalog.scorer("qalign").range == (1.0, 5.0) and catalog.scorer("qbench").range == (0.0, 1.0)
    assert all(catalog.scorer(n).needs_model and not catalog.scorer(n).default
               for n in ("qalign", "qalign-aesthetics", "qbench"))
    assert catalog.describer("vlm").needs_model and catalog.asker("vlm").needs_model
    assert catalog.problems == []


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
