"""No two vertseg_tf modules import each other, directly or through others, and none imports
from a higher layer of docs/architecture.md's layering rule.

Imports inside functions count too: they are how a module reaches a heavy or upper one lazily,
and a circle through them is still a circle.
"""

import ast
import re
from pathlib import Path

import vertseg_tf

PACKAGE = Path(vertseg_tf.__file__).parent
ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imports(name: str, path: Path, modules) -> set[str]:
    """The vertseg_tf modules `name` imports (a name imported from a package: its module)."""

    def module_of(dotted: str) -> str:
        while dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {module_of(a.name) for a in node.names if a.name.startswith("vertseg_tf")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            if base.startswith("vertseg_tf"):
                found |= {module_of(f"{base}.{a.name}") for a in node.names}
    return found - {name}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    order, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(node):
        order[node] = low[node] = len(order)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in order:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], order[other])
        if low[node] == order[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                circles.append(sorted(component))

    for node in graph:
        if node not in order:
            visit(node)
    return circles


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c"]]


def test_no_import_circles_in_vertseg_tf():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert graph["vertseg_tf.data.patches"] >= {
        "vertseg_tf.data.patch_build", "vertseg_tf.data.patch_cut"
    }
    assert _circles(graph) == []


def _layers() -> dict[str, int]:
    """Top-level module or subpackage name ("vertseg_tf" for the package itself) -> its layer,
    from the numbered list under "The import layering rule" in docs/architecture.md."""
    text = ARCHITECTURE.read_text(encoding="utf-8").split("## The import layering rule")[1]
    layers, number = {}, None
    for line in text.split("\n\n", 2)[2].splitlines():
        item = re.match(r"(\d+)\. ", line)
        if item:
            number = int(item.group(1))
        elif not line.startswith("   "):
            break
        for name in re.findall(r"`([a-z_]+)`", line):
            layers[name] = number
    return layers


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "vertseg_tf"


def test_no_module_imports_from_a_higher_layer():
    layers, modules = _layers(), _modules()
    assert layers["errors"] == 1 and layers["cli"] == 10 and layers["vertseg_tf"] == 1
    unplaced = sorted({_unit(name) for name in modules} - set(layers))
    assert unplaced == [], "add these to docs/architecture.md's layers"
    upward = sorted(
        f"{name} -> {other}"
        for name, path in modules.items()
        for other in _imports(name, path, modules)
        if layers[_unit(other)] > layers[_unit(name)]
    )
    assert upward == []
