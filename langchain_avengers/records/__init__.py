"""Calibration records: what each model of a pool scored and cost on each query.

:mod:`~langchain_avengers.records.format` reads and checks the JSONL files,
:mod:`~langchain_avengers.records.pricing` prices answers from tokens and reprices files,
:mod:`~langchain_avengers.records.data` aligns them as arrays for fitting and evaluating.
"""

from langchain_avengers.records.data import CalibrationData
from langchain_avengers.records.format import (
    CalibrationRecord,
    RecordsError,
    RecordsWarning,
    Usage,
    load_records,
    read_jsonl_lines,
)
from langchain_avengers.records.pricing import (
    PricedCostsWarning,
    PricedRecords,
    PricingError,
    PricingSummary,
    price_missing_costs,
    reprice_file,
    reprice_records,
)

__all__ = [
    "CalibrationData",
    "CalibrationRecord",
    "PricedCostsWarning",
    "PricedRecords",
    "PricingError",
    "PricingSummary",
    "RecordsError",
    "RecordsWarning",
    "Usage",
    "load_records",
    "price_missing_costs",
    "read_jsonl_lines",
    "reprice_file",
    "reprice_records",
]
