"""Command groups that live in their own modules, registered on the main app.

Each module named in ``MODULES`` defines ``register(app, capture_app)`` and imports
its heavy dependencies inside the command functions, never at module level.
"""

from __future__ import annotations

import importlib

import typer

MODULES: tuple[str, ...] = ("live", "dashboard", "contract")


def register_all(app: typer.Typer, capture_app: typer.Typer) -> None:
    for name in MODULES:
        module = importlib.import_module(f"busdoc.commands.{name}")
        module.register(app, capture_app)
