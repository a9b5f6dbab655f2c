"""Disaster recovery: a full backup of the platform's state (PostgreSQL, every Kafka topic,
the ClickHouse tables, OpenBao's storage) into one directory with a manifest of versions,
counts and checksums; and a restore into fresh, empty services that verifies all of it
(docs/runbook-disaster-recovery.md). The drill that rehearses both on services of its own is
local tooling, outside the application: drill/.
"""
