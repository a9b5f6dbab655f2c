"""The bounded evaluator: limits refused at compile time with the limit named, a slow expression
stopped by its CPU budget in a worker process while the caller's event loop stays responsive,
the worker replaced, and errors without Python internals. Real worker processes throughout."""

from __future__ import annotations

import asyncio
import time

import pytest

from smarteros.infra.evaluator import (
    LIMITS,
    BudgetExceeded,
    ExpressionRefused,
    compile_expression,
    request_budget,
    workers_replaced,
)

DIGITS = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"


def nested_maps(depth: int) -> str:
    """The attack's filter: `[0..9].map(...)` nested `depth` deep (6: 6-7 s per message)."""
    body = "1"
    for level in range(depth):
        body = f"{DIGITS}.map(x{level}, {body})"
    return f"size({body}) > 0"


def test_depth_six_nested_maps_are_refused_at_compile_time_naming_the_limit() -> None:
    began = time.monotonic()
    with pytest.raises(ExpressionRefused) as refused:
        compile_expression(nested_maps(6))
    assert time.monotonic() - began < 0.5  # refused by the checker, never evaluated
    message = str(refused.value)
    assert "nest at most 2 deep" in message and "map" in message


@pytest.mark.parametrize(
    ("source", "named"),
    [
        ("key == '" + "x" * 1000 + "'", "at most 1000 characters"),
        ("(" * 40 + "1" + ")" * 40 + " > 0", "deeper than 32 levels"),
        (" && ".join(["true"] * 40), "deeper than 32 levels"),
        ("size([" + ", ".join(["1"] * 65) + "]) > 0", "at most 64 items"),
        ("size({" + ", ".join(f"{i}: 1" for i in range(65)) + "}) > 0", "at most 64 items"),
        (
            " && ".join(f"{DIGITS}.exists(x{i}, x{i} == {i})" for i in range(5)),
            "at most 4 comprehensions",
        ),
        (f"{DIGITS}.all(a, {DIGITS}.exists(b, {DIGITS}.exists_one(c, a + b == c)))", "nest"),
    ],
)
def test_each_limit_is_refused_with_its_name(source: str, named: str) -> None:
    with pytest.raises(ExpressionRefused) as refused:
        compile_expression(source)
    assert named in str(refused.value)


def test_expressions_within_the_limits_compile_and_evaluate() -> None:
    allowed = compile_expression(
        f'{DIGITS}.map(a, {DIGITS}.filter(b, a < b)).size() == 10 && value.kind == "order"'
        ' && headers["event-type"].startsWith("shopify.")',
    )
    assert allowed.shape.comprehension_nesting == LIMITS.max_comprehension_nesting
    documents = [
        {"value": {"kind": "order"}, "headers": {"event-type": "shopify.orders"}},
        {"value": {"kind": "refund"}, "headers": {"event-type": "shopify.orders"}},
    ]
    selection = allowed.select(documents, budget=request_budget())
    assert selection.verdicts == [True, False] and selection.errors == 0


def test_syntax_errors_keep_the_compilers_message() -> None:
    with pytest.raises(ExpressionRefused) as refused:
        compile_expression("value.total >")
    assert "Syntax error" in str(refused.value)


def test_runtime_errors_are_no_match_and_read_without_python_internals() -> None:
    expression = compile_expression("value.total > 100")
    selection = expression.select(
        [{"value": {"total": 150}}, {"value": {"other": 1}}, {"value": {"total": "x"}}],
        budget=request_budget(),
    )
    assert selection.verdicts == [True, False, False] and selection.errors == 2
    assert "Error" not in selection.last_error and "Traceback" not in selection.last_error
    first = expression.select([{"value": {"other": 1}}], budget=request_budget())
    assert first.last_error == "no such key: total"


SQUARE = "value.items.map(a, value.items.map(b, a * b)).size() > 0"


def test_a_slow_expression_is_stopped_by_its_budget_while_the_loop_stays_responsive() -> None:
    """Within the limits (nesting 2) but quadratic in the message: 3,000 items take seconds.
    The worker is killed at the per-message budget, the caller gets BudgetExceeded, and the
    caller's event loop never stalls meanwhile."""
    slow = compile_expression(SQUARE)
    fast = compile_expression("value.items.size() > 0")
    document = {"value": {"items": list(range(3000))}}
    fast.select([document], budget=request_budget())  # the worker is up before measuring
    replaced = workers_replaced()

    async def scenario() -> tuple[float, float, str]:
        gaps: list[float] = []
        running = True

        async def probe() -> None:
            last = time.monotonic()
            while running:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        prober = asyncio.create_task(probe())
        began = time.monotonic()
        try:
            await slow.aselect([document], budget=request_budget())
            error = ""
        except BudgetExceeded as exc:
            error = str(exc)
        took = time.monotonic() - began
        running = False
        await prober
        return max(gaps), took, error

    worst_gap, took, error = asyncio.run(scenario())
    assert "one message used more than its CPU budget" in error
    assert "100 ms of CPU per message" in error
    assert took < 3.0
    assert worst_gap < 0.2, f"the event loop stalled {worst_gap:.3f}s"
    assert workers_replaced() == replaced + 1
    # The replacement answers the next request.
    assert fast.select([document], budget=request_budget()).verdicts == [True]


def test_the_request_budget_bounds_many_cheap_messages(settings: object) -> None:
    """Each message stays under the per-message budget; together they use the request's."""
    settings.EVALUATOR_REQUEST_MS = 300  # type: ignore[attr-defined]
    medium = compile_expression(SQUARE)
    documents = [{"value": {"items": list(range(60))}}] * 2000
    began = time.monotonic()
    with pytest.raises(BudgetExceeded) as stopped:
        medium.select(documents, budget=request_budget())
    assert "CPU budget for this request" in str(stopped.value)
    assert time.monotonic() - began < 5
