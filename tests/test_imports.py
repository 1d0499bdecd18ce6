"""No import circles: the modules' imports (at the top and inside functions alike) form no cycle, and every
module imports on its own, whichever is imported first."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "mnist_sum"


def module_name(path: Path) -> str:
    """mnist_sum/pen.py -> mnist_sum.pen, mnist_sum/__init__.py -> mnist_sum, app.py -> app."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    """Every module of the package, and the repository's top-level modules (app.py and its helpers)."""
    paths = sorted((ROOT / PACKAGE).glob("*.py")) + sorted(ROOT.glob("*.py"))
    return {module_name(p): p for p in paths}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules a module imports, anywhere in its code (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from . import weights` imports a module; `from .pen import load_pen` a name of one
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None when it has none (depth-first search)."""
    state, stack = {}, []  # state: 1 on the current path, 2 done

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_imports_are_found_in_functions_and_relative_forms(tmp_path):
    package = tmp_path / PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("from .model import Net\n")
    (package / "model.py").write_text("def f():\n    from . import data\n    from mnist_sum.pen import x\n")
    known = {"mnist_sum", "mnist_sum.model", "mnist_sum.data", "mnist_sum.pen"}
    assert imports_of("mnist_sum.model", package / "model.py", known) == {"mnist_sum", "mnist_sum.data",
                                                                          "mnist_sum.pen"}
    assert imports_of("mnist_sum", package / "__init__.py", known) == {"mnist_sum.model"}


def test_no_module_imports_itself_through_others():
    modules = project_modules()
    assert {"mnist_sum", "mnist_sum.data", "mnist_sum.sketches", "app"} <= set(modules)
    graph = {name: imports_of(name, path, set(modules)) for name, path in modules.items()}
    assert "mnist_sum.sketches" in graph["mnist_sum.pen_training"]  # the finder sees real imports
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_every_package_module_imports_first_in_a_fresh_interpreter():
    # One interpreter (torch loads once); before each module, every project module is forgotten, so each
    # is the first one imported, as `python -m mnist_sum.<module>` would.
    names = [n for n in project_modules() if n == PACKAGE or n.startswith(PACKAGE + ".")]
    script = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        f"    for loaded in [m for m in sys.modules if m == {PACKAGE!r} or m.startswith({PACKAGE!r} + '.')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
        f"print('imported', {len(names)})\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == f"imported {len(names)}"
