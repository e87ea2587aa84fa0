"""Pictures of the graph, drawn offline: Mermaid text, ASCII art, or PNG bytes.

One drawing for the command line (``starcoder-agents graph``), the server
(``GET /graph``) and ``docs/ARCHITECTURE.md``.
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph.state import CompiledStateGraph

__all__ = ["GraphPictureError", "PictureFormat", "draw_graph"]

PictureFormat = Literal["mermaid", "ascii", "png"]


class GraphPictureError(RuntimeError):
    """The picture cannot be drawn here (a missing optional package); the message says which."""


def draw_graph(graph: CompiledStateGraph, fmt: PictureFormat) -> str | bytes:
    """Draw the graph as Mermaid or ASCII text, or PNG bytes (needs pygraphviz)."""
    drawable = graph.get_graph()
    if fmt == "mermaid":
        return drawable.draw_mermaid()
    if fmt == "ascii":
        try:
            return drawable.draw_ascii()
        except ImportError as exc:
            raise GraphPictureError(f"ASCII pictures need grandalf: {exc}") from exc
    try:
        png = drawable.draw_png(None)
    except ImportError as exc:
        raise GraphPictureError(f"PNG pictures need pygraphviz (and Graphviz): {exc}") from exc
    if not isinstance(png, bytes):
        raise GraphPictureError("the PNG renderer returned no image")
    return png
