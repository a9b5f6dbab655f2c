"""The disaster-recovery drill (`manage.py dr_drill`): a timed rehearsal of `dr_backup` and
`dr_restore` (smarteros.dr) on services of its own, started with the local stack's launcher
(localstack/). Local tooling: the application never imports it (a lint contract)."""
