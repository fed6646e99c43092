"""The dependency order of the packages (docs/architecture.md), checked on every import statement
(function-level and TYPE_CHECKING imports included):

    diskmgr  <-  appliance.config  <-  appliance.engine  <-  {appliance.services, appliance.iam}
             <-  {s3gw, fusefs}  <-  {appliance.daemon, appliance.cli, appliance.ops, ...}

A layer may import only layers below it; the two members of a pair ({services, iam},
{s3gw, fusefs}) do not import each other; the frontends reach the engine only through its facade
(`appliance.engine` and `appliance.engine.errors`); and the graph of packages has no cycle.
A small AST walk rather than import-linter: the rules fit in a table, and it sees imports inside
functions exactly like module-level ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("appliance", "diskmgr", "s3gw", "fusefs")
TOP = 5
RANKS = {
    "diskmgr": 0,
    "appliance.config": 1,
    "appliance.engine": 2,
    "appliance.services": 3,
    "appliance.iam": 3,
    "s3gw": 4,
    "fusefs": 4,
}
FACADE = ("appliance.engine", "appliance.engine.errors")
FRONTENDS = ("s3gw", "fusefs")


def node_of(module: str) -> str:
    """The package node a module belongs to: a ranked package, else a top-level module of appliance."""
    for name in sorted(RANKS, key=len, reverse=True):
        if module == name or module.startswith(name + "."):
            return name
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "appliance" and len(parts) > 1 else parts[0]


def rank(node: str) -> int:
    return RANKS.get(node, TOP)


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file; `from X import y` yields X.y when
    X.y is a module of ours, else X."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                sub = f"{target}.{a.name}"
                is_module = (REPO / (sub.replace(".", "/") + ".py")).exists() or \
                    (REPO / sub.replace(".", "/") / "__init__.py").exists()
                out.append((node.lineno, sub if is_module else target))
    return [(line, m) for line, m in out if m.split(".")[0] in PACKAGES]


def sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py"))


def violations() -> list[str]:
    found: list[str] = []
    for path in sources():
        mod = module_name(path)
        src = node_of(mod)
        for line, target in imports_of(path):
            dst = node_of(target)
            if dst == src:
                continue
            where = f"{path.relative_to(REPO)}:{line} imports {target}"
            if rank(dst) > rank(src) or (rank(dst) == rank(src) < TOP):
                found.append(f"{where}: {src} (layer {rank(src)}) may not import {dst} (layer {rank(dst)})")
            elif src in FRONTENDS and dst == "appliance.engine" and target not in FACADE:
                found.append(f"{where}: frontends use the facade (appliance.engine), not engine internals")
    return found


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sources():
        src = node_of(module_name(path))
        graph.setdefault(src, set())
        for _, target in imports_of(path):
            dst = node_of(target)
            if dst != src and not (src == "appliance" and dst.startswith("appliance.")) and dst != "appliance":
                graph[src].add(dst)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                found.append([*stack[stack.index(m):], m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    return found


def test_imports_follow_the_layer_order() -> None:
    assert violations() == []


def test_no_package_level_cycles() -> None:
    assert cycles(package_graph()) == []


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The rules table really rejects an upward import (guards against a checker that passes all)."""
    assert rank(node_of("diskmgr.label")) < rank(node_of("appliance.engine.records"))
    assert node_of("appliance.engine.keys") == "appliance.engine"
    assert node_of("appliance.daemon") == "appliance.daemon"
    assert cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]


if __name__ == "__main__":
    for v in violations():
        print(v)
    for c in cycles(package_graph()):
        print("cycle:", " -> ".join(c))
