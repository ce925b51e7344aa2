"""The layers stand side by side: bot/ and inference/ share contract/ and jobs/, and neither imports the other.

Read from the source (every import statement, at any depth, lazy ones included), so a forbidden import
fails here even if no test happens to execute the line that holds it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# package -> top-level modules it must never import
FORBIDDEN = {
    "bot": {"inference", "torch", "diffusers", "transformers", "peft"},
    "inference": {"bot", "aiogram"},
    "contract": {"bot", "inference", "aiogram", "torch", "diffusers", "transformers", "peft"},
    "jobs": {"bot", "inference", "aiogram", "torch", "diffusers", "transformers", "peft"},
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def violations(package: str) -> list[str]:
    bad = []
    for path in sorted((REPO / package).rglob("*.py")):
        for line, module in imported_modules(path):
            if module.split(".")[0] in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    return bad


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_its_layer_may(package: str) -> None:
    assert violations(package) == []


def test_the_check_sees_lazy_imports(tmp_path: Path) -> None:
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from inference.stylize import stylize\n    import torch\n")
    assert [m for _, m in imported_modules(source)] == ["inference.stylize", "torch"]


def test_nothing_the_worker_runs_imports_the_worker_back() -> None:
    """The worker imports handlers, the batch runner and their helpers; none of them imports the worker
    (what they share lives in inference/context.py and inference/gpu_memory.py). Only entry points may."""
    entry_points = {"inference/__main__.py", "inference/fast_bench.py"}
    back = [
        f"{path.relative_to(REPO)}:{line}"
        for path in sorted((REPO / "inference").rglob("*.py"))
        if path.relative_to(REPO).as_posix() not in entry_points | {"inference/worker.py"}
        for line, module in imported_modules(path)
        if module == "inference.worker"
    ]
    assert back == []
