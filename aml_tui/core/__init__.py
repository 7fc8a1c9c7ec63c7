"""The training core: plain Python and PyTorch, no terminal code (a test checks it)."""
