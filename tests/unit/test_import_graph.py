"""The package's import graph has no cycle, at module level or between the domains'
models and services (../shared/DESIGN.md, "Layout"): a cycle means two pieces cannot be understood,
tested or moved apart, and it is how layering erodes. import-linter's contracts
(pyproject.toml) check the direction of imports; this checks that no loop remains,
including imports made inside functions, which grimp sees as well."""

from __future__ import annotations

import grimp

PACKAGE = "doorwarden"


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, cache_dir=None)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _top(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


# The HTTP layer lives in the domains' folders but sits above every domain's services
# (docs/architecture.md): a router reaches deps and deps reaches the services, so at the
# level of whole folders the HTTP layer always closes a loop. What must be acyclic is the
# domains' models and services; these names are the HTTP layer (as in pyproject.toml's
# import contracts).
HTTP_LAYER = (
    "router",
    "views",
    "detail_views",
    "account_views",
    "log_router",
    "playback_router",
    "http",
    "page",
    "page_forms",
    "forms",
    "kinds",
)
ABOVE_DOMAINS = (
    "doorwarden.deps",
    "doorwarden.main",
    "doorwarden.health",
    "doorwarden.cli",
    "doorwarden.demo",
    "doorwarden.migrations",
)


def _in_service_layer(module: str) -> bool:
    if module.startswith(ABOVE_DOMAINS) or module == PACKAGE:
        return False
    return module.rsplit(".", 1)[-1] not in HTTP_LAYER


def test_the_cycle_finder_finds_a_cycle() -> None:
    # The finder itself must be able to fail.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back() -> None:
    graph = _graph()
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert _cycles(edges) == []


def test_no_cycle_between_the_domains_services() -> None:
    graph = _graph()
    edges: dict[str, set[str]] = {}
    for module in filter(_in_service_layer, graph.modules):
        source = _top(module)
        edges.setdefault(source, set())
        for imported in graph.find_modules_directly_imported_by(module):
            target = _top(imported)
            if target != source and _in_service_layer(imported):
                edges[source].add(target)
    assert _cycles(edges) == []
