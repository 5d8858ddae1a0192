"""Entry point of the ``usgan`` command: the root group, built-in commands, plugin commands."""

from __future__ import annotations

from usgan.core.plugin_manager import call_each, get_plugins

from .app import cli
from .bench_cmd import bench_cmd
from .data_cmd import data_group
from .demo_cmd import demo_cmd
from .eval_cmd import audit_cmd, eval_cmd
from .experiment_cmd import experiment_group
from .plugins_cmd import plugins_group
from .reproduce_cmd import reproduce_cmd
from .sample_cmd import sample_cmd
from .train_cmd import train_cmd
from .zoo_cmd import zoo_group

cli.add_command(plugins_group)
cli.add_command(train_cmd)
cli.add_command(sample_cmd)
cli.add_command(data_group)
cli.add_command(demo_cmd)
cli.add_command(eval_cmd)
cli.add_command(audit_cmd)
cli.add_command(zoo_group)
cli.add_command(experiment_group)
cli.add_command(bench_cmd)
cli.add_command(reproduce_cmd)


def _add_plugin_commands() -> None:
    call_each(get_plugins(), "register_commands", lambda name, info: {"cli": cli})


def main(argv: list[str] | None = None) -> None:
    """Run the ``usgan`` command line."""
    from usgan.core.errors import UsganError

    from .app import fail

    try:
        _add_plugin_commands()
    except UsganError as err:  # e.g. USGAN_STRICT_PLUGINS=1 and a broken plugin
        fail(str(err))
    cli.main(args=argv, prog_name="usgan")
