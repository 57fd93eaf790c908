"""d2l 8.5's batch normalization three ways, from the same numbers (issue 24, item 3):

1. the book's from-scratch ``batch_norm`` and ``BatchNorm`` class, its cells as written
   (tests/d2l_chapters/batch-norm.md, d2l-en commit in chaptercells.COMMIT) with only the
   import line changed, run on scratchnet's tape;
2. scratchnet's ``nn.BatchNorm2d`` / ``nn.BatchNorm1d``, by their manual ``backward``;
3. the same book cells on PyTorch.

Output, dL/dX, dL/dgamma and dL/dbeta agree in float64 to 1e-10 relative, in training mode
(batch statistics) and, under no_grad, in prediction mode (the moving averages). The moving
averages of (1) equal PyTorch's run of the book's cells after every step. They are not
compared with nn.BatchNorm's running_var: the book averages the biased batch variance and
PyTorch's layer the unbiased one (docs/autograd.md shows the three side by side).
"""
import numpy as np
import pytest
import torch
from chaptercells import namespace, pytorch_cells
from helpers import rel_err

import scratchnet as sn
from scratchnet.port import port

CELLS = pytorch_cells("batch-norm")
IMPORTS, BATCH_NORM, BATCH_NORM_CLASS = CELLS[0], CELLS[1], CELLS[2]
SHAPES = {4: (4, 3, 5, 6), 2: (6, 5)}
TOL = 1e-10


def test_the_cells_are_the_books_from_scratch_batch_norm():
    assert IMPORTS.splitlines()[0] == "from d2l import torch as d2l"
    assert BATCH_NORM.startswith("def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, "
                                 "momentum):")
    assert "return Y, moving_mean.data, moving_var.data" in BATCH_NORM
    assert BATCH_NORM_CLASS.startswith("class BatchNorm(nn.Module):")
    assert "self.moving_mean = self.moving_mean.to(X.device)" in BATCH_NORM_CLASS


def scratchnet_book():
    """The book's three cells on scratchnet: ``port`` changes the import line only."""
    ns = namespace()
    for cell in (IMPORTS, BATCH_NORM, BATCH_NORM_CLASS):
        exec(port(cell), ns)
    return ns


def torch_book():
    """The same two definitions on PyTorch (the d2l package itself is not needed)."""
    ns = {"torch": torch, "nn": torch.nn}
    for cell in (BATCH_NORM, BATCH_NORM_CLASS):
        exec(cell, ns)
    return ns


@pytest.fixture
def float64():
    sn_dtype, torch_dtype = sn.get_default_dtype(), torch.get_default_dtype()
    sn.set_default_dtype(np.float64)
    torch.set_default_dtype(torch.float64)
    yield
    sn.set_default_dtype(sn_dtype)
    torch.set_default_dtype(torch_dtype)


def close(a, b, what):
    err = rel_err(sn.to_numpy(a), np.asarray(b.detach().numpy() if hasattr(b, "detach") else b)
                  .reshape(np.shape(sn.to_numpy(a))))
    assert err < TOL, f"{what}: relative error {err:.1e}"


@pytest.mark.parametrize("num_dims", [4, 2])
def test_three_ways_give_the_same_numbers(device, float64, num_dims):
    shape = SHAPES[num_dims]
    C = shape[1]
    rs = np.random.default_rng(num_dims)
    ours = scratchnet_book()["BatchNorm"](C, num_dims=num_dims)
    theirs = torch_book()["BatchNorm"](C, num_dims=num_dims)
    layer = (sn.nn.BatchNorm2d if num_dims == 4 else sn.nn.BatchNorm1d)(C)
    gamma, beta = rs.uniform(0.5, 1.5, C), rs.standard_normal(C)
    bshape = (1, C, 1, 1) if num_dims == 4 else (1, C)
    ours.gamma.data.copy_(sn.tensor(gamma.reshape(bshape)))
    ours.beta.data.copy_(sn.tensor(beta.reshape(bshape)))
    with torch.no_grad():
        theirs.gamma.copy_(torch.from_numpy(gamma.reshape(bshape)))
        theirs.beta.copy_(torch.from_numpy(beta.reshape(bshape)))
    layer.weight.data.copy_(sn.tensor(gamma))
    layer.bias.data.copy_(sn.tensor(beta))
    for step in range(3):
        x = rs.standard_normal(shape) * 2 + 0.5
        g = rs.standard_normal(shape)
        # 1. the book's cells on the tape
        X = sn.tensor(x, requires_grad=True)
        Y = ours(X)
        (Y * sn.tensor(g)).sum().backward()
        # 2. manual backprop
        layer.zero_grad()
        y = layer(sn.to_device(x))
        gx = layer.backward(sn.to_device(g))
        # 3. PyTorch
        Xt = torch.tensor(x, requires_grad=True)
        Yt = theirs(Xt)
        (Yt * torch.from_numpy(g)).sum().backward()
        close(Y, Yt, f"step {step}: output, book on scratchnet vs PyTorch")
        close(y, Yt, f"step {step}: output, nn.BatchNorm vs PyTorch")
        close(X.grad, Xt.grad, f"step {step}: dL/dX, tape")
        close(gx, Xt.grad, f"step {step}: dL/dX, manual")
        close(layer.weight.grad, theirs.gamma.grad, f"step {step}: dL/dgamma, manual")
        close(layer.bias.grad, theirs.beta.grad, f"step {step}: dL/dbeta, manual")
        close(ours.moving_mean, theirs.moving_mean, f"step {step}: moving mean")
        close(ours.moving_var, theirs.moving_var, f"step {step}: moving variance")
        # The book returns moving_mean.data: a Tensor again, cut from the graph, on the
        # input's device, so the next forward's ``.device`` check and arithmetic work.
        assert isinstance(ours.moving_mean, sn.Tensor) and not ours.moving_mean.requires_grad
        assert ours.moving_mean.device == X.device
        ours.gamma.grad.zero_(), ours.beta.grad.zero_()
        theirs.gamma.grad.zero_(), theirs.beta.grad.zero_()
    # Prediction mode: the book's batch_norm asks torch.is_grad_enabled().
    x = rs.standard_normal(shape)
    with sn.no_grad(), torch.no_grad():
        close(ours(sn.tensor(x)), theirs(torch.from_numpy(x)), "prediction mode")


def test_gradients_accumulate_across_steps_on_the_books_parameters(float64):
    """Without zero_grad, the tape adds each step's dL/dgamma into the same array, as
    PyTorch does: the book's Parameters take part in the tape like any leaf."""
    ours, theirs = scratchnet_book()["BatchNorm"](2, 2), torch_book()["BatchNorm"](2, 2)
    rs = np.random.default_rng(5)
    assert ours.gamma.grad is None and theirs.gamma.grad is None  # until a backward
    for step in range(2):
        x = rs.standard_normal((5, 2))
        (ours(sn.tensor(x)) ** 3).sum().backward()
        (theirs(torch.from_numpy(x)) ** 3).sum().backward()
        if step == 0:
            held = ours.gamma.grad
    close(ours.gamma.grad, theirs.gamma.grad, "accumulated dL/dgamma")
    close(held, theirs.gamma.grad, "a .grad Tensor taken before shares the array")
