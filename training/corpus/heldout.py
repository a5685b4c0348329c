"""The held-out paraphrase set: questions worded unlike any training question, for evaluation only.

Nothing in the corpus builder imports this module: these wordings never reach a training record
(tests/test_corpus_phrasing.py checks every training pool against them, after normalising case and
punctuation). :mod:`qplug_training.evaluation.paraphrase` asks them about the evaluation set's images.

- :data:`YES_NO`: per kind, wordings whose "yes" means the defect is visible;
- :data:`YES_NO_INVERTED`: per kind, wordings whose "yes" means the image is fine in that respect;
- :data:`MCQ_STEMS`: stems for "which is the main problem", asked over :data:`MCQ_OPTIONS` (the option
  set of issue 16's report: blur / noise / compression artifacts / too dark / too bright / low contrast)
  in an order shuffled per question, with "none of these" added for pristine images;
- :data:`DESCRIBE`: description prompts.

:data:`SETS` names them: ``a`` is the set above (written with issue 16); ``b`` (:data:`SET_B`) was
written later, on 2026-12-04, before v5 was evaluated and after v5's broad training lexicon had been
written from v4's failures on ``a``, so that a gain on ``a`` can be checked on words that lexicon was
not written against. It asks its own main-problem options (``out of focus`` ... ``washed out``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

YES_NO: Final[dict[str, tuple[str, ...]]] = {
    "blur": ("Does this picture look blurry to you?", "Would you say the photo is out of focus?",
             "Is the image soft rather than crisp?", "Has this photo lost its sharpness?"),
    "noise": ("Can you see noise or grain in this picture?", "Is the picture speckled with grain?",
              "Would you say this image is noisy?", "Do you notice graininess in this photo?"),
    "compression": ("Does this picture show signs of heavy compression?", "Can you see blocky artifacts in the photo?",
                    "Would you say this image was saved at a low quality setting?"),
    "low_resolution": ("Does this picture look pixelated to you?", "Would you say the image has too few pixels?",
                       "Can you see chunky pixels in this photo?"),
    "underexposure": ("Does this picture look too dark to you?", "Would you say the photo is too dim?",
                      "Is the picture lacking light?"),
    "overexposure": ("Does this picture look too bright to you?", "Would you say the photo got too much light?",
                     "Are the bright parts of this picture washed to white?"),
    "low_contrast": ("Does this picture look flat to you?", "Would you say the contrast is weak in this photo?",
                     "Does the photo look foggy and low in contrast?"),
    "colour": ("Do the colours of this picture look off to you?", "Would you say the colours in this photo are unnatural?",
               "Is the colour balance of this picture wrong?"),
    "banding": ("Can you see stripes of colour in the smooth parts of this picture?",
                "Would you say the gradients in this photo are stepped?"),
}

YES_NO_INVERTED: Final[dict[str, tuple[str, ...]]] = {
    "blur": ("Does this picture look sharp to you?",),
    "noise": ("Would you say this picture is free of grain?",),
    "underexposure": ("Is there enough light in this picture?",),
    "low_contrast": ("Would you say this photo has punchy contrast?",),
}

#: The option set of issue 16's report, per kind.
MCQ_OPTIONS: Final[dict[str, str]] = {
    "blur": "blur", "noise": "noise", "compression": "compression artifacts", "underexposure": "too dark",
    "overexposure": "too bright", "low_contrast": "low contrast",
}
MCQ_NONE: Final[str] = "none of these"

MCQ_STEMS: Final[tuple[str, ...]] = (
    "What is the most obvious problem with this picture?", "Which issue hurts this photo the most?",
    "If you had to name one flaw in this image, which would it be?", "Which of these problems can you see in this picture?",
    "What is the primary defect in this photo?", "Select the flaw that is most apparent in this picture.",
    "Which of the following is the most serious issue in this picture?", "What mainly lowers the quality of this photo?",
    "Which of these words best describes what is wrong with the picture?",
    "Looking at this picture, which problem stands out?", "What would a photographer say is the main fault of this image?",
    "Which degradation dominates this picture?", "Which defect would you fix first in this photo?",
    "What kind of damage does this picture show most?", "Among these options, which affects the picture most?",
)

DESCRIBE: Final[tuple[str, ...]] = (
    "Tell me about the quality of this picture.", "How good is this photo technically? Mention any flaws.",
    "Write a short quality review of this picture.", "What flaws, if any, does this photo have? Describe them.",
    "Assess this picture: is it sharp, clean, well exposed?", "Describe any visual defects you notice in this photo.",
    "Give me your opinion of this picture's image quality.", "Explain what is good or bad about the quality of this photo.",
    "Please review the technical quality of this picture.", "What does the quality of this picture look like to you?",
    "Critique this photo's sharpness, noise, exposure and colours.",
    "Summarise the quality problems of this picture, if there are any.",
    "How would you describe the look of this photo, quality-wise?", "Report on the quality of this picture in a few sentences.",
    "Inspect this photo and describe its quality.",
)


@dataclass(frozen=True)
class HeldoutSet:
    """One set of held-out wordings (the fields are those of set ``a`` above)."""

    yes_no: dict[str, tuple[str, ...]]
    yes_no_inverted: dict[str, tuple[str, ...]]
    mcq_options: dict[str, str]
    mcq_none: str
    mcq_stems: tuple[str, ...]
    describe: tuple[str, ...]
    #: Yes/no questions about quality as a whole: "yes" means the picture is good (``overall_good``)
    #: or that it is poor (``overall_bad``). Sets a-e have none.
    overall_good: tuple[str, ...] = ()
    overall_bad: tuple[str, ...] = ()
    #: Stems asking for a quality level, asked over :attr:`rating_options` (each a scale, best first).
    rating_stems: tuple[str, ...] = ()
    rating_options: tuple[tuple[str, ...], ...] = ()
    #: Level requests about one kind: per kind, (stem, True when the stem names the good attribute,
    #: "How crisp is it?", False when it names the defect, "How grainy is it?"), asked over
    #: :attr:`attribute_quality_options` (good attribute only: each best first) or
    #: :attr:`attribute_amount_options` (either: each most first).
    attribute_stems: dict[str, tuple[tuple[str, bool], ...]] = field(default_factory=dict)
    attribute_quality_options: tuple[tuple[str, ...], ...] = ()
    attribute_amount_options: tuple[tuple[str, ...], ...] = ()
    #: Yes/no questions about exposure that name no direction: "yes" means it is right
    #: (``exposure_right``: "Is this photo well exposed?") or wrong either way (``exposure_wrong``).
    #: Sets a-g have none; :data:`GROUPS` ``exposure`` may also key :attr:`attribute_stems`.
    exposure_right: tuple[str, ...] = ()
    exposure_wrong: tuple[str, ...] = ()

    def questions(self) -> list[str]:
        out: list[str] = []
        for pool in (self.yes_no, self.yes_no_inverted):
            for wordings in pool.values():
                out.extend(wordings)
        return (out + list(self.mcq_stems) + list(self.describe) + list(self.overall_good) + list(self.overall_bad)
                + list(self.rating_stems) + [stem for stems in self.attribute_stems.values() for stem, _ in stems]
                + list(self.exposure_right) + list(self.exposure_wrong))


#: Questions that name a family of kinds and no direction ("Is the exposure right?") ask about all of them.
GROUPS: Final[dict[str, tuple[str, ...]]] = {"exposure": ("underexposure", "overexposure")}


SET_B: Final[HeldoutSet] = HeldoutSet(
    yes_no={
        "blur": ("Is the focus off in this shot?", "Do the details in this image look smeared?",
                 "Is this picture lacking in crispness?"),
        "noise": ("Is there a lot of static in this picture?",
                  "Does this shot look like it was taken at a very high ISO?",
                  "Are there random coloured dots all over this image?"),
        "compression": ("Does this image look like a low-bitrate stream?", "Are there square blocks visible in this shot?",
                        "Has this picture been crushed by compression?"),
        "low_resolution": ("Does this image look like it was upscaled from a tiny version?",
                           "Are the edges in this shot jagged like stairs?", "Is the resolution of this picture too low?"),
        "underexposure": ("Was this shot underexposed?", "Are the shadows too deep to make out detail?",
                          "Was this picture taken in poor light?"),
        "overexposure": ("Was this shot overexposed?", "Are the highlights blown out in this image?",
                         "Are the bright areas of this shot pure white with no detail?"),
        "low_contrast": ("Does this image look washed out?", "Is contrast missing from this picture?",
                         "Do the blacks look grey in this shot?"),
        "colour": ("Is there a colour tint over this image?", "Do the colours in this shot look faded or too strong?",
                   "Is the white balance of this picture off?"),
        "banding": ("Are there visible bands in the gradients of this image?",
                    "Does a smooth area of this shot show steps of colour?"),
    },
    yes_no_inverted={
        "blur": ("Is everything that matters in this shot in focus?",),
        "noise": ("Is there no noise at all in this frame?",),
        "compression": ("Did this picture come through compression without artifacts?",),
        "overexposure": ("Do the bright areas of this picture keep their detail?",),
        "colour": ("Do the colours in this image look natural?",),
    },
    mcq_options={"blur": "out of focus", "noise": "grainy", "compression": "blocky", "underexposure": "underexposed",
                 "overexposure": "overexposed", "low_contrast": "washed out"},
    mcq_none="no problem",
    mcq_stems=("What's wrong with this shot?", "Which of these best describes this image?",
               "Pick the word that fits this picture's main flaw.", "What problem does this image have?",
               "Which label would a QC reviewer put on this frame?", "Choose the main quality issue of this image."),
    describe=("What do you think of this shot?", "Is this image any good? Explain.",
              "Describe this picture's quality for a QC report.", "Rate this image and explain the rating.",
              "What would you tell the photographer about this picture?",
              "Check this frame for defects and report what you find.", "How does this image look?",
              "Give a quality assessment of this shot."),
)

#: Set ``c``: written on 2026-12-05, before the question reader (:mod:`qplug_vlm.reader`) was built or
#: tuned; the reader was tuned looking at sets ``a`` and ``b`` only, so ``c`` is the one that
#: measures it on words nobody looked at while building it.
SET_C: Final[HeldoutSet] = HeldoutSet(
    yes_no={
        "blur": ("Are the edges in this photo fuzzy?", "Did the camera miss focus on this one?",
                 "Does this frame look smeared by camera shake?"),
        "noise": ("Is this frame full of specks?", "Do you spot a sandy texture over this picture?",
                  "Is this image peppered with tiny dots?"),
        "compression": ("Does this frame show macroblocking?", "Was this image over-compressed?",
                        "Is this picture spoiled by codec artifacts?"),
        "low_resolution": ("Does this image lack resolution?", "Is this frame a low-res picture blown up to size?",
                           "Do the edges of this image show big visible pixels?"),
        "underexposure": ("Does this photo need more exposure?", "Is this frame murky and dark?",
                          "Did the camera let in too little light for this shot?"),
        "overexposure": ("Are parts of this frame burnt out to white?", "Did this picture get too much exposure?",
                         "Was too much light let into this image?"),
        "low_contrast": ("Does this photo look dull and hazy?",
                         "Are the darks and lights too close together in this picture?", "Does this frame lack punch?"),
        "colour": ("Are the colours of this frame shifted towards one hue?",
                   "Do the greys in this image look tinted?", "Are the colours in this photo drab or oversaturated?"),
        "banding": ("Do the gradients in this frame show contour lines?",
                    "Is the sky or any smooth area of this picture banded?"),
    },
    yes_no_inverted={
        "blur": ("Would you call this frame razor-sharp?", "Are the fine details of this photo crisp and clear?"),
        "noise": ("Is this picture clean, with no speckle?",),
        "compression": ("Is this image free from codec damage?",),
        "low_resolution": ("Does this picture have plenty of resolution?",),
        "underexposure": ("Is this photo lit well enough to see its details?",),
        "overexposure": ("Are the highlights of this image under control?",),
        "low_contrast": ("Does this frame have deep blacks and bright whites?",),
        "colour": ("Are the colours of this shot true to life?",),
        "banding": ("Do the smooth tones of this frame blend without steps?",),
    },
    mcq_options={"blur": "blurry", "noise": "noisy", "compression": "compression blocks", "underexposure": "too dim",
                 "overexposure": "blown highlights", "low_contrast": "flat contrast"},
    mcq_none="looks fine",
    mcq_stems=("What is this frame's biggest quality problem?", "Which flaw applies to this photo?",
               "Name the defect in this image.", "What went wrong with this shot?",
               "Which of these is the trouble with this frame?", "Pick the most fitting quality label for this image."),
    describe=("How is the quality of this frame?", "Is there anything wrong with this photo?",
              "Evaluate this image for a broadcast QC check.", "Comment on the technical side of this frame.",
              "What would you fix in this picture, if anything?", "Would you approve this shot? Say why.",
              "Describe what you see in terms of image quality.", "Give this frame a quality verdict with reasons."),
)

#: Set ``d``: written on 2026-12-06, before the question reader's generic-question reading was built;
#: nobody looked at the reader's or the model's answers to these words while building anything.
SET_D: Final[HeldoutSet] = HeldoutSet(
    yes_no={
        "blur": ("Can you make out fine detail, or is it all soft?", "Is the subject of this frame out of focus?",
                 "Has motion smudged this photo?",
                 # "Yes" means blurred: a fine word negated points at the defect.
                 "Would you say this picture isn't sharp?"),
        "noise": ("Does this frame have a noisy look, like a high-gain camera?", "Is there visible grain in the shadows here?",
                  "Are there speckles across the flat parts of this image?"),
        "compression": ("Do you see blocking from the encoder in this frame?", "Has a low bitrate damaged this picture?",
                        "Are there JPEG blocks in this photo?"),
        "low_resolution": ("Does this frame look stretched from a smaller size?", "Is this picture soft and pixelly from upscaling?",
                           "Are there staircase edges in this image?"),
        "underexposure": ("Is this shot too dark overall?", "Are the shadows of this picture crushed?",
                          "Is this frame dim, as if shot at dusk with no light?"),
        "overexposure": ("Is this shot too bright overall?", "Has the sky in this picture lost its detail to white?",
                         "Are the whites of this frame clipped?"),
        "low_contrast": ("Is this picture milky, as if shot through fog?", "Is the tonal range of this frame compressed?",
                         "Are the blacks in this image lifted to grey?"),
        "colour": ("Is there a green or magenta tint in this frame?", "Do skin tones or greys look the wrong colour here?",
                   "Has the saturation of this picture been pushed or pulled too far?"),
        "banding": ("Are there stripes in the smooth gradients of this frame?", "Do the soft tones of this photo break into rings?"),
    },
    yes_no_inverted={
        "blur": ("Is everything in this photo pin-sharp?",),
        "noise": ("Is this frame clean, without grain?", "Does this frame look noise-free?"),
        "compression": ("Does this picture look like a high-bitrate master?",),
        "low_resolution": ("Is this frame full resolution, with crisp pixels?",),
        "underexposure": ("Is the exposure of this shot bright enough?",),
        "overexposure": ("Do the whites of this frame keep texture?",),
        "low_contrast": ("Is there a good spread from black to white in this frame?",),
        "colour": ("Are the colours of this frame neutral and accurate?",),
        "banding": ("Is the sky in this photo a seamless gradient?",),
    },
    mcq_options={"blur": "soft focus", "noise": "speckled", "compression": "codec artifacts", "underexposure": "underlit",
                 "overexposure": "clipped highlights", "low_contrast": "hazy"},
    mcq_none="nothing wrong",
    mcq_stems=("Which issue stands out in this frame?", "What is the main flaw you see here?",
               "Select the defect that best fits this picture.", "Which of these troubles this shot?",
               "If you had to name one flaw in this photo, which would it be?", "What lets this photo down the most?"),
    describe=("Does this picture have any problems?", "Tell me what you think of the image quality here.",
              "Write QC notes for this frame.", "Is this frame fit for broadcast? Explain.",
              "What are the strengths and weaknesses of this photo's quality?", "Any defects in this shot?",
              "Walk me through the technical quality of this image.", "How clean is this picture?"),
)

#: Set ``e``: written on 2026-12-06 after set d's yes/no readings had been looked at (one of its
#: labels was mended then: a negated fine word was filed on the fine side), before the reader's
#: ensemble of heads and its adapted encoder were tried; nobody looked at answers to these words
#: while building anything.
SET_E: Final[HeldoutSet] = HeldoutSet(
    yes_no={
        "blur": ("Is the lens focus soft on this shot?", "Are the outlines in this frame smudgy?",
                 "Does this picture suffer from shake?"),
        "noise": ("Would you call the texture of this frame gritty?", "Does this photo show digital noise in dark regions?",
                  "Is there fizz or snow over this picture?"),
        "compression": ("Is this frame blocky from streaming?", "Are there compression smudges on this photo?",
                        "Did the encoder eat the detail in this picture?"),
        "low_resolution": ("Is this frame blown up from a thumbnail?", "Does this photo look low resolution?",
                           "Are the pixels of this image visible as squares?"),
        "underexposure": ("Is this picture darker than it should be?", "Does this frame look underlit?",
                          "Is detail lost in the blacks of this photo?"),
        "overexposure": ("Is this picture brighter than it should be?", "Are the light areas of this frame clipped?",
                         "Is this photo washed out by too much exposure?"),
        "low_contrast": ("Does this image look foggy and flat?", "Is there too little contrast in this frame?",
                         "Do the shadows and highlights of this photo look alike?"),
        "colour": ("Does this picture have a colour cast?", "Are the hues of this frame unnatural?",
                   "Do the colours of this photo look bleached or garish?"),
        "banding": ("Has this picture been posterised in its smooth areas?", "Can you see bands in the sky of this frame?"),
    },
    yes_no_inverted={
        "blur": ("Is this picture in sharp focus?",),
        "noise": ("Are the flat areas of this frame smooth and clean?",),
        "compression": ("Has this photo escaped any blockiness from encoding?",),
        "low_resolution": ("Does this frame hold full detail, with no upscaling softness?",),
        "underexposure": ("Can you see into the shadows of this picture?",),
        "overexposure": ("Is the brightness of this frame under control?",),
        "low_contrast": ("Does this photo look punchy and contrasty?",),
        "colour": ("Are the colours of this picture right?",),
        "banding": ("Do the gradients of this frame look continuous?",),
    },
    mcq_options={"blur": "unsharp", "noise": "grain", "compression": "blockiness", "underexposure": "dark",
                 "overexposure": "bright", "low_contrast": "dull"},
    mcq_none="none of the above",
    mcq_stems=("Which one fits this frame?", "What is the issue here?", "The main defect of this photo is:",
               "Which problem is most visible in this picture?", "Classify the flaw in this frame.",
               "Which description matches this image's quality problem?"),
    describe=("Is this frame OK to ship?", "Say how this shot holds up technically.",
              "What's your take on this image's quality?", "Does anything spoil this picture?",
              "Give me a QC report on this frame.", "Explain the quality of this photo.",
              "List any visual problems in this picture.", "How would a picture editor judge this frame?"),
)

#: Set ``f``: written on 2026-12-06, before questions about quality as a whole (yes/no and quality
#: levels) were read for the model and before the reader was retrained for them; its defect questions
#: are the clean measure of that retrained reader. Nobody looked at answers to these words first.
SET_F: Final[HeldoutSet] = HeldoutSet(
    yes_no={
        "blur": ("Is the subject of this photo smeared by movement?", "Does this frame look like the focus missed?",
                 "Are fine textures in this picture mushy?"),
        "noise": ("Does this photo look sprinkled with tiny dots?", "Does a grainy haze sit over this frame?",
                  "Is the picture covered in a fine speckle pattern?"),
        "compression": ("Does this photo have the look of an over-compressed JPEG?",
                        "Are there 8x8 blocks in the flat areas of this shot?",
                        "Has a low bitrate left its mark on this frame?"),
        "low_resolution": ("Was this frame enlarged from a much smaller original?",
                           "Do the edges of this photo look like staircases of pixels?", "Is this a low-res image?"),
        "underexposure": ("Is this shot too murky to see well?", "Has this photo been shot with too little exposure?",
                          "Are most of this frame's tones near black?"),
        "overexposure": ("Is the exposure of this photo pushed too far?",
                         "Are parts of this frame burned out to pure white?", "Is this picture overly bright?"),
        "low_contrast": ("Do the darks and lights of this frame sit too close together?", "Is the tonal range of this photo squeezed into greys?",
                         "Does a milky veil cover this picture?"),
        "colour": ("Is there a green or magenta tint over this shot?", "Are the colours in this photo off?",
                   "Does this frame's colour look shifted?"),
        "banding": ("Do you see contour lines in the smooth tones of this photo?",
                    "Is the sky in this frame broken into bands?"),
    },
    yes_no_inverted={
        "blur": ("Is the detail in this frame crisp?",),
        "noise": ("Is this photo free from speckle?",),
        "compression": ("Does this frame look like a clean, high-bitrate encode?",),
        "low_resolution": ("Is this a high-resolution picture?",),
        "underexposure": ("Did this shot get enough exposure?",),
        "overexposure": ("Are the highlights of this photo intact?",),
        "low_contrast": ("Does this frame have rich contrast?",),
        "colour": ("Do the colours of this photo look true to life?",),
        "banding": ("Are the smooth tones of this frame free of steps?",),
    },
    mcq_options={"blur": "soft focus", "noise": "noisy", "compression": "JPEG blocks",
                 "underexposure": "too little light", "overexposure": "too much light", "low_contrast": "flat contrast"},
    mcq_none="looks fine",
    mcq_stems=("Which of these spoils this frame?", "Pick the defect you see in this photo.",
               "Which fault does this shot show?", "Which label fits this picture's main flaw?",
               "Identify the main quality issue in this frame.", "What does this photo suffer from most?"),
    describe=("Review this frame for quality.", "Anything off about this photo's quality?",
              "Walk me through what is good and bad in this shot's image quality.", "What would you flag in this picture, quality-wise?",
              "Inspect this frame and note its defects.", "Write a technical assessment of this photo.",
              "Is this picture clean? Explain.", "Comment on the sharpness, noise and exposure of this frame."),
    overall_good=("Is this photo of decent quality?", "Would this frame pass a quality check?",
                  "Does this picture look professionally clean?", "Is the image quality here acceptable?",
                  "Is this a well-made shot, technically?", "Would you be happy to print this photo?",
                  "Is this frame of broadcast quality?", "Does this image meet a high quality bar?"),
    overall_bad=("Is the quality of this frame poor?", "Does this shot look degraded?", "Is this picture of low quality?",
                 "Would you reject this photo for its quality?", "Is something technically wrong with this frame?",
                 "Does this image look damaged?", "Is this photo too flawed to use?", "Is the picture quality here bad?"),
    rating_stems=("How fine is this frame, quality-wise?", "What quality level would you give this photo?",
                  "Judge the overall quality of this picture.", "How does this shot rate for image quality?",
                  "Grade this frame's technical quality.", "What is your verdict on this photo's quality?",
                  "On a quality scale, where does this picture sit?", "How would you score the quality of this shot?"),
    rating_options=(("excellent", "good", "fair", "poor", "bad"), ("high", "medium", "low"),
                    ("very good", "good", "average", "poor", "very poor"), ("good", "acceptable", "poor"),
                    ("great", "okay", "bad"), ("acceptable", "unacceptable"),
                    ("outstanding", "decent", "mediocre", "terrible")),
)

#: Set ``g``: written on 2026-12-06 before level requests about one kind ("How grainy is this frame?"
#: over high / medium / low) were answered from the model's severity question; it asks only those.
SET_G: Final[HeldoutSet] = HeldoutSet(
    yes_no={}, yes_no_inverted={}, mcq_options={}, mcq_none="", mcq_stems=(), describe=(),
    attribute_stems={
        "blur": (("How well focused is this frame?", True), ("How smeared do the details of this photo look?", False),
                 ("How crisp are the edges in this picture?", True)),
        "noise": (("How speckled does this shot look?", False), ("How heavy is the grain in this frame?", False),
                  ("How smooth and clean are the flat areas of this photo?", True)),
        "compression": (("How visible are the encoding blocks in this picture?", False),
                        ("How faithful is the encode of this frame?", True)),
        "low_resolution": (("How jagged and pixelated does this photo look?", False),
                           ("How much real resolution does this picture have?", True)),
        "underexposure": (("How murky are the tones of this shot?", False), ("How well lit is this frame?", True)),
        "overexposure": (("How burnt out are the bright parts of this photo?", False),
                         ("How well held are the highlights of this picture?", True)),
        "low_contrast": (("How punchy is the contrast of this shot?", True), ("How foggy does this frame look?", False)),
        "colour": (("How true to life are the colours of this photo?", True),
                   ("How tinted does this picture look?", False)),
        "banding": (("How seamless are the gradients of this frame?", True),
                    ("How stepped do the smooth tones of this shot look?", False)),
    },
    attribute_quality_options=(("good", "fair", "poor"), ("excellent", "good", "fair", "poor", "bad"),
                               ("acceptable", "unacceptable")),
    attribute_amount_options=(("high", "medium", "low"), ("very high", "high", "medium", "low", "very low"),
                              ("high", "low")),
)

#: Set ``h``: written on 2026-12-06 (session of stop 35) before questions about exposure without a
#: direction were given a reading of their own; it also asks new wordings of every other part, as the
#: clean measure of the reader that shipped with stop 34. Three of its first wordings ("Is the brightness
#: of this picture wrong?", "How well exposed is this photo?", "How good is the exposure of this
#: frame?") were, up to the picture word, wordings the shipped reader had trained on; they were
#: replaced after its first measurement.
SET_H: Final[HeldoutSet] = HeldoutSet(
    yes_no={
        "blur": ("Is the whole of this image slightly defocused?", "Do the outlines in this photo look fuzzy?",
                 "Does this shot look like it was taken with a shaky hand?"),
        "noise": ("Does this photo look fizzy with noise?", "Are the dark parts of this frame full of coloured specks?",
                  "Does this image have a sandy texture all over it?"),
        "compression": ("Does this frame show the smearing and blockiness of a cheap encode?",
                        "Are there mosquito artifacts around the edges in this photo?",
                        "Does this picture look like it was shared too many times on a messaging app?"),
        "low_resolution": ("Does this shot look like it was scaled up from a tiny image?",
                           "Is the pixel grid visible in this picture?", "Does this photo look like low-definition footage?"),
        "underexposure": ("Is this photo gloomy and hard to make out?", "Does this frame look like it was shot at dusk without enough light?",
                          "Are the shadows in this shot swallowing the detail?"),
        "overexposure": ("Is this frame so bright that detail is lost?", "Does this picture look bleached by too much light?",
                         "Has the sky in this photo turned to blank white?"),
        "low_contrast": ("Does this shot look dull and grey, without punch?", "Are the blacks in this frame lifted to grey?",
                         "Does this picture lack depth between light and dark?"),
        "colour": ("Does this frame have an odd colour tint?", "Do the colours in this photo look wrong?",
                   "Is the colour of this shot unnatural, too strong or too weak?"),
        "banding": ("Does the smooth gradient in this photo look posterised?",
                    "Do you see rings of colour in the soft gradients of this frame?"),
    },
    yes_no_inverted={
        "blur": ("Are the details of this photo in sharp focus?",),
        "noise": ("Is this frame clean, with no visible grain?",),
        "compression": ("Is this picture free of encoding artifacts?",),
        "low_resolution": ("Is this photo at full, native resolution?",),
        "underexposure": ("Does this frame have all the light it needs?",),
        "overexposure": ("Is detail kept in the brightest parts of this photo?",),
        "low_contrast": ("Does this picture have strong blacks and bright whites?",),
        "colour": ("Are the colours in this frame natural?",),
        "banding": ("Do the gradients in this photo blend smoothly?",),
    },
    mcq_options={"blur": "fuzzy", "noise": "speckled", "compression": "encoding artifacts", "underexposure": "too dim",
                 "overexposure": "blown out", "low_contrast": "dull and grey"},
    mcq_none="no visible flaw",
    mcq_stems=("Which of these best names the flaw in this frame?", "What went wrong with this photo?",
               "Which problem does this shot have?", "Choose the main defect of this picture.",
               "What is the biggest quality issue in this frame?", "Which of these describes this photo's main fault?"),
    describe=("How does this frame hold up, quality-wise?", "Give a quality report on this photo.",
              "What do you notice about the image quality of this shot?", "List the technical problems of this picture, if any.",
              "Describe how clean and sharp this frame is.", "Give your judgement of this photo's image quality.",
              "Tell me what a QC reviewer would say about this shot.", "Describe this picture's technical flaws."),
    exposure_right=("Is this photo well exposed?", "Is the exposure of this frame right?", "Is this shot exposed correctly?",
                    "Does this picture have a good exposure?", "Is the brightness of this frame about right?",
                    "Did the camera get the exposure right on this photo?", "Is this image neither too dark nor too bright?",
                    "Is the lighting level of this shot correct?"),
    exposure_wrong=("Is the exposure of this photo off?", "Is this frame badly exposed?", "Is this shot wrongly exposed?",
                    "Has the brightness of this picture been misjudged?", "Did the camera get the exposure wrong on this frame?",
                    "Is this photo either too dark or too bright?", "Does this image have an exposure problem?",
                    "Is the lighting level of this shot wrong?"),
    attribute_stems={"exposure": (("How right does the exposure of this frame look?", True), ("How sound is the exposure of this photo?", True),
                                  ("How far off is the exposure of this shot?", False))},
    attribute_quality_options=(("good", "fair", "poor"), ("excellent", "good", "fair", "poor", "bad"),
                               ("acceptable", "unacceptable")),
    attribute_amount_options=(("high", "medium", "low"), ("a lot", "a little", "not at all")),
)

#: Set ``i``: written on 2026-12-06 (session of stop 36) before any change to the reader's yes/no
#: vocabulary, as the clean measure of that change and of the reader that shipped with stop 35. Its
#: yes/no wordings come at kinds from what a QC reviewer would do about them ("Would this frame need
#: denoising before delivery?", "Would this frame pass a colour check?") as well as from how they look.
SET_I: Final[HeldoutSet] = HeldoutSet(
    yes_no={
        "blur": ("Would this frame need sharpening before delivery?", "Are the small details of this picture melting together?",
                 "Does this shot look like the lens was focused somewhere else?",
                 "Do the objects in this photo leave streaks, as if they moved?"),
        "noise": ("Would this frame need denoising before delivery?", "Is the surface of this photo alive with tiny random specks?",
                  "Are the even areas of this shot mottled?", "Would you call this picture dirty with noise?"),
        "compression": ("Would a higher bitrate have helped this frame?",
                        "Are there little squares showing in the gradients of this photo?",
                        "Has the codec smeared away the texture in this shot?",
                        "Is this picture a victim of aggressive compression?"),
        "low_resolution": ("Is this frame an upscaled standard-definition picture?",
                           "Are the diagonal lines in this photo aliased?",
                           "Was this shot rendered at a lower resolution and scaled up?",
                           "Does this picture look digitally zoomed in too far?"),
        "underexposure": ("Would this frame need brightening before delivery?",
                          "Is this photo so dark that the subject is hard to find?",
                          "Does this shot look like the iris was closed down too far?", "Is this picture sunk in shadow?"),
        "overexposure": ("Would this frame need darkening before delivery?", "Is this photo so bright that it hurts to look at?",
                         "Did the camera open up too much for this shot?",
                         "Has glare wiped out the bright parts of this picture?"),
        "low_contrast": ("Would this frame need more contrast before delivery?",
                         "Does this photo look as if a grey film were laid over it?",
                         "Are the tones in this shot bunched in the middle greys?", "Is this picture lacking any true black?"),
        "colour": ("Would this frame need colour correction before delivery?", "Does this photo look too blue or too orange?",
                   "Are the colours of this shot drained towards grey?",
                   "Do the colours in this picture look cartoonishly strong?"),
        "banding": ("Would this frame need debanding before delivery?",
                    "Do the soft shadings in this photo jump from one tone to the next?",
                    "Does this picture show the stepped look of too low a bit depth?"),
    },
    yes_no_inverted={
        "blur": ("Would this frame pass a focus check?", "Are the edges in this shot well defined?"),
        "noise": ("Would this frame pass without denoising?", "Is the texture of this photo free of random specks?"),
        "compression": ("Does this frame look untouched by the encoder?", "Would this photo pass a compression check?"),
        "low_resolution": ("Is this frame genuinely high definition?", "Does this photo show the detail of a full-size original?"),
        "underexposure": ("Is this frame bright enough to use?", "Are the shadows of this photo open and readable?"),
        "overexposure": ("Would this frame pass a highlight clipping check?", "Is the sky of this photo held without burning out?"),
        "low_contrast": ("Does this photo have snap?", "Do the tones of this shot look rich and deep?"),
        "colour": ("Would this frame pass a colour check?", "Do the greys in this photo look neutral?"),
        "banding": ("Would this frame pass a banding check?", "Does the sky of this photo shade off with no visible steps?"),
    },
    mcq_options={"blur": "soft image", "noise": "static", "compression": "macroblocking", "underexposure": "too murky",
                 "overexposure": "overly bright", "low_contrast": "no contrast"},
    mcq_none="it looks good",
    mcq_stems=("Which fault is most visible in this frame?", "What is this photo's main weakness?",
               "Pick the problem that fits this shot best.", "What would you flag first in this picture?",
               "Which of these hurts this frame the most?", "Name the defect this photo suffers from."),
    describe=("What would you say about the technical quality of this frame?", "Assess the image quality of this photo in a few words.",
              "Is anything wrong with how this shot looks? Explain.", "Jot down QC remarks on this picture.",
              "Give this frame a short quality verdict, with reasons.", "Describe the image quality problems you see here, if any."),
)

#: Set ``j``: written on 2026-12-06 (session of stop 36) after set i's readings by the reader of stop
#: 35 had been looked at and before the change they led to was built: the clean measure of that change.
SET_J: Final[HeldoutSet] = HeldoutSet(
    yes_no={
        "blur": ("Does this photo look like it was taken through a smeared lens?",
                 "Has the detail in this frame been lost to defocus?", "Did the camera wobble while taking this picture?"),
        "noise": ("Is this frame noisy enough to be distracting?", "Does this image have a salt-and-pepper look?",
                  "Are there grainy clumps in the dark areas of this shot?"),
        "compression": ("Does this frame look like a badly streamed video?",
                        "Are compression blocks visible when you look closely at this photo?",
                        "Has this picture lost detail to lossy encoding?"),
        "low_resolution": ("Is the definition of this shot poor, as if it came from an old webcam?",
                           "Do the edges in this picture look jaggy?",
                           "Has this picture been upsized from a low-resolution copy?"),
        "underexposure": ("Is this shot too dark to judge?", "Would you want more light in this photo?",
                          "Is most of this frame lost in darkness?"),
        "overexposure": ("Is this frame too hot, with the whites blown?", "Would you want less light in this photo?",
                         "Does the sunlight in this shot flare the whole picture to white?"),
        "low_contrast": ("Does this picture look like it needs its levels stretched?", "Is the contrast of this frame too soft?",
                         "Does this photo look hazy, like on a smoggy day?"),
        "colour": ("Is the white point of this shot off?", "Do the colours in this frame look sickly?",
                   "Is there too much or too little colour in this photo?"),
        "banding": ("Are there bands where the sky should fade smoothly in this picture?",
                    "Does this frame show posterization in its shadows?"),
    },
    yes_no_inverted={
        "blur": ("Is the focus on the subject spot-on in this frame?",),
        "noise": ("Does this photo look smooth and noiseless?",),
        "compression": ("Does this picture look like a lossless original?",),
        "low_resolution": ("Is this picture sharp down to the pixel, with no upscaling?",),
        "underexposure": ("Is this photo properly bright?",),
        "overexposure": ("Are the whites of this picture textured rather than blank?",),
        "low_contrast": ("Does this frame have deep, solid blacks?",),
        "colour": ("Does this photo's white balance look neutral?",),
        "banding": ("Are the gradients in this shot banding-free?",),
    },
    mcq_options={"blur": "unfocused", "noise": "speckle", "compression": "compression damage", "underexposure": "very dark",
                 "overexposure": "overblown", "low_contrast": "lacks contrast"},
    mcq_none="no issues",
    mcq_stems=("What is the clearest problem in this frame?", "Which issue does this photo have above all?",
               "Which of these drags this shot down most?", "Which of these would a QC check report for this picture?",
               "Point out what most harms this frame.", "Which flaw do you see first in this photo?"),
    describe=("How does this shot fare on image quality?", "Give a brief technical critique of this frame.",
              "What can you say about the sharpness, noise and exposure of this photo?",
              "Review this picture for quality problems.", "What's your take on this frame's image quality?",
              "Say how well this photo holds up, and why."),
)

#: Set ``k``: written on 2026-12-06 (session of stop 37) before anything of this session was built
#: from a reading of the shipped reader or model on any set: the clean measure of whatever changes
#: after it. Checked against the reader's unfiltered training pools (tests/test_training_reader_heldout.py).
SET_K: Final[HeldoutSet] = HeldoutSet(
    yes_no={
        "blur": ("Is the subject in this frame out of focus?", "Does this shot look smeared, as if the camera moved?",
                 "Would a viewer call this picture fuzzy?",
                 "Are fine details like hair or text unreadable because of softness in this photo?"),
        "noise": ("Is there a layer of fizz or specks over this frame?", "Does the sky in this photo crawl with little dots?",
                  "Would you call this image grainy, like a high-ISO shot?",
                  "Is there mottled colour noise in the shadows of this picture?"),
        "compression": ("Do you see blocky squares in the flat areas of this frame?",
                        "Does this image look like an over-compressed JPEG?",
                        "Are there smudgy halos around edges, as from heavy encoding?", "Has a low bitrate spoiled this shot?"),
        "low_resolution": ("Was this picture blown up from a thumbnail?", "Do diagonal lines in this frame show staircase steps?",
                           "Does this photo look like it has far too little resolution?",
                           "Are the pixels of this image visible as little squares?"),
        "underexposure": ("Are the shadows of this frame crushed into black?", "Was this photo shot with too little light?",
                          "Is this picture murky and hard to see?", "Should this shot be brighter?"),
        "overexposure": ("Are the highlights in this frame clipped?", "Does this photo look bleached by too much light?",
                         "Is this picture so bright that detail is gone?", "Should this frame be darker?"),
        "low_contrast": ("Does this picture look milky and dull?", "Are the blacks of this frame greyish and the whites dim?",
                         "Does this shot lack depth between light and dark?", "Is this photo muddy, with everything in mid-grey?"),
        "colour": ("Is there a green or magenta tint over this frame?", "Do the skin tones in this photo look wrong?",
                   "Are the colours of this picture drained?", "Does this shot have a strange colour shift?"),
        "banding": ("Does the gradient in this frame break into visible steps?",
                    "Are there contour lines in the smooth areas of this photo?",
                    "Do you see rings of colour in the sky of this picture?"),
    },
    yes_no_inverted={
        "blur": ("Is every edge in this frame crisp?",),
        "noise": ("Do the plain areas of this photo look smooth and spotless?",),
        "compression": ("Does this picture survive its encoding without visible damage?",),
        "low_resolution": ("Does this image have plenty of fine resolution?",),
        "underexposure": ("Can you see into the shadows of this frame?",),
        "overexposure": ("Do the highlights of this photo keep their detail?",),
        "low_contrast": ("Is there a full range from black to white in this picture?",),
        "colour": ("Do the colours of this frame look true to life?",),
        "banding": ("Do the gradients of this photo fade smoothly?",),
    },
    mcq_options={"blur": "lack of focus", "noise": "sensor noise", "compression": "blockiness",
                 "underexposure": "dark exposure", "overexposure": "clipped highlights", "low_contrast": "flatness"},
    mcq_none="looks fine",
    mcq_stems=("Which of these ruins this frame most?", "Which defect is strongest in this photo?",
               "What would you fix first in this shot?", "Which problem stands out in this picture?",
               "Pick the main fault of this frame.", "What is chiefly wrong with this image?"),
    describe=("Tell me about the technical quality of this frame.", "Assess this photo's quality in a few sentences.",
              "What do you notice about how this shot was captured and encoded?", "Write a short QC report for this picture.",
              "Give me your verdict on how well this photo was shot and processed.", "Sum up the strengths and flaws of this frame's image."),
)

#: Set ``l``: written on 2026-12-06 (session of stop 37) right after set k's first figures and before
#: any of set k's readings were looked at: set k is then used to choose a change, set l measures it.
SET_L: Final[HeldoutSet] = HeldoutSet(
    yes_no={
        "blur": ("Does this shot look like the autofocus missed?", "Is this picture lacking crispness?",
                 "Did motion smear this photo?", "Do the outlines in this frame look doubled or dragged?"),
        "noise": ("Is there a fine sandy texture over this shot that shouldn't be there?",
                  "Does this frame look like it was filmed in the dark at high gain?",
                  "Are there random coloured dots across this photo?", "Is this picture peppered with noise?"),
        "compression": ("Do you see mosquito noise around the edges of this frame?",
                        "Does this picture look like it was squeezed to a tiny file size?",
                        "Are there 8x8 tiles visible in this photo?", "Has streaming compression chewed up this shot?"),
        "low_resolution": ("Does this frame look like a stretched low-res video?",
                           "Is the detail in this photo limited by a low pixel count?",
                           "Do the edges of this picture show aliasing?", "Does this shot look like a small image scaled up?"),
        "underexposure": ("Is this frame too gloomy?", "Does this picture need its exposure raised?",
                          "Is the subject of this photo hidden in shadow because the shot is too dark?",
                          "Was this shot underexposed by a few stops?"),
        "overexposure": ("Is the sky in this frame burnt out?", "Is this picture glaringly bright?",
                         "Does this shot need its exposure pulled down?",
                         "Are large parts of this photo pure white with no detail?"),
        "low_contrast": ("Does this frame look veiled, as if through fog?", "Are the tones of this picture all squashed together?",
                         "Does this photo lack pop?", "Is the dynamic range of this shot compressed into greys?"),
        "colour": ("Is this frame too blue or too orange?", "Does this photo look oddly tinted?",
                   "Are the colours of this picture oversaturated or faded?", "Is the colour grading of this shot off?"),
        "banding": ("Are there hard steps in the gradients of this frame?",
                    "Does the smooth background of this photo show stripes?", "Is there contouring in the sky of this picture?"),
    },
    yes_no_inverted={
        "blur": ("Are the details of this shot pin-sharp?",),
        "noise": ("Is this frame free of speckles?",),
        "compression": ("Does this photo look like a high-bitrate master?",),
        "low_resolution": ("Does this picture have crisp, native-resolution detail?",),
        "underexposure": ("Is this frame bright enough to see everything?",),
        "overexposure": ("Are the bright parts of this shot still detailed?",),
        "low_contrast": ("Does this photo have rich contrast?",),
        "colour": ("Are the colours in this shot faithful?",),
        "banding": ("Is the sky in this frame a smooth gradient?",),
    },
    mcq_options={"blur": "softness", "noise": "grain", "compression": "compression blocks",
                 "underexposure": "too gloomy", "overexposure": "burnt-out highlights", "low_contrast": "haze"},
    mcq_none="no defect",
    mcq_stems=("Which of these is this frame's worst defect?", "What hurts this photo most?",
               "Which issue would you report for this shot?", "Choose what is wrong with this picture.",
               "Which problem is the most severe in this frame?", "What is the primary issue with this image?"),
    describe=("How good is the image quality of this frame, and why?", "Critique this photo's technical quality.",
              "Write a QC note about this shot.", "Explain any quality issues in this picture.",
              "What is your quality assessment of this frame?", "Describe the image quality of this photo in detail."),
)

SETS: Final[dict[str, HeldoutSet]] = {
    "a": HeldoutSet(YES_NO, YES_NO_INVERTED, MCQ_OPTIONS, MCQ_NONE, MCQ_STEMS, DESCRIBE),
    "b": SET_B,
    "c": SET_C,
    "d": SET_D,
    "e": SET_E,
    "f": SET_F,
    "g": SET_G,
    "h": SET_H,
    "i": SET_I,
    "j": SET_J,
    "k": SET_K,
    "l": SET_L,
}


def all_questions() -> list[str]:
    """Every held-out wording of every set (yes/no, inverted yes/no, MCQ stems, description prompts)."""
    return [q for held in SETS.values() for q in held.questions()]


def normalise(text: str) -> str:
    """Lower case, letters and digits only, single spaces: how wordings are compared."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())
