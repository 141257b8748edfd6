"""The documentation quotes only what the results scripts wrote.

docs/results.md quotes the tables of results/summary.md (scripts/results.py) and
results/summary_v3.md (scripts/results_v3.py) verbatim; README.md's headline table takes its
numbers from rows of those same tables. Either differing from the files fails here.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_PAGE = ROOT / "docs" / "results.md"
SUMMARY = ROOT / "results" / "summary.md"
SUMMARY_V3 = ROOT / "results" / "summary_v3.md"
AUDIT_PAGE = ROOT / "docs" / "audit.md"
AUDIT = ROOT / "results" / "audit.md"
#: The error analyses of scripts/audit_results.py that docs/audit.md quotes, by subsection.
ERROR_ANALYSES = {"v2": ROOT / "results" / "audit_v2.md",
                  "v3, image only": ROOT / "results" / "audit_v3_image.md",
                  "v3 with age, sex and site": ROOT / "results" / "audit_v3_metadata.md"}


def tables(text: str) -> list[str]:
    """Markdown tables (runs of lines starting with '|'), each as one string."""
    return [m.strip() for m in re.findall(r"(?:^\|.*(?:\n|$))+", text, flags=re.M)]


def section(text: str, heading: str) -> str:
    """The text under a heading line (exactly ``heading``) up to the next heading of its level or above."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines()
    try:
        start = lines.index(heading) + 1
    except ValueError:
        return ""
    end = next(
        (i for i in range(start, len(lines)) if re.match(rf"^#{{1,{level}}} ", lines[i])),
        len(lines),
    )
    return "\n".join(lines[start:end])


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_table(table: str) -> tuple[list[str], list[list[str]]]:
    lines = table.splitlines()
    return cells(lines[0]), [cells(l) for l in lines[2:]]


def number(cell: str) -> str:
    """A cell as a number is read: bold marks dropped, spaces normalised."""
    return re.sub(r"\s+", " ", cell.replace("**", "")).strip()


def test_results_page_tables_are_the_ones_the_results_script_wrote():
    summary = tables(SUMMARY.read_text())
    quoted = tables(section(RESULTS_PAGE.read_text(), "## Results on real data"))
    assert summary, "results/summary.md holds no table"
    assert quoted == summary, (
        "the tables under 'Results on real data' in docs/results.md differ from "
        "results/summary.md; rerun scripts/results.py and paste its summary"
    )


def test_results_page_run3_tables_are_the_ones_the_v3_results_script_wrote():
    quoted = tables(section(RESULTS_PAGE.read_text(), "## Run 3 on real data"))
    if not SUMMARY_V3.is_file():
        assert not quoted, "docs/results.md quotes run 3 results but results/summary_v3.md does not exist"
        return
    assert quoted == tables(SUMMARY_V3.read_text()), (
        "the tables under 'Run 3 on real data' in docs/results.md differ from "
        "results/summary_v3.md; rerun scripts/results_v3.py and paste its summary"
    )


def test_audit_page_quotes_the_audit_scripts_tables():
    quoted = tables(section(AUDIT_PAGE.read_text(), "## The three datasets"))
    assert AUDIT.is_file() or not quoted, "docs/audit.md quotes audit results but results/audit.md does not exist"
    if AUDIT.is_file():
        assert quoted == tables(AUDIT.read_text()), (
            "the tables under 'The three datasets' in docs/audit.md differ from results/audit.md; "
            "rerun scripts/audit_datasets.py and paste its tables"
        )


def test_audit_page_quotes_the_error_analyses():
    # The page shows some of the tables scripts/audit_results.py printed for each run, each verbatim.
    page = section(AUDIT_PAGE.read_text(), "## What one AUC hides on HAM10000")
    for variant, path in ERROR_ANALYSES.items():
        quoted = tables(section(page, f"### {variant}"))
        assert path.is_file() or not quoted, f"docs/audit.md quotes {path.name}, which does not exist"
        if path.is_file():
            written = tables(path.read_text())
            assert quoted and all(t in written for t in quoted), (
                f"a table under '### {variant}' in docs/audit.md is not one of results/{path.name}; "
                "rerun scripts/audit_results.py and paste its tables"
            )


# The README's headline table: its columns, and where each takes its number from.
# v1 and v2 rows are rows of summary.md's ablation table, found by (preprocessing, model);
# v3 rows are rows of summary_v3.md's cross-validation table, found by its first cell.
ABLATION_COLUMNS = {
    "ROC AUC, published code": "ROC AUC, as published",
    "ROC AUC": "ROC AUC, corrected",
    "balanced accuracy": "balanced accuracy",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
}
V3_COLUMNS = {
    "ROC AUC": "test ROC AUC",
    "balanced accuracy": "balanced accuracy",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
}


def headline_table(readme: str) -> tuple[list[str], list[list[str]]]:
    found = tables(section(readme, "## Results"))
    assert found, "README.md has no table under '## Results'"
    return parse_table(found[0])


def source_table(path: Path, first_columns: list[str]) -> tuple[list[str], list[list[str]]]:
    for table in tables(path.read_text()):
        header, rows = parse_table(table)
        if header[: len(first_columns)] == first_columns:
            return header, rows
    raise AssertionError(f"{path.relative_to(ROOT)} has no table starting with the columns {first_columns}")


def check_headline(readme: str) -> None:
    """Every number of the README's headline table equals its row in the results files."""
    header, rows = headline_table(readme)
    assert header[:2] == ["model", "preprocessing"], header
    ablation_header, ablation_rows = source_table(SUMMARY, ["preprocessing", "model"])
    ablation = {(r[0], r[1]): dict(zip(ablation_header, r)) for r in ablation_rows}
    v3_header, v3_rows = source_table(SUMMARY_V3, ["HAM10000, 5-fold CV"])
    v3 = {r[0]: dict(zip(v3_header, r)) for r in v3_rows}

    models = set()
    for row in rows:
        quoted = dict(zip(header, row))
        model, preprocessing = quoted["model"], quoted["preprocessing"]
        if model.startswith("v3"):
            assert model in v3, f"README headline row {model!r} is not a row of results/summary_v3.md"
            source, columns = v3[model], V3_COLUMNS
            assert number(quoted["ROC AUC, published code"]) == "–", model
        else:
            key = (preprocessing, model)
            assert key in ablation, f"README headline row {key} is not a row of results/summary.md"
            source, columns = ablation[key], ABLATION_COLUMNS
        for mine, theirs in columns.items():
            assert number(quoted[mine]) == number(source[theirs]), (
                f"README.md headline, {model} / {preprocessing}, {mine!r}: {quoted[mine]!r}, "
                f"but the results file says {source[theirs]!r}"
            )
        models.add(model.split(",")[0].split(" ")[0])
    assert models == {"v1", "v2", "v3"}, f"the headline table should show v1, v2 and v3, shows {models}"


def test_readme_headline_numbers_are_rows_of_the_summaries():
    check_headline((ROOT / "README.md").read_text())


def test_headline_check_fails_on_a_changed_number():
    readme = (ROOT / "README.md").read_text()
    for old, new in [("| 0.830 ± 0.016 |", "| 0.831 ± 0.016 |"), ("| 0.820 | 0.875 |", "| 0.820 | 0.876 |")]:
        changed = readme.replace(old, new, 1)
        assert changed != readme, f"the headline table no longer holds {old!r}"
        try:
            check_headline(changed)
        except AssertionError as error:
            assert new.strip("| ").split(" | ")[-1] in str(error)
        else:
            raise AssertionError(f"a changed headline number ({new!r}) went unnoticed")


def test_tables_helper_splits_blocks():
    text = "intro\n| a | b |\n|---|---|\n| 1 | 2 |\n\ntext\n| c |\n|---|\n"
    assert tables(text) == ["| a | b |\n|---|---|\n| 1 | 2 |", "| c |\n|---|"]


def test_section_stops_at_the_next_heading_of_its_level():
    text = "# T\n## A\n| 1 |\n### sub\n| 2 |\n## B\n| 3 |\n"
    assert tables(section(text, "## A")) == ["| 1 |", "| 2 |"]
    assert section(text, "## Missing") == ""
