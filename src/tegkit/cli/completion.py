"""`teg completion SHELL`: print the shell completion script (click's own completion).

Equivalent to `_TEG_COMPLETE=bash_source teg`; put one of these in the shell's startup file:

    eval "$(_TEG_COMPLETE=bash_source teg)"          # ~/.bashrc
    eval "$(_TEG_COMPLETE=zsh_source teg)"           # ~/.zshrc
    _TEG_COMPLETE=fish_source teg | source           # ~/.config/fish/completions/teg.fish
"""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    \b
    Example:
      eval "$(teg completion bash)"       # or: eval "$(_TEG_COMPLETE=bash_source teg)"
      teg completion fish > ~/.config/fish/completions/teg.fish
    """
    cls = get_completion_class(shell)
    assert cls is not None, "click ships bash, zsh and fish"
    root = ctx.find_root().command
    click.echo(cls(root, {}, "teg", "_TEG_COMPLETE").source())
