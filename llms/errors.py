"""The one error the model layer raises when a model cannot be made ready."""

from __future__ import annotations

__all__ = ["ModelLoadError"]


class ModelLoadError(Exception):
    """A model could not be loaded; the message names the model and the reason."""

    def __init__(self, model: str, reason: str) -> None:
        super().__init__(f"cannot load model {model!r}: {reason}")
        self.model = model
        self.reason = reason
