"""More ways to ask: the wordings, option synonyms and option sets the corpus questions draw from.

v0.4 answered only the wordings it was trained on ("Can you see noise or grain in this picture?"
right 33% of the time, "What is the most obvious problem with this picture?" 14%). With
:class:`.questions.QuestionWriter`'s ``paraphrase_share`` above 0, a share of the questions come from
the pools here instead: many wordings per question, wordings that ask the opposite ("Is this image
sharp?", answered the other way), synonyms for every option ("underexposure", "too dark", "dim"...),
2 to 6 options in random order, and "none of these" options that are right when the real problem
is not offered.

Never used here: :mod:`.heldout`, the paraphrase set kept for evaluation
(tests/test_corpus_phrasing.py checks that no held-out wording appears in any training pool).
"""

from __future__ import annotations

from typing import Final

#: Yes/no wordings per kind that ask "is this defect there?" (yes = the defect is visible).
YES_NO: Final[dict[str, tuple[str, ...]]] = {
    "blur": ("Is the picture blurred?", "Does the photo look out of focus?", "Is there any blur in this photo?",
             "Can you see blur in this image?", "Do the details of this image look smeared?",
             "Is the image lacking sharpness?", "Does this picture look unfocused?", "Is this photo soft?"),
    "noise": ("Is there noise in the picture?", "Can you see speckles in this image?",
              "Does this photo contain visible noise?", "Is the image speckled with noise?",
              "Do you notice noise in this photo?", "Is this picture grainy?", "Is there graininess in this image?"),
    "compression": ("Do you see compression artifacts in this picture?", "Is this image blocky?",
                    "Does the photo show JPEG artifacts?", "Are there blocking or ringing artifacts in this picture?",
                    "Has the picture lost detail to compression?", "Is the image over-compressed?"),
    "low_resolution": ("Is the picture low-resolution?", "Does this photo look enlarged from a small image?",
                       "Are individual pixels visible in this image?", "Is the resolution of this image too low?",
                       "Is this photo pixelated?"),
    "underexposure": ("Is the photo too dark?", "Is this picture dim?", "Is the image darker than it should be?",
                      "Are the shadows crushed in this image?", "Is this photo underexposed?",
                      "Does the picture look too dark?", "Is there too little light in this image?"),
    "overexposure": ("Is the photo too bright?", "Is this picture overexposed?", "Are parts of this image blown out?",
                     "Is the image brighter than it should be?", "Does this photo look overexposed?",
                     "Is there too much light in this image?", "Are the highlights of this photo clipped?"),
    "low_contrast": ("Does the picture lack contrast?", "Is this photo low in contrast?",
                     "Does the image look hazy or washed out?", "Is the contrast of this picture too low?",
                     "Does this photo look dull and flat?"),
    "colour": ("Do the colours look wrong in this picture?", "Does the photo have unnatural colours?",
               "Is the colour of this image off?", "Are the colours of this photo distorted?",
               "Do the colors of this image look wrong?", "Are the colours faded, garish or tinted?"),
    "banding": ("Can you see banding in the gradients?", "Are there visible steps in the smooth areas of this image?",
                "Do the gradients of this picture show contour lines?", "Is there posterisation in this picture?",
                "Does this photo show colour banding?"),
}

#: Wordings that ask the opposite ("is it fine in this respect?"): yes = the defect is *not* visible.
YES_NO_INVERTED: Final[dict[str, tuple[str, ...]]] = {
    "blur": ("Is the picture crisp?", "Is this photo in focus?", "Are the fine details of this image crisp?"),
    "noise": ("Is the picture free of noise?", "Are the flat areas of this photo clean?"),
    "compression": ("Is this picture free of compression artifacts?", "Is the photo free of blocking?"),
    "underexposure": ("Is this picture bright enough?",),
    "overexposure": ("Are the highlights of this picture intact?",),
    "low_contrast": ("Does this picture have strong contrast?",),
    "colour": ("Do the colours of this picture look natural?",),
    "banding": ("Are the gradients of this picture smooth?",),
}

#: Answers to an inverted question when the image is fine in that respect.
INVERTED_YES: Final[dict[str, tuple[str, ...]]] = {
    "blur": ("Yes, the image is sharp.", "Yes, the details are crisp and in focus."),
    "noise": ("Yes, there is no visible noise.", "Yes, the image is clean."),
    "compression": ("Yes, there are no visible compression artifacts.",),
    "low_resolution": ("Yes, the image is not pixelated.", "Yes, the resolution is fine."),
    "underexposure": ("Yes, the image is not too dark.",),
    "overexposure": ("Yes, the highlights are not blown out.",),
    "low_contrast": ("Yes, the contrast is fine.",),
    "colour": ("Yes, the colours look natural.",),
    "banding": ("Yes, the gradients are smooth, without banding.",),
}

#: Multiple-choice stems for "which distortion is the main one".
MCQ_STEMS: Final[tuple[str, ...]] = (
    "Which problem does this image have?", "What is wrong with this picture?",
    "Which of these best describes the main flaw of the image?", "Pick the main defect of this photo.",
    "What is the biggest issue with the image quality here?", "Choose the distortion that is most visible.",
    "Which quality issue stands out in this image?", "Which of these describes the image's main problem?",
    "What is the main quality problem?", "Which distortion can you see?", "Which defect does this photo show?",
)

#: Option texts per kind: the canonical one (:data:`.questions.KIND_OPTION`) and synonyms.
OPTION_SYNONYMS: Final[dict[str, tuple[str, ...]]] = {
    "blur": ("blur", "blurriness", "out of focus", "lack of sharpness", "softness", "blurry"),
    "noise": ("noise", "grain", "graininess", "noisy speckles", "image noise", "noisy"),
    "compression": ("compression artifacts", "JPEG artifacts", "blockiness", "compression", "blocky artifacts"),
    "low_resolution": ("low resolution (pixelation)", "pixelation", "low resolution", "upscaling artifacts",
                       "pixelated"),
    "underexposure": ("underexposure", "too dark", "dim", "underexposed", "darkness"),
    "overexposure": ("overexposure", "too bright", "overexposed", "blown-out highlights"),
    "low_contrast": ("low contrast", "lack of contrast", "flat contrast", "washed out", "weak contrast"),
    "colour": ("colour distortion", "wrong colours", "colour problems", "unnatural colours", "color distortion"),
    "banding": ("banding", "posterisation", "colour banding", "false contours"),
}

#: Option texts for "nothing is wrong" (right when no distortion is visible).
NONE_OPTIONS: Final[tuple[str, ...]] = ("no obvious distortion", "no problem", "nothing, it looks fine",
                                        "no visible defect", "no distortion")
#: Option texts for "the real problem is not listed" (right when the main distortion is not offered).
NOT_LISTED_OPTIONS: Final[tuple[str, ...]] = ("none of these", "none of the above", "something else")

#: "What is the main distortion" wordings (free-text answer).
WHAT: Final[tuple[str, ...]] = (
    "What is the biggest flaw of this picture?", "Which defect is most visible in this image?",
    "What spoils this image the most?", "Name the main quality issue of this photo.",
    "What is the main problem of this photo?", "What is wrong with the quality of this image?",
)

#: Description prompts (free text: the pathway feedback is the answer).
DESCRIBE: Final[tuple[str, ...]] = (
    "Describe the quality of this image.", "How does this picture look in terms of quality? Explain.",
    "Give a short assessment of the image quality, naming any distortions.",
    "What can you say about the technical quality of this photo?",
    "Evaluate the sharpness, noise, exposure and colour of this image.", "Comment on the visual quality of this picture.",
    "Describe the low-level quality of this photo.", "Is this a good picture technically? Describe its quality.",
)


def training_wordings() -> set[str]:
    """Every question wording of these pools (for the held-out disjointness check)."""
    out: set[str] = set(MCQ_STEMS) | set(WHAT) | set(DESCRIBE)
    for pool in (YES_NO, YES_NO_INVERTED):
        for wordings in pool.values():
            out.update(wordings)
    return out
