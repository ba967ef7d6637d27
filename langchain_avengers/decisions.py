"""A ``langchain_core`` decision model that routes for ``ModelRouterMiddleware``.

Needs the ``agents`` extra: ``pip install "langchain-avengers[agents]"``.
"""

from langchain_avengers.agents.decisions import AvengersDecisionModel

__all__ = ["AvengersDecisionModel"]
