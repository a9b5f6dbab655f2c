"""The console's people and tenants (acme and globex, a platform admin, acme's admin and
viewer), shared with tests/tenants/console."""

from tests.tenants.console.conftest import world

__all__ = ["world"]
