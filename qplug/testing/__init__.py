"""Plugin-author kit: synthetic frames, test hosts, fixtures and conformance tests for qplug plugins.

- :mod:`qplug.testing.frames`: seeded synthetic frames and degraded variants (pure numpy).
- :mod:`qplug.testing.conformance`: ``ScorerConformance``, ``DescriberConformance``,
  ``SourceConformance`` and ``WriterConformance`` base classes to inherit in a test module.
- :mod:`qplug.testing.harness`: ``make_host`` and ``run_plugin`` (a whole run around one plugin).
- :mod:`qplug.testing.synth`: a ``.qsynth`` source of synthetic clips, so runs need no media files.
- :mod:`qplug.testing.pytest_plugin`: the fixtures (``qplug_host``, ``qplug_frames``...), loaded
  automatically by pytest through the ``pytest11`` entry point.

This package is imported whenever pytest starts in an environment with qplug, so it imports
nothing itself; import the submodule you need.
"""
