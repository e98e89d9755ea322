"""The structure rules of STYLE.md, checked on the source of app/: no import cycle between its
modules (imports inside functions and type-only imports under ``if TYPE_CHECKING:`` count too), no
module over 600 lines, no class with more than 20 methods (a few Qt widgets that only wire signals
excepted, listed below).

The import graph is grimp's (the library under import-linter), read the way
``../shared/tools/import_cycles.py`` reads it: a package's ``__init__`` importing its own
submodules is a re-export, not a cycle."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator, Mapping
from pathlib import Path

import grimp

APP = Path(__file__).resolve().parents[2] / "app"
MAX_LINES = 600
MAX_METHODS = 20

# Qt widgets allowed more methods because they only wire: each method is a Qt override, a slot that
# hands a signal on, or a one-line delegation to the part that does the work. Keep this short: a
# widget with logic of its own is split instead (state object, pure functions, thin Qt binding).
WIRING_ONLY: dict[str, str] = {
    # "It only wires" (its docstring): docks, actions and signals between the parts, plus the
    # QueueHost / timeline / comments properties that delegate to the frame loader
    "app.editor.main_window.MainWindow": "QMainWindow",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(APP.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> Iterator[tuple[str, Path]]:
    for path in sorted(APP.rglob("*.py")):
        yield _module_name(path), path


def import_graph() -> dict[str, set[str]]:
    """Each module of app/ and the app modules it imports (at top level, in functions, for types)."""
    graph = grimp.build_graph("app", cache_dir=None)  # type-only imports included by default
    packages = {_module_name(p) for p in APP.rglob("__init__.py")}
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        targets = set(graph.find_modules_directly_imported_by(module)) - {module}
        if module in packages:  # a package re-exporting its own submodules ties nothing together
            targets = {t for t in targets if not t.startswith(module + ".")}
        edges[module] = targets
    return edges


def import_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of two or more modules (each module reaches every other)."""

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)

        return seen

    reaches = {m: reach(m) for m in graph}
    found: list[list[str]] = []
    placed: set[str] = set()
    for module in sorted(graph):
        if module in placed or module not in reaches[module]:
            continue
        group = sorted(m for m in reaches[module] if module in reaches[m])
        placed.update(group)
        if len(group) > 1:
            found.append(group)
    return found


def _describe(group: list[str], graph: Mapping[str, set[str]]) -> str:
    ties = [f"{a} -> {b}" for a in group for b in sorted(graph[a]) if b in group]
    return f"cycle of {len(group)}: " + "; ".join(ties)


def test_the_cycle_finder_finds_cycles_and_nothing_else() -> None:
    graph = {
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "d"},  # a -> b -> c -> a
        "d": {"e"},
        "e": {"d"},  # d <-> e, reached from the first cycle but not part of it
        "f": {"a", "g"},
        "g": set(),
    }
    assert import_cycles(graph) == [["a", "b", "c"], ["d", "e"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_inside_app() -> None:
    graph = import_graph()
    found = import_cycles(graph)
    assert not found, f"{len(found)} import cycle(s) in app/:\n" + "\n".join(
        _describe(group, graph) for group in found
    )


def test_no_module_over_600_lines() -> None:
    long = {
        name: count
        for name, path in _sources()
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


@functools.cache
def _classes() -> tuple[tuple[str, ast.ClassDef], ...]:
    """Every class of app/ by its dotted name (nested classes too), parsed once."""
    found: list[tuple[str, ast.ClassDef]] = []
    for name, path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        found += [(f"{name}.{n.name}", n) for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    return tuple(found)


def _methods(node: ast.ClassDef) -> set[str]:
    """The names of the functions defined in the class body (a property's getter and setter: one)."""
    return {b.name for b in node.body if isinstance(b, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_no_class_over_20_methods() -> None:
    big = {
        name: len(methods)
        for name, node in _classes()
        if len(methods := _methods(node)) > MAX_METHODS and name not in WIRING_ONLY
    }
    assert not big, f"classes over {MAX_METHODS} methods (split by responsibility): {big}"


def test_the_wiring_allow_list_names_qt_widgets_that_exist() -> None:
    bases = {name: {ast.unparse(b) for b in node.bases} for name, node in _classes()}
    for name, qt_base in WIRING_ONLY.items():
        assert name in bases, f"{name} is allowed more methods but no longer exists: drop it from the list"
        assert qt_base in bases[name], f"{name} is no {qt_base}: only Qt widgets may only wire"
