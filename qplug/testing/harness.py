"""Hosts for tests: a plugin under test in a fresh plugin manager, and a whole run around it.

Tests should never use the process-wide host (:func:`qplug.plugins.get_host`): it loads every
installed plugin, so a test would depend on what else happens to be installed. These helpers build
a host holding exactly the plugins a test names.
"""

from __future__ import annotations

import os
from importlib import metadata
from typing import Any, Iterable, Sequence

from qplug.errors import PluginError
from qplug.plugins import allowed_plugin_names, ENTRY_POINT_GROUP, PluginHost, new_host

#: The distribution whose entry points are qplug's own plugins.
BUILTIN_DISTRIBUTION = "qplug"


def plugin_name(plugin: object) -> str:
    """The name a plugin gets when a test does not give one: its module name, else its class name."""
    return getattr(plugin, "__name__", None) or type(plugin).__name__


def builtin_plugin_names(honour_allow_list: bool = True) -> list[str]:
    """Entry-point names of the plugins qplug itself ships (``images``, ``video``...).

    With ``honour_allow_list``, ``QPLUG_LOAD_PLUGINS`` narrows the list, as it does for ``qplug``.
    """
    names = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        if dist is not None and _normalise(dist.metadata["Name"] or "") == BUILTIN_DISTRIBUTION:
            names.append(ep.name)
    allowed = allowed_plugin_names() if honour_allow_list else None
    return sorted(n for n in set(names) if allowed is None or n in allowed)


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def add_builtins(host: PluginHost, names: Iterable[str] | None = None) -> list[str]:
    """Load qplug's built-in plugins into ``host`` (all, or ``names``); return the names added.

    Unlike :func:`qplug.plugins.load_host`, a built-in that fails to load raises: in a test that
    is a failure to see, not a warning to skip.
    """
    wanted = set(builtin_plugin_names() if names is None else names)
    added = []
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name not in wanted or host.pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(f"built-in plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        version = ep.dist.version if getattr(ep, "dist", None) is not None else None
        host.add_plugin(plugin, name=ep.name, version=version, module=ep.value)
        added.append(ep.name)
    return added


def make_host(*plugins: object, names: Sequence[str] | None = None, builtins: bool = False,
              synth: bool = False) -> PluginHost:
    """A fresh host with ``plugins`` registered first (so their names win any clash).

    :param names: names to register the plugins under (default: :func:`plugin_name`).
    :param builtins: also load qplug's built-in plugins (honouring ``QPLUG_LOAD_PLUGINS``).
    :param synth: also register the ``.qsynth`` test source (:mod:`qplug.testing.synth`).
    :raises PluginError: when a plugin implements a hook qplug does not have (a misspelling).
    """
    host = new_host()
    given = list(names) if names is not None else [plugin_name(p) for p in plugins]
    if len(given) != len(plugins):
        raise ValueError("give one name per plugin")
    for plugin, name in zip(plugins, given):
        host.add_plugin(plugin, name=name)
    if synth:
        from . import synth as synth_plugin

        if not host.pm.is_registered(synth_plugin):
            host.add_plugin(synth_plugin, name="qplug-testing-synth")
    if builtins:
        add_builtins(host)
    try:
        host.pm.check_pending()
    except Exception as exc:  # pluggy.PluginValidationError
        raise PluginError(str(exc)) from exc
    return host


def _needs_builtins(host: PluginHost, paths: Sequence[str]) -> bool:
    catalog = host.catalog()
    for path in paths:
        if os.path.isdir(path) or not os.path.exists(path) and set("*?[") & set(path):
            return True  # cannot tell cheaply what a directory or pattern holds
        if catalog.source_for(path) is None:
            return True
    return False


_SAMPLING_KEYS = ("fps", "every", "start", "end", "max_frames", "max_side")


def run_plugin(plugin_or_host: object, paths: "str | os.PathLike[str] | Iterable[str | os.PathLike[str]]", *,
               name: str | None = None, builtins: bool | None = None, synth: bool = True, **kwargs: Any) -> Any:
    """Run qplug over ``paths`` with one plugin in a fresh host; return :class:`qplug.api.ScoreResult`.

    :param plugin_or_host: a plugin (module or object with hook implementations), or a ready
        :class:`~qplug.plugins.PluginHost` used as is.
    :param name: the plugin's name in the host (default: :func:`plugin_name`).
    :param builtins: load qplug's built-in plugins too: True, False, or None to load them only when
        some input has no source among the plugin and the ``.qsynth`` source.
    :param synth: register the ``.qsynth`` source, so tests can feed synthetic clips.
    :param kwargs: sampling (``fps``, ``every``, ``start``, ``end``, ``max_frames``, ``max_side``)
        and any :class:`qplug.pipeline.RunOptions` field (``scorers``, ``describers``, ``askers``,
        ``question``, ``choices``, ``scorer_options``, ``events``, ``gates``...). When no scorer,
        describer or asker is named, the scorers the plugin registers are run.
    """
    from qplug.api import ScoreResult
    from qplug.pipeline import Run, RunOptions
    from qplug.types import FrameResult, Sampling

    path_list = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
    if isinstance(plugin_or_host, PluginHost):
        host = plugin_or_host
        owner = None
    else:
        owner = name or plugin_name(plugin_or_host)
        host = make_host(plugin_or_host, names=[owner], synth=synth)
        if builtins or (builtins is None and _needs_builtins(host, path_list)):
            add_builtins(host)
    if owner is not None and "scorers" not in kwargs and not kwargs.get("describers") and not kwargs.get("askers"):
        catalog = host.catalog()
        own = [n for n in catalog.scorers if catalog.owners.get(("scorers", n)) == owner]
        if own:
            kwargs["scorers"] = own
    sampling = Sampling(**{k: kwargs.pop(k) for k in _SAMPLING_KEYS if k in kwargs})
    # RunOptions rather than qplug.api.run's keywords: every option a run has is reachable here.
    run = Run(path_list, RunOptions(sampling=sampling, **kwargs), host)
    result = ScoreResult(summary=run.summary)
    result.frames.extend(item for item in run if isinstance(item, FrameResult))
    return result
