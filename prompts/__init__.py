"""The text each role sends to a model, kept in one place.

Each prompt is a Markdown file in this package with ``$name`` slots
(:class:`string.Template`). :func:`render` fills them and fails loudly when a slot
is missing, so a prompt and the code that fills it cannot drift apart silently.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from string import Template

__all__ = ["PROMPT_NAMES", "load", "render"]

PROMPT_NAMES = (
    "generator_system",
    "generator_user",
    "completion_system",
    "completion_user",
    "request_user",
    "tester_system",
    "tester_user",
    "reviewer_system",
    "reviewer_user",
    "refiner_system",
    "refiner_user",
    "arbiter_system",
    "arbiter_user",
)


@cache
def load(name: str) -> Template:
    """Return the template of prompt ``name`` (one of :data:`PROMPT_NAMES`)."""
    if name not in PROMPT_NAMES:
        raise KeyError(f"unknown prompt {name!r}; known: {', '.join(PROMPT_NAMES)}")
    text = resources.files(__package__).joinpath(f"{name}.md").read_text(encoding="utf-8")
    return Template(text.strip() + "\n")


def render(name: str, /, **slots: object) -> str:
    """Fill prompt ``name`` with ``slots``; a missing slot raises ``KeyError``."""
    return load(name).substitute({key: str(value) for key, value in slots.items()})
