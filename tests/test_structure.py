"""The shape of the core: which module imports which, and layers that describe
themselves (receptive geometry, FLOPs) instead of tools that list every layer."""
import ast
import inspect
import pathlib

import numpy as np
import pytest

import scratchnet as sn
from scratchnet import nn, viz
from scratchnet import train as sn_train
from scratchnet.models import Residual
from scratchnet.nn.loss import _Loss
from scratchnet.nn.module import WHOLE_INPUT, Module, Sequential
from scratchnet.trace import layer_flops

PACKAGE = pathlib.Path(sn.__file__).parent


def imports(path):
    """The modules a file imports anywhere (functions included), as dotted names
    relative to the scratchnet package when the import is relative."""
    out = set()
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            out.add(module)
            out.update(f"{module}.{a.name}" for a in node.names)  # "from . import init"
    return out


def module_name(path):
    """scratchnet.nn.module for scratchnet/nn/module.py, scratchnet.nn for its __init__."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def module_edges(name):
    """The package's modules that module ``name`` imports, anywhere in it (functions
    included). Importing a module runs its parent packages' __init__ first, always, so
    an import counts as an edge to the module named, not to the packages above it."""
    return {m for m in imports(MODULES[name]) if m in MODULES and m != name
            and not name.startswith(m + ".")}


def test_the_package_has_no_import_cycle():
    """No circle among scratchnet's modules, counting the imports inside functions, so
    a student can read it bottom-up (the tape and nn once made a circle of 9 files,
    dodged by imports inside functions)."""
    graph = {name: module_edges(name) for name in MODULES}
    done, active = set(), []

    def visit(name):
        if name in active:
            raise AssertionError("import cycle: " + " -> ".join(
                active[active.index(name):] + [name]))
        if name in done:
            return
        active.append(name)
        for nxt in sorted(graph[name]):
            visit(nxt)
        active.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_no_module_imports_scratchnet_inside_a_function():
    """Every import of the package's own modules is at the top of its file, where a
    reader sees it; only optional third-party packages (torch, cupy, matplotlib,
    graphviz, requests) may be imported lazily."""
    lazy = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if id(node) in top or not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            own = (node.level > 0 or (node.module or "").startswith("scratchnet")
                   if isinstance(node, ast.ImportFrom)
                   else any(a.name.startswith("scratchnet") for a in node.names))
            if own:
                lazy.append(f"{name}, line {node.lineno}")
    assert not lazy, lazy


def floor_of(name):
    """The first name under scratchnet: "autograd" for scratchnet.autograd.tensor."""
    return name.split(".")[1] if "." in name else ""


def test_the_tape_is_a_floor_below_nn():
    """The tape (scratchnet.autograd) imports only the floors below it: backend, device,
    dtypes, ops and the figure and file helpers. nn imports the tape, as torch.nn imports
    torch."""
    below = {"backend", "device", "dtypes", "ops", "figures", "io", "autograd"}
    for name in MODULES:
        if floor_of(name) == "autograd":
            above = {m for m in module_edges(name) if floor_of(m) not in below}
            assert not above, f"{name} imports {sorted(above)}, above the tape"
    assert "scratchnet.autograd" in module_edges("scratchnet.nn.module")


def test_no_module_uses_another_packages_private_names():
    """``from x import _name`` or ``x._name`` across floors (autograd, nn, ops, ...):
    what one floor uses of another is public."""
    found = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        aliases = {}  # local name -> the scratchnet module it is bound to
        package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                for a in node.names:
                    full = f"{module}.{a.name}"
                    if full in MODULES:
                        aliases[a.asname or a.name] = full
                    elif (a.name.startswith("_") and not a.name.startswith("__")
                          and module in MODULES and floor_of(module) != floor_of(name)):
                        found.append(f"{name}: from {module} import {a.name}")
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in MODULES and a.asname:
                        aliases[a.asname] = a.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")
                    and floor_of(aliases[node.value.id]) != floor_of(name)):
                found.append(f"{name}: {node.value.id}.{node.attr}")
    assert not found, "\n".join(sorted(set(found)))


def test_nn_modules_import_no_cycle():
    """nn/init.py must not import the layers that import it (conv, linear)."""
    files = {f"scratchnet.nn.{p.stem}": p for p in (PACKAGE / "nn").glob("*.py")
             if p.stem != "__init__"}
    graph = {name: {m for m in imports(p) if m in files and m != name}
             for name, p in files.items()}
    assert "scratchnet.nn.init" in graph["scratchnet.nn.conv"]
    assert not graph["scratchnet.nn.init"] & {"scratchnet.nn.conv", "scratchnet.nn.linear"}

    def visit(name, path):
        assert name not in path, " -> ".join(path + [name])
        for nxt in graph[name]:
            visit(nxt, path + [name])

    for name in graph:
        visit(name, [])


def test_receptive_does_not_import_models():
    found = {m for m in imports(PACKAGE / "receptive.py")
             if m == "scratchnet.models" or m.startswith("scratchnet.models.")}
    assert not found


def test_train_keeps_no_plots_of_its_own():
    """The pictures live in viz; train only calls them."""
    assert sn_train.plot_grad_norms is viz.plot_grad_norms
    defined = {n.name for n in ast.parse((PACKAGE / "train.py").read_text()).body
               if isinstance(n, ast.FunctionDef)}
    assert not defined & {"_pyplot", "save_figure", "draw_grad_norms", "plot_grad_norms"}
    assert "matplotlib" not in (PACKAGE / "train.py").read_text()


def layer_classes():
    """Every layer class scratchnet.nn exports (losses and Sequential are not layers
    of a model's forward path)."""
    return [c for c in vars(nn).values() if inspect.isclass(c) and issubclass(c, Module)
            and c not in (Module, Sequential) and not issubclass(c, _Loss)]


@pytest.mark.parametrize("cls", layer_classes(), ids=lambda c: c.__name__)
def test_every_layer_describes_itself(cls):
    assert cls.receptive_geometry is not Module.receptive_geometry, cls
    assert cls.flops is not Module.flops, cls


def test_every_exported_layer_is_in_the_examples_below():
    covered = {type(make()).__name__ for make, _ in LAYERS}
    assert {c.__name__ for c in layer_classes()} <= covered


LAYERS = [
    (lambda: nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=1), (2, 3, 9, 8)),
    (lambda: nn.LazyConv2d(5, 3, padding="same"), (2, 3, 8, 8)),
    (lambda: nn.Conv1d(3, 4, 3, stride=2, dilation=2), (2, 3, 17)),
    (lambda: nn.Linear(6, 4), (3, 6)),
    (lambda: nn.LazyLinear(4), (3, 6)),
    (lambda: nn.Flatten(), (2, 3, 4, 4)),
    (lambda: nn.MaxPool2d(3, stride=2, padding=1), (2, 3, 9, 9)),
    (lambda: nn.AvgPool2d((2, 3)), (2, 3, 8, 9)),
    (lambda: nn.AdaptiveAvgPool2d((2, 3)), (2, 3, 7, 8)),
    (lambda: nn.BatchNorm1d(6), (4, 6)),
    (lambda: nn.BatchNorm2d(3), (4, 3, 5, 5)),
    (lambda: nn.LazyBatchNorm1d(), (4, 6)),
    (lambda: nn.LazyBatchNorm2d(), (4, 3, 5, 5)),
    (lambda: nn.ReLU(), (2, 7)),
    (lambda: nn.Sigmoid(), (2, 7)),
    (lambda: nn.Tanh(), (2, 7)),
    (lambda: nn.Dropout(0.5), (2, 7)),
]


@pytest.mark.parametrize("make, x_shape", LAYERS)
@pytest.mark.parametrize("training", [True, False])
def test_layer_flops_are_the_trace_conventions(make, x_shape, training):
    layer = make()
    layer.train(training)
    x = np.random.default_rng(0).standard_normal(x_shape).astype(np.float32)
    with sn.no_grad():
        y = layer(sn.to_device(x))
    fwd, bwd = layer.flops(x.shape, tuple(y.shape))
    assert (fwd, bwd) == layer_flops(layer, x.shape, tuple(y.shape))
    assert isinstance(fwd, int) and isinstance(bwd, int) and 0 <= fwd and 0 <= bwd


def test_flops_by_hand():
    conv = nn.Conv2d(3, 4, 3)
    assert conv.flops((2, 3, 5, 5), (2, 4, 3, 3)) == (2 * 72 * 27, 4 * 72 * 27)
    conv.needs_input_grad = False
    assert conv.flops((2, 3, 5, 5), (2, 4, 3, 3)) == (2 * 72 * 27, 2 * 72 * 27)
    assert nn.Sigmoid().flops((2, 5), (2, 5)) == (40, 30)
    assert nn.AdaptiveAvgPool2d(1).flops((2, 3, 4, 4), (2, 3, 1, 1)) == (96, 96)
    assert nn.Dropout(0.5).eval().flops((2, 5), (2, 5)) == (0, 0)
    assert Module().flops((1,), (1,)) is None and Residual(3).flops((1,), (1,)) is None


def test_receptive_geometry_of_each_kind():
    conv = nn.Conv2d(1, 1, (2, 4), padding="same", dilation=(1, 2))
    # "same" with an odd total padding puts the extra row after the last, as PyTorch.
    assert conv.receptive_geometry() == [((2, 4), (1, 1), (0, 3), (1, 3), (1, 2))]
    assert nn.Conv1d(1, 1, 5, stride=2, padding=1).receptive_geometry() == [
        ((1, 5), (1, 2), (0, 1), (0, 1), (1, 1))]
    assert nn.MaxPool2d(3, 2, 1).receptive_geometry() == [((3, 3), (2, 2), (1, 1), (1, 1),
                                                            (1, 1))]
    for layer in (nn.ReLU(), nn.Tanh(), nn.BatchNorm2d(2), nn.BatchNorm1d(2), nn.Dropout()):
        assert layer.receptive_geometry() == []
    for layer in (nn.Flatten(), nn.Linear(2, 3), nn.AdaptiveAvgPool2d(1)):
        assert layer.receptive_geometry() == WHOLE_INPUT
    assert Module().receptive_geometry() is None
    block = Residual(3, use_1x1conv=True, strides=2)
    assert block.receptive_geometry() == (block.conv1.receptive_geometry()
                                          + block.conv2.receptive_geometry())


def test_residual_leaves_the_main_path_output_alone():
    """Y + skip makes a new array: bn2's output, which a layer could keep, is unchanged."""
    block = Residual(2)
    kept = []
    bn2_forward = block.bn2.forward

    def forward(x):
        y = bn2_forward(x)
        kept.append((y, y.copy()))
        return y

    object.__setattr__(block.bn2, "forward", forward)
    x = sn.to_device(np.random.default_rng(1).standard_normal((2, 2, 4, 4)))
    block.double()(x)
    y, before = kept[0]
    np.testing.assert_array_equal(sn.to_numpy(y), sn.to_numpy(before))


def test_cache_names_and_the_column_buffer():
    assert not hasattr(Module, "save_for_backward") and not hasattr(Module, "saved_for_backward")
    conv = nn.Conv2d(1, 2, 3)
    y = conv(sn.to_device(np.ones((1, 1, 5, 5), np.float32)))
    assert conv.__dict__["_columns_buffer"] is not None and "_saved" not in conv.__dict__
    conv.backward(y)
    conv.eval()(sn.to_device(np.ones((1, 1, 5, 5), np.float32)))
    assert conv.__dict__["_columns_buffer"] is None


def test_init_cnn_tells_layers_by_the_weight_rank():
    net = nn.Sequential(nn.LazyBatchNorm2d())
    net.apply(nn.init.init_cnn)  # a vector weight, even a lazy one: left alone
    with pytest.raises(ValueError, match="xavier_uniform_: the parameter is not initialised"):
        nn.init.init_cnn(nn.LazyLinear(3))
    with pytest.raises(ValueError, match="xavier_uniform_: the parameter is not initialised"):
        nn.init.init_cnn(nn.LazyConv2d(3, 3))
