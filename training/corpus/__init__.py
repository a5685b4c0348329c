"""The low-level quality corpus: real photos, synthetic distortions, pseudo-MOS and Q-Instruct text.

- :mod:`.photos`: fetch freely licensed photos (Debian packages, wheels, any folder) into a
  manifest with a deterministic train/validation split by photo; refuses reserved packages.
- :mod:`.crops`: model-sized crops at several scales, native resolution included.
- :mod:`.distortions`: 19 distortions in 8 families, continuous severity in [0, 1].
- :mod:`.quality`: MS-SSIM and the other full-reference terms, pseudo-MOS in [1, 5], levels.
- :mod:`.facts`, :mod:`.feedback`, :mod:`.questions`: what is true about an image, its
  Q-Pathway-style feedback, and the Q-Instruct records (via qplug_training.data's RuleConverter).
- :mod:`.build` (CLI), :mod:`.evalset` (the validation evaluation set), :mod:`.pipeline` (the store, tasks
  and process pool both share), :mod:`.generate` (workers): the builder.
- :mod:`.calibrate` (CLI): the per-type pseudo-MOS table behind the calibration.

Two commands rebuild everything, see docs/corpus.md::

    python -m qplug_training.corpus.photos --out SRC
    python -m qplug_training.corpus.build --photos SRC --out OUT --eval-set
"""

from __future__ import annotations

from .distortions import DISTORTIONS, FAMILIES, KINDS, apply, as_severity, severity_level
from .quality import LEVELS, level_of, measure, ms_ssim, pseudo_mos

__all__ = [
    "DISTORTIONS",
    "FAMILIES",
    "KINDS",
    "LEVELS",
    "apply",
    "as_severity",
    "level_of",
    "measure",
    "ms_ssim",
    "pseudo_mos",
    "severity_level",
]
