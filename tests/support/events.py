"""A progress sink for tests: keeps every event the engine or a driver emits."""

from __future__ import annotations

from typing import Any

from stacfetch._model.events import Event


class Events:
    """A sink keeping every event; ``of(kind)`` picks the events of one type."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]
