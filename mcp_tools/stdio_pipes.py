"""Stdin and stdout for the SDK's stdio transport, read and written by the event loop itself.

The SDK wraps the standard streams in anyio's threaded file objects: every line read and every
write and flush is a hop to a worker thread and back. When the client talks through pipes (Claude
Desktop, the Inspector, any subprocess client) we can instead wait for the descriptors in the
event loop and read or write them without blocking, which takes those hops off each call.

As the SDK does, the server keeps private copies of the descriptors and points fd 0 at the null
device and fd 1 at stderr while it serves, so a stray print or a child process cannot corrupt the
protocol. Anything that is not a pipe (a file, a terminal) is read and written the same way
through a worker thread (`threaded_stdio`).

`guarded_stdio` puts two things between those streams and the SDK's stdio transport, which
skips what it cannot parse without a word: a line that is not one JSON-RPC message gets its
JSON-RPC error here (parse error, batch, oversized), and every write holds a lock so those
answers never tear a reply.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Protocol

import anyio
import mcp_types as types
import pydantic_core

log = logging.getLogger(__name__)

READ_SIZE = 65536


def stdio_are_pipes() -> bool:
    try:
        return all(stat.S_ISFIFO(os.fstat(fd).st_mode) for fd in (0, 1))
    except OSError:
        return False


class TooLong(str):
    """Stands for a line longer than the reader's limit; its bytes were dropped unread."""


class PipeLineReader:
    """`async for line in reader`: the text lines of a non-blocking pipe, as the SDK reads them.
    A line longer than `max_line_bytes` is not kept in memory: it comes out as `TooLong()`."""

    def __init__(self, fd: int, max_line_bytes: int | None = None) -> None:
        self.fd = fd
        self.buffer = bytearray()
        self.eof = False
        self.max_line_bytes = max_line_bytes
        self.discarding = False

    def __aiter__(self) -> PipeLineReader:
        return self

    async def __anext__(self) -> str:
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                too_long = self.max_line_bytes is not None and end > self.max_line_bytes
                line = bytes(self.buffer[: end + 1])
                del self.buffer[: end + 1]
                if self.discarding or too_long:
                    self.discarding = False
                    return TooLong()
                return line.decode("utf-8", errors="replace")
            if self.max_line_bytes is not None and len(self.buffer) > self.max_line_bytes:
                # Keep only what follows the line's end, once it comes.
                self.discarding = True
                self.buffer.clear()
                continue
            if self.eof:
                if self.discarding:
                    self.discarding = False
                    return TooLong()
                if self.buffer:
                    rest = bytes(self.buffer)
                    self.buffer.clear()
                    return rest.decode("utf-8", errors="replace")
                raise StopAsyncIteration
            await self._fill()

    async def _fill(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                await anyio.wait_readable(self.fd)
                continue
            if not chunk:
                self.eof = True
            self.buffer += chunk
            return


class PipeWriter:
    """`await writer.write(text)` / `await writer.flush()` on a non-blocking pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    async def write(self, text: str) -> None:
        data = memoryview(text.encode("utf-8"))
        while data:
            try:
                written = os.write(self.fd, data)
            except BlockingIOError:
                # The client is not reading fast enough; wait instead of blocking the loop.
                await anyio.wait_writable(self.fd)
                continue
            data = data[written:]

    async def flush(self) -> None:
        # Nothing is buffered: write() hands every byte to the pipe before it returns.
        await anyio.lowlevel.checkpoint()


@contextlib.contextmanager
def _claimed(fd: int, stand_in: int) -> Iterator[int]:
    """A private non-blocking copy of `fd`, with `fd` itself pointed at `stand_in` meanwhile."""
    private = os.dup(fd)
    os.set_inheritable(private, False)
    os.set_blocking(private, False)
    os.dup2(stand_in, fd)
    try:
        yield private
    finally:
        os.dup2(private, fd)
        os.set_blocking(fd, True)
        os.close(private)


@contextlib.asynccontextmanager
async def pipe_stdio(
    max_line_bytes: int | None = None,
) -> AsyncIterator[tuple[PipeLineReader, PipeWriter]]:
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        with _claimed(0, devnull) as stdin_fd, _claimed(1, 2) as stdout_fd:
            yield PipeLineReader(stdin_fd, max_line_bytes), PipeWriter(stdout_fd)
    finally:
        os.close(devnull)


@contextlib.asynccontextmanager
async def threaded_stdio(
    max_line_bytes: int | None = None,
) -> AsyncIterator[tuple[AsyncIterable[str], Any]]:
    """Stdin and stdout that are not pipes (a file, a terminal), claimed as `pipe_stdio` does
    and served through a worker thread."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        with _claimed(0, devnull) as stdin_fd, _claimed(1, 2) as stdout_fd:
            os.set_blocking(stdin_fd, True)
            os.set_blocking(stdout_fd, True)
            stdin = anyio.wrap_file(
                open(stdin_fd, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
            )
            stdout = anyio.wrap_file(open(stdout_fd, "w", encoding="utf-8", closefd=False))  # noqa: SIM115

            async def lines() -> AsyncIterator[str]:
                async for line in stdin:
                    too_long = max_line_bytes is not None and len(line) > max_line_bytes
                    yield TooLong() if too_long else line

            yield lines(), stdout
    finally:
        os.close(devnull)


class Writer(Protocol):
    async def write(self, text: str) -> Any: ...

    async def flush(self) -> Any: ...


class LockedWriter:
    """One writer for the SDK's replies and our own error answers: a line is written whole."""

    def __init__(self, writer: Writer) -> None:
        self._writer = writer
        self._lock = anyio.Lock()

    async def write(self, text: str) -> None:
        async with self._lock:
            await self._writer.write(text)

    async def flush(self) -> None:
        async with self._lock:
            await self._writer.flush()


def line_refusal(line: str) -> dict[str, Any] | None:
    """The JSON-RPC error response for a line that is not one JSON-RPC message, else None."""
    if isinstance(line, TooLong):
        return _error(None, types.INVALID_REQUEST, "Invalid Request: the line is too long")
    try:
        # The parser the SDK reads the line with, so a line it would refuse (nested past its
        # limit) is answered here instead of being dropped unanswered by the SDK.
        message = pydantic_core.from_json(line)
    except ValueError:
        return _error(None, types.PARSE_ERROR, "Parse error: the line is not JSON")
    if isinstance(message, list):
        # MCP sends one message per line; batches were dropped from the protocol (2025-06-18).
        return _error(None, types.INVALID_REQUEST, "Invalid Request: batches are not supported")
    try:
        types.jsonrpc_message_adapter.validate_python(message, by_name=False)
    except Exception:
        raw_id = message.get("id") if isinstance(message, dict) else None
        request_id = (
            raw_id if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
        )
        return _error(request_id, types.INVALID_REQUEST, "Invalid Request: not a JSON-RPC message")
    return call_params_refusal(message)


def call_params_refusal(message: Any) -> dict[str, Any] | None:
    """The error for a tools/call whose name or arguments the SDK would refuse with a bare
    -32602 and no data: this one names the field and the rule. None for anything else."""
    if not isinstance(message, dict) or message.get("method") != "tools/call":
        return None
    raw_id = message.get("id")
    if not isinstance(raw_id, str | int) or isinstance(raw_id, bool):
        return None  # a notification or a malformed id: the SDK's own answer stands
    params = message.get("params")
    if not isinstance(params, dict):
        return _error(
            raw_id,
            types.INVALID_PARAMS,
            "params: must be an object holding the tool's name and its arguments",
            field="params",
        )
    if not isinstance(params.get("name"), str):
        return _error(
            raw_id, types.INVALID_PARAMS, "name: must be a tool's name (a string)", field="name"
        )
    arguments = params.get("arguments")
    if arguments is not None and not isinstance(arguments, dict):
        return _error(
            raw_id,
            types.INVALID_PARAMS,
            f"arguments: must be an object of the tool's parameters (by name), not "
            f"{_json_type(arguments)}; the tool's inputSchema in tools/list describes them",
            field="arguments",
        )
    return None


def _json_type(value: Any) -> str:
    names = {str: "a string", list: "an array", bool: "a boolean", int: "a number"}
    return next((name for kind, name in names.items() if isinstance(value, kind)), "a number")


def _error(
    request_id: str | int | None, code: int, message: str, *, field: str = ""
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["data"] = {"field": field}
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


class GuardedLines:
    """The client's lines for the SDK, minus those `line_refusal` refuses: those are answered
    through `writer` and skipped, and the session goes on."""

    def __init__(
        self,
        lines: AsyncIterable[str],
        writer: LockedWriter,
        on_refusal: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self._lines = aiter(lines)
        self._writer = writer
        self._on_refusal = on_refusal

    def __aiter__(self) -> GuardedLines:
        return self

    async def __anext__(self) -> str:
        while True:
            line = await anext(self._lines)
            if not isinstance(line, TooLong) and not line.strip():
                continue
            refusal = line_refusal(line)
            if refusal is None:
                return line
            log.warning("stdio: refused a line: %s", refusal["error"]["message"])
            await self._writer.write(json.dumps(refusal) + "\n")
            await self._writer.flush()
            if self._on_refusal is not None:
                await self._on_refusal(refusal["error"]["message"])


@contextlib.asynccontextmanager
async def guarded_stdio(
    max_line_bytes: int, on_refusal: Callable[[str], Awaitable[None]] | None = None
) -> AsyncIterator[tuple[GuardedLines, LockedWriter]]:
    """Stdin and stdout for the SDK's `stdio_server(stdin, stdout)`: pipes read by the event
    loop where they are pipes, a worker thread otherwise, with every line checked first;
    `on_refusal(message)` is awaited after each refused line is answered."""
    if stdio_are_pipes():
        streams: Any = pipe_stdio(max_line_bytes)
    else:
        streams = threaded_stdio(max_line_bytes)
    async with streams as (stdin, stdout):
        writer = LockedWriter(stdout)
        yield GuardedLines(stdin, writer, on_refusal), writer
