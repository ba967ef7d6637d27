"""The chat runtime: :class:`AvengersChatModel` routes each call to one model of its pool."""

from langchain_avengers.chat_models.base import ROUTE_EVENT, AvengersChatModel, NoCapableModelError

__all__ = ["ROUTE_EVENT", "AvengersChatModel", "NoCapableModelError"]
