"""An Input that applies keys in the order they were typed, also when they arrive together.

Over SSH keys arrive in bursts: one read of the terminal holds several, and they are queued
before the app handles the first. Textual's Input inserts a printable character when its
Key reaches it, but its bound keys (Backspace, Delete, arrows, Home, End) bubble up to the
app, which then runs the binding; characters behind them in the burst are inserted first
(Textualize/textual#6605: "15", End, 4×Backspace, "3" left the field empty). Textual
8.2.8, the newest release, still does this; the fix proposed upstream (#6631) runs a
widget's own bindings where it handles the key, and so does this subclass. Drop it once a
Textual release carries that fix.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class OrderedInput(Input):
    """Input whose own key bindings run as their Key reaches it, in the order of arrival."""

    async def _on_key(self, event: events.Key) -> None:
        # The bindings the app would find first for this key (the focused widget leads its
        # chain; priority ones ran before the key was forwarded here), run now, in order.
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if not binding.priority and await self.app.run_action(binding.action, self):
                event.stop()
                event.prevent_default()
                return
        await super()._on_key(event)
