"""Costs from token counts and list prices: fill in unknown costs, or reprice a whole file.

A calibration record's cost is what the answer was billed when it was recorded. Two cases
need list prices instead:

- **tokens but no cost**: :func:`price_missing_costs` prices those answers so the records can
  be fitted (``avengers fit`` and ``avengers evaluate`` do it, and say so on stderr);
- **prices changed**: OpenRouter's prices move, and a router fitted on last month's costs
  routes on stale costs. :func:`reprice_records` (``avengers reprice``) recomputes every
  cost that has tokens, keeping the old cost as ``billed_cost`` and the catalog used as
  ``priced_from`` (``"<catalog source> @ <snapshot date>"``).

A price is ``prompt_tokens * input + completion_tokens * output`` USD per million tokens
(:func:`~langchain_avengers.catalog.base.list_price_cost`). OpenRouter's ``completion_tokens``
already include reasoning tokens, so ``reasoning_tokens`` are never added on top.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_avengers._utils.files import write_lines_atomically
from langchain_avengers.catalog.base import Catalog, list_price_cost, load_catalog
from langchain_avengers.records.format import (
    CalibrationRecord,
    RecordsError,
    Usage,
    load_records,
    read_jsonl_lines,
)

__all__ = [
    "PricedCostsWarning",
    "PricedRecords",
    "PricingError",
    "PricingSummary",
    "price_missing_costs",
    "reprice_file",
    "reprice_records",
]

CatalogLike = Catalog | str | Path


class PricingError(ValueError):
    """Tokens that cannot be priced: the catalog has no list price for their model."""


class PricedCostsWarning(UserWarning):
    """Some costs were computed from tokens and list prices, not taken from the bill."""


@dataclass(frozen=True)
class PricingSummary:
    """What a pricing step did.

    Attributes:
        priced: Answers whose cost was computed from tokens.
        without_tokens: Answers left as they were because they have no token counts
            (only counted by :func:`reprice_records`).
        catalog: The catalog's :meth:`~langchain_avengers.catalog.base.Catalog.describe` line,
            or ``None`` when no price was needed.
        priced_from: The provenance written into repriced usages (``source @ snapshot``).
    """

    priced: int
    without_tokens: int = 0
    catalog: str | None = None
    priced_from: str | None = None

    def describe(self) -> str:
        """One line for people (the stderr note of the CLI)."""
        if not self.priced:
            text = "no answer priced from tokens"
        else:
            text = (
                f"priced {self.priced} answer(s) from their tokens at list prices: {self.catalog}"
            )
        if self.without_tokens:
            text += f"; {self.without_tokens} answer(s) without token counts kept their cost"
        return text


@dataclass(frozen=True)
class PricedRecords:
    """New records (the input is never changed) and what was done to them."""

    records: list[CalibrationRecord]
    summary: PricingSummary


class _Prices:
    """A catalog read only when a first price is needed, and prices checked per model."""

    def __init__(self, catalog: CatalogLike) -> None:
        self._catalog: Catalog | None = None
        if isinstance(catalog, Catalog):
            self._catalog = catalog
        elif catalog != "auto":
            self._catalog = load_catalog(catalog)  # a named file or "live": check it now

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = load_catalog("auto")
        return self._catalog

    @property
    def provenance(self) -> str:
        return f"{self.catalog.source} @ {self.catalog.snapshot}"

    def cost(self, model: str, tokens: tuple[int, int], where: str) -> float:
        cost = list_price_cost(self.catalog.get(model), *tokens)
        if cost is None:
            near = [m for m in self.catalog.nearest(model) if m != model]
            hint = f" (similar ids: {', '.join(near)})" if near else ""
            msg = (
                f"{where}: field 'usages.{model}': model {model!r} has token counts to price "
                f"but no list price in the catalog used ({self.catalog.describe()}){hint}; "
                "give a catalog file with its prices (--catalog FILE, or catalog=... in "
                "Python) or run `avengers catalog refresh`"
            )
            raise PricingError(msg)
        return cost

    def summary(self, priced: int, without_tokens: int = 0) -> PricingSummary:
        if not priced:
            return PricingSummary(priced=0, without_tokens=without_tokens)
        return PricingSummary(
            priced=priced,
            without_tokens=without_tokens,
            catalog=self.catalog.describe(),
            priced_from=self.provenance,
        )


def price_missing_costs(
    records: Sequence[CalibrationRecord], catalog: CatalogLike = "auto"
) -> PricedRecords:
    """Price every scored answer that has tokens but no cost; refuse one with neither.

    Args:
        records: Validated records (their ``location`` names the file and line in errors).
        catalog: ``"auto"``, ``"bundled"``, ``"live"``, a catalog file or a
            :class:`~langchain_avengers.catalog.base.Catalog`; read only if a price is needed
            (a file or ``"live"`` is checked at once).

    Returns:
        New records, priced answers carrying ``priced_from``, and a summary.

    Raises:
        RecordsError: a scored answer with neither a cost nor both token counts.
        PricingError: tokens of a model the catalog has no price for.
    """
    prices = _Prices(catalog)
    out: list[CalibrationRecord] = []
    priced = 0
    for number, record in enumerate(records, start=1):
        usages = dict(record.usages)
        for model in record.scored_models():
            usage = usages.get(model)
            if usage is not None and usage.cost is not None:
                continue
            where = record.location or f"record {number}"
            tokens = None if usage is None else usage.token_counts()
            if tokens is None:
                msg = (
                    f"{where}: field 'usages.{model}.cost': {model!r} is scored but has "
                    "neither a cost nor token counts; give the USD billed as 'cost', or "
                    "'prompt_tokens' and 'completion_tokens' to price it from the catalog"
                )
                raise RecordsError(msg)
            base = {} if usage is None else usage.model_dump(exclude_unset=True)
            cost = prices.cost(model, tokens, where)
            usages[model] = Usage.model_validate(
                {**base, "cost": cost, "priced_from": prices.provenance}
            )
            priced += 1
        out.append(_with_usages(record, usages))
    return PricedRecords(records=out, summary=prices.summary(priced))


def reprice_records(
    records: Sequence[CalibrationRecord], catalog: CatalogLike = "auto", *, strict: bool = False
) -> PricedRecords:
    """Recompute every cost that has tokens from the catalog's current list prices.

    Each repriced usage keeps the cost it had as ``billed_cost`` (an existing ``billed_cost``,
    from an earlier repricing, is kept: it stays the amount actually billed) and gets
    ``priced_from``. Usages without both token counts keep their cost and are counted.

    Args:
        records: Validated records.
        catalog: As for :func:`price_missing_costs`.
        strict: Refuse a usage without token counts instead of keeping its cost.

    Raises:
        RecordsError: under ``strict``, a usage without token counts.
        PricingError: tokens of a model the catalog has no price for.
    """
    prices = _Prices(catalog)
    out: list[CalibrationRecord] = []
    priced = without_tokens = 0
    for number, record in enumerate(records, start=1):
        usages = dict(record.usages)
        for model, usage in record.usages.items():
            if usage is None:
                continue
            where = record.location or f"record {number}"
            tokens = usage.token_counts()
            if tokens is None:
                if strict:
                    msg = (
                        f"{where}: field 'usages.{model}.prompt_tokens': no token counts "
                        "(prompt_tokens and completion_tokens) to reprice from (--strict)"
                    )
                    raise RecordsError(msg)
                without_tokens += 1
                continue
            usages[model] = Usage.model_validate(
                _repriced(usage, prices.cost(model, tokens, where), prices.provenance)
            )
            priced += 1
        out.append(_with_usages(record, usages))
    return PricedRecords(records=out, summary=prices.summary(priced, without_tokens))


def reprice_file(
    source: str | Path,
    target: str | Path,
    catalog: CatalogLike = "auto",
    *,
    strict: bool = False,
) -> PricingSummary:
    """Write ``source`` to ``target`` with every cost repriced (see :func:`reprice_records`).

    Everything else in each line stays (unknown fields, blank lines, line order); ``source``
    is only read, and ``target`` is written atomically.

    Raises:
        ValueError: ``target`` is ``source``.
        RecordsError, PricingError: as :func:`reprice_records`; nothing is written.
    """
    source, target = Path(source), Path(target)
    if _same_file(source, target):
        msg = f"{target}: is the input file; write the repriced records to another path"
        raise ValueError(msg)
    originals = load_records(source)
    repriced = reprice_records(originals, catalog, strict=strict)
    pairs = iter(zip(originals, repriced.records, strict=True))
    lines = []
    for text in read_jsonl_lines(source):  # as load_records reads it
        if not text.strip():
            lines.append(text)
            continue
        before, after = next(pairs)
        raw = json.loads(text)
        for model, usage in after.usages.items():
            if usage is not before.usages.get(model):
                raw["usages"][model] = usage.model_dump(exclude_unset=True) if usage else None
        lines.append(json.dumps(raw, ensure_ascii=False))
    write_lines_atomically(target, lines)
    return repriced.summary


def _repriced(usage: Usage, cost: float, provenance: str) -> dict[str, Any]:
    """The usage's fields with the new cost; the amount billed, if known, as billed_cost."""
    fields = usage.model_dump(exclude_unset=True)
    if fields.get("billed_cost") is None and usage.cost is not None:
        fields["billed_cost"] = usage.cost
    return {**fields, "cost": cost, "priced_from": provenance}


def _with_usages(record: CalibrationRecord, usages: dict[str, Usage | None]) -> CalibrationRecord:
    """The record itself when no usage changed, else a copy (its location kept)."""
    if all(usages[m] is record.usages.get(m) for m in usages):
        return record
    return record.model_copy(update={"usages": usages})


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
