"""scratchnet.distributions.multinomial.Multinomial, as d2l's 2.6 draws coin tosses and
die rolls with it, against torch.distributions: shapes, dtypes, counts, frequencies,
the seed, and the errors."""
import numpy as np
import pytest
import torch
from torch.distributions.multinomial import Multinomial as TorchMultinomial

import scratchnet as sn
from scratchnet.distributions.multinomial import Multinomial

FAIR = [0.5, 0.5]
DIE = [1 / 6] * 6


def host(t):
    return t.numpy() if isinstance(t, torch.Tensor) else sn.to_numpy(t.array)


def test_the_path_of_the_import_and_the_attribute():
    assert sn.distributions.multinomial.Multinomial is Multinomial
    assert sn.distributions.Multinomial is Multinomial


@pytest.mark.parametrize("count, probs, shape", [
    (100, FAIR, ()), (1, FAIR, (10000,)), (10, DIE, (3, 4)), (7, [[.2, .8], [1., 3.]], (5,)),
    (1000, [[.1, .2, .7]], ())])
def test_samples_are_counts_of_torchs_shape_and_dtype(count, probs, shape, device):
    ours = Multinomial(count, sn.tensor(probs)).sample(shape)
    theirs = TorchMultinomial(count, torch.tensor(probs)).sample(shape)
    assert tuple(ours.shape) == tuple(theirs.shape) and ours.dtype == np.float32
    assert sn.backend.device_of(ours.array) == device
    c = host(ours)
    assert (c == np.round(c)).all() and (c >= 0).all()
    assert (c.sum(-1) == count).all()


def test_probs_keep_their_dtype_and_are_normalised_as_torchs():
    m, t = Multinomial(10, sn.tensor([1., 3.], dtype=sn.float64)), \
        TorchMultinomial(10, torch.tensor([1., 3.], dtype=torch.float64))
    assert m.sample().dtype == np.float64
    for got, want in ((m.probs, t.probs), (m.mean, t.mean), (m.variance, t.variance)):
        np.testing.assert_allclose(host(got), host(want), rtol=1e-15)
    m, t = Multinomial(10, logits=sn.tensor([0., 1.])), \
        TorchMultinomial(10, logits=torch.tensor([0., 1.]))
    np.testing.assert_allclose(host(m.probs), host(t.probs), rtol=1e-6)
    assert repr(Multinomial(100, sn.tensor(FAIR))) == \
        "Multinomial(total_count: 100, probs: torch.Size([2]))"


def test_frequencies_approach_the_probabilities():
    """2.6.1: the fraction of each outcome over many draws tends to its probability (a
    fixed seed; the bound is 5 standard deviations of the fraction)."""
    probs = np.array([.1, .2, .3, .4])
    n = 100000
    freq = host(Multinomial(n, sn.tensor(probs)).sample()) / n
    assert np.abs(freq - probs).max() < 5 * np.sqrt(.25 / n)
    tosses = Multinomial(1, sn.tensor(FAIR)).sample((20000,))
    cum = tosses.cumsum(dim=0)  # the book's running estimates
    estimates = host(cum / cum.sum(dim=1, keepdims=True))
    assert estimates.shape == (20000, 2) and abs(estimates[-1, 0] - .5) < 5 * np.sqrt(.25 / 20000)


def test_the_seed_repeats_a_sample_on_every_device(device):
    def draw(seed):
        sn.manual_seed(seed)
        return host(Multinomial(10, sn.tensor(DIE)).sample((50,)))
    a, b, c = draw(3), draw(3), draw(4)
    with sn.use_device("cpu"):
        d = draw(3)
    assert (a == b).all() and (a == d).all() and not (a == c).all()


@pytest.mark.parametrize("make, error", [
    ("M(10, L.tensor([-1., 3.]))", ValueError), ("M(10, L.tensor([0., 0.]))", ValueError),
    ("M(10, L.tensor([float('nan'), 1.]))", ValueError), ("M(10, L.tensor([]))", ValueError),
    ("M(10, L.tensor(1.))", ValueError), ("M(10)", ValueError),
    ("M(10, L.tensor([.5, .5]), logits=L.tensor([.5, .5]))", ValueError),
    ("M(2.5, L.tensor([.5, .5]))", NotImplementedError),
    ("M(L.tensor([1, 2]), L.tensor([.5, .5]))", NotImplementedError),
    ("M(0, L.tensor([.5, .5])).sample()", RuntimeError),
    ("M(10, L.tensor([.5, .5])).sample(4)", TypeError)])
def test_bad_input_is_refused_as_torch_refuses_it(make, error):
    messages = []
    for L, M in ((torch, TorchMultinomial), (sn, Multinomial)):
        with pytest.raises(error) as info:
            eval(make, {"L": L, "M": M})
        messages.append(str(info.value).splitlines()[0])
    theirs, ours = messages
    if error is not TypeError:  # torch's own TypeError is Python's ("not iterable")
        key = theirs.split(" of distribution")[0]  # torch names its inner Categorical
        assert ours.startswith("Multinomial") and key in ours


def test_probs_must_be_a_tensor():
    with pytest.raises(TypeError, match="Multinomial: expected probs .* got list"):
        Multinomial(10, [.5, .5])
