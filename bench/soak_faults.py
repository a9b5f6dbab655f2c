"""The soak's fault schedule: each fault injected into the stack, then recovered from."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import soak_stack

DOWN_SECONDS = 3.0  # how long each stopped service stays down


@dataclass
class Fault:
    name: str
    inject: Callable[[], None]
    began: float = 0.0
    ended: float = 0.0
    error: str = ""


@dataclass
class Timeline:
    faults: list[Fault] = field(default_factory=list)

    def in_fault(self, moment: float, grace: float = 2.0) -> bool:
        return any(f.began <= moment <= f.ended + grace for f in self.faults if f.began)


def fault_schedule(stack: soak_stack.Stack) -> list[Fault]:
    def restart(name: str, freeze: tuple[str, ...] = ()) -> Callable[[], None]:
        return lambda: stack.restart_service(name, DOWN_SECONDS, freeze=freeze)

    def kill_worker() -> None:
        # A worker the supervisor is still restarting (after an earlier fault) is waited for.
        soak_stack.wait(lambda: stack.app_process("worker") is not None, 60, "worker")
        old = stack.signal_app("worker", signal.SIGKILL)
        soak_stack.wait(lambda: stack.app_process("worker") not in (None, old), 60, "worker")

    def restart_web() -> None:
        old = stack.signal_app("web", signal.SIGTERM)
        soak_stack.wait(lambda: stack.app_process("web") not in (None, old), 60, "web restart")
        soak_stack.wait(soak_stack.http_answers(f"{stack.web_url}/healthz"), 60, "web")

    # The broker of this stack keeps its topics in memory: they are saved before it stops and
    # replayed after (as `make run` does). The processes that produce are paused while it is
    # saved and while it is restored, standing in for a production broker's durability (what
    # it acknowledged is kept, and it comes back with it); they run while it is down.
    return [
        Fault("kafka broker stopped", restart("kafka", freeze=("relay", "web", "worker"))),
        Fault("clickhouse stopped", restart("clickhouse")),
        Fault("openbao stopped", restart("vault")),
        Fault("redis stopped", restart("redis")),
        Fault("worker SIGKILL", kill_worker),
        Fault("web restarted", restart_web),
    ]


def run_faults(faults: list[Fault], seconds: float, stop: threading.Event) -> None:
    """Inject each fault at its slot (evenly spread, the first after a calm start), one at a
    time; each returns once recovered."""
    began = time.monotonic()
    slot = seconds / (len(faults) + 1)
    for index, fault in enumerate(faults):
        due = began + slot * (index + 0.5)
        time.sleep(max(0.0, due - time.monotonic()))
        if stop.is_set():
            return
        fault.began = time.monotonic()
        soak_stack.say(f"fault: {fault.name}")
        try:
            fault.inject()
        except Exception as exc:  # reported as a failed recovery, the soak goes on
            fault.error = repr(exc)[:300]
        fault.ended = time.monotonic()
        outcome = f"NOT recovered: {fault.error}" if fault.error else "recovered"
        soak_stack.say(f"{outcome}: {fault.name} in {fault.ended - fault.began:.1f}s")
