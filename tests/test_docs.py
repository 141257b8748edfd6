"""The documentation site's structure: every page in the nav, every nav entry a page, every public
module of skinlib with an API page. Reads mkdocs.yml and docs/ only: needs neither the network
nor the docs packages (`make docs` builds the site itself, strictly)."""

import fnmatch
import os
import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGE_SUFFIXES = {".md", ".ipynb"}


def config() -> dict:
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text())


def nav_pages(nav) -> list[str]:
    """Every page path of a MkDocs nav (a list of strings and {title: page or sub-nav} maps)."""
    pages: list[str] = []
    for entry in nav:
        if isinstance(entry, str):
            pages.append(entry)
        elif isinstance(entry, dict):
            for value in entry.values():
                if isinstance(value, str):
                    if not re.match(r"^[a-z]+://", value):  # an external link is not a page
                        pages.append(value)
                else:
                    pages.extend(nav_pages(value))
    return pages


def excluded(relative: str, patterns: list[str]) -> bool:
    """MkDocs' exclude_docs (gitignore-style), for the simple patterns mkdocs.yml uses."""
    for pattern in patterns:
        pattern = pattern.strip()
        if not pattern or pattern.startswith("#"):
            continue
        anchored = pattern.lstrip("/")
        if pattern.endswith("/"):
            if relative.startswith(anchored) or f"/{anchored}" in f"/{relative}":
                return True
        elif fnmatch.fnmatch(relative, anchored) or fnmatch.fnmatch(os.path.basename(relative), anchored):
            return True
    return False


def doc_pages() -> list[str]:
    """Pages under docs/ as MkDocs finds them: symbolic links followed, dot files skipped."""
    patterns = (config().get("exclude_docs") or "").splitlines()
    found = []
    for folder, dirs, files in os.walk(DOCS, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith(".") or Path(name).suffix not in PAGE_SUFFIXES:
                continue
            relative = (Path(folder) / name).relative_to(DOCS).as_posix()
            if not excluded(relative, patterns):
                found.append(relative)
    return found


def public_modules() -> list[str]:
    """Dotted names under ``skinlib`` of the subpackages and of every module without a private part
    (``data``, ``preprocessing.filters``, ``runs``): the modules a user imports."""
    package = ROOT / "skinlib"
    found = []
    for path in package.rglob("*.py"):
        parts = path.relative_to(package).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        if parts and not any(p.startswith("_") for p in parts):
            found.append(".".join(parts))
    return sorted(found)


def module_exists(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def api_pages() -> dict[str, str]:
    """Module documented -> its page, from the ``::: skinlib...`` lines of the nav's pages."""
    documented = {}
    for page in nav_pages(config()["nav"]):
        path = DOCS / page
        if path.suffix != ".md" or not path.is_file():
            continue
        for match in re.finditer(r"^::: (skinlib(?:\.\w+)*)\s*$", path.read_text(), flags=re.M):
            documented[match.group(1)] = page
    return documented


def test_every_nav_entry_is_a_page():
    missing = [p for p in nav_pages(config()["nav"]) if not (DOCS / p).is_file()]
    assert not missing, f"mkdocs.yml's nav names pages that do not exist under docs/: {missing}"


def test_every_page_is_in_the_nav():
    nav = nav_pages(config()["nav"])
    assert len(nav) == len(set(nav)), "a page is in the nav twice"
    left_out = sorted(set(doc_pages()) - set(nav))
    assert not left_out, f"pages under docs/ missing from mkdocs.yml's nav: {left_out}"


def test_every_public_module_has_an_api_page():
    documented = api_pages()
    assert "skinlib" in documented, "no API page for the top-level package (::: skinlib)"
    missing = [m for m in public_modules() if f"skinlib.{m}" not in documented]
    assert not missing, (
        f"public modules without an API page: {missing}; add docs/api/<module>.md "
        "(one line: '::: skinlib.<module>') and list it under 'API reference' in mkdocs.yml"
    )


def test_every_api_page_documents_an_existing_module():
    stale = [m for m in api_pages() if not module_exists(m)]
    assert not stale, f"API pages for modules that do not exist: {stale}"


def test_the_api_reference_lists_public_modules_only():
    private = [m for m in api_pages() if any(p.startswith("_") for p in m.split("."))]
    assert private == ["skinlib._shared.errors"], "only the error family is shown from a private module"
    assert public_modules()[:3] == ["audit", "config", "data"] and "data._layouts" not in public_modules()


def test_notebooks_are_rendered_as_stored_from_notebooks_folder():
    link = DOCS / "notebooks"
    assert link.is_symlink() and os.readlink(link) == "../notebooks", (
        "docs/notebooks must be a symbolic link to ../notebooks, not a copy"
    )
    stored = {f"notebooks/{p.name}" for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert stored and stored <= set(nav_pages(config()["nav"])), "a stored notebook is missing from the nav"
    plugins = {next(iter(p)): p[next(iter(p))] for p in config()["plugins"] if isinstance(p, dict)}
    assert plugins["mkdocs-jupyter"]["execute"] is False, "the docs build must not execute the notebooks"


def test_nav_helpers():
    nav = ["index.md", {"A": "a.md"}, {"B": ["b/index.md", {"C": "b/c.md"}, {"X": "https://x.org/"}]}]
    assert nav_pages(nav) == ["index.md", "a.md", "b/index.md", "b/c.md"]
    assert excluded("_hooks/x.py", ["/_hooks/"]) and not excluded("api/x.md", ["/_hooks/"])
