"""Figures for any qplug model directory on a corpus' validation set, beside classical baselines.

Every figure is measured on ``CORPUS/eval`` (photos never trained on; ``qplug_training.corpus.build
--eval-set`` writes it), one module per figure family:

- :mod:`.assessment` (1): Spearman of each scorer against severity within (crop, type) groups and
  pooled per type, pristine-above-distorted pair accuracy, SRCC/PLCC against pseudo-MOS; the scorers
  are the model's ``qalign`` value and the baselines of :mod:`.assessors` and :mod:`.brisque`;
- :mod:`.perception` (2): yes/no and multiple-choice accuracy through qplug's asker prompts;
- :mod:`.description` (3): do greedy descriptions name the main distortion, is their verdict right;
- :mod:`.video` (4): pooled scores against VMAF along an x264 CRF ladder;
- :mod:`.speed` (5): ``qplug score`` frames/s on 1080p, and the model alone in ms/frame;
- :mod:`.generalisation` (0): training photos against unseen photos of the same corpus;
- :mod:`.report`: the Markdown tables, PASS/MISS against :data:`~.common.TARGETS`.

:func:`evaluate_model` runs what :class:`EvalOptions` asks for and :func:`write_report` writes
``eval.json``, ``eval.md`` and ``items.jsonl``; :func:`run` does both and prints the tables. The
command line is ``bench/eval_default_model.py`` (its options are :class:`EvalOptions`' fields)::

    from qplug_training.evaluation import EvalOptions, run
    run(EvalOptions(model="plugins/qplug_vlm/default_model", corpus=Path("/work/corpus"), limit=50,
                    skip_video=True, skip_speed=True, out=Path("eval")))
"""

from __future__ import annotations

from .common import TARGETS
from .options import EvalOptions
from .report import markdown
from .run import REPORT_FILES, evaluate_model, run, write_report

__all__ = ["EvalOptions", "REPORT_FILES", "TARGETS", "evaluate_model", "markdown", "run", "write_report"]
