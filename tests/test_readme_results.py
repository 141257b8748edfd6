"""README.md quotes only what scripts/results.py wrote: its result tables are results/summary.md's."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tables(text: str) -> list[str]:
    """Markdown tables (runs of lines starting with '|'), each as one string."""
    return [m.strip() for m in re.findall(r"(?:^\|.*(?:\n|$))+", text, flags=re.M)]


def results_section(readme: str) -> str:
    return readme.split("## Results on real data", 1)[1].split("\n## ", 1)[0]


def test_readme_result_tables_are_the_ones_the_results_script_wrote():
    summary = tables((ROOT / "results" / "summary.md").read_text())
    quoted = tables(results_section((ROOT / "README.md").read_text()))
    assert summary, "results/summary.md holds no table"
    assert quoted == summary, (
        "the tables under 'Results on real data' in README.md differ from results/summary.md; "
        "rerun scripts/results.py and paste its summary"
    )


def test_tables_helper_splits_blocks():
    text = "intro\n| a | b |\n|---|---|\n| 1 | 2 |\n\ntext\n| c |\n|---|\n"
    assert tables(text) == ["| a | b |\n|---|---|\n| 1 | 2 |", "| c |\n|---|"]
