"""The package's imports point down only: cli → pipeline → stages → cleaning → influence → models
→ data → artifacts → base modules. Every import counts, also those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import rdia_cli

PACKAGE = Path(rdia_cli.__file__).parent

# (module prefix, layer); the longest matching prefix wins. A module may import its own layer
# and any lower one.
LAYERS = [
    ("rdia_cli.errors", 0), ("rdia_cli.glossary", 0), ("rdia_cli.metrics", 0),
    ("rdia_cli.validate", 0), ("rdia_cli.device", 0), ("rdia_cli.linalg", 0),
    ("rdia_cli.artifacts", 1),
    ("rdia_cli.data", 2),
    ("rdia_cli.models", 3),
    ("rdia_cli.influence", 4),
    ("rdia_cli.cleaning", 5),
    ("rdia_cli.stages", 6), ("rdia_cli.distributed", 6),
    ("rdia_cli.report", 6),
    ("rdia_cli.pipeline", 7), ("rdia_cli.estimator", 7),
    ("rdia_cli.cli", 8), ("rdia_cli.__main__", 8),
]
TOP = "rdia_cli"  # the package itself: its lazy flat API may name anything


def layer(module: str) -> int:
    best = max((p for p, _ in LAYERS if module == p or module.startswith(p + ".")),
               key=len, default=None)
    assert best is not None, f"{module} is in no layer; add it to LAYERS"
    return dict(LAYERS)[best]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    me = module_name(path)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                keep = len(me.split(".")) - node.level + (path.name == "__init__.py")
                base = me.split(".")[:keep]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from rdia_cli.x import y` may name a submodule y
            found += [(node.lineno, f"{mod}.{a.name}") if _is_module(f"{mod}.{a.name}")
                      else (node.lineno, mod) for a in node.names]
    return [(line, m) for line, m in found if m == TOP or m.startswith(TOP + ".")]


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").exists() or (PACKAGE.parent / rel).is_dir()


def upward_imports() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = module_name(path)
        if me == TOP:
            continue
        for line, target in imports(path):
            if target == TOP:
                bad.append(f"{me}:{line} imports the package root `rdia_cli` (name the module)")
            elif layer(target) > layer(me):
                bad.append(f"{me}:{line} imports {target} (layer {layer(target)} > {layer(me)})")
    return bad


def test_imports_point_down():
    assert upward_imports() == []


def test_every_module_has_a_layer():
    for path in PACKAGE.rglob("*.py"):
        if module_name(path) != TOP:
            layer(module_name(path))


def test_the_check_catches_an_upward_import(tmp_path, monkeypatch):
    """The checker itself: a models module that imports the CLI is reported."""
    fake = tmp_path / "rdia_cli"
    (fake / "models").mkdir(parents=True)
    (fake / "cli").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "cli" / "__init__.py").write_text("")
    (fake / "models" / "__init__.py").write_text("")
    (fake / "models" / "bad.py").write_text("def f():\n    from rdia_cli.cli import app\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake, raising=False)
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    assert upward_imports() == ["rdia_cli.models.bad:2 imports rdia_cli.cli (layer 8 > 3)"]
