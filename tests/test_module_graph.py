"""The package's shape: imports run one way, nothing private crosses a module, and one module owns
the run folder's files."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "skinlib"
#: The files of a run folder, which only skinlib/runs.py may name in code.
RUN_FOLDER_FILES = ("config.json", "predictions.csv", "history.csv", "model.keras")


def modules() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text(), filename=str(path)) for path in sorted(PACKAGE.glob("*.py"))}


def skinlib_imports(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """(module, names) of every ``import skinlib.x`` / ``from skinlib(.x) import ...``, at any depth."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "skinlib":
            if node.module == "skinlib":  # from skinlib import filters
                found += [(alias.name, []) for alias in node.names]
            else:
                found.append((node.module.split(".")[1], [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name.split(".")[1], []) for a in node.names if a.name.startswith("skinlib.")]
    return found


def graph() -> dict[str, set[str]]:
    trees = modules()
    edges = {name: set() for name in trees}
    for name, tree in trees.items():
        if name in ("__init__", "__main__"):
            continue  # the public API and the command line sit on top of everything
        for module, _ in skinlib_imports(tree):
            if module in trees and module != name:
                edges[name].add(module)
    return edges


def test_imports_between_modules_have_no_loop():
    edges = graph()
    state: dict[str, str] = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                pytest.fail("import loop: " + " -> ".join(path + [node, nxt]))
            if nxt not in state:
                visit(nxt, path + [node])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [])


def test_no_private_name_is_imported_across_modules():
    offenders = []
    for name, tree in modules().items():
        for module, names in skinlib_imports(tree):
            offenders += [f"skinlib/{name}.py imports {module}.{n}" for n in names if n.startswith("_")]
    assert offenders == []


def code_strings(tree: ast.Module) -> list[str]:
    """String constants in code, docstrings left out."""
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_only_skinlib_runs_names_the_run_folder_files():
    sources = {f"skinlib/{p.name}": p for p in PACKAGE.glob("*.py") if p.name != "runs.py"}
    sources.update({f"scripts/{p.name}": p for p in (ROOT / "scripts").glob("*.py")})
    offenders = []
    for where, path in sources.items():
        strings = code_strings(ast.parse(path.read_text()))
        offenders += [f"{where}: {s!r}" for s in strings if any(f in s for f in RUN_FOLDER_FILES)]
    assert offenders == [], "read and write run folders through skinlib.runs"


def test_the_checker_sees_a_loop_and_a_private_import():
    loop = {"a": ast.parse("from skinlib.b import x"), "b": ast.parse("def f():\n    from skinlib.a import _y\n")}
    assert skinlib_imports(loop["a"]) == [("b", ["x"])]
    assert skinlib_imports(loop["b"]) == [("a", ["_y"])]  # found inside a function too
    assert code_strings(ast.parse('"""doc naming config.json"""\nx = "predictions.csv"')) == ["predictions.csv"]
