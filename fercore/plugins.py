"""Plugins: your own models, degradations and dataset sources, without editing the toolkit.

A plugin is an ordinary Python module. Importing it runs its registrations:

* ``models.register_model(...)`` -- a method ``fer-bench run --methods NAME`` can train;
* ``degrade.registry.register_degradation(NAME, make, ...)`` -- a degradation: dataset names
  ``NAME-<base>`` (``blur-rafdb``) are built on demand by ``fer-bench run`` and rebuilt by
  ``fer-degrade rebuild NAME``;
* ``fercore.sources.register_source(cls)`` -- a dataset layout (``--src NAME``, ``--datasets NAME``).

Both CLIs load plugins the same way (:func:`load_plugins`): every module named with the
repeatable ``--import MODULE`` option (before or after the sub-command), and every entry point
of the group :data:`ENTRY_POINT_GROUP` (``fer_toolkit.plugins``) of the installed packages::

    # pyproject.toml of your package
    [project.entry-points."fer_toolkit.plugins"]
    mylab = "mylab.fer_plugin"

A module that fails to import stops the command with one line naming it. docs/plugins.md walks
through a complete example.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from .errors import ConfigError

#: The entry-point group every installed plugin package declares.
ENTRY_POINT_GROUP = "fer_toolkit.plugins"

_LOADED: dict[str, str] = {}  # module name -> how it was found ("--import" or "entry point NAME")


def _import(module: str, how: str) -> None:
    if module in _LOADED:
        return
    try:
        importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 -- any failure of a plugin is reported as one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ConfigError(f"cannot import plugin module {module!r}{f' ({how})' if how != '--import' else ''}: {type(exc).__name__}"
                          + (f": {first}" if first else ""), flag="--import") from None
    _LOADED[module] = how


def entry_point_modules() -> list[tuple[str, str]]:
    """``(entry point name, module)`` of every installed plugin (group ``fer_toolkit.plugins``),
    sorted by name so the load order does not depend on the installation order."""
    from importlib.metadata import entry_points

    eps = entry_points(group=ENTRY_POINT_GROUP)
    return sorted(((ep.name, ep.value.split(":", 1)[0].strip()) for ep in eps))


def load_plugins(modules: Iterable[str] = (), *, entry_points: bool = True) -> list[str]:
    """Import the installed plugins (entry points) and then ``modules``; return the modules
    imported so far. Each module is imported once per process, so calling this again (the
    option given at the group and at the sub-command, several CLIs in one test) is cheap.

    Raises :class:`~fercore.errors.ConfigError` (flag ``--import``) naming the module that
    failed to import, and why, in one line.
    """
    if entry_points:
        for name, module in entry_point_modules():
            _import(module, f"entry point {name!r} of group {ENTRY_POINT_GROUP}")
    for module in modules:
        module = module.strip()
        if not module:
            raise ConfigError("empty module name", flag="--import")
        _import(module, "--import")
    return list(_LOADED)


def loaded_plugins() -> dict[str, str]:
    """Module -> how it was loaded (``--import`` or its entry point), for run records."""
    return dict(_LOADED)


# ------------------------------------------------------------------------ CLI option
def _load_callback(ctx, param, value) -> None:
    if ctx.resilient_parsing:  # shell completion: import nothing
        return
    try:
        load_plugins(value or ())
    except ConfigError as exc:
        from .cli import _fail

        _fail(str(exc))


def import_option():
    """The repeatable, eager ``--import MODULE`` option (loads entry points too)."""
    import rich_click as click

    return click.Option(["--import", "imports"], multiple=True, metavar="MODULE", is_eager=True,
                        expose_value=False, callback=_load_callback,
                        help="Import this Python module first (repeatable): a plugin that registers models, "
                             "degradations or dataset sources (docs/plugins.md). Installed plugins (entry "
                             f"point group `{ENTRY_POINT_GROUP}`) are loaded always.")


def add_import_option(group) -> None:
    """Give ``group`` and every command under it the ``--import`` option, so
    ``fer-bench --import M run`` and ``fer-bench run --import M`` both work. Eager: the modules
    are imported before any other option of that command is read."""
    import click

    commands = [group]
    while commands:
        cmd = commands.pop()
        if not any(p.name == "imports" for p in cmd.params):
            cmd.params.insert(0, import_option())
        if isinstance(cmd, click.Group):
            commands.extend(cmd.commands.values())
