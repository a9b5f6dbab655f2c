"""Stdin and stdout for the SDK's stdio transport, read and written by the event loop itself.

The SDK wraps the standard streams in anyio's threaded file objects: every line read and every
write and flush is a hop to a worker thread and back. When the client talks through pipes (Claude
Desktop, the Inspector, any subprocess client) we can instead wait for the descriptors in the
event loop and read or write them without blocking, which takes those hops off each call.

As the SDK does, the server keeps private copies of the descriptors and points fd 0 at the null
device and fd 1 at stderr while it serves, so a stray print or a child process cannot corrupt the
protocol. Anything that is not a pipe (a file, a terminal) is left to the SDK's own transport.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import AsyncIterator, Iterator

import anyio

READ_SIZE = 65536


def stdio_are_pipes() -> bool:
    try:
        return all(stat.S_ISFIFO(os.fstat(fd).st_mode) for fd in (0, 1))
    except OSError:
        return False


class PipeLineReader:
    """`async for line in reader`: the text lines of a non-blocking pipe, as the SDK reads them."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()
        self.eof = False

    def __aiter__(self) -> PipeLineReader:
        return self

    async def __anext__(self) -> str:
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[: end + 1])
                del self.buffer[: end + 1]
                return line.decode("utf-8", errors="replace")
            if self.eof:
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
async def pipe_stdio() -> AsyncIterator[tuple[PipeLineReader, PipeWriter]]:
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        with _claimed(0, devnull) as stdin_fd, _claimed(1, 2) as stdout_fd:
            yield PipeLineReader(stdin_fd), PipeWriter(stdout_fd)
    finally:
        os.close(devnull)
