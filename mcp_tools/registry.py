"""The operation registry: each operation declared once, read by MCP, REST and telemetry.

An app declares operations in its `operations.py` with `@operation(...)`; `get_registry()`
imports those modules on first use (like Wagtail's hooks). Name, schemas, annotations and
permission all come from that one declaration.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from mcp_tools.context import OperationContext

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)
OperationFunc = Callable[["OperationContext", Any], BaseModel]


@dataclass(frozen=True)
class Operation:
    service: str
    action: str
    title: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    func: OperationFunc
    permission: str
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    open_world: bool = False
    emits: tuple[str, ...] = ()
    reports_progress: bool = False
    platform: bool = False  # acts across tenants; needs the platform.admin scope
    # False: the operation opens its own short transactions (long paging, several outside
    # steps whose records must survive a later step's failure); see the executor.
    atomic: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.service}_{self.action}"

    def input_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    def output_schema(self) -> dict[str, Any]:
        return self.output_model.model_json_schema(mode="serialization")

    def annotations(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "readOnlyHint": self.read_only,
            "destructiveHint": self.destructive,
            "idempotentHint": self.idempotent,
            "openWorldHint": self.open_world,
        }


class Registry:
    def __init__(self) -> None:
        self._operations: dict[str, Operation] = {}

    def add(self, op: Operation) -> None:
        if not NAME_RE.match(op.name):
            raise ValueError(f"operation name {op.name!r} does not match {NAME_RE.pattern}")
        if op.name in self._operations and self._operations[op.name].func is not op.func:
            raise ValueError(f"operation {op.name!r} is declared twice")
        self._operations[op.name] = op

    def remove(self, name: str) -> None:
        self._operations.pop(name, None)

    def get(self, name: str) -> Operation | None:
        return self._operations.get(name)

    def all(self) -> list[Operation]:
        """Every operation, in a stable order (by name)."""
        return [self._operations[name] for name in sorted(self._operations)]


_registry = Registry()
_discovered = False
_lock = threading.Lock()


def operation(
    *,
    service: str,
    title: str,
    permission: str,
    read_only: bool = False,
    destructive: bool = False,
    idempotent: bool = False,
    open_world: bool = False,
    emits: tuple[str, ...] = (),
    reports_progress: bool = False,
    platform: bool = False,
    atomic: bool = True,
    name: str | None = None,
) -> Callable[[Callable[[OperationContext, In], Out]], Callable[[OperationContext, In], Out]]:
    """Declare an operation. The function's docstring is its description; its annotations
    give the input and output models: `def get_tenant(ctx, params: GetTenantIn) -> TenantOut`."""

    def decorator(
        func: Callable[[OperationContext, In], Out],
    ) -> Callable[[OperationContext, In], Out]:
        hints = func.__annotations__
        input_model, output_model = _resolve(func, hints["params"]), _resolve(func, hints["return"])
        description = " ".join((func.__doc__ or "").split())
        if not description:
            raise ValueError(f"operation {func.__name__} needs a docstring (its description)")
        _registry.add(
            Operation(
                service=service,
                action=name or func.__name__,
                title=title,
                description=description,
                input_model=input_model,
                output_model=output_model,
                func=func,  # type: ignore[arg-type]
                permission=permission,
                read_only=read_only,
                destructive=destructive,
                idempotent=idempotent or read_only,
                open_world=open_world,
                emits=emits,
                reports_progress=reports_progress,
                platform=platform,
                atomic=atomic,
            )
        )
        return func

    return decorator


def _resolve(func: Callable[..., Any], hint: Any) -> type[BaseModel]:
    if isinstance(hint, str):
        hint = func.__globals__[hint]
    if not (isinstance(hint, type) and issubclass(hint, BaseModel)):
        raise TypeError(f"{func.__name__}: params and return must be pydantic models")
    return hint


def get_registry() -> Registry:
    """The registry with every app's `operations` module imported."""
    global _discovered
    if not _discovered:
        with _lock:
            if not _discovered:
                from django.utils.module_loading import autodiscover_modules

                autodiscover_modules("operations")
                _discovered = True
    return _registry


@contextlib.contextmanager
def register_temporarily(*ops: Operation) -> Iterator[None]:
    """For tests: add operations for the duration of a block."""
    registry = get_registry()
    for op in ops:
        registry.add(op)
    try:
        yield
    finally:
        for op in ops:
            registry.remove(op.name)
