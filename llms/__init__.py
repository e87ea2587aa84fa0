"""The model layer: the only place models are built.

``load_model(name)`` returns a :class:`LoadedModel` whose ``for_role(role)`` is a chat
model (messages in, ``AIMessage`` out) with that role's settings and stop rule;
``list_models()`` and ``check_model(name)`` (in :mod:`llms.catalog`) serve the command line.
"""

from llms.catalog import check_model, list_models
from llms.errors import ModelLoadError
from llms.loading import LoadedModel, load_model
from llms.presets import DEFAULT_MODEL, PRESETS, Role

__all__ = [
    "DEFAULT_MODEL",
    "PRESETS",
    "LoadedModel",
    "ModelLoadError",
    "Role",
    "check_model",
    "list_models",
    "load_model",
]
