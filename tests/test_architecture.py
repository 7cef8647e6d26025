"""The house rules of docs/architecture.md, checked on the installed package.

No import cycle inside ``sgmca_fast``, no module over 700 lines, a docstring on
every function over 100 lines, and no docstring or comment that points to files
users of the package do not have (the authors' ``ALGORITHM.md``, ``../shared``).
The sources are those of the installed package (found from ``sgmca_fast.__file__``),
read with :mod:`ast` and :mod:`tokenize`; nothing is imported but the package.
"""

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

import sgmca_fast

ROOT = Path(sgmca_fast.__file__).resolve().parent
PACKAGE = "sgmca_fast"
MAX_MODULE_LINES = 700
MAX_UNDOCUMENTED_LINES = 100
# files a user of the package does not have
FOREIGN_CITATION = re.compile(r"ALGORITHM\.md|\.\./shared|\bshared/(docs|data)\b")


def _module_name(path: Path) -> str:
    parts = (PACKAGE,) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    """Module name -> source file, for every .py file of the installed package."""
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _extensions() -> set[str]:
    """Names of the compiled modules (``_starlet.cpython-311-....so``)."""
    names = set()
    for pattern in ("*.so", "*.pyd"):
        for p in ROOT.rglob(pattern):
            stem = p.name.split(".", 1)[0]
            names.add(_module_name(p.with_name(stem + ".py")))
    return names


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST):
    """Every import statement, at module level or inside functions, except those
    under ``if TYPE_CHECKING:`` (never executed)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        children = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.If) and _is_type_checking(node):
            children = node.orelse
        stack.extend(children)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module named by ``from <node.module> import ...``."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _known(name: str, modules: set[str]) -> str | None:
    """The longest prefix of a dotted name that is a module of the package."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (explicit targets only).

    ``from . import x`` counts as an edge to the submodule ``x`` when there is
    one, else to the package (``x`` is then a name defined in its
    ``__init__``). The implicit import of parent packages is not an edge: every
    module would then be in a cycle with ``sgmca_fast/__init__.py``.
    """
    sources = _sources()
    modules = set(sources) | _extensions()
    graph = {}
    for module, path in sources.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        targets = set()
        for node in _import_nodes(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                base = _resolve(module, is_package, node)
                names = [f"{base}.{alias.name}" for alias in node.names]
                # a name that is not a submodule is an attribute of ``base``
                names = [n if n in modules else base for n in names]
            for name in names:
                target = _known(name, modules)
                if target is not None and target != module:
                    targets.add(target)
        # a package's lazy names: _LAZY = {"name": ".module"}, imported on first use
        for name in _lazy_modules(tree, module if is_package else None):
            target = _known(name, modules)
            if target is not None and target != module:
                targets.add(target)
        graph[module] = targets
    return graph


def _lazy_modules(tree: ast.AST, package: str | None) -> list[str]:
    """Modules named by a package's module-level ``_LAZY`` table of relative names."""
    if package is None:
        return []
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                and any(isinstance(t, ast.Name) and t.id == "_LAZY"
                        for t in node.targets)):
            return [package + v.value for v in node.value.values
                    if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return []


def _components(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(set(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (modules, the first repeated last) per component of
    :func:`_components`."""
    return [_one_cycle(graph, component) for component in _components(graph)]


def _one_cycle(graph, component):
    """A shortest cycle through the component's first module (breadth-first)."""
    start = min(component)
    parents, frontier = {}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return path[::-1] + [start]
                if w not in parents:
                    parents[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle in component {sorted(component)}")


def _file_id(path: Path) -> str:
    return str(path.relative_to(ROOT.parent))


# ------------------------------------------------------------ the graph itself


def test_import_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert PACKAGE in graph and f"{PACKAGE}.starlet" in graph
    # starlet.py: "from . import _starlet" (a compiled submodule) and
    # "from ._config import get_num_threads" (a name in a module)
    assert {f"{PACKAGE}._starlet", f"{PACKAGE}._config"} <= graph[f"{PACKAGE}.starlet"]
    # __init__.py: its lazy table {"metrics": ".metrics", ...} gives edges too
    assert f"{PACKAGE}.metrics" in graph[PACKAGE]
    assert f"{PACKAGE}._solver" in graph[PACKAGE]


def test_cycle_finder_on_known_graphs():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c", "a"]
    ]


def test_resolve_relative_imports():
    def node(source):
        return ast.parse(source).body[0]

    assert _resolve("p.q.m", False, node("from . import x")) == "p.q"
    assert _resolve("p.q.m", False, node("from .. import x")) == "p"
    assert _resolve("p.q.m", False, node("from ..r import x")) == "p.r"
    assert _resolve("p.q", True, node("from ._s import x")) == "p.q._s"
    assert _resolve("p.q.m", False, node("from os import path")) == "os"


# ---------------------------------------------------------------- the rules


def test_no_import_cycle():
    graph = import_graph()
    report = [
        f"{sorted(component)}, e.g. {' -> '.join(_one_cycle(graph, component))}"
        for component in _components(graph)
    ]
    assert not report, "import cycles inside the package:\n" + "\n".join(report)


def test_no_module_over_700_lines():
    too_long = {
        _file_id(p): n
        for p in _sources().values()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


def _functions(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_long_functions_have_docstrings():
    missing = []
    for path in _sources().values():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in _functions(tree):
            n_lines = fn.end_lineno - fn.lineno + 1
            if n_lines > MAX_UNDOCUMENTED_LINES and ast.get_docstring(fn) is None:
                missing.append(f"{_file_id(path)}:{fn.lineno} {fn.name} ({n_lines})")
    assert not missing, "functions over 100 lines without a docstring: " + ", ".join(
        missing
    )


def _docstrings_and_comments(text):
    """(line, text) of every docstring and every comment of a Python source."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(
            node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        ):
            doc = ast.get_docstring(node, clean=False)
            if doc is not None:
                yield node.body[0].lineno, doc
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            yield tok.start[0], tok.string


def test_docstrings_cite_files_of_the_repository():
    found = []
    for path in _sources().values():
        for line, text in _docstrings_and_comments(path.read_text(encoding="utf-8")):
            if FOREIGN_CITATION.search(text):
                found.append(f"{_file_id(path)}:{line}")
    assert not found, (
        "docstrings or comments citing files users do not have (ALGORITHM.md, "
        "../shared); cite docs/algorithm.md instead: " + ", ".join(found)
    )


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ('"""See ALGORITHM.md, section 1."""\n', True),
        ("x = 1  # as in ../shared/docs/paper.md\n", True),
        ('"""The Cas A data (shared/data/casa)."""\n', True),
        ('"""See docs/algorithm.md, section 1."""\n', False),
        ('path = "../shared/data"  # a string, not a citation\n', False),
    ],
)
def test_citation_finder(text, flagged):
    hits = [t for _, t in _docstrings_and_comments(text) if FOREIGN_CITATION.search(t)]
    assert bool(hits) == flagged
