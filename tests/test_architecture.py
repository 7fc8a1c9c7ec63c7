"""The core never imports the UI, and `aml-tui --help` never imports torch."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import aml_tui.core

CORE_MODULES = sorted(f"aml_tui.core.{m.name}" for m in pkgutil.iter_modules(aml_tui.core.__path__))


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_imports_without_textual_or_rich(module: str) -> None:
    code = (
        f"import sys, {module}; "
        "bad = sorted(m for m in ('textual', 'rich') if m in sys.modules); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from aml_tui.cli import app\n"
        "try:\n"
        "    app(['--help'], prog_name='aml-tui')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("NO-TORCH")
    assert "experiments" in out.stdout and "train" in out.stdout
