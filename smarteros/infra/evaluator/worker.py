"""The one module that imports the CEL library: compile checks, and the worker processes' loop.

The library holds the GIL while it evaluates, so evaluation only ever runs here, in a worker
process (see pool.py), never in a web process. Each message runs under a kernel CPU timer
(ITIMER_PROF) whose default action ends the process: a runaway expression is stopped even
while the library holds the GIL. Workers run this file as a script: they import the
CEL library and nothing of the project (no Django, no settings).
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

import cel
import orjson

PROGRAMS_CACHED = 64

# How a document (a JSON object) becomes the expression's variables: (variable, document key,
# default when absent or null, kind); kind "pairs" turns a list of [name, value] pairs into a
# map. None: the document's keys are the variables. Plain data, so workers import no caller.
Bindings = tuple[tuple[str, str, Any, str], ...] | None
# A request to a worker: source, bindings, documents (dicts or JSON text), per-message CPU
# seconds, CPU seconds left for the request.
Request = tuple[str, Bindings, Sequence[Any], float, float]
# Its answer: one verdict per document evaluated (True, False, or an error message), CPU seconds
# used, and whether the request's budget ran out before the last document.
Reply = tuple[list[bool | str], float, bool]


def compile_error(source: str) -> str | None:
    """The compiler's message when `source` is not valid CEL, else None."""
    try:
        cel.compile(source)
    except Exception as exc:  # the library raises builtin types for every syntax error
        return str(exc)[:500]
    return None


def runtime_message(exc: BaseException) -> str:
    """An evaluation error as the user should read it: what went wrong, no Python internals."""
    if isinstance(exc, KeyError):
        return f"no such key: {exc.args[0] if exc.args else ''}"[:300]
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    if isinstance(exc, OverflowError):
        return "a number is out of range"
    text = str(exc)
    if len(text) > 120 and ". " in text:  # the library appends long hints after the reason
        text = text.split(". ", 1)[0] + "."
    return (text or "the expression could not be evaluated")[:300]


def bind(document: Any, bindings: Bindings) -> dict[str, Any]:
    """The variables of one document."""
    if bindings is None:
        return dict(document)
    variables = {}
    for name, key, default, kind in bindings:
        value = document.get(key)
        if value is None or value == "":
            value = default
        elif kind == "pairs":
            value = {str(pair[0]): pair[1] for pair in value}
        variables[name] = value
    return variables


def evaluate(
    programs: OrderedDict[str, Any],
    request: Request,
    *,
    arm: Callable[[float], Any] = lambda seconds: None,
) -> Reply:
    """Run one request; `arm(seconds)` sets (0: clears) the per-message CPU timer."""
    source, bindings, documents, per_message, budget = request
    program = programs.get(source)
    if program is None:
        program = programs[source] = cel.compile(source)
        while len(programs) > PROGRAMS_CACHED:
            programs.popitem(last=False)
    programs.move_to_end(source)
    verdicts: list[bool | str] = []
    began = time.process_time()
    for document in documents:
        if time.process_time() - began >= budget:
            return verdicts, time.process_time() - began, True
        if isinstance(document, (str, bytes)):
            document = orjson.loads(document)
        arm(per_message)
        try:
            verdicts.append(program.execute(bind(document, bindings)) is True)
        except Exception as exc:  # evaluation errors come back as builtin exception types
            verdicts.append(runtime_message(exc))
        finally:
            arm(0)
    return verdicts, time.process_time() - began, False


def _arm(seconds: float) -> None:
    signal.setitimer(signal.ITIMER_PROF, seconds)


def serve(conn: Connection, memory_bytes: int, niceness: int) -> None:
    """A worker process's loop: answer requests until the pipe closes."""
    signal.signal(signal.SIGPROF, signal.SIG_DFL)  # expiry ends the process, GIL or not
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's Ctrl-C is for the server
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    if niceness:
        os.nice(niceness)  # the web process keeps the CPU it needs to answer
    programs: OrderedDict[str, Any] = OrderedDict()
    conn.send("ready")
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: Reply | str = evaluate(programs, request, arm=_arm)
        except Exception as exc:  # a request that cannot run (it was checked before sending)
            reply = runtime_message(exc)
        conn.send(reply)


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3]))
