"""The package's import graph: shared code sits below the methods, which import it
downward and never each other; no module imports another module's private names; every
subpackage declares its public API in ``__all__``."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from booktools import ROOT

PACKAGE = ROOT / "trustml_ref"
# Method subpackages: each may import the shared layer and itself, nothing else.
METHODS = {
    "safe_lora",
    "ring_a_bell",
    "visual_prompting",
    "quantum_cert",
    "weight_robustness",
}
TOP = {"teaching"}  # the instructor tools import every method's exercises


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> tuple[int, str]:
    """(level, subpackage): 0 shared, 1 a method, 2 the instructor tools."""
    parts = module.split(".")
    sub = parts[1] if len(parts) > 1 else ""
    return (1 if sub in METHODS else 2 if sub in TOP else 0), sub


def package_imports() -> list[tuple[str, str, list[str], int]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = (
                    module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
                )
                for _ in range(node.level - 1):
                    base = base.rsplit(".", 1)[0]
                target = f"{base}.{node.module}" if node.module else base
            elif isinstance(node, ast.ImportFrom) and node.module:
                target = node.module
            else:
                continue
            if target.split(".")[0] == "trustml_ref":
                names = [a.name for a in node.names]
                found.append((module, target, names, node.lineno))
    return found


def test_imports_go_downward_only():
    wrong = []
    for module, target, _, line in package_imports():
        (level, sub), (target_level, target_sub) = layer(module), layer(target)
        if target_level > level or (target_level == level == 1 and sub != target_sub):
            wrong.append(f"{module}:{line} imports {target}")
    assert not wrong, "imports that go up or sideways:\n" + "\n".join(wrong)


def test_no_private_names_cross_modules():
    leaks = [
        f"{module}:{line} imports {name} from {target}"
        for module, target, names, line in package_imports()
        for name in names
        if name.startswith("_") and not name.startswith("__") and target != module
    ]
    assert not leaks, "private names imported across modules:\n" + "\n".join(leaks)


SUBPACKAGES = sorted(module_name(p) for p in PACKAGE.glob("*/__init__.py")) + [
    "trustml_ref"
]


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_every_subpackage_declares_its_api(name):
    if name.endswith(("quantum_cert", "ring_a_bell", "safe_lora")):
        pytest.importorskip(
            {"quantum_cert": "pennylane", "ring_a_bell": "transformers"}.get(
                name.split(".")[-1], "peft"
            )
        )
    module = importlib.import_module(name)
    public = getattr(module, "__all__", None)
    assert public, f"{name} has no __all__"
    missing = [n for n in public if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
    assert len(public) == len(set(public)), f"{name}.__all__ lists a name twice"
