"""What an agent run routed by the middleware keeps in its state, and the error of a spent run."""

from __future__ import annotations

from typing import Annotated, TypedDict

from langgraph.channels.untracked_value import UntrackedValue
from typing_extensions import NotRequired

from langchain_avengers._utils.extras import MissingExtraError, install_line

try:
    from langchain.agents.middleware.types import AgentState, OmitFromInput
except ImportError as error:  # pragma: no cover - exercised without langchain installed
    msg = f"AvengersMiddleware needs langchain (create_agent middleware): {install_line('agents')}"
    raise MissingExtraError(msg) from error


class RunBudgetExceededError(RuntimeError):
    """An agent run reached its ``max_run_cost`` (with ``budget_exit_behavior="error"``)."""

    def __init__(self, message: str, *, spent: float, max_run_cost: float) -> None:
        super().__init__(message)
        self.spent = spent
        self.max_run_cost = max_run_cost


class AvengersTurn(TypedDict):
    """The model serving the current human turn and what the turn's model calls cost."""

    model: str
    calls: int
    cost: float
    """USD of the turn's answered model calls whose cost is known."""
    unpriced_calls: int
    """Answered calls whose cost is unknown (no billed cost and no list prices)."""


class AvengersAgentState(AgentState):
    """Agent state with the turn's model and spend, and the run's spend."""

    avengers_turn: NotRequired[Annotated[AvengersTurn, OmitFromInput]]
    avengers_run_cost: NotRequired[Annotated[float, UntrackedValue, OmitFromInput]]
    """USD spent by this run's routed model calls (reset at every ``invoke``)."""
