"""Every CLI command and option is documented in the README (datasette-style check)."""

from __future__ import annotations

from pathlib import Path

import typer.core
import typer.main

from lookalike.cli import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_command_and_option_is_in_the_readme() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    missing = []
    for name, command in group.commands.items():
        rows = [line for line in README.splitlines() if line.startswith(f"| `lookalike {name}")]
        if not rows:
            missing.append(f"command {name}")
            continue
        for param in command.params:
            documented = any(opt in rows[0] for opt in getattr(param, "opts", ()))
            if isinstance(param, typer.core.TyperOption) and not documented:
                missing.append(f"{name} {'/'.join(param.opts)}")
    assert not missing, f"not in README's command table: {missing}"
