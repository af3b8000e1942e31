"""Shared command-line plumbing for ``fer-degrade`` and ``fer-bench``.

* :class:`FerGroup` -- a rich-click group that turns a :class:`~fercore.errors.FerError` into
  one red line on stderr and exit status 2 (no traceback: the message already says what to fix),
  and a usage error (an unknown flag, a value out of range) into one line naming the flag and
  the command's ``--help``, with click's exit status.
* :func:`source_options` -- the ``--src / --root / --src-opt`` trio every data command takes.
"""

from __future__ import annotations

import errno
import functools
import sys

import rich_click as click

from .errors import FerError
from .progress import console

click.rich_click.TEXT_MARKUP = "markdown"
click.rich_click.SHOW_ARGUMENTS = True
click.rich_click.GROUP_ARGUMENTS_OPTIONS = False
click.rich_click.MAX_WIDTH = 100


class FerGroup(click.RichGroup):
    """Click group whose commands report toolkit errors cleanly."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rc = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # a group called bare: its help
            print(exc.message)
            sys.exit(exc.exit_code)
        except click.exceptions.UsageError as exc:
            where = f" ({exc.ctx.command_path} --help)" if exc.ctx is not None else ""
            console.print(f"[bold red]error:[/] {_escape(exc.format_message())}{_escape(where)}", soft_wrap=True)
            sys.exit(exc.exit_code)
        except click.exceptions.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.exceptions.Abort:
            console.print("Aborted!")
            sys.exit(1)
        sys.exit(rc if isinstance(rc, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FerError as exc:
            _fail(str(exc))
        except OSError as exc:  # a read-only or full disk, a file too large, a name too long ...
            if exc.errno == errno.EPIPE:
                raise  # output piped into `head`: rich-click exits quietly
            _fail(os_error_message(exc))
        except UnicodeDecodeError as exc:  # a binary file where text was expected
            _fail(f"a file is not UTF-8 text ({exc.reason} at byte {exc.start}); is it the right file?")


def os_error_message(exc: OSError) -> str:
    """One line for an operating-system error: the file, what went wrong, and that finished work
    is kept (outputs are written atomically; re-running resumes)."""
    where = exc.filename if exc.filename is not None else ""
    what = exc.strerror or str(exc) or type(exc).__name__
    return (f"{where}: {what}" if where else what) + \
        " (nothing half-written was left; fix this and re-run to resume)"


def _fail(message: str, status: int = 2) -> None:
    console.print(f"[bold red]error:[/] {_escape(message)}", soft_wrap=True)
    sys.exit(status)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


class SourceChoice(click.Choice):
    """``--src``: the sources registered when the option is read (a plugin may add one)."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        from .sources import SOURCES

        return tuple(SOURCES)

    @choices.setter
    def choices(self, value) -> None:  # click's __init__ assigns; the live list wins
        pass


def source_options(default_src: str | None = "sample"):
    """Decorator adding ``--src``, ``--root`` and repeatable ``--src-opt KEY=VALUE``."""

    def deco(fn):
        @click.option("--src", "src", type=SourceChoice(), default=default_src,
                      show_default=True, help="Dataset source (layout) to read.")
        @click.option("--root", type=click.Path(file_okay=False, path_type=str), default=None,
                      help="Folder holding your copy of the dataset (not needed for `sample`).")
        @click.option("--src-opt", "src_opts", multiple=True, metavar="KEY=VALUE",
                      help="Source option, repeatable, e.g. `--src-opt classes=7` for ferplus. "
                           "`fer-bench data sources` lists them.")
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)

        return wrapper

    return deco


def open_source(src: str, root: str | None, src_opts: tuple[str, ...] = ()):
    """Build the source named on the command line."""
    from .options import parse_options
    from .sources import get_source

    return get_source(src, root, **parse_options(src_opts))
