"""The house's layering, read from the source: models/ never reaches up, and modules stay small."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rtstyle"
#: What a model family may not import (rtstyle.<name> and anything under it), even inside a function.
FORBIDDEN_IN_MODELS = ("training", "backends", "stylizer", "pipeline", "cli")
MAX_LINES = 600


def _imported_modules(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``tree``, wherever it is (function bodies too).

    ``module`` is the dotted name of the file (``rtstyle.models.adain``), used to resolve relative imports;
    ``from X import a, b`` also yields ``X.a`` and ``X.b`` (``from .. import training`` names a module).
    """
    package = module.rsplit(".", 1)[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            out += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
            fn = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
            if fn in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
                out.append((node.lineno, str(node.args[0].value)))
    return out


def _forbidden(name: str) -> str | None:
    for layer in FORBIDDEN_IN_MODELS:
        target = f"rtstyle.{layer}"
        if name == target or name.startswith(target + "."):
            return target
    return None


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def test_the_checker_sees_every_kind_of_import() -> None:
    """The scan itself: top-level, relative, parent-package, function-level and importlib imports."""
    src = (
        "import rtstyle.training.data\n"
        "from ..backends import create_backend\n"
        "from .. import stylizer\n"
        "def f():\n"
        "    from ..training.data import load_rgb\n"
        "    import importlib; importlib.import_module('rtstyle.cli')\n"
        "from ..nn.vgg import load_vgg16\n"
        "from ._spec import ModelSpec\n"
    )
    hits = [(line, _forbidden(n)) for line, n in _imported_modules(ast.parse(src), "rtstyle.models.x")]
    bad = sorted({(line, t) for line, t in hits if t})
    assert bad == [(1, "rtstyle.training"), (2, "rtstyle.backends"), (3, "rtstyle.stylizer"),
                   (5, "rtstyle.training"), (6, "rtstyle.cli")]


def test_models_never_import_training_backends_stylizer_pipeline_or_cli() -> None:
    files = sorted((PACKAGE / "models").rglob("*.py"))
    assert len(files) > 5, files  # the scan looked at the families
    bad = []
    for path in files:
        module = _module_name(path)
        if path.name == "__init__.py":
            module += ".__init__"
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, name in _imported_modules(tree, module):
            target = _forbidden(name)
            if target:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    assert not bad, "models/ may use nn/, image.py, io/ and weights; it does not import:\n" + "\n".join(sorted(set(bad)))


def _long_modules() -> dict[str, int]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            out[path.relative_to(PACKAGE.parent).as_posix()] = n
    return out


def test_no_module_is_over_600_lines() -> None:
    long = _long_modules()
    assert not long, f"split these by concept (at most {MAX_LINES} lines a module):\n" + "\n".join(
        f"{k}: {n} lines" for k, n in long.items())
