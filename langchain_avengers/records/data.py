"""Calibration records aligned as arrays: the queries-by-models score and cost matrices.

A file read for fitting or evaluating (:meth:`CalibrationData.from_path`) needs a cost or token
counts for every scored answer; costs missing there are priced from tokens by
:mod:`langchain_avengers.records.pricing`.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from langchain_avengers._utils.warnings import user_stacklevel
from langchain_avengers.records.format import CalibrationRecord, RecordsError, load_records

if TYPE_CHECKING:
    from langchain_avengers.catalog.base import Catalog


@dataclass(frozen=True)
class CalibrationData:
    """Calibration records as aligned arrays; NaN marks "not measured".

    Attributes:
        queries: The query texts, one per row.
        models: Model ids, one per column, in first-seen order.
        scores: ``(n_queries, n_models)`` scores in [0, 1], NaN where not measured.
        costs: ``(n_queries, n_models)`` USD per answer, NaN where unknown.
        datasets: Dataset name per row (``None`` where not given).
        propensities: ``(n_queries, n_models)`` probability with which a logging router chose
            the model (logged records, see :mod:`~langchain_avengers.records.format`), NaN
            elsewhere; ``None`` when no record is logged.
    """

    queries: list[str]
    models: list[str]
    scores: np.ndarray
    costs: np.ndarray
    datasets: list[str | None] = field(default_factory=list)
    propensities: np.ndarray | None = None

    @classmethod
    def from_records(
        cls, records: Sequence[CalibrationRecord], *, models: Sequence[str] | None = None
    ) -> CalibrationData:
        """Align records into arrays.

        Args:
            records: Validated records.
            models: Columns to keep, in this order; default every model seen, first-seen order.
        """
        if not records:
            msg = "records: expected at least one calibration record, got none"
            raise RecordsError(msg)
        if models is None:
            models = list(dict.fromkeys(m for r in records for m in r.scored_models()))
            unscored = sorted({m for r in records for m in r.records} - set(models))
            if unscored:
                warnings.warn(
                    f"calibration data: model(s) {unscored} have no score in any record "
                    "and are left out of the pool",
                    stacklevel=user_stacklevel(),
                )
        column = {m: j for j, m in enumerate(models)}
        scores = np.full((len(records), len(models)), np.nan)
        costs = np.full((len(records), len(models)), np.nan)
        logged = any(r.logged for r in records)
        propensities = np.full((len(records), len(models)), np.nan) if logged else None
        for i, record in enumerate(records):
            if propensities is not None:
                for model, p in record.propensities.items():
                    if model in column:
                        propensities[i, column[model]] = p
            for model, score in record.records.items():
                if score is not None and model in column:
                    scores[i, column[model]] = score
            for model in record.usages:
                cost = record.cost_of(model)
                if cost is not None and model in column:
                    costs[i, column[model]] = cost
        return cls(
            queries=[r.query for r in records],
            models=list(models),
            scores=scores,
            costs=costs,
            datasets=[r.dataset for r in records],
            propensities=propensities,
        )

    @classmethod
    def from_path(
        cls, path: str | Path, *, catalog: Catalog | str | Path = "auto", strict: bool = False
    ) -> CalibrationData:
        """Load a calibration JSONL file for fitting or evaluating, and align it.

        Every scored answer needs a cost or token counts; answers with tokens but no cost
        are priced at the catalog's list prices, with a
        :class:`~langchain_avengers.records.pricing.PricedCostsWarning` saying how many and from
        which catalog (see :func:`~langchain_avengers.records.pricing.price_missing_costs`).

        Args:
            path: JSONL file (see :func:`load_records`).
            catalog: Where list prices come from: ``"auto"`` (the live catalog over the
                bundled snapshot), ``"bundled"``, ``"live"``, a catalog file, or a
                :class:`~langchain_avengers.catalog.base.Catalog`. Only read when needed,
                except a named file or ``"live"``, which is checked at once.
            strict: Refuse unknown top-level fields (see :func:`load_records`).

        Raises:
            RecordsError: as :func:`load_records`, or a scored answer with neither a cost
                nor tokens (the message names file, line and field).
            PricingError: tokens of a model the catalog has no price for.
        """
        from langchain_avengers.records.pricing import PricedCostsWarning, price_missing_costs

        priced = price_missing_costs(load_records(path, strict=strict), catalog)
        if priced.summary.priced:
            warnings.warn(
                f"{path}: {priced.summary.describe()}",
                PricedCostsWarning,
                stacklevel=user_stacklevel(),
            )
        return cls.from_records(priced.records)

    @classmethod
    def concatenate(cls, parts: Sequence[CalibrationData]) -> CalibrationData:
        """Rows of several data sets, on the union of their models (first-seen order).

        To fit on full calibration records and logged ones together: read each file, then
        concatenate. A model a part does not have is "not measured" on its rows.
        """
        if not parts:
            msg = "concatenate: expected at least one CalibrationData, got none"
            raise ValueError(msg)
        models = list(dict.fromkeys(m for part in parts for m in part.models))
        logged = any(part.propensities is not None for part in parts)

        def widen(part: CalibrationData, values: np.ndarray | None) -> np.ndarray:
            out = np.full((len(part), len(models)), np.nan)
            if values is not None:
                out[:, [models.index(m) for m in part.models]] = values
            return out

        return cls(
            queries=[q for part in parts for q in part.queries],
            models=models,
            scores=np.vstack([widen(part, part.scores) for part in parts]),
            costs=np.vstack([widen(part, part.costs) for part in parts]),
            datasets=[d for part in parts for d in (part.datasets or [None] * len(part))],
            propensities=(
                np.vstack([widen(part, part.propensities) for part in parts]) if logged else None
            ),
        )

    def __len__(self) -> int:
        return len(self.queries)

    def subset(self, rows: Sequence[int] | np.ndarray) -> CalibrationData:
        """The same data restricted to ``rows``."""
        rows = np.asarray(rows, dtype=int)
        return CalibrationData(
            queries=[self.queries[i] for i in rows],
            models=list(self.models),
            scores=self.scores[rows],
            costs=self.costs[rows],
            datasets=[self.datasets[i] for i in rows],
            propensities=None if self.propensities is None else self.propensities[rows],
        )

    @property
    def logged_rows(self) -> np.ndarray:
        """Boolean mask of the rows logged from a router's choices (with a propensity)."""
        if self.propensities is None:
            return np.zeros(len(self.queries), dtype=bool)
        return ~np.isnan(self.propensities).all(axis=1)

    def fingerprint(self) -> str:
        """A short hash of queries, models, scores and costs, to tell fitted routers apart."""
        digest = hashlib.sha256()
        digest.update(json.dumps(self.models).encode())
        for query in self.queries:
            digest.update(hashlib.sha256(query.encode()).digest())
        digest.update(np.ascontiguousarray(self.scores, dtype="<f8").tobytes())
        digest.update(np.ascontiguousarray(self.costs, dtype="<f8").tobytes())
        if self.propensities is not None:
            digest.update(np.ascontiguousarray(self.propensities, dtype="<f8").tobytes())
        return digest.hexdigest()[:16]


RecordsLike = CalibrationData | Sequence[CalibrationRecord] | str | Path
"""What fitting and evaluating accept as calibration records."""


def as_calibration_data(records: RecordsLike) -> CalibrationData:
    """Accept a JSONL path, validated records or :class:`CalibrationData`."""
    if isinstance(records, CalibrationData):
        return records
    if isinstance(records, (str, Path)):
        return CalibrationData.from_path(records)
    return CalibrationData.from_records(list(records))
