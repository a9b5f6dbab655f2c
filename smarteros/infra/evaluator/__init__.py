"""The bounded evaluator of user expressions (CEL): every use of CEL in the code goes through here
(a test walks the code and fails on any other importer of the library).

- Compile time (`compile_expression`): size, AST depth, number and nesting of comprehensions and
  literal sizes are bounded (limits.py) before the CEL compiler sees the source; a refusal names
  the limit.
- Run time (`Expression.select` / `aselect`): documents are evaluated in worker processes, never
  in the caller's process, with a CPU budget per message (a kernel timer ends the worker) and per
  request; a worker that overruns is killed and replaced and the request gets BudgetExceeded.
- Errors on one document are verdicts (no match) with a message free of Python internals.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings

from smarteros.infra.evaluator import worker
from smarteros.infra.evaluator.limits import (
    LIMITS,
    GrammarError,
    LimitExceeded,
    Limits,
    Shape,
    check_limits,
)
from smarteros.infra.evaluator.pool import PoolBusy, WorkerLost, WorkerPool
from smarteros.infra.evaluator.worker import Bindings

__all__ = [
    "LIMITS",
    "Bindings",
    "Budget",
    "BudgetExceeded",
    "EvaluatorBusy",
    "Expression",
    "ExpressionError",
    "ExpressionRefused",
    "Limits",
    "Selection",
    "Shape",
    "compile_expression",
    "off_loop",
    "request_budget",
]

_T = TypeVar("_T")

CHUNK = 200  # documents per round trip: bounds the pipe transfer and lets a caller stop between


class ExpressionError(ValueError):
    """An expression the user must change, or that could not run; the message says which."""


class ExpressionRefused(ExpressionError):
    """Refused at compile time: not CEL, or over a limit (the message names it)."""


class BudgetExceeded(ExpressionError):
    """Stopped at run time: a message or the request used its CPU budget."""


class EvaluatorBusy(ExpressionError):
    """Every worker stayed busy longer than EVALUATOR_WAIT_SECONDS."""


@dataclass
class Budget:
    """CPU seconds one request may spend: per message, and in total across its calls."""

    per_message: float
    total: float
    used: float = 0.0

    @property
    def left(self) -> float:
        return max(0.0, self.total - self.used)

    def describe(self) -> str:
        return f"{self.per_message * 1000:g} ms of CPU per message, {self.total:g} s per request"


def request_budget() -> Budget:
    """A fresh budget for one request (one browse, one export, one live batch)."""
    return Budget(
        per_message=settings.EVALUATOR_MESSAGE_MS / 1000,
        total=settings.EVALUATOR_REQUEST_MS / 1000,
    )


@dataclass
class Selection:
    """One verdict per document (True only where the expression was true), and the errors."""

    verdicts: list[bool] = field(default_factory=list)
    errors: int = 0
    last_error: str = ""


_state_lock = threading.Lock()
_pools: dict[int, WorkerPool] = {}
_executors: dict[int, ThreadPoolExecutor] = {}


def _pool() -> WorkerPool:
    # Per process id: a forked server process starts its own workers instead of sharing pipes.
    pid = os.getpid()
    with _state_lock:
        pool = _pools.get(pid)
        if pool is None:
            pool = _pools[pid] = WorkerPool(
                size=settings.EVALUATOR_PROCESSES,
                memory_bytes=settings.EVALUATOR_MEMORY_MB * 1024 * 1024,
                niceness=10,
            )
        return pool


def _executor() -> ThreadPoolExecutor:
    pid = os.getpid()
    with _state_lock:
        executor = _executors.get(pid)
        if executor is None:
            # Threads only wait on pipes (no GIL held); a few per worker keeps the queue short.
            executor = _executors[pid] = ThreadPoolExecutor(
                4 * settings.EVALUATOR_PROCESSES, thread_name_prefix="evaluator"
            )
        return executor


def workers_replaced() -> int:
    """Workers this process killed and replaced (a runaway expression each)."""
    return _pool().replaced


@dataclass(frozen=True)
class Expression:
    """A compiled, bounded expression; `bindings` say how a document becomes its variables
    (see worker.Bindings)."""

    source: str
    shape: Shape
    bindings: Bindings = None

    def select(self, documents: Sequence[Any], *, budget: Budget) -> Selection:
        """Evaluate each document (a dict, or its JSON text) in a worker process. Blocks the
        calling thread (not the GIL); BudgetExceeded when a message or the request overruns."""
        selection = Selection()
        for start in range(0, len(documents), CHUNK):
            chunk = list(documents[start : start + CHUNK])
            request = (self.source, self.bindings, chunk, budget.per_message, budget.left)
            try:
                verdicts, used, stopped = _pool().run(request, wait=settings.EVALUATOR_WAIT_SECONDS)
            except WorkerLost as exc:
                budget.used = budget.total
                raise BudgetExceeded(
                    f"the expression was stopped: {exc} (limits: {budget.describe()})"
                ) from None
            except PoolBusy as exc:
                raise EvaluatorBusy(str(exc)) from None
            budget.used += used
            for verdict in verdicts:
                if isinstance(verdict, str):
                    selection.errors += 1
                    selection.last_error = verdict
                    selection.verdicts.append(False)
                else:
                    selection.verdicts.append(verdict)
            if stopped:
                raise BudgetExceeded(
                    f"the expression used its CPU budget for this request ({budget.describe()})"
                )
        return selection

    async def aselect(self, documents: Sequence[Any], *, budget: Budget) -> Selection:
        """`select` for async callers: the event loop only awaits the worker's answer."""
        return await off_loop(functools.partial(self.select, documents, budget=budget))


async def off_loop(call: Callable[[], _T]) -> _T:
    """Run `call` (which evaluates, or prepares documents for it) in the evaluator's threads:
    they mostly wait on workers, so they do not take the default executor's few threads."""
    return await asyncio.get_running_loop().run_in_executor(_executor(), call)


def compile_expression(
    source: str,
    *,
    bindings: Bindings = None,
    limits: Limits = LIMITS,
) -> Expression:
    """Check `source` against the limits, then compile it; ExpressionRefused says what to fix."""
    if not isinstance(source, str):
        raise ExpressionRefused("the expression must be text")
    try:
        shape = check_limits(source, limits)
    except LimitExceeded as exc:
        raise ExpressionRefused(str(exc)) from None
    except GrammarError:
        # The bounded source is safe to hand to the compiler, whose message is the clearer one.
        message = worker.compile_error(source)
        raise ExpressionRefused(
            message or "the expression uses syntax whose cost cannot be bounded"
        ) from None
    message = worker.compile_error(source)
    if message is not None:
        raise ExpressionRefused(message)
    return Expression(source=source, shape=shape, bindings=bindings)
