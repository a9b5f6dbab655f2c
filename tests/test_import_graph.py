"""No import circles in the app code: every module can be read (and loaded) after the modules it
imports. Imports inside functions and under TYPE_CHECKING count too: they are dependencies all the
same, only hidden.

A circle is broken by moving the shared piece down a layer, or by registration: the higher module
declares itself to the lower one, which discovers it (as operations, effects and Celery tasks do).
Moving an import into a function does not break it."""

from __future__ import annotations

import grimp

APPS = ("smarteros", "tenants", "mcp_tools", "integrations", "effects", "telemetry")

# The circles of today, each to be broken. Remove an entry once its circle is gone (the test
# fails until then); never add one.
KNOWN: set[frozenset[str]] = set()  # none left; a new circle fails this test


def _circles(graph: grimp.ImportGraph) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's, without recursion)."""
    imports = {
        module: sorted(graph.find_modules_directly_imported_by(module)) for module in graph.modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(imports):
        if root in index:
            continue
        work = [(root, iter(imports[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, pending = work[-1]
            for imported in pending:
                if imported not in index:
                    index[imported] = low[imported] = len(index)
                    stack.append(imported)
                    on_stack.add(imported)
                    work.append((imported, iter(imports[imported])))
                    break
                if imported in on_stack:
                    low[module] = min(low[module], index[imported])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[module])
                if low[module] == index[module]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == module:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
    return found


def _describe(graph: grimp.ImportGraph, circle: frozenset[str]) -> str:
    lines = []
    for importer in sorted(circle):
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & circle):
            for detail in graph.get_import_details(importer=importer, imported=imported):
                lines.append(
                    f"  {importer}:{detail['line_number']} {detail['line_contents'].strip()}"
                )
    return "\n".join(lines)


def test_the_app_code_has_no_import_circle() -> None:
    graph = grimp.build_graph(*APPS, include_external_packages=False)
    circles = set(_circles(graph))
    new = circles - KNOWN
    assert not new, "import circles:\n" + "\n\n".join(_describe(graph, c) for c in new)
    gone = KNOWN - circles
    assert not gone, f"broken already, remove from KNOWN: {[sorted(c) for c in gone]}"


def test_the_circle_finder_finds_circles() -> None:
    graph = grimp.ImportGraph()
    for importer, imported in [("a.x", "a.y"), ("a.y", "a.z"), ("a.z", "a.x"), ("a.z", "a.w")]:
        graph.add_import(importer=importer, imported=imported)
    assert _circles(graph) == [frozenset({"a.x", "a.y", "a.z"})]
