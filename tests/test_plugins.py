"""Plugin loading: entry points, isolation of broken plugins, strict mode, allow-list, tracing."""

from __future__ import annotations

import sys
import textwrap

import pytest

from qplug.errors import PluginError
from qplug.plugins import load_host, new_host
from qplug.registry import ScorerInfo, resolve


def install_distribution(folder, monkeypatch, name, version, modules, entry_points):
    """Make ``folder`` hold a real installed distribution: its modules and a dist-info with entry points."""
    for module, source in modules.items():
        (folder / f"{module}.py").write_text(textwrap.dedent(source))
        sys.modules.pop(module, None)
    dist = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (dist / "entry_points.txt").write_text("[qplug]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    monkeypatch.syspath_prepend(str(folder))
    return folder


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    """Install three plugins as real distributions on sys.path: good, broken import, misspelled hook."""
    return install_distribution(tmp_path, monkeypatch, "qp-fake", "1.2.3", {
        "qp_good": """
            from qplug import ScorerInfo, hookimpl

            @hookimpl
            def register_scorers(register):
                register(ScorerInfo(name="good.flat", factory="qp_good_heavy:Flat", description="always 0.5",
                                    range=(0.0, 1.0), higher_is_better=True))
            """,
        "qp_good_heavy": """
            import sys
            sys.modules[__name__].IMPORTED = True
            class Flat:
                def score(self, frames):
                    return [0.5 for _ in frames]
            """,
        "qp_broken": "import a_module_that_does_not_exist\n",
        "qp_typo": """
            from qplug import hookimpl

            @hookimpl
            def register_scorer(register):  # missing the final s: would never be called
                pass
            """,
    }, {"good": "qp_good", "broken": "qp_broken", "typo": "qp_typo"})


def test_broken_plugins_are_reported_not_fatal(fake_plugins, monkeypatch):
    monkeypatch.delenv("QPLUG_LOAD_PLUGINS", raising=False)
    host = load_host(strict=False)
    records = {r.name: r for r in host.plugins()}
    assert records["good"].error is None and records["good"].version == "1.2.3"
    assert records["good"].registers == {"scorers": ["good.flat"]}
    assert "a_module_that_does_not_exist" in records["broken"].error
    assert "register_scorer" in records["typo"].error  # check_pending caught the misspelling
    assert "good.flat" in host.catalog().scorers


def test_registration_does_not_import_the_heavy_module(fake_plugins):
    host = load_host(allow=["good"])
    info = host.catalog().scorer("good.flat")
    assert "qp_good_heavy" not in sys.modules
    scorer = resolve(info.factory)()
    assert scorer.score([1, 2]) == [0.5, 0.5]
    assert "qp_good_heavy" in sys.modules


def test_strict_mode_makes_a_broken_plugin_fatal(fake_plugins):
    with pytest.raises(PluginError, match="broken"):
        load_host(strict=True, allow=["broken"])
    with pytest.raises(PluginError, match="register_scorer"):
        load_host(strict=True, allow=["typo"])


def test_strict_mode_from_the_environment(fake_plugins, monkeypatch):
    monkeypatch.setenv("QPLUG_STRICT_PLUGINS", "1")
    monkeypatch.setenv("QPLUG_LOAD_PLUGINS", "broken")
    with pytest.raises(PluginError):
        load_host()


def test_allow_list_limits_what_loads(fake_plugins, monkeypatch):
    monkeypatch.setenv("QPLUG_LOAD_PLUGINS", "good, typo")
    names = {r.name for r in load_host().plugins()}
    assert names == {"good", "typo"}
    monkeypatch.setenv("QPLUG_LOAD_PLUGINS", "")
    assert load_host().plugins() == []


def test_builtins_load_through_entry_points(monkeypatch):
    monkeypatch.delenv("QPLUG_LOAD_PLUGINS", raising=False)
    records = {r.name: r for r in load_host().plugins()}
    for builtin in ("images", "video", "qc", "reports"):
        assert builtin in records and records[builtin].error is None, records.get(builtin)


def test_tracing_logs_hook_calls(fake_plugins, monkeypatch, capsys):
    monkeypatch.setenv("QPLUG_TRACE_PLUGINS", "1")
    load_host(allow=["good"]).catalog()
    assert "register_scorers" in capsys.readouterr().err


def test_a_plugin_raising_in_a_hook_does_not_hide_the_others():
    class Exploding:
        from qplug.hookspecs import hookimpl

        @hookimpl
        def register_scorers(self, register):
            raise RuntimeError("boom")

    class Fine:
        from qplug.hookspecs import hookimpl

        @hookimpl
        def register_scorers(self, register):
            register(ScorerInfo(name="fine", factory=lambda: None, description="", range=(0, 1), higher_is_better=True))

    host = new_host()
    host.add_plugin(Exploding(), name="exploding")
    host.add_plugin(Fine(), name="fine")
    catalog = host.catalog()
    assert "fine" in catalog.scorers
    assert any("boom" in p for p in catalog.problems)
    assert {r.name: r for r in host.plugins()}["exploding"].error.endswith("boom")


def test_first_registration_of_a_name_wins():
    from qplug.hookspecs import hookimpl

    def make(tag):
        class P:
            @hookimpl
            def register_scorers(self, register):
                register(ScorerInfo(name="dup", factory=lambda: tag, description=tag, range=(0, 1), higher_is_better=True))
        return P()

    host = new_host()
    host.add_plugin(make("first"), name="a")
    host.add_plugin(make("second"), name="b")
    catalog = host.catalog()
    assert len(catalog.scorers) == 1 and any("already registered" in p for p in catalog.problems)


def test_registration_records_validate_their_metadata():
    with pytest.raises(PluginError, match="low < high"):
        ScorerInfo(name="x", factory="m:a", description="", range=(1, 1), higher_is_better=True)
    with pytest.raises(PluginError, match="lower-case"):
        ScorerInfo(name="Bad Name", factory="m:a", description="", range=(0, 1), higher_is_better=True)
    with pytest.raises(PluginError, match="package.module:attribute"):
        resolve("no_colon_here")
    with pytest.raises(PluginError, match="cannot load"):
        resolve("qplug:does_not_exist")


@pytest.fixture
def hostile_plugins(tmp_path, monkeypatch):
    """Two third-party plugins a host must survive: one takes a built-in's name, one exits on import."""
    monkeypatch.delenv("QPLUG_LOAD_PLUGINS", raising=False)
    # "acme" sorts before every built-in name: alphabetical order used to let it register first.
    return install_distribution(tmp_path, monkeypatch, "qp-hostile", "0.1", {
        "qp_acme": """
            from qplug import ScorerInfo, hookimpl

            @hookimpl
            def register_scorers(register):
                register(ScorerInfo(name="sharpness", factory="qp_acme:Fake", description="always perfect",
                                    range=(0.0, 1.0), higher_is_better=True))
            """,
        "qp_exiter": "import sys\nsys.exit(3)\n",
    }, {"acme": "qp_acme", "exiter": "qp_exiter"})


def test_a_third_party_plugin_cannot_take_a_built_in_name(hostile_plugins):
    host = load_host(strict=False, allow=["acme", "qc"])
    catalog = host.catalog()
    assert catalog.owners[("scorers", "sharpness")] == "qc"
    assert "perfect" not in catalog.scorers["sharpness"].description
    records = {r.name: r for r in host.plugins()}
    assert records["qc"].builtin and not records["acme"].builtin
    assert "built-in" in records["acme"].error
    assert any(p.startswith("error: acme") for p in catalog.problems)
    with pytest.raises(PluginError, match="built-in"):
        load_host(strict=True, allow=["acme", "qc"]).catalog()


def test_a_plugin_calling_sys_exit_on_import_does_not_end_the_host(hostile_plugins):
    host = load_host(strict=False, allow=["exiter", "qc"])
    records = {r.name: r for r in host.plugins()}
    assert "SystemExit" in records["exiter"].error
    assert "sharpness" in host.catalog().scorers
    assert any("exiter" in p for p in host.catalog().problems)


def test_the_cli_survives_hostile_plugins_and_warns(hostile_plugins):
    import os
    import subprocess

    env = dict(os.environ, PYTHONPATH=f"{hostile_plugins}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    env.pop("QPLUG_LOAD_PLUGINS", None)
    done = subprocess.run([sys.executable, "-m", "qplug", "plugins"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "exiter" in done.stderr and "SystemExit" in done.stderr
    assert "error: acme" in done.stderr and "Traceback" not in done.stderr
