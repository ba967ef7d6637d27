"""Runtime policies around each routed call: conversation pins, routing text, spend pacing."""

from langchain_avengers.policies.pacing import AlphaSource, SpendPacer, expected_call_cost
from langchain_avengers.policies.pins import InMemoryPinStore, LangGraphPinStore, Pin, PinStore
from langchain_avengers.policies.routing_text import RoutingTextMode, routing_text

__all__ = [
    "AlphaSource",
    "InMemoryPinStore",
    "LangGraphPinStore",
    "Pin",
    "PinStore",
    "RoutingTextMode",
    "SpendPacer",
    "expected_call_cost",
    "routing_text",
]
