"""JSON-RPC on the wire, without an SDK in between: the stdio server as a subprocess fed raw
lines, and stateless POSTs to /mcp. The fuzzers need to send what no SDK would."""

from __future__ import annotations

import itertools
import json
import queue
import subprocess
import sys
import threading
import time
from typing import Any

import httpx

from tests.processes import ROOT

PROTOCOL = "2025-11-25"
INITIALIZE = {
    "protocolVersion": PROTOCOL,
    "capabilities": {},
    "clientInfo": {"name": "fuzz", "version": "1"},
}


class NoAnswer(AssertionError):
    """The server did not answer a request in time."""


class StdioWire:
    """`manage.py mcp_serve` with its pipes: write any bytes, read every line it answers."""

    def __init__(self, env: dict[str, str], api_key: str, *, close_wait: float = 10) -> None:
        self.close_wait = close_wait
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "mcp_serve"],
            cwd=ROOT,
            env={**env, "SMARTEROS_API_KEY": api_key},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        self._ids = itertools.count(1)
        threading.Thread(target=self._read, daemon=True).start()
        self.request("initialize", INITIALIZE)
        self.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def write(self, line: bytes | str) -> None:
        assert self.process.stdin is not None
        data = line.encode() if isinstance(line, str) else line
        self.process.stdin.write(data + b"\n")
        self.process.stdin.flush()

    def alive(self) -> bool:
        return self.process.poll() is None

    def request(
        self, method: str, params: Any = None, *, timeout: float = 60
    ) -> tuple[dict[str, Any], list[Any]]:
        """Send a request and wait up to `timeout` seconds for its answer (NoAnswer if none);
        also returns what came before it (each line parsed: the server writes nothing but
        JSON-RPC messages on stdout)."""
        request_id = f"wire-{next(self._ids)}"
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.write(json.dumps(message))
        before: list[Any] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise NoAnswer(
                    f"no answer to {method} (server exit code {self.process.poll()})"
                ) from None
            answer = json.loads(raw)
            if isinstance(answer, dict) and answer.get("id") == request_id:
                return answer, before
            before.append(answer)

    def close(self) -> None:
        """End of input, as a client that is done: the server exits on its own, sending what it
        still holds (its telemetry); killed only if it does not within `close_wait`."""
        try:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(timeout=self.close_wait)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


def http_request(url: str, api_key: str, method: str, params: Any) -> httpx.Response:
    """One stateless JSON-RPC request to /mcp (no session, no handshake)."""
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {api_key}",
        "MCP-Protocol-Version": PROTOCOL,
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return httpx.post(f"{url}/mcp", json=body, headers=headers, timeout=60)


def http_message(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC answer in a /mcp response, sent as JSON or as one server-sent event."""
    text = response.text
    if text.startswith(("event", "data")):
        # Only \n ends an event line: str.splitlines() would also split at U+0085 in the data.
        text = text.split("data: ", 1)[1].split("\n", 1)[0]
    message: dict[str, Any] = json.loads(text)
    return message
