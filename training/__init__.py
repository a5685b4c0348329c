"""Training recipes for qplug models: Q-Instruct data, LoRA and full fine-tuning, evaluation.

- :mod:`training.data`: LLaVA-format records, validation, Q-Pathway → Q-Instruct converters, mixing.
- :mod:`training.corpus`: qplug's own corpus of real photos with synthetic distortions.
- :mod:`training.train` (``qplug-train RECIPE``), :mod:`training.recipe`, :mod:`training.modeling`,
  :mod:`training.dataset`, :mod:`training.checkpoint`, :mod:`training.export`: the trainer.
- :mod:`training.evaluate` (``qplug-eval``): A1 multiple choice, A3 SRCC/PLCC, description checks.

See ``training/README.md``.
"""
