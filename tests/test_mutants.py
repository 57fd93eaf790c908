"""The mutation check (tests/mutants.py): every planted bug is caught by its tests."""
import pytest
from mutants import MUTANTS, ROOT, check


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_each_mutants_text_is_still_in_the_tree(mutant):
    """Quick: the text a mutant replaces is there exactly once (a refactor that moves
    the code must move its mutant too), and the mutant changes it."""
    text = (ROOT / mutant.path).read_text(encoding="utf-8")
    assert mutant.apply(text) != text
    for arg in mutant.tests:
        if arg.startswith("tests/"):
            assert (ROOT / arg.split("::")[0]).is_file(), arg


def test_the_mutants_are_distinct_and_cover_the_issue():
    names = [m.name for m in MUTANTS]
    assert len(set(names)) == len(names) >= 16


@pytest.mark.slow
def test_every_mutant_is_caught():
    """Each bug planted alone in a copy of the tree makes its tests fail (about two
    minutes on 2 cores: README, "The mutation check")."""
    lines = []
    verdicts = check(log=lines.append)
    assert verdicts == {m.name: "caught" for m in MUTANTS}, "\n".join(lines)
