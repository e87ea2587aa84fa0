"""The graph's nodes, one module each: generate, validate, review, refine, finalize.

Each node is a thin function ``(state, config, runtime, ...) -> partial update``: it
reads its inputs from the state and the run's :class:`graph.config.Settings` from
``runtime.context`` (resolved once, when the run starts), and calls the roles
(:mod:`roles`) with the model provider it was given. The model-calling logic lives in
the roles, so the single-agent routes, the command line and the benchmarks share it.
Nodes never mutate the state they are given and are safe to run twice (a resumed run
repeats the node that was interrupted).
"""

from nodes.finalize import finalize
from nodes.generate import generate
from nodes.refine import refine
from nodes.review import review
from nodes.validate import validate

__all__ = ["finalize", "generate", "refine", "review", "validate"]
