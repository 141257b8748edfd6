"""The package's shape: subpackages layered one way, no import loop, nothing private crossing a
module or a subpackage, one module owning the run folder's files, and no TensorFlow below the models.

A module is named by its dotted path under ``skinlib`` (``data._datasets``, ``runs``); its layer is
its subpackage (``data``) or, at the top, the module itself (``runs``, ``config``, ``_shared``).
"""

import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "skinlib"
#: The files of a run folder, which only skinlib/runs.py may name in code.
RUN_FOLDER_FILES = ("config.json", "predictions.csv", "history.csv", "model.keras")
#: What each layer may import, lowest first. The command line and the top-level API sit on top of
#: everything; plotting draws what the layers below compute, and the audit's report draws with it.
ALLOWED = {
    "_shared": set(),
    "data": {"_shared"},
    "preprocessing": {"_shared", "data"},
    "runs": {"_shared", "preprocessing"},
    "evaluation": {"_shared", "data", "runs"},
    "models": {"_shared", "data", "preprocessing", "runs", "evaluation"},
    "plotting": {"_shared", "data", "preprocessing", "runs", "evaluation", "models"},
    "audit": {"_shared", "data", "preprocessing", "runs", "evaluation", "plotting"},
    "config": {"_shared", "data", "preprocessing", "runs", "models"},
}
#: The only modules that draw figures through skinlib.plotting (notebooks draw too).
PLOTTING_CALLERS = {"audit._report", "audit._checks", "__main__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


@functools.cache
def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(), filename=str(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> str:
    return module.split(".")[0]


def type_checking_nodes(tree: ast.Module) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks: imports for annotations only."""
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            inside |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return inside


def skinlib_imports(tree: ast.Module, *, runtime_only: bool = False) -> list[tuple[str, list[str]]]:
    """(module, names) of every ``import skinlib.x`` / ``from skinlib(.x.y) import ...``, at any depth.

    ``from skinlib.x import y`` where ``y`` is a module of ``skinlib.x`` counts as importing
    ``x.y``; ``from skinlib import x`` as importing ``x`` (``__init__`` when ``x`` is not a module).
    """
    skip = type_checking_nodes(tree) if runtime_only else set()
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "skinlib":
            base = node.module.split(".")[1:]
            for alias in node.names:
                sub = PACKAGE.joinpath(*base, alias.name)
                if sub.with_suffix(".py").is_file() or (sub / "__init__.py").is_file():
                    found.append((".".join([*base, alias.name]), []))
                else:
                    found.append((".".join(base) or "__init__", [alias.name]))
        elif isinstance(node, ast.Import):
            found += [(a.name.split(".", 1)[1], []) for a in node.names if a.name.startswith("skinlib.")]
    return found


def graph(*, runtime_only: bool = True) -> dict[str, set[str]]:
    trees = modules()
    edges = {name: set() for name in trees}
    for name, tree in trees.items():
        if name in ("__init__", "__main__"):
            continue  # the public API and the command line sit on top of everything
        for module, _ in skinlib_imports(tree, runtime_only=runtime_only):
            if module != name:
                edges[name].add(module)
    return edges


def find_loop(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return path + [node, nxt]
            if nxt not in state:
                loop = visit(nxt, path + [node])
                if loop:
                    return loop
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state:
            loop = visit(node, [])
            if loop:
                return loop
    return None


def test_imports_between_modules_have_no_loop():
    loop = find_loop(graph(runtime_only=False))
    assert loop is None, "import loop: " + " -> ".join(loop or [])


def test_subpackages_import_each_other_one_way_only():
    offenders = []
    edges = graph()
    for name, targets in edges.items():
        if layer(name) not in ALLOWED:
            continue
        offenders += [f"skinlib/{name} imports {t}" for t in sorted(targets)
                      if layer(t) != layer(name) and layer(t) not in ALLOWED[layer(name)]]
    assert offenders == []
    layers = {a: {layer(t) for n, ts in edges.items() if layer(n) == a for t in ts} - {a} for a in ALLOWED}
    assert find_loop(layers) is None


def test_data_and_preprocessing_never_import_models_evaluation_or_audit():
    lower = {n: ts for n, ts in graph(runtime_only=False).items() if layer(n) in ("data", "preprocessing")}
    offenders = [f"{n} -> {t}" for n, ts in lower.items() for t in ts
                 if layer(t) in ("models", "evaluation", "audit", "plotting", "config", "__init__")]
    assert offenders == []


def test_only_the_report_and_the_command_line_import_plotting():
    importers = {n for n, ts in graph(runtime_only=True).items() if any(layer(t) == "plotting" for t in ts)}
    assert importers - {n for n in importers if layer(n) == "plotting"} <= PLOTTING_CALLERS


def test_no_module_imports_the_top_level_api():
    offenders = [n for n, ts in graph(runtime_only=False).items() if "__init__" in ts]
    assert offenders == [], "import from the subpackage that owns a name, not from skinlib itself"


def test_no_private_name_is_imported_across_modules():
    offenders = []
    for name, tree in modules().items():
        for module, names in skinlib_imports(tree):
            offenders += [f"skinlib/{name} imports {module}.{n}" for n in names if n.startswith("_")]
    assert offenders == []


def test_private_modules_are_imported_only_within_their_subpackage():
    offenders = []
    for name, targets in graph(runtime_only=False).items():
        for target in targets:
            private = [p for p in target.split(".")[1:] if p.startswith("_")]
            if private and layer(target) != layer(name) and layer(target) != "_shared":
                offenders.append(f"skinlib/{name} imports {target}")
    assert offenders == [], "import a subpackage's public names from the subpackage"


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
    sources = {p.relative_to(ROOT).as_posix(): p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "runs.py"}
    sources.update({f"scripts/{p.name}": p for p in (ROOT / "scripts").glob("*.py")})
    offenders = []
    for where, path in sources.items():
        strings = code_strings(ast.parse(path.read_text()))
        offenders += [f"{where}: {s!r}" for s in strings if any(f in s for f in RUN_FOLDER_FILES)]
    assert offenders == [], "read and write run folders through skinlib.runs"


def test_every_stub_name_is_what_its_package_gives():
    """Each ``__init__.pyi`` lists names that exist (lazy_loader raises only on first use)."""
    code = ("import importlib, skinlib, sys\n"
            "for pkg in ['skinlib', 'skinlib.data', 'skinlib.preprocessing', 'skinlib.models', 'skinlib.evaluation',"
            " 'skinlib.audit', 'skinlib.plotting']:\n"
            "    m = importlib.import_module(pkg)\n"
            "    missing = [n for n in m.__all__ if not hasattr(m, n)]\n"
            "    assert not missing, (pkg, missing)\n"
            "    assert set(m.__all__) <= set(dir(m)), pkg\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize("package", ["skinlib", "skinlib.data", "skinlib.preprocessing", "skinlib.models",
                                     "skinlib.evaluation", "skinlib.audit"])
def test_importing_a_layer_below_the_models_never_imports_tensorflow(package):
    """The data layer never needs TensorFlow; ``skinlib.models`` itself loads Keras only on first use."""
    names = {"skinlib": ["load_dataset", "Preprocess", "evaluate", "find_duplicates"],
             "skinlib.models": ["RECIPES", "check_metadata_columns"]}.get(package)
    touch = f"[getattr(m, n) for n in {names}]" if names else "[getattr(m, n) for n in m.__all__]"
    code = (f"import importlib, sys; m = importlib.import_module({package!r}); {touch}; "
            "loaded = [k for k in ('tensorflow', 'keras') if k in sys.modules]; assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_checker_sees_a_loop_a_private_import_and_a_layer_broken():
    loop = {"a": ast.parse("from skinlib.b import x"), "b": ast.parse("def f():\n    from skinlib.a import _y\n")}
    assert skinlib_imports(loop["a"]) == [("b", ["x"])]
    assert skinlib_imports(loop["b"]) == [("a", ["_y"])]  # found inside a function too
    assert find_loop({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    typed = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from skinlib.audit import X\n")
    assert skinlib_imports(typed, runtime_only=True) == [] and skinlib_imports(typed) == [("audit", ["X"])]
    assert skinlib_imports(ast.parse("from skinlib.preprocessing import filters")) == [("preprocessing.filters", [])]
    assert skinlib_imports(ast.parse("from skinlib import load_dataset")) == [("__init__", ["load_dataset"])]
    assert code_strings(ast.parse('"""doc naming config.json"""\nx = "predictions.csv"')) == ["predictions.csv"]
