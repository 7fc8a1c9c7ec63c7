"""`python -m aml_tui` behaves exactly like the `aml-tui` command."""

from __future__ import annotations

from aml_tui.cli import main

if __name__ == "__main__":
    main()
