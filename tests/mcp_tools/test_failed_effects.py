"""An outside write that failed is an MCP tool error (isError) carrying the effect's reason and
id, not a success whose failure hides in structuredContent."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_tools.auth import principal_from_api_key
from mcp_tools.executor import execute
from mcp_tools.server import call_result
from tests.fixtures.standins.n8n import n8n_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_failed_write_is_is_error_with_its_reason_and_effect_id(
    make_tenant: Any, connect: Any, saas: Any
) -> None:
    tk = make_tenant("failedfx")
    connect(tk.tenant, "n8n", saas.url)
    principal = principal_from_api_key(tk.key)
    n8n_of(saas.state).webhook_auth["locked"] = ("X-Other", "secret")  # n8n refuses: 403
    refused = execute(
        "n8n_trigger_workflow", {"webhook_path": "locked"}, principal=principal, surface="mcp"
    )
    assert refused.ok and refused.output is not None
    effect = refused.output["effect"]
    assert effect["state"] == "failed"
    answer = call_result(refused)
    assert answer.is_error is True
    text = answer.content[0].text  # type: ignore[union-attr]
    assert text.startswith("integration_auth_failed: ")
    assert f"effect {effect['effect_id']}, n8n.trigger_workflow: failed" in text
    assert answer.structured_content == refused.output  # the effect, for the caller to read

    n8n_of(saas.state).webhook_auth.clear()
    done = execute(
        "n8n_trigger_workflow", {"webhook_path": "open"}, principal=principal, surface="mcp"
    )
    assert call_result(done).is_error is False
