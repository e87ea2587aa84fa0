"""The graph's nodes, one module each: generate, validate, review, refine, finalize.

Each node is a small function ``(state, config, ...) -> partial update`` that reads
its inputs from the state, its options from :class:`graph.config.Settings`, and its
model from an injected :class:`nodes.common.ModelProvider`. Nodes never mutate the
state they are given and are safe to run twice (a resumed run repeats the node that
was interrupted).
"""

from nodes.finalize import finalize
from nodes.generate import generate
from nodes.refine import refine
from nodes.review import review
from nodes.validate import validate

__all__ = ["finalize", "generate", "refine", "review", "validate"]
