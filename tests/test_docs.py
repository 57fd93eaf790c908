"""Every Python example in docs/*.md runs as shown (tests/docpages.py says how)."""
import pytest

import docpages

PAGES = sorted(docpages.DOCS.glob("*.md"))


def test_the_pages_are_found():
    assert {"autograd.md", "backprop.md", "porting.md"} <= {p.name for p in PAGES}


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_runs_as_shown(page):
    problems = docpages.run_page(page)
    assert not problems, f"docs/{page.name}:\n" + "\n\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_every_python_block_of_the_page_is_checked(page):
    """No python block hides from the runner: each is run or is a checked quote."""
    for block in docpages.blocks(page.read_text()):
        if block.lang.startswith("py") and block.lang != "python":
            pytest.fail(f"docs/{page.name} line {block.line}: fence '{block.info}' "
                        "is not run; write ```python")


def test_the_runner_compares_output_and_quotes(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("```python\nprint(1 + 1)\n```\n\n```\n3\n```\n"
                    "```python quote=scratchnet/teach.py\ndef nothing_like_this():\n```\n")
    problems = docpages.run_page(page)
    assert len(problems) == 2
    assert "printed\n2" in problems[0] and "no longer matches" in problems[1]
