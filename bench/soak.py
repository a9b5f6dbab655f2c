"""Soak with faults: the whole stack of its own (services on free ports, a database of its own,
web, worker with the consumer groups, beat, outbox relay, supervised as `make run` does), three
tenants' mixed traffic at a fixed rate on every surface, and a schedule of faults, each followed
by recovery: the Kafka broker, ClickHouse, OpenBao and Redis stopped and started, a worker
killed with SIGKILL, the web process restarted. Then it drains and checks what the product
promises: nothing accepted lost or handled twice, outside effects performed once, one telemetry
row per call, refusals clean (503/429 naming why), no 5xx and no hangs.

Usage: .venv/bin/python bench/soak.py [--seconds N | --minutes N] [--rate R]
Exit code 0 only if every invariant holds; see docs/soak.md for each line of the report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import soak_stack


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=float, help="traffic duration (default 60)")
    length.add_argument("--minutes", type=float, help="traffic duration in minutes")
    parser.add_argument("--rate", type=float, default=15.0, help="requests per second, all kinds")
    parser.add_argument("--drain", type=float, default=120.0, help="max seconds to drain after")
    args = parser.parse_args()
    seconds = args.seconds or (args.minutes * 60 if args.minutes else 60.0)

    run_dir = soak_stack.configure()
    soak_stack.devstack().install_signal_handlers()  # SIGTERM too stops what the soak started
    stack = soak_stack.Stack()
    soak_stack.say(f"run folder {run_dir}")
    try:
        stack.start_services()
        import soak_run  # Django is set up from here on, pointed at this stack

        return soak_run.soak(stack, seconds=seconds, rate=args.rate, drain=args.drain)
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
