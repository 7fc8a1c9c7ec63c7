"""Keys from the terminal handled one at a time, in the order they arrived, across widgets.

Over SSH one read of the terminal can hold several keys, and the driver queues them all for
the app at once. Textual's App hands each key to the widget focused when it reads the key and
goes straight on to the next; a key the focused widget does not take itself (Tab, Shift+Tab,
Backspace in an Input, Escape, F5) travels up through its containers to the app, whose
bindings run it there, later. So the keys behind a Tab in one burst went to the field it was
leaving: `End ⌫⌫ 3 Tab 128` typed fast gave Epochs 3128 and left Batch size alone.

KeyOrder hands a key on only once the one before it has been handled: stopped by a widget on
its way up, or handled by the app's bindings. Every key then meets the focus, selection and
screen its predecessors left, exactly as when typed slowly. Textual's own dispatch does all
the handling; this only holds the next key back. The same holds within one field: an
Input's bound keys (Backspace, End, arrows) run at the app after the characters behind
them were inserted, unless each key waits for the one before it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from textual import events
from textual.app import App
from textual.message import Message
from textual.message_pump import MessagePump
from textual.timer import Timer
from textual.widget import Widget

KEY_STUCK_S = 2.0
"""A key not handled after this long lets the next one go. It only happens when the widget
the key was handed to is removed before reading it (its queue is dropped unread); waiting
longer would freeze the keyboard."""


class KeyHandled(Message, bubble=False):
    """A key handed on has finished its way up to the screen: the next key may go."""

    def __init__(self, key: events.Key) -> None:
        super().__init__()
        self.key = key


class KeyOrder:
    """The app's queue of keys from the terminal, and the one key on its way through the
    widgets. `dispatch` is the App's own handling of a key that has just arrived (priority
    bindings, else handing it to the focused widget)."""

    def __init__(self, app: App[Any], dispatch: Callable[[events.Key], Awaitable[None]]) -> None:
        self.app = app
        self.dispatch = dispatch
        self.waiting: deque[events.Key] = deque()
        self.current: events.Key | None = None
        """The key handed to a widget and not yet handled."""
        self.watched: list[MessagePump] = []
        """The widgets from the focused one up to its screen, which `current` may pass."""
        self.timer: Timer | None = None

    async def arrived(self, key: events.Key) -> None:
        """A key from the terminal (or a test's Pilot): handled now, or after those before it."""
        self.waiting.append(key)
        await self._next()

    async def _next(self) -> None:
        while self.current is None and self.waiting:
            key = self.waiting.popleft()
            target = self.app.focused or self.app.screen
            await self.dispatch(key)
            if key.is_forwarded:  # handed to a widget: the next waits for it
                self._follow(key, target)

    def _follow(self, key: events.Key, target: Widget) -> None:
        self.current = key
        self.watched = [node for node in target.ancestors_with_self if node is not self.app]
        for node in self.watched:
            node.message_signal.subscribe(self.app, partial(self._seen, node), immediate=True)
        self.timer = self.app.set_timer(KEY_STUCK_S, partial(self._stuck, key))

    def _seen(self, node: MessagePump, message: Message) -> None:
        """`node` has handled a message; if it is the current key and goes no further up
        (stopped, or the screen, whose parent is the app), the app lets the next key go.
        Posted, not called: a key the screen passes up reaches the app's queue first, and
        the app handles it before this message."""
        if message is not self.current:
            return
        parent = node._parent
        if (
            parent is self.app
            or parent is None
            or message._stop_propagation
            or not (node.is_parent_active and node.is_attached)
        ):
            self.app.post_message(KeyHandled(message))

    async def _stuck(self, key: events.Key) -> None:
        await self.handled(key)

    async def handled(self, key: events.Key) -> None:
        """`key` is done with (the app handled it, a widget stopped it, or it was stuck):
        the next key goes."""
        if key is not self.current:
            return
        for node in self.watched:
            node.message_signal.unsubscribe(self.app)
        self.watched = []
        self.current = None
        if self.timer is not None:
            self.timer.stop()
            self.timer = None
        await self._next()
