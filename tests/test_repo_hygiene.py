"""What the README's own examples leave in the work tree is ignored by git (issue 12, item 15)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def readme_outputs() -> list[str]:
    """Every `--out PATH` of a command in the README's code blocks."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return sorted(set(re.findall(r"--out\s+(\S+)", text)))


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_readme_cli_examples_write_only_ignored_paths():
    outputs = readme_outputs()
    assert "out/" in outputs and "me.safetensors" in outputs  # the examples this test is about
    # A file inside a folder output, or the file itself: what the commands would create.
    paths = [f"{p.rstrip('/')}/photo-vangogh-1.png" if p.endswith("/") else p for p in outputs]
    checked = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths], cwd=REPO, capture_output=True, text=True
    )
    ignored = set(checked.stdout.split())
    assert ignored == set(paths), f"not ignored: {set(paths) - ignored}"
