"""Pieces shared by operation models: strict base model and common field types."""

from __future__ import annotations

import re
from types import UnionType
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

import email_validator
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError


def _schema_extra(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Make the published schema say what validation enforces, so clients generating input
    from it (and fuzzers) meet the same rules: keys of a dict must match their pattern, and
    an input with `at_least_one_of` (all its fields, none nullable) needs one given."""
    _close_pattern_objects(schema)
    # A root anyOf is refused by some MCP clients; with fields that take no null, "at least one
    # property" says the same.
    if getattr(model, "at_least_one_of", ()):
        schema["minProperties"] = 1


def _close_pattern_objects(node: object) -> None:  # and the blank-text rule below
    # Pydantic publishes dict[<constrained key>, V] as patternProperties alone, which JSON
    # Schema reads as "any other key, any value"; validation refuses those keys.
    if isinstance(node, dict):
        if "patternProperties" in node:
            node.setdefault("additionalProperties", False)
        # Input strings are stripped before their length is checked: a required text of
        # blanks only is refused, so say it must hold something else.
        if node.get("type") == "string" and node.get("minLength") and "pattern" not in node:
            node["pattern"] = r"\S"
        for value in node.values():
            _close_pattern_objects(value)
    elif isinstance(node, list):
        for value in node:
            _close_pattern_objects(value)


class Input(BaseModel):
    """Base of every operation input: unknown fields are an error, not silently dropped, and no
    string anywhere in it may hold a NUL character (PostgreSQL cannot store one).

    `at_least_one_of` names the fields of which a call must give one (all of the input's
    fields, none nullable); the operation enforces it, the schema states it."""

    # strict: JSON types as the schema states them (true is no integer, "5" no number).
    model_config = ConfigDict(
        extra="forbid", strict=True, str_strip_whitespace=True, json_schema_extra=_schema_extra
    )
    at_least_one_of: ClassVar[tuple[str, ...]] = ()

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: object, info: ValidationInfo) -> object:
        where = _nul_path(value)
        if where is not None:
            inside = f" (at {info.field_name}{where})" if where else ""
            raise PydanticCustomError(
                "string_nul", "must not contain NUL characters{inside}", {"inside": inside}
            )
        return value

    @field_validator("*", mode="before")
    @classmethod
    def _whole_numbers(cls, value: object, info: ValidationInfo) -> object:
        # JSON Schema counts 5.0 as an integer; strict validation alone would refuse it.
        if (
            isinstance(value, float)
            and value.is_integer()
            and info.field_name
            and _takes_int(cls.model_fields[info.field_name].annotation)
        ):
            return int(value)
        return value


def _takes_int(annotation: object) -> bool:
    """Whether a field's type is int (or int | None), not a float or anything wider."""
    if annotation is int:
        return True
    members = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else ()
    return int in members and float not in members


def _nul_path(value: object) -> str | None:
    """'' if `value` is a string holding NUL, '.key.0' if something inside it is, else None."""
    pending: list[tuple[object, str]] = [(value, "")]
    while pending:
        current, path = pending.pop()
        if isinstance(current, str):
            if "\x00" in current:
                return path
        elif isinstance(current, dict):
            pending.extend((v, f"{path}.{k}") for k, v in current.items())
            pending.extend((k, f"{path}.{k!r}") for k in current if isinstance(k, str))
        elif isinstance(current, list | tuple):
            pending.extend((v, f"{path}.{i}") for i, v in enumerate(current))
    return None


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


# A host name of dot-separated labels (letters, digits, inner hyphens), as in an address's domain.
_DOMAIN_RE = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")


def _email(value: str) -> str:
    """A well-formed address, as JSON Schema's `format: email` promises. email-validator also
    refuses special-use domains (`shop.test`, `x.local`); the address is still well-formed, and
    whether it receives mail is the provider's business, so those pass once their parts do."""
    try:
        return email_validator.validate_email(value, check_deliverability=False).normalized
    except email_validator.EmailNotValidError as exc:
        local, _, domain = value.rpartition("@")
        if "special-use" not in str(exc) or not _DOMAIN_RE.fullmatch(domain):
            raise ValueError(f"value is not a valid email address: {exc}") from None
        try:  # the local part, checked on an ordinary domain
            email_validator.validate_email(f"{local}@mail.com", check_deliverability=False)
        except email_validator.EmailNotValidError as inner:
            raise ValueError(f"value is not a valid email address: {inner}") from None
        return value


Email = Annotated[
    str,
    StringConstraints(max_length=254),
    AfterValidator(_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 254}),
]


# Tags of a tagged union (one model per kind of value) start with this mark. Pydantic puts the
# tag in an error's location; the executor leaves marked parts out, so a refusal names the
# field as the caller wrote it (components.0.parameters.0.text), not the model it matched.
VARIANT_MARK = "~"


def variant(name: str) -> Tag:
    """The Tag of a union member, for a Discriminator whose function returns variant_of(...)."""
    return Tag(VARIANT_MARK + name)


def variant_of(name: str | None) -> str | None:
    return None if name is None else VARIANT_MARK + name


def is_variant(location_part: object) -> bool:
    return isinstance(location_part, str) and location_part.startswith(VARIANT_MARK)
