"""Training recipes for qplug models: Q-Instruct data, LoRA and full fine-tuning, evaluation.

Installed as ``qplug_training`` (the repository's ``training/`` folder), so that it never collides
with another distribution's top-level ``training`` package.

- :mod:`qplug_training.data`: LLaVA-format records, validation, Q-Pathway → Q-Instruct converters, mixing.
- :mod:`qplug_training.corpus`: qplug's own corpus of real photos with synthetic distortions.
- :mod:`qplug_training.train` (``qplug-train RECIPE``), :mod:`qplug_training.recipe`,
  :mod:`qplug_training.modeling`, :mod:`qplug_training.dataset`, :mod:`qplug_training.checkpoint`,
  :mod:`qplug_training.export`: the trainer.
- :mod:`qplug_training.evaluate` (``qplug-eval``): A1 multiple choice, A3 SRCC/PLCC, description checks.
- :mod:`qplug_training.evaluation`: the default model's figures on a corpus' validation set, beside
  classical baselines (``bench/eval_default_model.py`` is its command line).

What training shares with scoring comes from the ``qplug_vlm`` plugin's public modules only:
:mod:`qplug_vlm.prompts` (every prompt and level word) and :mod:`qplug_vlm.configuration` (the chat
template, the tokenizer corpus and the LLaVA config builders); training never imports qplug_vlm's
test helpers (``qplug_vlm.testing``).

See ``training/README.md``.
"""
