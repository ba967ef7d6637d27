"""Learning from what LangSmith already knows: experiments and production feedback in.

- :func:`harvest_experiments`: calibration records from one experiment per pool model over a
  LangSmith dataset; :func:`run_experiments` starts those experiments (``langsmith.evaluate``
  with each model as the target, the user's evaluators, a spend cap and resume).
- :func:`harvest_traces`: logged records (one model, its score, cost and propensity per query)
  from the chat model's traced calls and their feedback.

Fit a router on both with ``ClusterRouter.fit(CalibrationData.concatenate([...]))`` (logged
outcomes are weighted by inverse propensity) and estimate a candidate router on the logs with
:func:`~langchain_avengers.evaluation.off_policy.estimate_off_policy`. Offline: nothing here
calls LangSmith but through the ``langsmith.Client`` given.
"""

from langchain_avengers.learning.experiments import harvest_experiments
from langchain_avengers.learning.runner import ExperimentRuns, SpendCapReachedError, run_experiments
from langchain_avengers.learning.traces import Harvest, HarvestReport, harvest_traces

__all__ = [
    "ExperimentRuns",
    "Harvest",
    "HarvestReport",
    "SpendCapReachedError",
    "harvest_experiments",
    "harvest_traces",
    "run_experiments",
]
