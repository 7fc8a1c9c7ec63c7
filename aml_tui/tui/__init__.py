"""The Textual app: one more listener of the engine's events."""
