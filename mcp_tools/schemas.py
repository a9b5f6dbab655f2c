"""Pieces shared by operation models: strict base model and common field types."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class Input(BaseModel):
    """Base of every operation input: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Empty(Input):
    """No arguments."""


TenantSlug = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$", min_length=3, max_length=40),
    Field(
        description="Tenant slug: 3-40 lowercase letters, digits or hyphens, starting with a "
        "letter; used in Kafka topic names.",
        examples=["acme"],
    ),
]
E164Phone = Annotated[
    str,
    StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$"),
    Field(
        description="Phone number in E.164 format: '+' then country code and number, no spaces.",
        examples=["+14155550123"],
    ),
]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
