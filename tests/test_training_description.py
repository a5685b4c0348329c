"""The description check of the evaluation (issue 16's "descriptions name the main distortion")."""

from __future__ import annotations

import pytest

from qplug_training.corpus.feedback import GRAIN_AS_CONTENT
from qplug_training.evaluation.description import check_description, named_kinds


@pytest.mark.parametrize("text, kinds", [
    ("The image is badly noisy: even smooth areas are speckled.", {"noise"}),
    ("The image is free of noise. The whole frame is extremely defocused.", {"blur"}),
    ("The image looks upscaled from a low resolution: edges are soft and slightly jagged.", {"low_resolution"}),
    ("The contrast is quite low, and the image looks hazy.", {"low_contrast"}),
    ("The colours look noticeably desaturated, close to grey in places.", {"colour"}),
    ("Smooth gradients break into visible bands.", {"banding"}),
    ("No blocking or ringing is visible. The image is well exposed.", set()),
])
def test_named_kinds(text: str, kinds: set[str]) -> None:
    assert named_kinds(text) == kinds


@pytest.mark.parametrize("sentence", GRAIN_AS_CONTENT)
def test_grain_that_the_corpus_calls_content_is_no_defect(sentence: str) -> None:
    # Grain that belongs to the source is high quality (issue 16): the corpus says so in these words.
    assert named_kinds(f"The image shows a scene. {sentence} The image is well exposed.") == set()
    clean = check_description(f"{sentence} Its overall quality is excellent.", None, "excellent")
    assert clean["names_main"] and clean["named"] == []


def test_grain_as_a_defect_still_counts() -> None:
    assert named_kinds("A noticeable grain appears across the image, worst in the darker parts.") == {"noise"}
    assert named_kinds("Despite the grain, the overall quality of the image is good.") == {"noise"}
    # A sentence about grain as content does not hide a defect named in the next one.
    text = f"{GRAIN_AS_CONTENT[1]} The image is strongly blurred."
    assert named_kinds(text) == {"blur"}
    assert not check_description(text, None, "good")["names_main"]


def test_a_clean_picture_must_still_be_assessed() -> None:
    # An empty or degenerate description does not pass as "no distortion" on a clean image.
    assert not check_description("", None, "excellent")["names_main"]
    assert not check_description("The image shows a scene.", None, "excellent")["names_main"]
    assert check_description("The image is sharp and clean. Its overall quality is good.", None, "good")["names_main"]
