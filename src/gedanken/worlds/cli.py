"""``gedanken worlds``: list the built-in worlds, their Gymnasium ids, action spaces and objects."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from gedanken.worlds import SPLITS, WORLD_ENTRIES, make_world


def register(app: typer.Typer) -> None:
    @app.command("worlds")
    def worlds_cmd() -> None:
        """List the built-in ground-truth worlds (see docs/worlds.md for their parameter splits)."""
        table = Table(title="gedanken worlds")
        for col in ("name", "gym id", "action", "objects (slots)"):
            table.add_column(col, no_wrap=col != "objects (slots)")  # names and ids are copied, never cut
        for name, entry in WORLD_ENTRIES.items():
            env = make_world(name, split="train")
            env.reset(seed=0)
            spec = env.action_spec()
            action = {"none": "passive", "discrete": f"Discrete({spec.n})"}.get(spec.kind, f"Box({spec.dim})")
            slots = [k for k in env.metadata["kinds"] if k]
            kinds = ", ".join(f"{slots.count(k)}×{k}" for k in dict.fromkeys(slots))
            table.add_row(name, entry.gym_id, action, kinds)
            env.close()
        Console().print(table)
        Console().print(f"splits: {', '.join(SPLITS)}")
