"""Conformance tests a plugin author inherits: the contract of each component, checked in one line.

In your plugin's test module::

    import my_plugin
    from qplug.testing.conformance import ScorerConformance

    class TestSharpness(ScorerConformance):
        plugin = my_plugin              # the module (or object) holding your hook implementations
        scorer_name = "mine.sharpness"
        direction_check = "blur"        # opt in: a blurred frame must score worse than a sharp one

pytest then runs every ``test_*`` method of the base class against your component. The base
classes are not named ``Test*``, so importing them does not run them on their own. Each check is
a separate test whose name says which rule failed; override a method with ``pytest.skip`` when a
rule does not apply to your component, and say why.

Components are built and fed synthetic frames (:mod:`qplug.testing.frames`); no file, network or
accelerator is needed unless your component needs one. Network access is blocked during these
tests unless the class sets ``allow_network = True``.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import types
from typing import Any, ClassVar, Mapping, Sequence

import pytest

from qplug.errors import InputError, PluginError
from qplug.plugins import PluginHost
from qplug.pooling import Pooler
from qplug.registry import AskerInfo, DescriberInfo, ScorerInfo, SourceInfo, WriterContext, WriterInfo, resolve
from qplug.types import (Answer, ErrorRecord, Event, Frame, FrameResult, MediaInfo, RunSummary, Sampling, Score,
                         SourceSummary)

from . import frames as synthetic
from .harness import make_host, plugin_name, run_plugin
from .network import block_network
from .synth import write_synth

__all__ = ["AskerConformance", "DescriberConformance", "ScorerConformance", "SourceConformance", "WriterConformance", "run_plugin"]

#: Modules a plugin must not import merely by being registered (``qplug plugins`` would pay for them).
HEAVY_MODULES = ("torch", "tensorflow", "jax", "onnxruntime", "transformers", "cv2", "av", "ffmpeg", "PIL.Image")

#: ``direction_check`` value -> the variant that must score worse than the sharp reference.
DIRECTION_VARIANTS = {"blur": "blurred", "noise": "noisy", "jpeg": "jpeg", "underexposure": "underexposed",
                      "overexposure": "overexposed", "black": "black"}


class _Conformance:
    """What every component shares: the plugin registers it, its hooks are real, its factory is lazy."""

    #: the module or object holding the hook implementations (required)
    plugin: ClassVar[object] = None
    #: the name the plugin is registered under in the test host (default: its module name)
    plugin_name: ClassVar[str | None] = None
    #: let the component reach the network during these tests (downloads belong in setup, not tests)
    allow_network: ClassVar[bool] = False
    #: modules that registering the plugin must not import
    heavy_modules: ClassVar[Sequence[str]] = HEAVY_MODULES

    _kind: ClassVar[str] = ""  # catalog table: "scorers", "describers", "askers", "sources", "writers"

    @pytest.fixture(autouse=True)
    def _qplug_conformance_offline(self, monkeypatch: pytest.MonkeyPatch) -> None:
        if not self.allow_network:
            block_network(monkeypatch)

    # -- helpers an author may call or override ------------------------------------------------

    def component_name(self) -> str:
        """The registered name of the component under test."""
        raise NotImplementedError

    def registered_as(self) -> str:
        return self.plugin_name or plugin_name(self.plugin)

    def make_host(self) -> PluginHost:
        """A fresh host holding only the plugin under test."""
        if self.plugin is None:
            pytest.fail(f"{type(self).__name__}: set the class attribute `plugin` to your plugin module or object")
        if not self.component_name():
            pytest.fail(f"{type(self).__name__}: set the class attribute naming the component under test")
        return make_host(self.plugin, names=[self.registered_as()])

    def info(self) -> Any:
        """The record the plugin registered for the component under test (looked up once per class)."""
        cached = type(self).__dict__.get("_qplug_info")
        if cached is not None and cached.name == self.component_name():
            return cached
        catalog = self.make_host().catalog()
        table = getattr(catalog, self._kind)
        name = self.component_name()
        if name not in table:
            found = ", ".join(sorted(table)) or "nothing"
            problems = "; ".join(catalog.problems)
            pytest.fail(f"the plugin did not register {self._kind[:-1]} {name!r} (it registered: {found})"
                        + (f"; problems: {problems}" if problems else ""))
        type(self)._qplug_info = table[name]  # type: ignore[attr-defined]
        return table[name]

    def build(self, *args: Any, **kwargs: Any) -> Any:
        """Resolve the component's factory and call it."""
        return resolve(self.info().factory)(*args, **kwargs)

    # -- the shared rules ------------------------------------------------------------------------

    def test_hooks_are_known(self) -> None:
        """Every hook implementation names a qplug hook (a misspelt one would silently never run)."""
        try:
            self.make_host()
        except PluginError as exc:
            pytest.fail(f"the plugin implements a hook qplug does not have: {exc}")

    def test_plugin_registers_the_component(self) -> None:
        host = self.make_host()
        catalog = host.catalog()
        self.info()
        owner = catalog.owners.get((self._kind, self.component_name()))
        assert owner == self.registered_as(), f"registered by {owner!r}, not by the plugin under test"
        mine = [p for p in catalog.problems if p.startswith(self.registered_as() + ":")]
        assert not mine, f"registration problems: {mine}"

    def test_factory_resolves(self) -> None:
        """The factory is a callable or an importable ``"package.module:attribute"`` path."""
        factory = self.info().factory
        if isinstance(factory, str):
            module, sep, attr = factory.partition(":")
            assert module and sep and attr, f"factory {factory!r} must look like 'package.module:attribute'"
        else:
            assert callable(factory), f"factory {factory!r} is neither an import path nor callable"
        assert callable(resolve(factory))

    def test_registering_does_not_import_the_factory(self) -> None:
        """Registering must stay cheap: the factory's module and heavy libraries load only when used."""
        factory = self.info().factory
        if not isinstance(factory, str):
            pytest.skip("the factory is a callable, not an import path: nothing is deferred")
        if not isinstance(self.plugin, types.ModuleType):
            pytest.skip("the plugin is an object, not a module: cannot re-import it in a fresh interpreter")
        plugin_module = self.plugin.__name__
        factory_module = factory.partition(":")[0]
        if plugin_module == factory_module or plugin_module.startswith(factory_module + "."):
            pytest.skip(f"the factory lives in the plugin module {plugin_module} itself")
        code = (
            "import importlib, json, sys\n"
            "before = set(sys.modules)\n"
            f"plugin = importlib.import_module({plugin_module!r})\n"
            "from qplug.plugins import new_host\n"
            "host = new_host(trace=False)\n"
            "host.add_plugin(plugin, name='under-test')\n"
            "host.catalog()\n"
            f"heavy = [m for m in {tuple(self.heavy_modules)!r} if m in sys.modules and m not in before]\n"
            f"print(json.dumps({{'factory': {factory_module!r} in sys.modules, 'heavy': heavy}}))\n"
        )
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        if done.returncode != 0:
            pytest.fail(f"importing and registering {plugin_module} in a fresh interpreter failed:\n{done.stderr}")
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert not report["factory"], (f"registering imports {factory_module}: import it inside the factory, "
                                       "not at the top of the plugin module")
        assert not report["heavy"], f"registering imports {report['heavy']}: defer them to the factory's module"


def _as_number(value: Any, where: str) -> float | None:
    """A scorer's return value as a float (None stays None); fails the test on anything else."""
    if value is None:
        return None
    if isinstance(value, Score):
        if value.levels:
            total = sum(float(v) for v in value.levels.values())
            assert abs(total - 1.0) < 1e-3, f"{where}: level probabilities sum to {total}, not 1"
            assert all(0.0 <= float(v) <= 1.0 for v in value.levels.values()), f"{where}: a level is outside [0, 1]"
        if value.extra:
            try:
                json.dumps(dict(value.extra), allow_nan=False)
            except (TypeError, ValueError) as exc:
                pytest.fail(f"{where}: Score.extra is not strict JSON: {exc}")
        value = value.value
    if isinstance(value, bool) or not hasattr(value, "__float__"):
        pytest.fail(f"{where}: {value!r} is not a number, a Score or None")
    return float(value)


class ScorerConformance(_Conformance):
    """The contract of a scorer. Set ``plugin`` and ``scorer_name``; the rest is optional."""

    _kind = "scorers"
    #: the registered name of the scorer (required)
    scorer_name: ClassVar[str] = ""
    #: keyword options passed to the factory, as ``qplug.score(..., scorer_options={name: {...}})`` does
    scorer_options: ClassVar[Mapping[str, Any]] = {}
    #: opt-in direction checks: None, or one or several of "blur", "noise", "jpeg", "underexposure",
    #: "overexposure", "black" (the degraded frame must score worse than the sharp one)
    direction_check: ClassVar[str | Sequence[str] | None] = None
    #: how close two computations of the same score must be
    tolerance: ClassVar[float] = 1e-6
    #: size of the synthetic frames (width, height)
    frame_size: ClassVar[tuple[int, int]] = (synthetic.WIDTH, synthetic.HEIGHT)
    #: sizes that must not crash the scorer (returning None or raising InputError is fine)
    tiny_sizes: ClassVar[Sequence[tuple[int, int]]] = ((1, 1), (2, 2))
    #: the inputs a ScorerInfo may declare
    known_inputs: ClassVar[frozenset[str]] = frozenset({"rgb", "luma", "previous", "planes", "reference",
                                                       "reference_path"})
    #: build the scorer once per test class (models load once); False builds one per test
    reuse_scorer: ClassVar[bool] = True

    def component_name(self) -> str:
        return self.scorer_name

    def scorer(self) -> Any:
        """The scorer under test (reset first when temporal, so every test starts a new source)."""
        cls = type(self)
        built = cls.__dict__.get("_qplug_built") if self.reuse_scorer else None
        if built is None:
            built = self.build(**dict(self.scorer_options))
            if self.reuse_scorer:
                cls._qplug_built = built  # type: ignore[attr-defined]
        reset = getattr(built, "reset", None)
        if callable(reset):
            reset()
        return built

    def sample_frames(self) -> list[Frame]:
        """Frames to score: the synthetic variants for a still scorer, a panning clip for a temporal one."""
        width, height = self.frame_size
        if self.info().temporal:
            frames = synthetic.video_frames(8, 25.0, width, height, effects={4: "blurred", 5: "noisy"})
        else:
            frames = synthetic.variants(width, height).as_list()
        return self.with_reference(frames) if self.full_reference() else frames

    def full_reference(self) -> bool:
        """A full-reference scorer reads ``frame.reference`` (see the ``find_reference`` hook)."""
        return "reference" in self.info().inputs

    def with_reference(self, frames: Sequence[Frame], reference: Frame | None = None) -> list[Frame]:
        """Give each frame a reference, as a run with ``--reference`` does: ``reference`` when given,
        else an identical copy of the frame itself (what a lossless encode would be compared with)."""
        for frame in frames:
            if frame.reference is None:
                frame.reference = reference or Frame.from_rgb(frame.rgb.copy(), source_id="reference",
                                                              index=frame.index, pts=frame.pts)
                frame.reference_path = "reference"
        return list(frames)

    def score(self, scorer: Any, frames: Sequence[Frame]) -> list[float | None]:
        """Score in batches of the declared ``batch_size``, as a run does; one number (or None) per frame."""
        if "reference_path" in self.info().inputs:
            pytest.skip("reads the reference file itself: its plugin's own tests cover it with real files")
        if self.full_reference():
            frames = self.with_reference(frames)
        size = self.info().batch_size
        values: list[float | None] = []
        for start in range(0, len(frames), size):
            chunk = list(frames[start:start + size])
            raw = scorer.score(chunk)
            raw = list(raw) if raw is not None else []
            assert len(raw) == len(chunk), f"score() returned {len(raw)} values for {len(chunk)} frames"
            values.extend(_as_number(v, f"frame {f.source_id}#{f.index}") for v, f in zip(raw, chunk))
        return values

    def _close(self, a: float | None, b: float | None) -> bool:
        if a is None or b is None:
            return a is b
        return abs(a - b) <= self.tolerance * max(1.0, abs(a), abs(b))

    # -- rules -------------------------------------------------------------------------------------

    def test_info_is_valid(self) -> None:
        info = self.info()
        assert isinstance(info, ScorerInfo)
        assert info.description.strip() and "\n" not in info.description, "description must be one non-empty line"
        low, high = info.range
        assert not (math.isnan(low) or math.isnan(high)) and low < high, f"range {info.range} must have low < high"
        assert info.batch_size >= 1
        unknown = set(info.inputs) - self.known_inputs
        assert not unknown, f"unknown inputs {sorted(unknown)} (known: {sorted(self.known_inputs)})"
        if info.event_threshold is not None:
            assert low <= info.event_threshold <= high, "event_threshold must lie inside the range"
        assert info.event_min_duration >= 0

    def test_scores_one_value_per_frame(self) -> None:
        frames = self.sample_frames()[:self.info().batch_size]
        raw = self.scorer().score(frames)
        assert raw is not None, "score() returned None instead of a list"
        count, expected = len(list(raw)), len(frames)
        assert count == expected, f"score() returned {count} values for {expected} frames"

    def test_values_are_finite_and_within_range(self) -> None:
        info = self.info()
        values = self.score(self.scorer(), self.sample_frames())
        numbers = [v for v in values if v is not None]
        assert numbers, "every frame scored None"
        low, high = info.range
        slack = self.tolerance * max(1.0, abs(low) if math.isfinite(low) else 1.0, abs(high) if math.isfinite(high) else 1.0)
        for v in numbers:
            assert math.isfinite(v), f"non-finite score {v}"
            assert low - slack <= v <= high + slack, f"score {v} outside the declared range {info.range}"

    def test_batch_equals_one_by_one(self) -> None:
        """Batching is an optimisation: scores must not depend on the company a frame keeps."""
        info = self.info()
        if info.batch_size == 1 and not info.temporal:
            pytest.skip("batch_size is 1: frames are always scored one by one")
        batched = self.score(self.scorer(), self.sample_frames())
        scorer = self.scorer()
        single = [self.score(scorer, [frame])[0] for frame in self.sample_frames()]
        mismatch = [(i, a, b) for i, (a, b) in enumerate(zip(batched, single)) if not self._close(a, b)]
        assert not mismatch, f"batched vs one-by-one scores differ (frame, batched, single): {mismatch}"

    def test_is_deterministic(self) -> None:
        first = self.score(self.scorer(), self.sample_frames())
        second = self.score(self.scorer(), self.sample_frames())
        mismatch = [(i, a, b) for i, (a, b) in enumerate(zip(first, second)) if not self._close(a, b)]
        assert not mismatch, f"two runs over the same frames differ (frame, first, second): {mismatch}"

    def test_does_not_modify_frames(self) -> None:
        frames = self.sample_frames()
        before = [f.rgb.copy() for f in frames]
        self.score(self.scorer(), frames)
        changed = [f.index for f, b in zip(frames, before) if not (f.rgb == b).all()]
        assert not changed, f"the scorer wrote into the pixels of frames {changed}; copy before changing them"

    def test_direction(self) -> None:
        checks = self.direction_check
        if not checks:
            pytest.skip("no direction check: opt in with direction_check = 'blur' (or noise, jpeg, ...)")
        info = self.info()
        if info.temporal:
            pytest.skip("direction checks compare still frames; not meaningful for a temporal scorer")
        names = [checks] if isinstance(checks, str) else list(checks)
        unknown = [n for n in names if n not in DIRECTION_VARIANTS]
        assert not unknown, f"unknown direction_check {unknown} (known: {sorted(DIRECTION_VARIANTS)})"
        width, height = self.frame_size
        frames = synthetic.variants(width, height)
        for name in names:
            scorer = self.scorer()
            reference = self.score(scorer, [frames["sharp"]])[0]
            degraded = self.score(scorer, [frames[DIRECTION_VARIANTS[name]]])[0]
            assert reference is not None and degraded is not None, f"{name}: no score ({reference}, {degraded})"
            assert info.badness(reference) < info.badness(degraded), (
                f"{name}: the sharp frame scored {reference:.6g} and the degraded one {degraded:.6g}, "
                f"but {info.direction} is declared")

    def test_full_reference_prefers_the_reference(self) -> None:
        """A full-reference scorer rates a frame identical to its reference better than a blurred or
        noisy copy of it, and its frame errors are InputError when the reference is missing."""
        if not self.full_reference():
            pytest.skip("not a full-reference scorer")
        info = self.info()
        frames = synthetic.variants(*self.frame_size)
        sharp = frames["sharp"]
        same = self.score(self.scorer(), self.with_reference([synthetic.variants(*self.frame_size)["sharp"]], sharp))[0]
        for variant in ("blurred", "noisy"):
            worse = self.score(self.scorer(), self.with_reference([frames[variant]], sharp))[0]
            assert same is not None and worse is not None, f"{variant}: no score ({same}, {worse})"
            assert info.badness(same) < info.badness(worse), (
                f"the identical frame scored {same:.6g} and the {variant} one {worse:.6g}, "
                f"but {info.direction} is declared")
        alone = synthetic.variants(*self.frame_size)["sharp"]
        try:
            values = list(self.scorer().score([alone]))
        except InputError:
            return  # the run records it against the frame
        assert values == [None], "a frame without a reference must give None or raise InputError"

    def test_tiny_frames(self) -> None:
        """A 1x1 or 2x2 frame must not crash: return a value or None, or raise InputError."""
        info = self.info()
        for width, height in self.tiny_sizes:
            count = 2 if info.temporal else 1
            frames = [synthetic.tiny(width, height, index=i) for i in range(count)]
            try:
                values = self.score(self.scorer(), frames)
            except InputError:
                continue  # a clear refusal is fine; the run records it against the frame
            for v in values:
                if v is not None:
                    assert math.isfinite(v) and info.range[0] <= v <= info.range[1], \
                        f"{width}x{height}: score {v} outside {info.range}"

    def test_temporal_scorer_has_reset(self) -> None:
        if not self.info().temporal:
            pytest.skip("not a temporal scorer")
        scorer = self.scorer()
        assert callable(getattr(scorer, "reset", None)), "a temporal scorer needs reset(), called before each source"

    def test_source_verdict_is_in_range(self, tmp_path: Any) -> None:
        """A scorer with ``score_source()`` gives each source one verdict inside its range."""
        if not callable(getattr(self.scorer(), "score_source", None)):
            pytest.skip("no score_source(): no whole-source verdict")
        assert callable(getattr(self.scorer(), "reset", None)), \
            "a scorer with score_source() needs reset(), called before each source, to start each verdict afresh"
        result = self._pipeline_run(tmp_path)
        (summary,) = result.summary.sources
        assert not summary.errors, [e.reason for e in summary.errors]
        value = summary.pooled.get(self.scorer_name, {}).get("source")
        if value is not None:
            low, high = self.info().range
            assert math.isfinite(value) and low <= value <= high, f"source verdict {value} outside {(low, high)}"

    def _pipeline_run(self, tmp_path: Any) -> Any:
        """The scorer in a whole pipeline run over a six-frame synthetic clip (sharp, blurred, noisy)."""
        width, height = self.frame_size
        clip = write_synth(tmp_path / "clip.qsynth", frames=6, width=width, height=height,
                           variants=["sharp", "blurred", "noisy"])
        reference = {"reference": os.fspath(clip)} if set(self.info().inputs) & {"reference", "reference_path"} else {}
        return run_plugin(self.plugin, clip, name=self.registered_as(), builtins=False, synth=True,
                          scorers=[self.scorer_name], scorer_options={self.scorer_name: dict(self.scorer_options)},
                          **reference)

    def test_runs_in_a_pipeline(self, tmp_path: Any) -> None:
        result = self._pipeline_run(tmp_path)
        errors = [e.reason for f in result.frames for e in f.errors] + [e.reason for e in result.summary.errors]
        assert not errors, f"the run recorded errors: {errors}"
        assert len(result.frames) == 6
        assert any(v is not None for v in result.scores(self.scorer_name))


class DescriberConformance(_Conformance):
    """The contract of a describer: one non-empty text per frame."""

    _kind = "describers"
    #: the registered name of the describer (required)
    describer_name: ClassVar[str] = ""
    frame_size: ClassVar[tuple[int, int]] = (synthetic.WIDTH, synthetic.HEIGHT)
    tiny_sizes: ClassVar[Sequence[tuple[int, int]]] = ((1, 1), (2, 2))

    def component_name(self) -> str:
        return self.describer_name

    def describer(self) -> Any:
        cls = type(self)
        built = cls.__dict__.get("_qplug_built")
        if built is None:
            built = cls._qplug_built = self.build()  # type: ignore[attr-defined]
        return built

    def describe(self, frames: Sequence[Frame]) -> list[str]:
        size = self.info().batch_size
        texts: list[str] = []
        for start in range(0, len(frames), size):
            chunk = list(frames[start:start + size])
            out = self.describer().describe(chunk)
            out = list(out) if out is not None else []
            assert len(out) == len(chunk), f"describe() returned {len(out)} texts for {len(chunk)} frames"
            texts.extend(out)
        return texts

    def test_info_is_valid(self) -> None:
        info = self.info()
        assert isinstance(info, DescriberInfo)
        assert info.description.strip() and "\n" not in info.description, "description must be one non-empty line"
        assert info.batch_size >= 1

    def test_one_text_per_frame(self) -> None:
        frames = synthetic.variants(*self.frame_size).as_list()
        texts = self.describe(frames)
        for frame, text in zip(frames, texts):
            assert isinstance(text, str), f"frame {frame.index}: {text!r} is not a str"
            assert text.strip(), f"frame {frame.index} ({frame.source_id}): empty description"

    def test_does_not_modify_frames(self) -> None:
        frames = synthetic.variants(*self.frame_size).as_list()
        before = [f.rgb.copy() for f in frames]
        self.describe(frames)
        assert all((f.rgb == b).all() for f, b in zip(frames, before)), "the describer wrote into frame pixels"

    def test_tiny_frames(self) -> None:
        for width, height in self.tiny_sizes:
            try:
                texts = self.describe([synthetic.tiny(width, height)])
            except InputError:
                continue
            assert all(isinstance(t, str) for t in texts)

    def test_runs_in_a_pipeline(self, tmp_path: Any) -> None:
        clip = write_synth(tmp_path / "clip.qsynth", frames=3, width=self.frame_size[0], height=self.frame_size[1])
        result = run_plugin(self.plugin, clip, name=self.registered_as(), builtins=False, synth=True,
                            scorers=[], describers=[self.describer_name])
        errors = [e.reason for f in result.frames for e in f.errors] + [e.reason for e in result.summary.errors]
        assert not errors, f"the run recorded errors: {errors}"
        assert all(f.descriptions.get(self.describer_name) for f in result.frames)


class AskerConformance(_Conformance):
    """The contract of an asker: one answer per frame, one of the choices when choices are given."""

    _kind = "askers"
    #: the registered name of the asker (required)
    asker_name: ClassVar[str] = ""
    question: ClassVar[str] = "Is this image sharp?"
    choices: ClassVar[Sequence[str]] = ("yes", "no")
    #: whether the asker answers without choices (free text), as the Asker protocol expects
    free_text: ClassVar[bool] = True
    frame_size: ClassVar[tuple[int, int]] = (synthetic.WIDTH, synthetic.HEIGHT)
    tiny_sizes: ClassVar[Sequence[tuple[int, int]]] = ((1, 1), (2, 2))

    def component_name(self) -> str:
        return self.asker_name

    def asker(self) -> Any:
        cls = type(self)
        built = cls.__dict__.get("_qplug_built")
        if built is None:
            built = cls._qplug_built = self.build()  # type: ignore[attr-defined]
        return built

    def ask(self, frames: Sequence[Frame], choices: Sequence[str] | None) -> list[Any]:
        size = self.info().batch_size
        answers: list[Any] = []
        for start in range(0, len(frames), size):
            chunk = list(frames[start:start + size])
            out = self.asker().ask(chunk, self.question, list(choices) if choices is not None else None)
            out = list(out) if out is not None else []
            assert len(out) == len(chunk), f"ask() returned {len(out)} answers for {len(chunk)} frames"
            answers.extend(out)
        return answers

    def test_info_is_valid(self) -> None:
        info = self.info()
        assert isinstance(info, AskerInfo)
        assert info.description.strip() and "\n" not in info.description, "description must be one non-empty line"
        assert info.batch_size >= 1

    def test_answers_are_among_the_choices(self) -> None:
        frames = synthetic.variants(*self.frame_size).as_list()
        for frame, answer in zip(frames, self.ask(frames, self.choices)):
            where = f"frame {frame.index} ({frame.source_id})"
            if isinstance(answer, Answer):
                assert answer.choice in self.choices, f"{where}: choice {answer.choice!r} is not one of {self.choices}"
                assert answer.text.strip(), f"{where}: empty answer text"
                if answer.probabilities is not None:
                    probabilities = dict(answer.probabilities)
                    assert set(probabilities) <= set(self.choices), f"{where}: probabilities for unknown options"
                    assert abs(sum(probabilities.values()) - 1.0) < 1e-3, f"{where}: probabilities do not sum to 1"
            else:
                assert isinstance(answer, str) and answer in self.choices, \
                    f"{where}: {answer!r} is neither an Answer nor one of {self.choices}"

    def test_free_text_answers(self) -> None:
        if not self.free_text:
            pytest.skip("free_text = False: the asker needs choices")
        frames = synthetic.variants(*self.frame_size).as_list()
        for frame, answer in zip(frames, self.ask(frames, None)):
            text = answer.text if isinstance(answer, Answer) else answer
            assert isinstance(text, str) and text.strip(), f"frame {frame.index}: empty free-text answer"

    def test_does_not_modify_frames(self) -> None:
        frames = synthetic.variants(*self.frame_size).as_list()
        before = [f.rgb.copy() for f in frames]
        self.ask(frames, self.choices)
        assert all((f.rgb == b).all() for f, b in zip(frames, before)), "the asker wrote into frame pixels"

    def test_tiny_frames(self) -> None:
        for width, height in self.tiny_sizes:
            try:
                self.ask([synthetic.tiny(width, height)], self.choices)
            except InputError:
                continue

    def test_runs_in_a_pipeline(self, tmp_path: Any) -> None:
        clip = write_synth(tmp_path / "clip.qsynth", frames=3, width=self.frame_size[0], height=self.frame_size[1])
        result = run_plugin(self.plugin, clip, name=self.registered_as(), builtins=False, synth=True, scorers=[],
                            askers=[self.asker_name], question=self.question, choices=list(self.choices))
        errors = [e.reason for f in result.frames for e in f.errors] + [e.reason for e in result.summary.errors]
        assert not errors, f"the run recorded errors: {errors}"
        for frame in result.frames:
            answer = frame.answers.get(self.asker_name)
            assert answer and answer["question"] == self.question and answer["text"], f"frame {frame.index}: {answer}"


class SourceConformance(_Conformance):
    """The contract of a source. Set ``plugin``, ``source_name`` and implement ``make_sample``."""

    _kind = "sources"
    #: the registered name of the source (required)
    source_name: ClassVar[str] = ""
    #: whether ``Sampling(max_side=...)`` must be honoured (a source of fixed-size frames may opt out)
    supports_max_side: ClassVar[bool] = True
    #: whether frames must carry the path exactly as given in ``source_id``
    exact_source_id: ClassVar[bool] = True

    def component_name(self) -> str:
        return self.source_name

    def make_sample(self, tmp_path: Any) -> "str | os.PathLike[str]":
        """Write a small valid input under ``tmp_path`` and return its path (required)."""
        pytest.fail(f"{type(self).__name__}: implement make_sample(self, tmp_path) returning a valid input file")

    def make_broken(self, tmp_path: Any) -> "str | os.PathLike[str] | None":
        """Write an input the source must refuse (truncated, corrupt); None skips that check."""
        return None

    def source(self) -> Any:
        return self.build()

    def read_all(self, path: "str | os.PathLike[str]", sampling: Sampling | None = None) -> tuple[MediaInfo, list[Frame]]:
        """Open ``path``, decode every frame's pixels, close; return the media info and the frames."""
        reader = self.source().open(os.fspath(path), sampling or Sampling())
        try:
            frames = []
            for frame in reader:
                frame.rgb  # decode now, while the reader is open
                frames.append(frame)
            return reader.info, frames
        finally:
            reader.close()

    def _expect_input_error(self, path: str, what: str) -> None:
        reader = None
        try:
            reader = self.source().open(path, Sampling())
            for frame in reader:
                frame.rgb
        except InputError as exc:
            assert exc.reason, "InputError needs a reason a user can act on"
            return
        except Exception as exc:
            pytest.fail(f"{what}: raised {type(exc).__name__}: {exc}; sources must raise qplug.errors.InputError")
        finally:
            if reader is not None:
                reader.close()
        pytest.fail(f"{what}: no InputError raised")

    def test_info_is_valid(self) -> None:
        info = self.info()
        assert isinstance(info, SourceInfo)
        assert info.description.strip() and "\n" not in info.description, "description must be one non-empty line"
        assert info.extensions, "a source must claim at least one extension"
        assert all(e.startswith(".") and e == e.lower() and len(e) > 1 for e in info.extensions)
        assert info.kind in ("image", "video"), f"kind {info.kind!r} must be 'image' or 'video'"

    def test_sample_is_claimed_by_the_source(self, tmp_path: Any) -> None:
        path = os.fspath(self.make_sample(tmp_path))
        claimed = self.make_host().catalog().source_for(path)
        assert claimed is not None and claimed.name == self.source_name, f"{path} is not claimed by {self.source_name}"

    def test_open_gives_media_info(self, tmp_path: Any) -> None:
        reader = self.source().open(os.fspath(self.make_sample(tmp_path)), Sampling())
        try:
            info = reader.info
            assert isinstance(info, MediaInfo), "reader.info must be a qplug.types.MediaInfo"
            assert info.kind in ("image", "video")
            for field in ("width", "height"):
                value = getattr(info, field)
                assert value is None or (isinstance(value, int) and value > 0), f"info.{field} = {value!r}"
        finally:
            reader.close()

    def test_frames_are_uint8_rgb(self, tmp_path: Any) -> None:
        info, frames = self.read_all(self.make_sample(tmp_path))
        assert frames, "the sample gave no frame"
        for frame in frames:
            assert isinstance(frame, Frame)
            rgb = frame.rgb
            assert str(rgb.dtype) == "uint8", f"frame {frame.index}: dtype {rgb.dtype}, not uint8"
            assert rgb.shape == (frame.height, frame.width, 3), \
                f"frame {frame.index}: pixels {rgb.shape} but width={frame.width} height={frame.height}"
            assert frame.luma.shape == (frame.height, frame.width) and str(frame.luma.dtype) == "uint8"

    def test_frame_order_and_times(self, tmp_path: Any) -> None:
        info, frames = self.read_all(self.make_sample(tmp_path))
        indices = [f.index for f in frames]
        assert all(isinstance(i, int) and i >= 0 for i in indices), f"bad indices {indices}"
        assert indices == sorted(set(indices)), f"indices must increase: {indices}"
        if info.kind == "video":
            pts = [f.pts for f in frames]
            assert all(p is not None and math.isfinite(p) and p >= 0 for p in pts), f"video frames need pts: {pts}"
            assert pts == sorted(pts), f"pts must not go backwards: {pts}"

    def test_frames_name_their_file(self, tmp_path: Any) -> None:
        if not self.exact_source_id:
            pytest.skip("exact_source_id = False")
        path = os.fspath(self.make_sample(tmp_path))
        _, frames = self.read_all(path)
        assert {f.source_id for f in frames} == {path}, "frame.source_id must be the path given to open()"

    def test_max_frames(self, tmp_path: Any) -> None:
        _, frames = self.read_all(self.make_sample(tmp_path), Sampling(max_frames=1))
        assert len(frames) == 1, f"Sampling(max_frames=1) gave {len(frames)} frames"

    def test_max_side(self, tmp_path: Any) -> None:
        if not self.supports_max_side:
            pytest.skip("supports_max_side = False")
        _, frames = self.read_all(self.make_sample(tmp_path), Sampling(max_side=16))
        for frame in frames:
            assert max(frame.width, frame.height) <= 16, f"max_side=16 gave {frame.width}x{frame.height}"
            assert frame.rgb.shape[:2] == (frame.height, frame.width)

    def test_broken_file_raises_input_error(self, tmp_path: Any) -> None:
        broken = self.make_broken(tmp_path)
        if broken is None:
            pytest.skip("no make_broken(tmp_path) given")
        self._expect_input_error(os.fspath(broken), "a broken file")

    def test_missing_file_raises_input_error(self, tmp_path: Any) -> None:
        extension = self.info().extensions[0]
        self._expect_input_error(os.fspath(tmp_path / f"missing{extension}"), "a missing file")

    def test_close_is_idempotent(self, tmp_path: Any) -> None:
        path = os.fspath(self.make_sample(tmp_path))
        reader = self.source().open(path, Sampling())
        reader.close()
        reader.close()
        reader = self.source().open(path, Sampling())
        next(iter(reader)).rgb  # close in the middle of a stream, as a stopped run does
        reader.close()
        reader.close()

    def test_runs_in_a_pipeline(self, tmp_path: Any) -> None:
        path = os.fspath(self.make_sample(tmp_path))
        from .synth import MEAN_LUMA

        host = make_host(self.plugin, names=[self.registered_as()], synth=True)  # synth brings a reference scorer
        result = run_plugin(host, path, scorers=[MEAN_LUMA])
        assert not result.summary.errors, f"the run recorded errors: {[e.reason for e in result.summary.errors]}"
        assert result.frames and all(v is not None for v in result.scores(MEAN_LUMA))


class WriterConformance(_Conformance):
    """The contract of a report writer, fed a small but complete run (errors, events, None scores)."""

    _kind = "writers"
    #: the registered name of the writer (required)
    writer_name: ClassVar[str] = ""
    #: options for the factory; None gives what ``qplug score`` passes (scorer metadata, a title)
    writer_options: ClassVar[Mapping[str, Any] | None] = None

    def component_name(self) -> str:
        return self.writer_name

    def check_output(self, output: "str | bytes") -> None:
        """Override to parse the output (``json.loads``, ``csv.reader``...) and check what matters to you."""

    def scorer_infos(self) -> list[ScorerInfo]:
        return [
            ScorerInfo(name="conformance.sharpness", factory="x:y", description="test scorer", range=(0.0, 1.0),
                       higher_is_better=True, event_threshold=0.3, unit="fraction", default=True),
            # An unbounded range is legal metadata: writers must cope with infinity in it.
            ScorerInfo(name="conformance.noise", factory="x:y", description="test scorer",
                       range=(0.0, float("inf")), higher_is_better=False, unit="levels"),
        ]

    def options(self, **own: Any) -> Any:
        """What the factory receives: the writer's ``writer_options``, or what ``qplug score`` passes
        (a :class:`qplug.WriterContext` with the run's scorers, a title and ``own`` options)."""
        if self.writer_options is not None:
            return dict(self.writer_options, **own)
        return WriterContext(scorers={s.name: s for s in self.scorer_infos()}, title="qplug conformance", options=own)

    def sample_run(self) -> tuple[list[FrameResult], list[SourceSummary], RunSummary]:
        """A video of six frames (one failed score, one without pixels), then an unreadable input."""
        clip = synthetic.video_frames(6, 25.0, 64, 48, source_id="clip.mp4")
        sharp, noise = (s.name for s in self.scorer_infos())
        results, poolers = [], {sharp: Pooler(), noise: Pooler()}
        for i, frame in enumerate(clip):
            result = FrameResult.for_frame(frame)
            result.scores = {sharp: 0.9 - 0.1 * i, noise: None if i == 2 else 1.5 * i}
            if i == 2:
                result.errors.append(ErrorRecord("clip.mp4", "ValueError: \"quoted\", comma, <tag>", 2, f"score:{noise}"))
            if i == 1:
                result.levels[sharp] = {"good": 0.75, "bad": 0.25}
                result.extra[sharp] = {"raw": 123.5}
                result.descriptions["conformance.words"] = "sharp, well exposed; commas, \"quotes\" & <tags>"
                result.answers["conformance.judge"] = {"question": "Is it sharp?", "text": "yes", "choice": "yes",
                                                       "probabilities": {"yes": 0.8, "no": 0.2}}
            if i == 5:
                result.frame = None  # a frame without pixels, as after --resume
            for name, pooler in poolers.items():
                pooler.add(result.scores[name])
            results.append(result)
        event = Event(scorer=sharp, start=0.16, end=0.24, peak=0.4, peak_pts=0.2, threshold=0.5, frames=2,
                      start_timecode="00:00:00:04", end_timecode="00:00:00:06")
        media = MediaInfo(source_id="clip.mp4", kind="video", container="mp4", codec="h264", width=64, height=48,
                          fps=25.0, duration=0.24, frame_count=6, pix_fmt="yuv420p", bit_depth=8, interlaced=False)
        good = SourceSummary(source_id="clip.mp4", media=media, frames=6,
                             pooled={name: pooler.pooled() for name, pooler in poolers.items()}, events=[event],
                             errors=[e for r in results for e in r.errors], wall_seconds=0.01)
        bad = SourceSummary(source_id="broken.mp4", media=None, frames=0, pooled={},
                            errors=[ErrorRecord("broken.mp4", "moov atom not found", None, "read")])
        run = RunSummary(sources=[good, bad], scorers=[sharp, noise], describers=["conformance.words"],
                         askers=["conformance.judge"], frames=6, wall_seconds=0.02)
        return results, [good, bad], run

    def new_stream(self) -> "io.StringIO | io.BytesIO":
        return io.BytesIO() if self.info().binary else io.StringIO()

    def test_info_is_valid(self) -> None:
        info = self.info()
        assert isinstance(info, WriterInfo)
        assert info.description.strip() and "\n" not in info.description, "description must be one non-empty line"
        assert all(e.startswith(".") and e == e.lower() for e in info.extensions), \
            f"extensions {info.extensions} must be lower-case and start with '.'"

    def test_writes_a_run(self) -> None:
        stream = self.new_stream()
        writer = self.build(stream, self.options())
        frames, sources, run = self.sample_run()
        for result in frames:
            writer.write_frame(result)
        for summary in sources:
            writer.write_source(summary)
        writer.close(run)
        assert not stream.closed, "the writer closed the stream; qplug closes the streams it opened"
        output = stream.getvalue()
        assert output, "the writer wrote nothing"
        self.check_output(output)

    def test_writes_an_empty_run(self) -> None:
        stream = self.new_stream()
        writer = self.build(stream, self.options())
        writer.close(RunSummary(scorers=[s.name for s in self.scorer_infos()]))
        assert not stream.closed, "the writer closed the stream"

    def test_accepts_options_it_does_not_know(self) -> None:
        stream = self.new_stream()
        writer = self.build(stream, self.options(some_future_option=True))
        writer.close(RunSummary())
