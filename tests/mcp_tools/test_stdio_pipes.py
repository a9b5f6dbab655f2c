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


def test_a_line_over_the_limit_comes_out_as_too_long_and_the_next_line_is_whole() -> None:
    from mcp_tools.stdio_pipes import TooLong

    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)

    def client() -> None:
        os.write(write_fd, b'{"a": 1}\n')
        for _ in range(10):  # 10 x 1000 bytes, in pieces: never held whole
            os.write(write_fd, b"x" * 1000)
        os.write(write_fd, b'\n{"b": 2}\n' + b"y" * 5000 + b'\n{"c": 3}\n' + b"z" * 3000)
        os.close(write_fd)

    async def read_all() -> list[str]:
        threading.Thread(target=client).start()
        reader = PipeLineReader(read_fd, max_line_bytes=2048)
        lines = [line async for line in reader]
        assert len(reader.buffer) <= 2048 + 65536
        return lines

    try:
        lines = anyio.run(read_all)
    finally:
        os.close(read_fd)
    assert [type(line) for line in lines] == [str, TooLong, str, TooLong, str, TooLong]
    assert [lines[0], lines[2], lines[4]] == ['{"a": 1}\n', '{"b": 2}\n', '{"c": 3}\n']


def test_what_is_not_one_json_rpc_message_gets_its_error() -> None:
    from mcp_tools.stdio_pipes import TooLong, line_refusal

    def code_and_id(line: str) -> tuple[int, object] | None:
        refusal = line_refusal(line)
        return None if refusal is None else (refusal["error"]["code"], refusal["id"])

    assert code_and_id("garbage\n") == (-32700, None)
    assert code_and_id("[" * 100_000 + "\n") == (-32700, None)
    assert code_and_id('[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]\n') == (-32600, None)
    assert code_and_id('{"id": 7, "method": "ping"}\n') == (-32600, 7)
    assert code_and_id('"just a string"\n') == (-32600, None)
    assert code_and_id(TooLong()) == (-32600, None)
    assert code_and_id('{"jsonrpc": "2.0", "id": 1, "method": "ping"}\n') is None
