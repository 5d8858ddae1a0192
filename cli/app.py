"""The root ``usgan`` click group and its error handling.

Every `UsganError` (and OS-level failure such as a missing file) becomes one line on stderr
and a non-zero exit; ``--debug`` (or ``USGAN_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import click

from usgan import __version__
from usgan.core.errors import UsganError
from usgan.core.runtime import handling

EXIT_USER_ERROR = 2
EXIT_INTERNAL = 1


def debug_enabled(ctx: click.Context | None = None) -> bool:
    """True with ``--debug`` or ``USGAN_DEBUG=1``."""
    if os.environ.get("USGAN_DEBUG", "") not in {"", "0"}:
        return True
    while ctx is not None:
        if isinstance(ctx.obj, dict) and ctx.obj.get("debug"):
            return True
        ctx = ctx.parent
    return False


def fail(message: str, code: int = EXIT_USER_ERROR) -> None:
    """Print ``usgan: error: message`` on stderr and exit with ``code``."""
    click.echo(f"usgan: error: {message}", err=True)
    sys.exit(code)


def _terminated(signum: int, frame: Any) -> None:
    """SIGTERM as Ctrl-C: the command stops the way it stops on KeyboardInterrupt."""
    raise KeyboardInterrupt


class UsganGroup(click.Group):
    """A click group that turns known failures into one clear line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with handling(signal.SIGTERM, _terminated):  # `kill`: as Ctrl-C, nothing half-written
                return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            if debug_enabled(ctx):
                raise
            fail("interrupted", 130)
        except UsganError as err:
            if debug_enabled(ctx):
                raise
            fail(str(err), getattr(err, "exit_code", EXIT_USER_ERROR))
        except OSError as err:
            if debug_enabled(ctx):
                raise
            where = f"{err.filename}: " if getattr(err, "filename", None) else ""
            fail(f"{where}{err.strerror or err}")
        except Exception as err:
            if debug_enabled(ctx):
                raise
            fail(f"internal error: {type(err).__name__}: {err} (run with --debug for the "
                 "traceback and please report it)", EXIT_INTERNAL)


@click.group(cls=UsganGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="usgan")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """usgan: stacked GANs for realistic ultrasound image synthesis.

    Stage-I makes a mid-resolution image from noise; Stage-II refines it to 256x256.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
