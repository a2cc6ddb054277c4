"""The product's import graph: no cycles between its modules, and no product module imports the lab.

Imports are read from the source (ast), at every level: a function-level import (the CLI's way to
start fast) runs as surely as a top-level one once its function does, so a cycle through one is a
cycle all the same. An import of a package counts as an import of its __init__; `from virtnet.x
import y` counts as an import of virtnet.x.y when that is a module, else of virtnet.x. Imports under
`if TYPE_CHECKING:` never run and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

from support import ROOT

PACKAGE = ROOT / "virtnet"
LAB = "virtnet.lab"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
PRODUCT = {name: path for name, path in MODULES.items() if name != LAB and not name.startswith(LAB + ".")}


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(name: str, path: Path) -> set[str]:
    """The virtnet modules `name` imports (at any level, TYPE_CHECKING blocks excepted)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return {module for module in found if module in MODULES and module != name}


def graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    return {name: imports(name, path) & set(modules) for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strongconnect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(edges[node]):
            if succ not in index:
                strongconnect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
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

    for node in sorted(edges):
        if node not in index:
            strongconnect(node)
    return found


def test_the_product_import_graph_has_no_cycles() -> None:
    assert cycles(graph(PRODUCT)) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_product_module_imports_the_lab() -> None:
    offenders = {
        name: sorted(m for m in imports(name, path) if m == LAB or m.startswith(LAB + "."))
        for name, path in PRODUCT.items()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_lab_commands_are_attached_by_name_only() -> None:
    from typer.testing import CliRunner

    from virtnet.cli import app

    text = (PACKAGE / "cli.py").read_text()
    assert '"virtnet.lab.cli"' in text  # the one reference, a string the root group imports on demand
    result = CliRunner().invoke(app, ["lab", "--help"])
    assert result.exit_code == 0 and "status" in result.output
