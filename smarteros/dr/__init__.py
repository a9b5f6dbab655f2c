"""Disaster recovery: a full backup of the platform's state (PostgreSQL, every Kafka topic,
the ClickHouse tables, OpenBao's storage) into one directory with a manifest of versions,
counts and checksums; a restore into fresh, empty services that verifies all of it; and a drill
that does both on services of its own and times the recovery (docs/runbook-disaster-recovery.md).
"""
