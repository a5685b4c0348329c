"""Loading plugins: entry points of the group ``qplug``, built-ins included, each failure isolated.

Environment:
- ``QPLUG_LOAD_PLUGINS``: comma-separated entry-point names to load (empty string: none at all);
  unset means every installed plugin.
- ``QPLUG_TRACE_PLUGINS=1``: log every hook call and its result to stderr.
- ``QPLUG_STRICT_PLUGINS=1``: a plugin that fails to load is fatal (same as ``strict=True``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Iterable

import pluggy

from . import hookspecs
from .errors import PluginError, Terminated
from .reference import TemplateReference
from .registry import Catalog, Info

ENTRY_POINT_GROUP = "qplug"
_REGISTRATION_HOOKS = {
    "sources": "register_sources",
    "scorers": "register_scorers",
    "describers": "register_describers",
    "askers": "register_askers",
    "writers": "register_writers",
    "converters": "register_converters",
    "commands": "register_commands",
}


@dataclass
class PluginRecord:
    """One plugin as ``qplug plugins`` shows it."""

    name: str
    module: str
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    registers: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None
    #: shipped with qplug itself: loaded first, and its names cannot be taken by another plugin
    builtin: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "module": self.module, "version": self.version, "hooks": self.hooks,
                "registers": self.registers, "error": self.error, "builtin": self.builtin}


class _CoreScoring:
    """The default ``score_batch``: run the scorer. Wrappers from other plugins go around it."""

    @hookspecs.hookimpl(trylast=True)
    def score_batch(self, scorer_name: str, scorer: Any, frames: Any) -> Any:
        return scorer.score(frames)


def allowed_plugin_names() -> set[str] | None:
    """The entry-point names ``QPLUG_LOAD_PLUGINS`` allows (None: every plugin)."""
    raw = os.environ.get("QPLUG_LOAD_PLUGINS")
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


class PluginHost:
    """A plugin manager with qplug's hooks, the loaded plugins and what they registered."""

    def __init__(self, pm: pluggy.PluginManager, trace: bool = False, strict: bool = False) -> None:
        self.pm = pm
        self.trace = trace
        self.strict = strict
        self.records: dict[str, PluginRecord] = {}
        self._catalog: Catalog | None = None

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def add_plugin(self, plugin: object, name: str, version: str | None = None, module: str | None = None,
                   builtin: bool = False) -> None:
        """Register a plugin object or module by hand (tests, notebooks, embedding applications)."""
        self.pm.register(plugin, name=name)
        self.records[name] = PluginRecord(name=name, module=module or getattr(plugin, "__name__", type(plugin).__name__),
                                          version=version, hooks=self._hooks_of(plugin), builtin=builtin)
        self._catalog = None

    def _hooks_of(self, plugin: object) -> list[str]:
        callers = self.pm.get_hookcallers(plugin) or []
        return sorted(caller.name for caller in callers)

    def catalog(self) -> Catalog:
        """Call the registration hooks (once) and collect their records, plugin by plugin.

        Each plugin is called on its own so that one plugin raising does not hide the others.
        """
        if self._catalog is not None:
            return self._catalog
        catalog = Catalog()
        for record in sorted(self.records.values(), key=lambda r: r.name):
            if record.error is not None:
                catalog.problems.append(f"plugin {record.name} ({record.module}) failed to load: {record.error}")
        builtins = {name for name, record in self.records.items() if record.builtin}
        for kind, hook_name in _REGISTRATION_HOOKS.items():
            # Built-ins first: their names are taken before any third-party plugin registers.
            impls = sorted(getattr(self.pm.hook, hook_name).get_hookimpls(),
                           key=lambda impl: (impl.plugin_name not in builtins, impl.plugin_name))
            for impl in impls:
                owner = impl.plugin_name
                collected: list[Info] = []
                try:
                    impl.function(collected.append)
                except (KeyboardInterrupt, Terminated):
                    raise
                except BaseException as exc:  # a plugin's bug (even sys.exit()) must not take the host down
                    message = f"{hook_name} failed: {type(exc).__name__}: {exc}"
                    catalog.problems.append(f"{owner}: {message}")
                    record = self.records.get(owner)
                    if record is not None:
                        record.error = message
                    continue
                hijacked = [i.name for i in collected
                            if owner not in builtins and catalog.owners.get((kind, i.name)) in builtins]
                if hijacked:
                    # Taking a built-in's name would swap what users and gates rely on: refuse the plugin's
                    # whole registration for this kind, loudly.
                    message = (f"registers {kind[:-1]} name(s) {', '.join(hijacked)} that belong to qplug's "
                               f"built-in plugins; rename them (nothing of this plugin's {kind} was loaded)")
                    catalog.problems.append(f"error: {owner}: {message}")
                    record = self.records.get(owner)
                    if record is not None:
                        record.error = message
                    if self.strict:
                        raise PluginError(f"plugin {owner!r} {message}")
                    continue
                if self.trace:
                    # Registration hooks are called per plugin (not through pm.hook), so trace them here.
                    _trace(f"{hook_name} [{owner}] registered {[i.name for i in collected]}\n")
                for info in collected:
                    catalog.add(kind, info, owner)
                    record = self.records.get(owner)
                    if record is not None:
                        record.registers.setdefault(kind, []).append(info.name)
        self._catalog = catalog
        return catalog

    def plugins(self) -> list[PluginRecord]:
        self.catalog()
        return sorted(self.records.values(), key=lambda r: r.name)


def new_host(trace: bool | None = None) -> PluginHost:
    """A host with qplug's hook specifications and the core scoring hook, but no plugins yet."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(_CoreScoring(), name="qplug.core")
    pm.register(TemplateReference(), name="qplug.reference")
    tracing = trace if trace is not None else _truthy("QPLUG_TRACE_PLUGINS")
    if tracing:
        pm.trace.root.setwriter(_trace)
        pm.enable_tracing()
    return PluginHost(pm, trace=tracing)


def _trace(message: str) -> None:
    sys.stderr.write(f"[qplug trace] {message}")


def load_host(strict: bool | None = None, allow: Iterable[str] | None = None, trace: bool | None = None) -> PluginHost:
    """Build a host and load every plugin of the ``qplug`` entry-point group.

    :param strict: raise :class:`PluginError` when a plugin fails to import (default: ``QPLUG_STRICT_PLUGINS``).
    :param allow: names of entry points to load (default: ``QPLUG_LOAD_PLUGINS``, else all).
    :param trace: log hook calls to stderr (default: ``QPLUG_TRACE_PLUGINS``).
    """
    strict = _truthy("QPLUG_STRICT_PLUGINS") if strict is None else strict
    allowed = set(allow) if allow is not None else allowed_plugin_names()
    host = new_host(trace=trace)
    host.strict = strict
    # qplug's own plugins first, then the others by name: order decides who owns a name.
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (not _is_builtin(e), e.name)):
        if allowed is not None and ep.name not in allowed:
            continue
        if host.pm.has_plugin(ep.name):
            continue  # the same distribution installed twice on sys.path
        version = ep.dist.version if ep.dist is not None else None
        try:
            plugin = ep.load()
            host.add_plugin(plugin, name=ep.name, version=version, module=ep.value, builtin=_is_builtin(ep))
        except (KeyboardInterrupt, Terminated):
            raise
        except BaseException as exc:  # ImportError, a bad hookimpl, even sys.exit() at import time
            if strict:
                raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}") from exc
            host.records[ep.name] = PluginRecord(name=ep.name, module=ep.value, version=version,
                                                 error=f"{type(exc).__name__}: {exc}", builtin=_is_builtin(ep))
    _drop_plugins_with_unknown_hooks(host, strict)
    return host


def _is_builtin(ep: metadata.EntryPoint) -> bool:
    """True for the entry points qplug's own distribution declares."""
    dist = ep.dist
    return dist is not None and (dist.metadata["Name"] or "").lower() == "qplug"


def _drop_plugins_with_unknown_hooks(host: PluginHost, strict: bool) -> None:
    """``check_pending``: a hook a plugin misspelled would otherwise never be called, silently."""
    while True:
        try:
            host.pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            if strict:
                raise PluginError(str(exc)) from exc
            name = host.pm.get_name(exc.plugin)
            host.pm.unregister(exc.plugin)
            if name is not None:
                record = host.records.setdefault(name, PluginRecord(name=name, module="?"))
                record.error = str(exc)
                record.hooks = []
            host._catalog = None


_default: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide host, loaded on first use."""
    global _default
    if _default is None:
        _default = load_host()
    return _default
