"""MkDocs hook: render skinlib's reST-flavoured docstrings as Markdown.

skinlib's docstrings are prose in the numpy style with three reST habits that Markdown does not
know, and that mkdocstrings passes through as they are:

- doctest blocks (``>>>`` lines and their output) outside an ``Examples`` section, which Markdown
  would read as nested quotes and, for outputs such as ``[[0, 1], [2, 3]]``, as links whose
  targets do not exist (a failure under ``mkdocs build --strict``);
- Sphinx roles such as :func:`load_dataset` or :class:`Preprocess`, shown as raw text;
- a paragraph ending in ``::`` before an indented literal block.

The Markdown extension below turns doctest blocks into ``pycon`` code fences (dropping
``# doctest:`` flags), roles into cross-references that mkdocstrings resolves from the
docstring's own scope (``scoped_crossrefs`` in mkdocs.yml), and ``::`` into ``:``. A role whose
target is not rendered in the API reference (a private helper, say) stays plain code instead of
failing the build: those references are marked optional. Cross-references written in the pages
themselves stay strict. The source files are not touched.
"""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as etree
from pathlib import Path

from markdown import Extension
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor
from mkdocs.plugins import event_priority

FENCE = re.compile(r"^\s*(```|~~~)")
DOCTEST = re.compile(r"^(\s*)>>>(\s|$)")
DOCTEST_FLAG = re.compile(r"\s*#\s*doctest:.*$")
ROLE = re.compile(
    r":(?:py:)?(?P<role>func|meth|class|attr|data|const|mod|exc|obj):"
    r"`(?P<tilde>~?)(?P<body>[^`]+)`"
)
EXPLICIT_TITLE = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$")
PACKAGE = Path(__file__).resolve().parents[2] / "skinlib"
PUBLIC_API_MARKER = "<!-- skinlib-public-api -->"


def _stub_exports(package: Path) -> tuple[list[str], dict[str, str]]:
    """A package's ``__init__.pyi`` read statically (the stub ``lazy_loader`` reads): its
    ``__all__`` and the dotted path each name is imported from (``load_dataset`` ->
    ``skinlib.data.load_dataset``; a submodule -> itself)."""
    dotted = ".".join(package.relative_to(PACKAGE.parent).parts)
    try:
        tree = ast.parse((package / "__init__.pyi").read_text())
    except (OSError, SyntaxError):
        return [], {}
    origin: dict[str, str] = {}
    exported: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            for alias in node.names:
                name = alias.asname or alias.name
                base = f"{dotted}.{node.module}" if node.module else dotted
                origin[name] = f"{base}.{alias.name}"
        elif isinstance(node, ast.Assign) and "__all__" in {getattr(t, "id", None) for t in node.targets}:
            exported = [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
    return exported, origin


EXPORTED, ORIGIN = _stub_exports(PACKAGE)
#: ``skinlib.<name>`` -> where the API reference documents it (``skinlib.data.<name>``): a role
#: such as :func:`skinlib.load_dataset` links to the subpackage's page.
TOP_LEVEL = {f"skinlib.{name}": path for name, path in ORIGIN.items() if path != f"skinlib.{name}"}


def public_api_table() -> str:
    """The names of ``skinlib.__all__`` by the subpackage that exports them, each a cross-reference."""
    by_module: dict[str, list[str]] = {}
    for name in EXPORTED:
        path = ORIGIN.get(name, f"skinlib.{name}")
        module, _, leaf = path.rpartition(".")
        if path == f"skinlib.{name}" or (PACKAGE / leaf).is_dir():  # a subpackage or its alias
            by_module.setdefault(path, [])
            continue
        if (PACKAGE.joinpath(*path.split(".")[1:]).with_suffix(".py")).is_file():  # a public module
            by_module.setdefault(module, []).append(f"[`{name}`]({leaf}.md)")
            continue
        by_module.setdefault(module, []).append(f"[`{name}`][{path}]")
    rows = ["| module | names exported by `skinlib` |", "| --- | --- |"]
    for module, names in by_module.items():
        private = any(part.startswith("_") for part in module.split("."))
        page = "#errors" if private else module.split(".")[-1] + ".md"  # the error family is on this page
        rows.append(f"| [`{module}`]({page}) | {', '.join(names) or 'the module itself'} |")
    return "\n".join(rows)


def _role_to_ref(match: re.Match[str]) -> str:
    body = match["body"].strip()
    explicit = EXPLICIT_TITLE.match(body)
    if explicit:
        title, target = explicit["title"], explicit["target"]
    else:
        target = body.rstrip("()")
        title = target.rsplit(".", 1)[-1] if match["tilde"] else target
        if match["role"] in ("func", "meth"):
            title += "()"
    for alias, real in TOP_LEVEL.items():
        if target == alias or target.startswith(alias + "."):
            target = real + target[len(alias):]
            break
    return f"[`{title}`][{target}]"


class DocstringPreprocessor(Preprocessor):
    """Doctest blocks to code fences, roles to cross-references, ``::`` to ``:``."""

    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        in_fence = False
        i = 0
        while i < len(lines):
            line = lines[i]
            if FENCE.match(line):
                in_fence = not in_fence
                out.append(line)
                i += 1
                continue
            if in_fence:
                out.append(line)
                i += 1
                continue
            doctest = DOCTEST.match(line)
            if doctest and (not out or not out[-1].strip()):
                indent = doctest.group(1)
                block = []
                while i < len(lines) and lines[i].strip():
                    text = lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip()
                    block.append(indent + DOCTEST_FLAG.sub("", text))
                    i += 1
                out += [f"{indent}```pycon", *block, f"{indent}```"]
                continue
            line = ROLE.sub(_role_to_ref, line)
            if line.rstrip().endswith("::") and self._literal_block_follows(lines, i):
                stripped = line.rstrip()[:-1]
                line = "" if not stripped.strip(": ") else stripped
            out.append(line)
            i += 1
        return out

    @staticmethod
    def _literal_block_follows(lines: list[str], i: int) -> bool:
        indent = len(lines[i]) - len(lines[i].lstrip())
        for nxt in lines[i + 1 :]:
            if nxt.strip():
                return len(nxt) - len(nxt.lstrip()) > indent
        return False


class OptionalDocstringRefs(Treeprocessor):
    """Cross-references made inside a docstring (they carry its origin) become optional."""

    def run(self, root: etree.Element) -> None:
        for el in root.iter("autoref"):
            if "origin" in el.attrib:
                el.set("optional", "")


class DocstringMarkup(Extension):
    def extendMarkdown(self, md):  # noqa: N802 (Markdown's API)
        # Before the fenced-code preprocessor (25), so that the fences made here are rendered.
        md.preprocessors.register(DocstringPreprocessor(md), "skinlib_docstring_markup", 28)
        # After the inline patterns (20), where autorefs makes its <autoref> elements.
        md.treeprocessors.register(OptionalDocstringRefs(md), "skinlib_optional_docstring_refs", 15)


@event_priority(100)  # before mkdocstrings copies the list of extensions for its handlers
def on_config(config):
    config.markdown_extensions.append(DocstringMarkup())
    return config


def on_page_markdown(markdown, page, config, files):
    """The top-level API page lists ``skinlib.__all__`` as it is now, not as someone last typed it."""
    if PUBLIC_API_MARKER in markdown:
        markdown = markdown.replace(PUBLIC_API_MARKER, public_api_table())
    return markdown
