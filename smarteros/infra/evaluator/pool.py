"""Worker processes that evaluate expressions, so a web process never holds the GIL for one.

Each worker serves one caller at a time over its own pipe. A worker that dies (its per-message
CPU timer fired, or it ran out of memory) or does not answer in time is killed and replaced
on the next use; only the caller whose request it was gets an error, never the others.
"""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection

from smarteros.infra.evaluator import worker

START_SECONDS = 30.0
# The kernel's CPU timer is the budget; this wall-clock bound only catches a worker that stopped
# answering. A niced worker on a busy machine gets a fraction of a core, hence the factor.
WALL_FACTOR = 4.0
WALL_SLACK_SECONDS = 5.0


class WorkerLost(Exception):
    """The worker was killed or died during the request; the message says why."""


class PoolBusy(Exception):
    """No worker became free in time."""


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    conn: Connection

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)
        self.conn.close()


class WorkerPool:
    """Up to `size` worker processes, started on first use."""

    def __init__(self, *, size: int, memory_bytes: int, niceness: int) -> None:
        self.size = size
        self.memory_bytes = memory_bytes
        self.niceness = niceness
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._count = 0
        self.replaced = 0  # workers killed and replaced so far (for tests and the health page)

    def _start(self) -> _Worker:
        # A fresh interpreter running worker.py as a script (not multiprocessing's spawn, which
        # re-imports the parent's __main__): it loads the CEL library and nothing else.
        ours, theirs = socket.socketpair()
        with theirs:
            process = subprocess.Popen(
                [
                    sys.executable,
                    worker.__file__,
                    str(theirs.fileno()),
                    str(self.memory_bytes),
                    str(self.niceness),
                ],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        parent = Connection(ours.detach())
        started = _Worker(process, parent)
        if not parent.poll(START_SECONDS) or parent.recv() != "ready":
            started.kill()
            raise WorkerLost("the expression evaluator could not start")
        return started

    def _checkout(self, wait: float) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            spawn = self._count < self.size
            if spawn:
                self._count += 1
        if spawn:
            try:
                return self._start()
            except BaseException:
                with self._lock:
                    self._count -= 1
                raise
        try:
            return self._idle.get(timeout=wait)
        except queue.Empty:
            raise PoolBusy("the expression evaluator is busy; try again") from None

    def _discard(self, lost: _Worker) -> None:
        lost.kill()
        with self._lock:
            self._count -= 1
            self.replaced += 1

    def run(self, request: worker.Request, *, wait: float) -> worker.Reply:
        """Send `request` to a free worker and wait for its reply within its CPU budget plus
        slack; WorkerLost when the worker had to be stopped, PoolBusy when none was free."""
        per_message, budget = request[3], request[4]
        runner = self._checkout(wait)
        try:
            runner.conn.send(request)
            if not runner.conn.poll(WALL_FACTOR * (budget + per_message) + WALL_SLACK_SECONDS):
                raise WorkerLost("it did not answer within its wall-clock bound")
            reply = runner.conn.recv()
        except WorkerLost:
            self._discard(runner)
            raise
        except (EOFError, OSError):
            code = runner.process.wait(5)
            self._discard(runner)
            if code == -signal.SIGPROF:
                raise WorkerLost("one message used more than its CPU budget") from None
            raise WorkerLost("it ran out of memory or stopped") from None
        except BaseException:
            self._discard(runner)  # interrupted mid-request: its answer would confuse the next
            raise
        self._idle.put(runner)
        if isinstance(reply, str):
            raise WorkerLost(reply)
        verdicts, used, stopped = reply
        return list(verdicts), float(used), bool(stopped)

    def close(self) -> None:
        """Stop every idle worker (busy ones stop when their pipe closes)."""
        while True:
            try:
                idle = self._idle.get_nowait()
            except queue.Empty:
                return
            idle.kill()
            with self._lock:
                self._count -= 1
