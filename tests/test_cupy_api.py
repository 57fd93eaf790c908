"""Every ``xp.`` function, constant and keyword argument scratchnet uses exists in real CuPy.

numpy and the fakecupy double run the whole suite, but neither proves that CuPy itself has
a function or accepts a keyword: ``xp.foo(a, bar=1)`` can pass every CPU test and still
fail on the first GPU machine. So this file reads scratchnet/ with ``ast`` (nothing is
imported for the scan), collects the attribute chains on the names bound to the array module
and the keywords of each call, and checks them against the real ``cupy`` module, which
imports without a GPU. Where CuPy is not installed that check skips with the reason; the
tests of the scanner itself always run, so a broken scan cannot pass by finding nothing.
"""
import ast
import collections
import dataclasses
import inspect
import pathlib
import re
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "scratchnet"

# The names bound to the array module: ``xp`` everywhere (from get_array_module or
# device_module, or a parameter), and in backend.py the cached module ``_cupy`` and the
# local ``cupy`` it is first imported as. A new alias would escape the scan silently, so
# test_scan_knows_every_array_module_name fails when the code binds one not listed here.
ROOTS = frozenset({"xp", "_cupy", "cupy"})
# Calls that return the array module: a chain on one (``_import_cupy().asarray``) is a use,
# and whatever one is assigned to must be in ROOTS.
MODULE_GETTERS = frozenset({"get_array_module", "device_module", "_import_cupy"})
NUMPY_NAMES = frozenset({"np", "numpy"})

# Keywords every CuPy ufunc (a cupy._core._kernel.ufunc, which has no inspectable
# signature) accepts; the fallback when its docstring gives no signature either.
UFUNC_KEYWORDS = frozenset({"out", "dtype", "casting"})

# (chain, keyword) pairs whose acceptance no signature or docstring of CuPy decides (a
# ``**kwargs`` it does not document, a ``**splat`` in our call). They are listed here, each
# with why it is safe, so that a new one fails the test until someone has looked at it.
# None so far with cupy-cuda12x 14.2: every keyword scratchnet uses is checked.
KNOWN_UNCHECKED = {}


@dataclasses.dataclass(frozen=True)
class Use:
    chain: str        # as written, root included: "xp.lib.stride_tricks.as_strided"
    keywords: tuple   # keyword names of the call ("**" for a splat); () when not called
    called: bool
    where: str        # "scratchnet/ops/conv.py:172"


def _getter(node):
    """The name of a MODULE_GETTERS call (``backend.device_module(d)``), else None."""
    func = getattr(node, "func", None)
    name = getattr(func, "attr", None) or getattr(func, "id", None)
    return name if isinstance(node, ast.Call) and name in MODULE_GETTERS else None


def _base(node):
    """The node an attribute chain hangs from: the ``xp`` of ``xp.a.b``."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return node


def _chain(node):
    """"a.b.c" for an attribute chain rooted at a plain name, or "device_module().b.c" for
    one on the module a getter returns (``_import_cupy().asarray``); else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    elif _getter(node):
        parts.append(_getter(node) + "()")
    else:
        return None
    return ".".join(reversed(parts))


def _on_module(chain):
    """Whether ``chain`` (from _chain) is an attribute of the array module."""
    root = chain.split(".")[0]
    return "." in chain and (root in ROOTS or root[:-2] in MODULE_GETTERS)


def _numpy_side(test):
    """Which branch of ``if xp is np`` / ``if xp is not np`` only ever sees numpy:
    "body", "orelse", or None when the test is anything else."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], (ast.Is, ast.IsNot))):
        return None
    names = {getattr(test.left, "id", None), getattr(test.comparators[0], "id", None)}
    if not (names & ROOTS and names & NUMPY_NAMES):
        return None
    return "body" if isinstance(test.ops[0], ast.Is) else "orelse"


class _Scanner(ast.NodeVisitor):
    """Collects the array-module uses of one file, the names it binds to the array module
    and what a static scan cannot follow (``getattr(xp, name)``, a getter renamed)."""

    def __init__(self, where):
        self.where = where
        self.uses, self.aliases, self.unfollowable = [], [], []

    def _at(self, node):
        return f"{self.where}:{node.lineno}"

    # A branch that only numpy reaches (the ``xp is np`` side) may use numpy-only API.
    def _visit_branches(self, node):
        skip = _numpy_side(node.test)
        self.visit(node.test)
        for field in ("body", "orelse"):
            if field != skip:
                children = getattr(node, field)
                for child in children if isinstance(children, list) else [children]:
                    self.visit(child)

    visit_If = visit_IfExp = _visit_branches

    def visit_Call(self, node):
        chain = _chain(node.func)
        if chain and _on_module(chain):
            keywords = tuple(k.arg or "**" for k in node.keywords)
            self.uses.append(Use(chain, keywords, True, self._at(node)))
            # a getter call's own arguments may hold uses too
            for child in node.args + [k.value for k in node.keywords] + [_base(node.func)]:
                self.visit(child)
            return
        if (isinstance(node.func, ast.Name) and node.func.id == "getattr" and node.args
                and getattr(node.args[0], "id", None) in ROOTS):
            self.unfollowable.append(f"getattr on the array module at {self._at(node)}")
        self.generic_visit(node)

    def visit_Attribute(self, node):
        chain = _chain(node)
        if chain and _on_module(chain):
            self.uses.append(Use(chain, (), False, self._at(node)))
            self.visit(_base(node))  # a getter call's arguments may hold uses too
        else:  # e.g. xp.cuda.Device(0).synchronize: the call inside is a use
            self.generic_visit(node)

    def _bind(self, targets, value, node):
        if _getter(value) or (isinstance(value, ast.Name) and value.id in ROOTS):
            for target in targets:
                self.aliases.append((ast.unparse(target), self._at(node)))

    def visit_Assign(self, node):
        self._bind(node.targets, node.value, node)
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        self._bind([node.target], node.value, node)
        self.generic_visit(node)

    def visit_NamedExpr(self, node):
        self._bind([node.target], node.value, node)
        self.generic_visit(node)

    def visit_Import(self, node):
        for alias in node.names:
            if alias.name.split(".")[0] == "cupy":
                self.aliases.append((alias.asname or "cupy", self._at(node)))

    def visit_ImportFrom(self, node):
        for alias in node.names:
            if (node.module or "").split(".")[0] == "cupy":  # binds cupy's members directly
                self.aliases.append((alias.asname or alias.name, self._at(node)))
            elif alias.name in MODULE_GETTERS and alias.asname not in (None, alias.name):
                self.unfollowable.append(f"{alias.name} imported as {alias.asname} at "
                                         f"{self._at(node)}")


def scan_source(source, where="<string>"):
    scanner = _Scanner(where)
    scanner.visit(ast.parse(source))
    return scanner


@pytest.fixture(scope="module")
def scan():
    """The scan of every .py file under scratchnet/, merged."""
    merged = _Scanner("scratchnet")
    for path in sorted(PACKAGE.rglob("*.py")):
        part = scan_source(path.read_text(), str(path.relative_to(ROOT)))
        merged.uses += part.uses
        merged.aliases += part.aliases
        merged.unfollowable += part.unfollowable
    return merged


def _by_chain(uses):
    """{chain: [Use, ...]} in a stable order, for reporting every location at once."""
    grouped = collections.defaultdict(list)
    for use in uses:
        grouped[use.chain].append(use)
    return dict(sorted(grouped.items()))


def _keyword_uses(uses):
    """{(chain, keyword): [where, ...]} for every keyword passed to an array-module call."""
    grouped = collections.defaultdict(list)
    for use in uses:
        for keyword in use.keywords:
            grouped[use.chain, keyword].append(use.where)
    return dict(sorted(grouped.items()))


# --- the scanner (always runs) --------------------------------------------------------------

def test_scan_finds_the_known_uses(scan):
    chains = _by_chain(scan.uses)
    keywords = _keyword_uses(scan.uses)
    expected = {"xp.empty", "xp.dot", "xp.lib.stride_tricks.as_strided", "xp.inf",
                "xp.random.RandomState", "xp.cuda.runtime.getDevice", "_cupy.random.seed",
                "_cupy.cuda.get_current_stream", "_import_cupy().asarray",
                "cupy.cuda.runtime.getDeviceCount"}
    assert expected <= set(chains), sorted(expected - set(chains))
    assert {("xp.dot", "out"), ("xp.empty", "dtype"),
            ("xp.pad", "constant_values")} <= set(keywords)
    # a plausible size: 50 distinct chains in 23 files when this test was written
    assert len(chains) >= 35
    assert len({u.where.split(":")[0] for u in scan.uses}) >= 15


def test_scanner_on_a_sample():
    source = textwrap.dedent("""
        from ..backend import device_module as dm
        def f(x, xp=np):
            xp = backend.get_array_module(x)
            cp = xp
            y = xp.empty(x.shape, dtype=x.dtype)
            xp.dot(x, x, out=y, **opts)
            xp.cuda.Device(0).synchronize()
            if xp is np:
                xp.numpy_only(x)
            else:
                xp.on_cupy(x)
            z = xp.ok if xp is not np else xp.host_only
            w = _import_cupy().asarray(get_array_module(y).exp(y, out=y), dtype=d)
            return -xp.inf, xp.lib.stride_tricks.as_strided(x, shape=(1,)), getattr(xp, n)
    """)
    found = scan_source(source)
    assert sorted((u.chain, u.keywords, u.called) for u in found.uses) == [
        ("_import_cupy().asarray", ("dtype",), True),
        ("get_array_module().exp", ("out",), True),
        ("xp.cuda.Device", (), True), ("xp.dot", ("out", "**"), True),
        ("xp.empty", ("dtype",), True), ("xp.inf", (), False),
        ("xp.lib.stride_tricks.as_strided", ("shape",), True), ("xp.ok", (), False),
        ("xp.on_cupy", (), True)]
    assert [name for name, _ in found.aliases] == ["xp", "cp"]
    assert found.unfollowable == ["device_module imported as dm at <string>:2",
                                  "getattr on the array module at <string>:15"]


def test_scan_knows_every_array_module_name(scan):
    # An array module bound to a name outside ROOTS (``cp = get_array_module(x)``, ``from
    # cupy import foo``) or reached by ``getattr(xp, name)`` would go unchecked.
    unknown = [f"{name} at {where}" for name, where in scan.aliases if name not in ROOTS]
    assert not unknown, f"add these to ROOTS or rename them to xp: {unknown}"
    assert not scan.unfollowable, f"the scan cannot follow: {scan.unfollowable}"


# --- against real CuPy (skips without it) ---------------------------------------------------

@pytest.fixture(scope="module")
def cupy():
    try:
        import cupy
    except ImportError as e:
        pytest.skip(f"CuPy is not installed: {e} (pip install -e \".[gpu]\" to run this check)")
    return cupy


def _resolve(module, chain):
    """The object ``chain`` names on ``module`` (root dropped); AttributeError if absent."""
    obj = module
    for part in chain.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


@dataclasses.dataclass(frozen=True)
class _Params:
    source: str
    named: frozenset      # names a caller may pass by keyword
    var_keyword: bool     # takes **kwargs: anything may be accepted


def _from_signature(sig, source):
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return _Params(f"{source} {sig}",
                   frozenset(p.name for p in sig.parameters.values() if p.kind in kinds),
                   any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()))


def _from_text(text, source):
    """_Params of a signature written out, as Cython embeds it in a docstring's first line
    ("exp(x, /, out=None, \\*, casting='same_kind', dtype=None)", "get_current_stream(int
    device_id=-1)") or CPython in ``__text_signature__`` ("($module, /, x)"); None if the
    text does not parse."""
    start = text.find("(")
    if start < 0:
        return None
    depth, end = 0, None
    for i, char in enumerate(text[start:], start):  # the parenthesis closing the first one
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            end = i
            break
    if end is None:
        return None
    params = text[start + 1:end].replace("\\*", "*")
    params = re.sub(r"\$\w+\s*,?", "", params)
    # Cython's C types before a name ("int device_id=-1") are not Python syntax.
    params = re.sub(r"(^|,)\s*[A-Za-z_][\w.]*(?:\[[^\]]*\])?\s+(?=\**[A-Za-z_])", r"\1 ",
                    params)
    try:
        args = ast.parse(f"def _f({params}): pass").body[0].args
    except SyntaxError:
        return None
    named = [a.arg for a in args.args + args.kwonlyargs]
    return _Params(f"{source} {text.strip()}", frozenset(named), args.kwarg is not None)


def _signatures(func):
    """Every signature that can be found for ``func``, most trusted first."""
    try:
        yield _from_signature(inspect.signature(func), "signature")
    except (TypeError, ValueError):  # Cython functions and CuPy ufuncs often have none
        pass
    text = getattr(func, "__text_signature__", None)
    if text and _from_text(text, "__text_signature__"):
        yield _from_text(text, "__text_signature__")
    # Cython's embedded signature names the function as the user calls it: "exp(x, /, ...)"
    # for the ufunc whose __name__ is "cupy_exp".
    first = (inspect.getdoc(func) or "").split("\n", 1)[0]
    called = re.match(r"([A-Za-z_][\w.]*)\(", first)
    name = getattr(func, "__name__", "")
    if called and name.endswith(called[1].split(".")[-1]) and _from_text(first, "docstring"):
        yield _from_text(first, "docstring")
    if type(func).__name__ == "ufunc" and type(func).__module__.startswith("cupy"):
        yield _Params("cupy ufunc", UFUNC_KEYWORDS, False)


def _keyword_verdict(func, keyword):
    """("ok" | "missing" | "unchecked", evidence) for ``func(..., keyword=...)``."""
    evidence = []
    for params in _signatures(func):
        if keyword in params.named:
            return "ok", params.source
        evidence.append(params.source)
        if not params.var_keyword:  # a closed signature without it: refused
            return "missing", params.source
    # Only **kwargs seen: accept a keyword the docstring documents as an argument
    # ("constant_values(sequence or scalar, optional): ..." in cupy.pad's Args).
    if evidence and re.search(rf"^\s*{re.escape(keyword)}\s*[(:]", func.__doc__ or "", re.M):
        return "ok", "documented in the docstring next to **kwargs"
    return "unchecked", "; ".join(evidence) or "no signature found"


def test_keyword_check_can_say_no(cupy):
    # So that the test below cannot pass by finding everything "ok": one case per source.
    cases = {(cupy.empty, "dtype"): "ok", (cupy.empty, "foo"): "missing",
             (cupy.exp, "out"): "ok", (cupy.exp, "x"): "missing",  # positional-only
             (cupy.cuda.get_current_stream, "device_id"): "ok",  # Cython: "int device_id=-1"
             (cupy.cuda.runtime.getDevice, "device"): "missing",
             (cupy.einsum, "dtype"): "ok", (cupy.einsum, "out"): "missing",  # **kwargs + doc
             (cupy.pad, "constant_values"): "ok", (cupy.pad, "foo"): "unchecked"}
    got = {(f.__name__, k): _keyword_verdict(f, k)[0] for f, k in cases}
    assert got == {(f.__name__, k): verdict for (f, k), verdict in cases.items()}


def test_every_chain_exists_in_cupy(cupy, scan):
    failures = []
    for chain, uses in _by_chain(scan.uses).items():
        wheres = ", ".join(u.where for u in uses)
        try:
            obj = _resolve(cupy, chain)
        except AttributeError as e:
            failures.append(f"{chain} ({wheres}): {e}")
            continue
        if any(u.called for u in uses) and not callable(obj):
            failures.append(f"{chain} ({wheres}): called, but cupy's is a {type(obj)}")
    assert not failures, f"not in CuPy {cupy.__version__}:\n" + "\n".join(failures)


def test_every_keyword_is_accepted_by_cupy(cupy, scan):
    missing, unchecked = [], {}
    for (chain, keyword), wheres in _keyword_uses(scan.uses).items():
        try:
            func = _resolve(cupy, chain)
        except AttributeError:
            continue  # test_every_chain_exists_in_cupy reports it
        verdict, evidence = ("unchecked", "a **splat") if keyword == "**" else \
            _keyword_verdict(func, keyword)
        if verdict == "missing":
            missing.append(f"{chain}({keyword}=...) at {', '.join(wheres)}: {evidence}")
        elif verdict == "unchecked":
            unchecked[chain, keyword] = f"{', '.join(wheres)}: {evidence}"
    new = [f"{c}({k}=...) at {why}" for (c, k), why in unchecked.items()
           if (c, k) not in KNOWN_UNCHECKED]
    report = []  # both lists in one message, so one run shows everything to fix
    if missing:
        report += [f"keywords CuPy {cupy.__version__} refuses:"] + missing
    if new:
        report += ["keywords no CuPy signature or docstring decides (check each by hand, "
                   "then list it in KNOWN_UNCHECKED with why it is safe):"] + new
    assert not report, "\n".join(report)
