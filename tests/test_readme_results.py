"""README.md quotes only what scripts/results.py wrote: its result tables are results/summary.md's."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tables(text: str) -> list[str]:
    """Markdown tables (runs of lines starting with '|'), each as one string."""
    return [m.strip() for m in re.findall(r"(?:^\|.*(?:\n|$))+", text, flags=re.M)]


def results_section(readme: str, heading: str = "## Results on real data") -> str:
    return readme.split(heading, 1)[1].split("\n## ", 1)[0] if heading in readme else ""


def test_readme_result_tables_are_the_ones_the_results_script_wrote():
    summary = tables((ROOT / "results" / "summary.md").read_text())
    quoted = tables(results_section((ROOT / "README.md").read_text()))
    assert summary, "results/summary.md holds no table"
    assert quoted == summary, (
        "the tables under 'Results on real data' in README.md differ from results/summary.md; "
        "rerun scripts/results.py and paste its summary"
    )


def test_readme_run3_tables_are_the_ones_the_v3_results_script_wrote():
    quoted = tables(results_section((ROOT / "README.md").read_text(), "## Run 3 on real data"))
    written = ROOT / "results" / "summary_v3.md"
    if not written.is_file():
        assert not quoted, "README.md quotes run 3 results but results/summary_v3.md does not exist"
        return
    assert quoted == tables(written.read_text()), (
        "the tables under 'Run 3 on real data' in README.md differ from results/summary_v3.md; "
        "rerun scripts/results_v3.py and paste its summary"
    )


def test_tables_helper_splits_blocks():
    text = "intro\n| a | b |\n|---|---|\n| 1 | 2 |\n\ntext\n| c |\n|---|\n"
    assert tables(text) == ["| a | b |\n|---|---|\n| 1 | 2 |", "| c |\n|---|"]
