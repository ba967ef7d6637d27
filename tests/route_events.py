"""Callback handlers that record chat-model runs and their ``avengers_route`` events."""

from __future__ import annotations

import uuid
from typing import Any

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler

from langchain_avengers.chat_models.base import ROUTE_EVENT


class EventLog(BaseCallbackHandler):
    """Records chat-model starts and routing events with their run ids."""

    def __init__(self) -> None:
        self.starts: list[uuid.UUID] = []
        self.events: list[tuple[uuid.UUID, dict[str, Any]]] = []

    def on_chat_model_start(self, *args: Any, run_id: uuid.UUID, **kwargs: Any) -> None:
        self.starts.append(run_id)

    def on_custom_event(self, name: str, data: Any, *, run_id: uuid.UUID, **kwargs: Any) -> None:
        if name == ROUTE_EVENT:
            self.events.append((run_id, data))


class AsyncEventLog(AsyncCallbackHandler, EventLog):
    """:class:`EventLog` for async runs."""

    async def on_chat_model_start(self, *args: Any, run_id: uuid.UUID, **kwargs: Any) -> None:
        self.starts.append(run_id)

    async def on_custom_event(
        self, name: str, data: Any, *, run_id: uuid.UUID, **kwargs: Any
    ) -> None:
        if name == ROUTE_EVENT:
            self.events.append((run_id, data))
