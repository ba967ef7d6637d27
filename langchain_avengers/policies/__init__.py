"""Runtime policies around each routed call: conversation pins, routing text, spend pacing.

The Redis stores (``RedisPinStore``, ``RedisPacerState``) are exported too; the ``redis``
package is imported only when one is built.
"""

from langchain_avengers.policies.ledger import LocalPacerStore, PacerStore
from langchain_avengers.policies.pacing import AlphaSource, SpendPacer, expected_call_cost
from langchain_avengers.policies.pins import InMemoryPinStore, LangGraphPinStore, Pin, PinStore
from langchain_avengers.policies.redis_store import RedisPacerState, RedisPinStore
from langchain_avengers.policies.routing_text import RoutingTextMode, routing_text

__all__ = [
    "AlphaSource",
    "InMemoryPinStore",
    "LangGraphPinStore",
    "LocalPacerStore",
    "PacerStore",
    "Pin",
    "PinStore",
    "RedisPacerState",
    "RedisPinStore",
    "RoutingTextMode",
    "SpendPacer",
    "expected_call_cost",
    "routing_text",
]
