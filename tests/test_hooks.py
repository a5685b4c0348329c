"""One test per hook, named ``test_hook_<name>``: a plugin implements the hook and the run shows its effect.

``tests/test_hook_docs.py`` fails when a hook of ``qplug/hookspecs.py`` has no such test here.
"""

from __future__ import annotations

import json
import os

from qplug import AskerInfo, DescriberInfo, ScorerInfo, SourceInfo, WriterInfo, hookimpl
from qplug.pipeline import Run, RunOptions
from qplug.plugins import new_host
from qplug.reporting import Output, Reporter
from qplug.types import FrameResult

from . import synthetic_plugin


def _host(*plugins):
    host = new_host()
    host.add_plugin(synthetic_plugin, name="synthetic")
    for index, plugin in enumerate(plugins):
        host.add_plugin(plugin, name=f"extra{index}")
    return host


def _clip(tmp_path, levels=(0, 128, 255)):
    path = tmp_path / "a.synth"
    path.write_text(json.dumps({"levels": list(levels)}))
    return str(path)


def _frames(run):
    return [item for item in run if isinstance(item, FrameResult)]


def test_hook_register_sources(tmp_path):
    class Upper(synthetic_plugin.SynthSource):
        pass

    class Plugin:
        @hookimpl
        def register_sources(self, register):
            register(SourceInfo(name="upper", factory=Upper, description="", extensions=(".upper",)))

    host = _host(Plugin())
    assert host.catalog().source_for("X.UPPER").name == "upper"
    path = tmp_path / "b.upper"
    path.write_text(json.dumps({"levels": [10, 20]}))
    assert len(_frames(Run([str(path)], RunOptions(scorers=["brightness"]), host))) == 2


def test_hook_register_scorers(tmp_path):
    class Half:
        def score(self, frames):
            return [0.5] * len(frames)

    class Plugin:
        @hookimpl
        def register_scorers(self, register):
            register(ScorerInfo(name="half", factory=Half, description="", range=(0, 1), higher_is_better=True))

    frames = _frames(Run([_clip(tmp_path)], RunOptions(scorers=["half"]), _host(Plugin())))
    assert [f.scores["half"] for f in frames] == [0.5, 0.5, 0.5]


def test_hook_register_describers(tmp_path):
    class Plugin:
        @hookimpl
        def register_describers(self, register):
            register(DescriberInfo(name="size", factory=lambda: type("D", (), {
                "describe": lambda self, frames: [f"{f.width}x{f.height}" for f in frames]})(),
                description="", needs_model=False))

    frames = _frames(Run([_clip(tmp_path)], RunOptions(scorers=[], describers=["size"]), _host(Plugin())))
    assert {f.descriptions["size"] for f in frames} == {"8x6"}


def test_hook_register_askers(tmp_path):
    class Always:
        def ask(self, frames, question, choices=None):
            return [choices[0] if choices else "yes" for _ in frames]

    class Plugin:
        @hookimpl
        def register_askers(self, register):
            register(AskerInfo(name="always", factory=Always, description="", needs_model=False))

    run = Run([_clip(tmp_path)], RunOptions(scorers=[], askers=["always"], question="Blurry?", choices=["no", "yes"]),
              _host(Plugin()))
    assert {f.answers["always"]["text"] for f in _frames(run)} == {"no"}


def test_hook_register_writers(tmp_path):
    class Count:
        def __init__(self, stream, options):
            self.stream, self.frames = stream, 0

        def write_frame(self, result):
            self.frames += 1

        def write_source(self, summary):
            pass

        def close(self, run):
            self.stream.write(f"{self.frames} frames, {run.outcome}\n")

    class Plugin:
        @hookimpl
        def register_writers(self, register):
            register(WriterInfo(name="count", factory=Count, description="", extensions=(".count",)))

    host = _host(Plugin())
    run = Run([_clip(tmp_path)], RunOptions(scorers=["brightness"]), host)
    out = tmp_path / "r.count"
    reporter = Reporter([Output(str(out))], host.catalog())
    for item in run:
        (reporter.frame if isinstance(item, FrameResult) else reporter.source)(item)
    reporter.close(run.summary)
    assert out.read_text() == "3 frames, passed\n"


def test_hook_score_batch(tmp_path):
    calls = []

    class Trace:
        @hookimpl(wrapper=True)
        def score_batch(self, scorer_name, scorer, frames):
            values = yield
            calls.append((scorer_name, [f.index for f in frames]))
            return [v * 2 for v in values]

    frames = _frames(Run([_clip(tmp_path)], RunOptions(scorers=["brightness"]), _host(Trace())))
    assert calls == [("brightness", [0, 1, 2])]
    assert frames[2].scores["brightness"] == 2.0


def test_hook_register_converters(tmp_path, monkeypatch, capsys):
    from qplug import ConverterInfo, cli, plugins

    class Upper:
        def convert(self, source, output, suffix="", **options):
            os.makedirs(output)
            text = open(source, encoding="utf-8").read().upper() + suffix
            open(os.path.join(output, "model.txt"), "w", encoding="utf-8").write(text)
            return f"wrote {output}"

    class Plugin:
        @hookimpl
        def register_converters(self, register):
            register(ConverterInfo(name="upper", factory=Upper, description="upper-cases a text model",
                                   options={"suffix": "text appended to the model", "unused": "never given"},
                                   required=("suffix",)))

    host = _host(Plugin())
    monkeypatch.setattr(plugins, "_default", host)
    source = tmp_path / "release.txt"
    source.write_text("weights")
    out = tmp_path / "converted"
    assert cli.main(["convert", "upper", str(source), "--suffix", "!", str(out)]) == 0
    assert (out / "model.txt").read_text() == "WEIGHTS!"
    assert "wrote" in capsys.readouterr().err
    # The output must be new; required options are required; another converter's options are refused.
    assert cli.main(["convert", "upper", str(source), str(out), "--suffix", "!"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["convert", "upper", str(source), str(tmp_path / "b")]) == 2
    assert "needs --suffix" in capsys.readouterr().err
    assert cli.main(["convert", "nope", str(source), str(tmp_path / "c")]) == 2
    assert "unknown converter 'nope'" in capsys.readouterr().err
    assert cli.main(["converters"]) == 0
    assert "upper" in capsys.readouterr().out


def test_hook_find_reference(tmp_path):
    """A media-asset lookup answers before qplug's template; full-reference scorers get the frames."""
    masters = {}

    class Lookup:
        @hookimpl
        def find_reference(self, source_id, reference):
            return masters.get(os.path.basename(source_id))

    class Difference:
        def score(self, frames):
            return [abs(float(f.rgb.mean()) - float(f.reference.rgb.mean())) / 255 if f.reference else None
                    for f in frames]

    class Plugin:
        @hookimpl
        def register_scorers(self, register):
            register(ScorerInfo(name="diff", factory=Difference, description="", range=(0, 1),
                                higher_is_better=False, inputs=("rgb", "reference")))

    encode = _clip(tmp_path, levels=(100, 100, 100))
    master = tmp_path / "master.synth"
    master.write_text(json.dumps({"levels": [110, 110, 110, 110]}))
    masters["a.synth"] = str(master)
    host = _host(Plugin(), Lookup())
    run = Run([encode], RunOptions(scorers=["diff"], reference="{dir}/unused-{stem}.synth"), host)
    assert [round(f.scores["diff"] * 255) for f in _frames(run)] == [10, 10, 10]
    assert run.summary.exit_code == 0
    # Without the lookup the template answers: here it names a file that does not exist.
    masters.clear()
    run = Run([encode], RunOptions(scorers=["diff"], reference="{dir}/unused-{stem}.synth"), host)
    _frames(run)
    assert "unused-a.synth: file not found" in run.summary.sources[0].errors[0].reason


def test_hook_register_commands(monkeypatch, capsys):
    from qplug import CommandInfo, cli, plugins

    def setup(parser):
        parser.add_argument("--name", default="world")

        def handler(args):
            print(f"hello {args.name}")
            return 0 if args.name != "fail" else 2

        return handler

    class Plugin:
        @hookimpl
        def register_commands(self, register):
            register(CommandInfo(name="hello", setup=setup, description="say hello"))
            register(CommandInfo(name="score", setup=setup, description="tries to hide qplug score"))

    monkeypatch.setattr(plugins, "_default", _host(Plugin()))
    assert cli.main(["hello", "--name", "qc"]) == 0
    assert capsys.readouterr().out == "hello qc\n"
    assert cli.main(["hello", "--name", "fail"]) == 2
    capsys.readouterr()
    try:
        cli.main(["--help"])
    except SystemExit:
        pass
    captured = capsys.readouterr()
    assert "hello" in captured.out and "would hide qplug's own" in captured.err
