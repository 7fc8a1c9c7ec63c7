"""aml-tui: a terminal trainer for image classifiers."""

from __future__ import annotations

__version__ = "0.2.0"
