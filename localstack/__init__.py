"""The local stack's services: each one started on the ports and data folder it is given,
waited for, and stopped. The one place their command lines live, used by `make run`
(scripts/devstack.py), the tests (tests/processes.py), the soak and the disaster-recovery drill
(drill/). Standard library only, and never imported by the application (a lint contract).

- processes: a server process in its own session with its output in a log file, ports,
  readiness checks, stopping a whole process group;
- services: the Tansu broker, Redis and ClickHouse command lines;
- openbao: OpenBao's command lines and its first start (initialise, unseal, a token);
- postgres: a PostgreSQL cluster of its own (initdb, pg_ctl), or the system's.
"""

from localstack.processes import (
    LOOPBACK,
    ServerProcess,
    ServiceError,
    as_service_user,
    descendants,
    free_port,
    give_to,
    http_answers,
    http_ok,
    port_open,
    spawn,
    terminate,
)

__all__ = [
    "LOOPBACK",
    "ServerProcess",
    "ServiceError",
    "as_service_user",
    "descendants",
    "free_port",
    "give_to",
    "http_answers",
    "http_ok",
    "port_open",
    "spawn",
    "terminate",
]
