"""Running the book's cells section by section, for tests/test_chapters_2_6.py and
tests/test_chapters_7_8.py: one cell recorded (``run_recorded``), the losses before and
after a cell's ``Trainer.fit`` (``FitProbe``), and the module-scoped ``runs`` fixture
that runs a section when a test first asks for it (``section_runs``)."""
import traceback

import pytest
from seedcells import run_cell

import chaptercells as cc


class FitProbe:
    """Wraps d2l's ``Trainer.fit`` (the cell's text is unchanged): before the fit it takes
    a batch of the fit's training data (``batch(model, data)``) and the model's loss on
    it (``loss(model, batch)``), and after the fit the loss again. Each fit adds a record
    {"before", "after", "model", "error"} to ``fits``; ``error`` is the probe's own
    failure, told apart from the cell's. Subclasses say which batch and which loss."""

    def __init__(self):
        self.fits = []

    def wrap(self, fit):
        probe = self

        def probed_fit(trainer, model, data):
            record = {"before": None, "after": None, "model": model, "error": None}
            probe.fits.append(record)
            try:
                batch = probe.batch(model, data)
                record["before"] = probe.loss(model, batch)
            except Exception:
                record["error"] = traceback.format_exc(limit=-4)
            fit(trainer, model, data)
            if record["error"] is None:
                try:
                    record["after"] = probe.loss(model, batch)
                except Exception:
                    record["error"] = traceback.format_exc(limit=-4)
        return probed_fit

    @staticmethod
    def batch(model, data):
        raise NotImplementedError

    @staticmethod
    def loss(model, batch):
        raise NotImplementedError


def run_recorded(code, ns, probe):
    """Run one cell in the namespace ``ns``: what it printed (``out``), the error it
    raised (``error``, formatted; ``raised``, as "Type: message"), and ``fit``, the
    record ``probe`` made of a ``Trainer.fit`` the cell called (None if none)."""
    result = {"out": None, "error": None, "raised": None, "fit": None}
    n = len(probe.fits)
    try:
        result["out"] = run_cell(code, ns)
    except Exception as e:
        result["error"] = traceback.format_exc(limit=-4)
        result["raised"] = f"{type(e).__name__}: {e}"
    if len(probe.fits) > n:
        result["fit"] = probe.fits[-1]
    return result


def section_runs(run_section):
    """A module-scoped fixture ``runs``: ``runs(section)`` is
    ``run_section(section, tmp_path)``'s result, made once, when a test first asks."""
    @pytest.fixture(scope="module")
    def runs(tmp_path_factory):
        done = {}

        def get(section):
            if section not in done:
                done[section] = run_section(section, tmp_path_factory.mktemp(section))
            return done[section]
        return get
    return runs


def check_printed(section, i, check, out, want, properties):
    """Compare what cell ``i`` of ``section`` printed (``out``) with what it prints on
    PyTorch (``want``) as chaptercells.CHECKS says (``check``): silent, exact, or property
    (numbers masked, then ``properties[section, i](out)`` where there is one). Returns
    False for a check of another kind (a training cell's), which the caller makes."""
    if check == "silent":
        assert out == "", out
    elif check == "exact":
        assert out == want, f"scratchnet printed\n{out}\nPyTorch prints\n{want}"
    elif check == "property":
        assert cc.masked(out) == cc.masked(want), \
            f"scratchnet printed\n{out}\nPyTorch prints (numbers aside)\n{want}"
        if (section, i) in properties:
            properties[section, i](out)
    else:
        return False
    return True
