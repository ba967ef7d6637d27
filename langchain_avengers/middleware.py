"""Agent middleware that routes every model call of a ``create_agent`` agent.

Needs the ``agents`` extra: ``pip install "langchain-avengers[agents]"``.
"""

from langchain_avengers.agents.middleware import AvengersMiddleware
from langchain_avengers.agents.state import AvengersAgentState, AvengersTurn, RunBudgetExceededError

__all__ = ["AvengersAgentState", "AvengersMiddleware", "AvengersTurn", "RunBudgetExceededError"]
