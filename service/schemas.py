"""Request models whose JSON schema the LangServe playground can draw and submit.

The playground builds its form from the input schema and validates it with the same
schema. Two things pydantic writes by default break it: ``X | None`` becomes
``anyOf: [X, null]`` (the form builder fails on the ``null`` branch and renders a
blank page), and ``"default": null`` on an integer field makes an untouched form
invalid, so its Start button stays disabled. :class:`FormModel` and the ``Optional*``
aliases accept ``None`` but advertise the plain type, without a null default: an
absent field still means "not given".
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, WithJsonSchema

__all__ = ["FormModel", "OptionalInt", "OptionalNumber", "OptionalText"]

OptionalText = Annotated[str | None, WithJsonSchema({"type": "string"})]
OptionalInt = Annotated[int | None, WithJsonSchema({"type": "integer"})]
OptionalNumber = Annotated[float | None, WithJsonSchema({"type": "number"})]


def _drop_null_defaults(schema: dict[str, Any]) -> None:
    for prop in (schema.get("properties") or {}).values():
        if isinstance(prop, dict) and "default" in prop and prop["default"] is None:
            del prop["default"]


class FormModel(BaseModel):
    """A strict request model (unknown fields are refused) with a playground-friendly schema."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_null_defaults)
