"""The event-loop stdio pipes mcp_serve uses: lines arrive whole, big replies are not torn."""

from __future__ import annotations

import os
import threading

import anyio

from mcp_tools.stdio_pipes import PipeLineReader, PipeWriter


def test_lines_split_across_reads_arrive_whole_and_a_last_unterminated_line_is_kept() -> None:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)

    def client() -> None:
        for chunk in (b'{"a":', b' 1}\n{"b": 2}\n{"c"', b": 3}"):
            os.write(write_fd, chunk)
        os.close(write_fd)

    async def read_all() -> list[str]:
        threading.Thread(target=client).start()
        return [line async for line in PipeLineReader(read_fd)]

    try:
        assert anyio.run(read_all) == ['{"a": 1}\n', '{"b": 2}\n', '{"c": 3}']
    finally:
        os.close(read_fd)


def test_a_reply_larger_than_the_pipe_buffer_waits_for_the_reader() -> None:
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    reply = "x" * (1 << 20) + "\n"  # 1 MiB: sixteen times a default pipe buffer
    received = bytearray()

    def slow_client() -> None:
        while not received.endswith(b"\n"):
            received.extend(os.read(read_fd, 4096))

    async def write() -> None:
        reader = threading.Thread(target=slow_client)
        reader.start()
        writer = PipeWriter(write_fd)
        await writer.write(reply)
        await writer.flush()
        await anyio.to_thread.run_sync(reader.join)

    try:
        anyio.run(write)
        assert received.decode() == reply
    finally:
        os.close(read_fd)
        os.close(write_fd)
