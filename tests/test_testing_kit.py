"""The plugin-author kit: fixtures, synthetic frames, the .qsynth source, run_plugin, conformance classes.

The conformance classes are proven both ways: small well-behaved plugins defined here pass them
(the ``Test*`` subclasses below run as part of this suite), and deliberately broken plugins fail
exactly the rule they break (an inner pytest session run with ``pytester``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
from typing import Any, Callable, Sequence  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from qplug.errors import InputError, PluginError  # noqa: E402
from qplug.hookspecs import hookimpl  # noqa: E402
from qplug.registry import AskerInfo, DescriberInfo, ScorerInfo, WriterInfo  # noqa: E402
from qplug.testing import frames as synthetic  # noqa: E402
from qplug.testing import synth  # noqa: E402
from qplug.testing.conformance import (AskerConformance, DescriberConformance, ScorerConformance,  # noqa: E402
                                       SourceConformance, WriterConformance)
from qplug.testing.harness import builtin_plugin_names, make_host, run_plugin  # noqa: E402
from qplug.testing.network import NetworkBlockedError  # noqa: E402
from qplug.types import Answer, Frame, Sampling  # noqa: E402

pytest_plugins = ["pytester"]


# ---------------------------------------------------------------------------------------------
# Well-behaved plugins, written the way the tutorial says


def _gradient(frame: Frame) -> float:
    luma = frame.luma.astype(np.float32)
    if luma.shape[1] < 2:
        return 0.0
    return float(np.abs(np.diff(luma, axis=1)).mean())


class GradientSharpness:
    """Mean horizontal luma gradient, squashed into [0, 1)."""

    def score(self, frames: Sequence[Frame]) -> list[float]:
        return [(g := _gradient(f)) / (g + 10.0) for f in frames]


class FrameChange:
    """Temporal: mean absolute luma change from the previous frame, in [0, 1] (None for the first)."""

    def __init__(self) -> None:
        self.previous: np.ndarray | None = None
        self.peak = 0.0

    def reset(self) -> None:
        self.previous = None
        self.peak = 0.0

    def score(self, frames: Sequence[Frame]) -> list[float | None]:
        out: list[float | None] = []
        for frame in frames:
            luma = frame.luma.astype(np.float32)
            same = self.previous is not None and self.previous.shape == luma.shape
            out.append(float(np.abs(luma - self.previous).mean() / 255.0) if same else None)
            self.previous = luma
        self.peak = max([self.peak, *(v for v in out if v is not None)])
        return out

    def score_source(self) -> float:
        """The largest change in the source: a whole-source verdict."""
        return self.peak


class Words:
    def describe(self, frames: Sequence[Frame]) -> list[str]:
        return [("dark" if f.luma.mean() < 64 else "bright" if f.luma.mean() > 192 else "mid-tone") for f in frames]


class BrightnessJudge:
    """Answers "yes" (first choice) for bright frames, with made-up but well-formed probabilities."""

    def ask(self, frames: Sequence[Frame], question: str, choices: Sequence[str] | None = None) -> list[Answer]:
        answers = []
        for frame in frames:
            p_first = float(frame.luma.mean()) / 255.0
            if choices:
                rest = (1 - p_first) / (len(choices) - 1)
                probabilities = {c: (p_first if i == 0 else rest) for i, c in enumerate(choices)}
                best = max(probabilities, key=probabilities.__getitem__)
                answers.append(Answer(text=best, choice=best, probabilities=probabilities))
            else:
                answers.append(Answer(text="bright" if p_first > 0.5 else "dark"))
        return answers


class LinesWriter:
    def __init__(self, stream: Any, options: Any = None) -> None:
        self.stream = stream

    def write_frame(self, result: Any) -> None:
        self.stream.write(f"frame {result.source_id} {result.index} {result.scores}\n")

    def write_source(self, summary: Any) -> None:
        self.stream.write(f"source {summary.source_id} {summary.frames}\n")

    def close(self, run: Any) -> None:
        self.stream.write(f"run {run.frames}\n")


class GoodPlugin:
    """A plugin object (not a module): factories are callables here, import paths in a package."""

    @hookimpl
    def register_scorers(self, register: Callable[[ScorerInfo], None]) -> None:
        register(ScorerInfo(name="kit.sharpness", factory=GradientSharpness, description="mean gradient",
                            range=(0.0, 1.0), higher_is_better=True, inputs=("luma",), batch_size=4))
        register(ScorerInfo(name="kit.change", factory=FrameChange, description="change from the previous frame",
                            range=(0.0, 1.0), higher_is_better=False, inputs=("luma", "previous"), temporal=True,
                            batch_size=3))

    @hookimpl
    def register_describers(self, register: Callable[[DescriberInfo], None]) -> None:
        register(DescriberInfo(name="kit.words", factory=Words, description="brightness in a word", needs_model=False))

    @hookimpl
    def register_askers(self, register: Callable[[AskerInfo], None]) -> None:
        register(AskerInfo(name="kit.judge", factory=BrightnessJudge, description="is it bright?", needs_model=False,
                           batch_size=2))

    @hookimpl
    def register_writers(self, register: Callable[[WriterInfo], None]) -> None:
        register(WriterInfo(name="kit.lines", factory=LinesWriter, description="one line per record",
                            extensions=(".lines",)))


GOOD = GoodPlugin()


class TestGoodScorer(ScorerConformance):
    plugin = GOOD
    plugin_name = "good"
    scorer_name = "kit.sharpness"
    direction_check = ("blur", "black")


class TestGoodTemporalScorer(ScorerConformance):
    plugin = GOOD
    plugin_name = "good"
    scorer_name = "kit.change"


class TestGoodDescriber(DescriberConformance):
    plugin = GOOD
    plugin_name = "good"
    describer_name = "kit.words"


class TestGoodAsker(AskerConformance):
    plugin = GOOD
    plugin_name = "good"
    asker_name = "kit.judge"


class TestGoodWriter(WriterConformance):
    plugin = GOOD
    plugin_name = "good"
    writer_name = "kit.lines"

    def check_output(self, output: str | bytes) -> None:
        assert isinstance(output, str)
        assert output.splitlines()[-1] == "run 6"


class TestSynthSource(SourceConformance):
    plugin = synth
    source_name = synth.SOURCE_NAME

    def make_sample(self, tmp_path: Any) -> str:
        return synth.write_synth(tmp_path / "sample.qsynth", frames=4, width=40, height=30)

    def make_broken(self, tmp_path: Any) -> str:
        path = tmp_path / "broken.qsynth"
        path.write_text('{"frames": 3, "width": ')
        return str(path)


# ---------------------------------------------------------------------------------------------
# Broken plugins fail exactly the rule they break

_BAD_PLUGINS = '''
import numpy as np
from qplug.errors import InputError
from qplug.hookspecs import hookimpl
from qplug.registry import AskerInfo, DescriberInfo, ScorerInfo, SourceInfo, WriterInfo
from qplug.testing.conformance import (AskerConformance, DescriberConformance, ScorerConformance,
                                       SourceConformance, WriterConformance)
from qplug.types import Frame, MediaInfo


def scorer_plugin(name, factory, **extra):
    class Plugin:
        @hookimpl
        def register_scorers(self, register):
            register(ScorerInfo(name=name, factory=factory, description="a broken scorer", range=(0.0, 1.0),
                                higher_is_better=True, **extra))
    return Plugin()


def sharpness(frame):
    luma = frame.luma.astype(float)
    return float(np.abs(np.diff(luma, axis=1)).mean()) / 255 if luma.shape[1] > 1 else 0.0


class OutOfRange:
    def score(self, frames):
        return [1.5 for _ in frames]


class WrongCount:
    def score(self, frames):
        return [0.5]


class BatchDependent:  # normalises by the batch's best frame: the classic batching bug
    def score(self, frames):
        values = [float(f.luma.mean()) + 1 for f in frames]
        return [v / max(values) for v in values]


class CrashesOnTiny:
    def score(self, frames):
        return [sharpness(f) + 0 * float(f.luma[2, 2]) for f in frames]


class Inverted:
    def score(self, frames):
        return [1 - sharpness(f) for f in frames]


class MutatesPixels:
    def score(self, frames):
        for f in frames:
            f.rgb[0, 0] = 7
        return [0.5 for _ in frames]


class SourceVerdictOutOfRange:
    def reset(self):
        pass

    def score(self, frames):
        return [0.5 for _ in frames]

    def score_source(self):
        return 3.0


class TestOutOfRange(ScorerConformance):
    plugin = scorer_plugin("bad.range", OutOfRange)
    scorer_name = "bad.range"


class TestSourceVerdictOutOfRange(ScorerConformance):
    plugin = scorer_plugin("bad.verdict", SourceVerdictOutOfRange, temporal=True)
    scorer_name = "bad.verdict"


class TestWrongCount(ScorerConformance):
    plugin = scorer_plugin("bad.count", WrongCount)
    scorer_name = "bad.count"


class TestBatchDependent(ScorerConformance):
    plugin = scorer_plugin("bad.batch", BatchDependent)
    scorer_name = "bad.batch"


class TestCrashesOnTiny(ScorerConformance):
    plugin = scorer_plugin("bad.tiny", CrashesOnTiny)
    scorer_name = "bad.tiny"


class TestInverted(ScorerConformance):
    plugin = scorer_plugin("bad.inverted", Inverted)
    scorer_name = "bad.inverted"
    direction_check = "blur"


class TestMutatesPixels(ScorerConformance):
    plugin = scorer_plugin("bad.mutates", MutatesPixels)
    scorer_name = "bad.mutates"


class Typo:
    @hookimpl
    def register_scorers(self, register):
        register(ScorerInfo(name="bad.typo", factory=Inverted, description="d", range=(0.0, 1.0),
                            higher_is_better=True))

    @hookimpl
    def register_scorer(self, register):  # misspelt: would never be called
        pass


class TestTypo(ScorerConformance):
    plugin = Typo()
    scorer_name = "bad.typo"


class SilentOnBlack:
    def describe(self, frames):
        return ["" if f.luma.max() == 0 else "fine" for f in frames]


class DescriberPlugin:
    @hookimpl
    def register_describers(self, register):
        register(DescriberInfo(name="bad.words", factory=SilentOnBlack, description="d"))


class TestSilentOnBlack(DescriberConformance):
    plugin = DescriberPlugin()
    describer_name = "bad.words"


class OffTheMenu:
    def ask(self, frames, question, choices=None):
        return ["maybe" for _ in frames]  # not one of the choices


class AskerPlugin:
    @hookimpl
    def register_askers(self, register):
        register(AskerInfo(name="bad.judge", factory=OffTheMenu, description="d"))


class TestOffTheMenu(AskerConformance):
    plugin = AskerPlugin()
    asker_name = "bad.judge"


class DimsReader:
    """A '.dims' file holds "WIDTH HEIGHT"; one grey frame of that size."""

    def __init__(self, path, sampling, polite):
        text = open(path).read()  # FileNotFoundError escapes: should be an InputError
        width, height = (int(v) for v in text.split())  # ValueError escapes too
        side = sampling.max_side or max(width, height)
        self.width, self.height = min(width, side), min(height, side)
        self.path, self.polite, self.closed = path, polite, False
        self.info = MediaInfo(source_id=path, kind="image", width=width, height=height)

    def __iter__(self):
        yield Frame.from_rgb(np.full((self.height, self.width, 3), 128, np.uint8), source_id=self.path)

    def close(self):
        if self.closed and not self.polite:
            raise RuntimeError("already closed")
        self.closed = True


class RudeSource:
    def open(self, path, sampling):
        return DimsReader(path, sampling, polite=True)


class DoubleCloseSource:
    def open(self, path, sampling):
        try:
            return DimsReader(path, sampling, polite=False)
        except (OSError, ValueError) as exc:
            raise InputError(path, str(exc)) from None


def source_plugin(name, factory):
    class Plugin:
        @hookimpl
        def register_sources(self, register):
            register(SourceInfo(name=name, factory=factory, description="d", extensions=(".dims",)))
    return Plugin()


class DimsSamples:
    def make_sample(self, tmp_path):
        (tmp_path / "a.dims").write_text("40 30")
        return tmp_path / "a.dims"

    def make_broken(self, tmp_path):
        (tmp_path / "b.dims").write_text("forty thirty")
        return tmp_path / "b.dims"


class TestRudeSource(DimsSamples, SourceConformance):
    plugin = source_plugin("bad.rude", RudeSource)
    source_name = "bad.rude"


class TestDoubleCloseSource(DimsSamples, SourceConformance):
    plugin = source_plugin("bad.doubleclose", DoubleCloseSource)
    source_name = "bad.doubleclose"


class ClosingWriter:
    def __init__(self, stream, options):
        self.stream = stream

    def write_frame(self, result):
        self.stream.write("f\\n")

    def write_source(self, summary):
        self.stream.write("s\\n")

    def close(self, run):
        self.stream.close()


class WriterPlugin:
    @hookimpl
    def register_writers(self, register):
        register(WriterInfo(name="bad.closing", factory=ClosingWriter, description="d"))


class TestClosingWriter(WriterConformance):
    plugin = WriterPlugin()
    writer_name = "bad.closing"


import eager_plugin
import lazy_plugin


class TestEager(ScorerConformance):
    plugin = eager_plugin
    scorer_name = "eager.flat"


class TestLazy(ScorerConformance):
    plugin = lazy_plugin
    scorer_name = "lazy.flat"
'''

_PACKAGED = {
    # Two packaged plugins: one imports its scorer's module at the top (the mistake), one names it.
    "eager_plugin": '''
        from qplug.hookspecs import hookimpl
        from qplug.registry import ScorerInfo
        import eager_heavy

        @hookimpl
        def register_scorers(register):
            register(ScorerInfo(name="eager.flat", factory="eager_heavy:Flat", description="d",
                                range=(0.0, 1.0), higher_is_better=True))
        ''',
    "lazy_plugin": '''
        from qplug.hookspecs import hookimpl
        from qplug.registry import ScorerInfo

        @hookimpl
        def register_scorers(register):
            register(ScorerInfo(name="lazy.flat", factory="lazy_heavy:Flat", description="d",
                                range=(0.0, 1.0), higher_is_better=True))
        ''',
    "eager_heavy": "class Flat:\n    def score(self, frames):\n        return [0.5 for _ in frames]\n",
    "lazy_heavy": "class Flat:\n    def score(self, frames):\n        return [0.5 for _ in frames]\n",
}

#: class -> the rules it must fail (every other rule must pass or skip)
_EXPECTED_FAILURES = {
    "TestOutOfRange": {"test_values_are_finite_and_within_range", "test_tiny_frames"},
    "TestSourceVerdictOutOfRange": {"test_source_verdict_is_in_range"},
    "TestWrongCount": {"test_scores_one_value_per_frame", "test_values_are_finite_and_within_range",
                       "test_batch_equals_one_by_one", "test_is_deterministic", "test_does_not_modify_frames",
                       "test_runs_in_a_pipeline"},
    "TestBatchDependent": {"test_batch_equals_one_by_one"},
    "TestCrashesOnTiny": {"test_tiny_frames"},
    "TestInverted": {"test_direction"},
    "TestMutatesPixels": {"test_does_not_modify_frames"},
    "TestSilentOnBlack": {"test_one_text_per_frame"},
    # the pipeline itself also refuses an answer outside the choices, so the pipeline run fails too
    "TestOffTheMenu": {"test_answers_are_among_the_choices", "test_runs_in_a_pipeline"},
    "TestRudeSource": {"test_broken_file_raises_input_error", "test_missing_file_raises_input_error"},
    "TestDoubleCloseSource": {"test_close_is_idempotent"},
    "TestClosingWriter": {"test_writes_a_run", "test_writes_an_empty_run"},
    "TestEager": {"test_registering_does_not_import_the_factory"},
    "TestLazy": set(),
}


def test_conformance_catches_broken_plugins(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_bad_plugins=_BAD_PLUGINS, **{k: textwrap.dedent(v) for k, v in _PACKAGED.items()})
    monkeypatch.syspath_prepend(str(pytester.path))
    recorder = pytester.inline_run("-p", "no:cacheprovider")
    passed, skipped, failed = recorder.listoutcomes()
    outcomes: dict[str, dict[str, set[str]]] = {}
    for report, kind in [(r, "passed") for r in passed] + [(r, "failed") for r in failed]:
        _, cls, test = report.nodeid.split("::")
        outcomes.setdefault(cls, {"passed": set(), "failed": set()})[kind].add(test)
    typo = outcomes.pop("TestTypo")
    assert "test_hooks_are_known" in typo["failed"]
    for cls, expected in _EXPECTED_FAILURES.items():
        assert outcomes[cls]["failed"] == expected, f"{cls}: failed {sorted(outcomes[cls]['failed'])}"
        assert outcomes[cls]["passed"], f"{cls}: nothing passed"
    # setup errors (a fixture or the class itself broken) would hide in neither list
    assert not [r for r in recorder.getreports("pytest_runtest_logreport") if r.when != "call" and r.failed]


# ---------------------------------------------------------------------------------------------
# Fixtures


def test_qplug_host_is_empty(qplug_host: Any) -> None:
    assert qplug_host.plugins() == []
    catalog = qplug_host.catalog()
    assert not (catalog.scorers or catalog.sources or catalog.describers or catalog.writers)
    qplug_host.add_plugin(GOOD, name="good")
    assert "kit.sharpness" in qplug_host.catalog().scorers


def test_host_with_builtins_holds_only_qplug_plugins(qplug_host_with_builtins: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    names = {r.name for r in qplug_host_with_builtins.plugins()}
    assert names <= set(builtin_plugin_names(honour_allow_list=False))
    if "reports" in names:
        monkeypatch.setenv("QPLUG_LOAD_PLUGINS", "reports")
        assert {r.name for r in make_host(builtins=True).plugins()} == {"reports"}


def test_frame_variants_are_ordered_as_expected(qplug_frames: Any) -> None:
    assert list(qplug_frames) == list(synthetic.VARIANTS)
    assert [f.index for f in qplug_frames.as_list()] == list(range(len(synthetic.VARIANTS)))
    for frame in qplug_frames.values():
        assert frame.rgb.shape == (96, 128, 3) and frame.rgb.dtype == np.uint8
    sharp, blurred, noisy = (_gradient(qplug_frames[n]) for n in ("sharp", "blurred", "noisy"))
    assert blurred < sharp < noisy
    brightness = {n: float(qplug_frames[n].luma.mean()) for n in qplug_frames}
    assert brightness["underexposed"] < 64 < brightness["sharp"] < 192 < brightness["overexposed"]
    assert not qplug_frames.black.rgb.any()
    jpeg_error = np.abs(qplug_frames.jpeg.rgb.astype(int) - qplug_frames.sharp.rgb).mean()
    assert 0.5 < jpeg_error < 12


def test_frames_are_deterministic_and_seeded() -> None:
    assert (synthetic.texture_rgb(seed=3) == synthetic.texture_rgb(seed=3)).all()
    assert (synthetic.texture_rgb(seed=3) != synthetic.texture_rgb(seed=4)).any()
    first = synthetic.variants()
    second = synthetic.variants()
    assert all((first[n].rgb == second[n].rgb).all() for n in synthetic.VARIANTS)
    first.sharp.rgb[0, 0] = (1, 2, 3)  # frames hold their own copies: the cached texture is untouched
    assert (synthetic.texture_rgb()[0, 0] == second.sharp.rgb[0, 0]).all()
    assert (second.sharp.rgb[0, 0] != (1, 2, 3)).any()


def test_video_frames_have_times_and_pan(qplug_video_frames: list[Frame]) -> None:
    assert [f.index for f in qplug_video_frames] == list(range(12))
    assert [f.pts for f in qplug_video_frames] == pytest.approx([i / 25 for i in range(12)])
    assert all(f.duration == pytest.approx(0.04) for f in qplug_video_frames)
    assert qplug_video_frames[11].timecode == "00:00:00:11"
    a, b = qplug_video_frames[0].rgb, qplug_video_frames[1].rgb
    assert (a[1:, 2:] == b[:-1, :-2]).all()  # the camera pans 2 px right, 1 px down per frame


def test_video_effects_plant_defects_at_known_frames() -> None:
    clip = synthetic.video_frames(6, 30000 / 1001, effects={3: "black"})
    assert not clip[3].rgb.any() and clip[2].rgb.any()
    assert clip[5].timecode == "00:00:00;05"  # drop-frame rate


def test_tiny_frames_and_png(tmp_path: Any) -> None:
    assert synthetic.tiny(1, 1).rgb.shape == (1, 1, 3)
    assert synthetic.tiny(2, 2).rgb.shape == (2, 2, 3)
    path = synthetic.save_png(synthetic.sharp(), tmp_path / "sharp.png")
    from PIL import Image

    with Image.open(path) as image:
        assert (np.asarray(image) == synthetic.sharp().rgb).all()


def test_jpeg_falls_back_to_pillow_without_opencv(monkeypatch: pytest.MonkeyPatch) -> None:
    rgb = synthetic.texture_rgb()
    with_cv2 = synthetic.jpeg_rgb(rgb, 20)
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    with_pillow = synthetic.jpeg_rgb(rgb, 20)
    assert with_pillow.shape == rgb.shape
    assert np.abs(with_pillow.astype(int) - with_cv2).mean() < 3


def test_pytest_plugin_is_inert() -> None:
    code = ("import sys, qplug.testing.pytest_plugin, qplug.testing; "
            "print(sorted(m for m in ('numpy', 'cv2', 'PIL') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_offline_fixture_blocks_other_machines(qplug_offline: None) -> None:
    with pytest.raises(NetworkBlockedError):
        socket.create_connection(("192.0.2.1", 80), timeout=0.1)
    with pytest.raises(NetworkBlockedError):
        socket.getaddrinfo("example.com", 443)
    assert socket.getaddrinfo("127.0.0.1", 80)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        socket.create_connection(server.getsockname(), timeout=1).close()
    finally:
        server.close()


# ---------------------------------------------------------------------------------------------
# The .qsynth source and run_plugin


def _read(path: str, sampling: Sampling | None = None) -> list[Frame]:
    reader = synth.SynthSource().open(path, sampling or Sampling())
    try:
        return list(reader)
    finally:
        reader.close()


def test_synth_source_sampling(tmp_path: Any) -> None:
    clip = synth.write_synth(tmp_path / "c.qsynth", frames=25, fps=25, width=32, height=24)
    assert [f.index for f in _read(clip, Sampling(every=5))] == [0, 5, 10, 15, 20]
    assert [f.index for f in _read(clip, Sampling(fps=5))] == [0, 5, 10, 15, 20]
    assert [f.index for f in _read(clip, Sampling(start=0.4, end=0.6))] == [10, 11, 12, 13, 14]
    assert len(_read(clip, Sampling(max_frames=3))) == 3
    small = _read(clip, Sampling(max_side=16, max_frames=1))[0]
    assert (small.width, small.height) == (16, 12) and small.rgb.shape == (12, 16, 3)


def test_synth_source_errors_are_input_errors(tmp_path: Any) -> None:
    failing = synth.write_synth(tmp_path / "f.qsynth", frames=5, fail_at=3)
    reader = synth.SynthSource().open(failing)
    seen = []
    with pytest.raises(InputError, match="frame 3"):
        for frame in reader:
            seen.append(frame.index)
    assert seen == [0, 1, 2]
    (tmp_path / "bad.qsynth").write_text('{"variants": ["smudged"]}')
    with pytest.raises(InputError, match="variants"):
        synth.SynthSource().open(str(tmp_path / "bad.qsynth"))
    with pytest.raises(ValueError):
        synth.write_synth(tmp_path / "x.qsynth", colour="red")


def test_synth_still_images_have_no_pts(tmp_path: Any) -> None:
    still = synth.write_synth(tmp_path / "s.qsynth", frames=1, kind="image")
    (frame,) = _read(still)
    assert frame.pts is None and frame.timecode is None


def test_run_plugin_runs_the_plugins_scorers(tmp_path: Any) -> None:
    clips = [synth.write_synth(tmp_path / f"{name}.qsynth", frames=5, variants=[name], width=64, height=48)
             for name in ("sharp", "blurred")]
    result = run_plugin(GOOD, clips, name="good")
    assert set(result.summary.scorers) == {"kit.sharpness", "kit.change"}
    assert len(result.frames) == 10 and not result.summary.errors
    sharp, blurred = (s.pooled["kit.sharpness"]["mean"] for s in result.sources)
    assert sharp > blurred
    assert result.scores("kit.change")[0] is None  # first frame of each source: reset worked
    assert result.scores("kit.change")[5] is None


def test_score_batch_wrappers_see_every_batch(tmp_path: Any) -> None:
    seen: list[tuple[str, int]] = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def score_batch(self, scorer_name: str, scorer: Any, frames: Sequence[Frame]) -> Any:
            values = yield
            seen.append((scorer_name, len(frames)))
            return [min(1.0, v * 2) for v in values]  # a wrapper may also adjust the result

    clip = synth.write_synth(tmp_path / "c.qsynth", frames=10, width=32, height=24)
    host = make_host(GOOD, Wrapper(), names=["good", "wrapper"], synth=True)
    plain = run_plugin(GOOD, clip, name="good", scorers=["kit.sharpness"])
    wrapped = run_plugin(host, clip, scorers=["kit.sharpness"])
    assert seen == [("kit.sharpness", 4), ("kit.sharpness", 4), ("kit.sharpness", 2)]
    assert wrapped.scores("kit.sharpness") == pytest.approx([min(1.0, 2 * v) for v in plain.scores("kit.sharpness")])


def test_make_host_rejects_misspelt_hooks() -> None:
    class Typo:
        @hookimpl
        def register_scorer(self, register: Any) -> None:
            pass

    with pytest.raises(PluginError, match="register_scorer"):
        make_host(Typo())
