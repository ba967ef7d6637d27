"""The catalog's types: a model's profile, the :class:`Catalog` mapping and its errors.

Where catalogs come from and how they are layered is :mod:`langchain_avengers.catalog.base`.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import ModelProfile

from langchain_avengers.openrouter.billing import price_problem

INPUT_KINDS = ("image", "pdf", "audio", "video")
"""Media inputs a profile can accept, each as the flag ``<kind>_inputs``."""
_CAPABILITY_LABELS = {
    "tool_calling": "tools",
    "structured_output": "structured",
    "reasoning_output": "reasoning",
}


class CatalogError(ValueError):
    """A catalog file or response that cannot be read; the message says which and why."""


class CatalogWarning(UserWarning):
    """A catalog problem worked around (e.g. a damaged live cache ignored)."""


class OpenRouterProfile(ModelProfile, total=False):
    """A LangChain :class:`ModelProfile` plus OpenRouter list prices."""

    input_usd_per_mtok: float
    """USD per million input tokens."""
    output_usd_per_mtok: float
    """USD per million output tokens."""


@dataclass(frozen=True)
class Catalog(Mapping[str, OpenRouterProfile]):
    """Profiles of OpenRouter models, with where they come from and how fresh they are.

    Attributes:
        source: ``"bundled"``, ``"live"``, ``"live+bundled"`` or the path of a catalog file.
        snapshot: When the data was taken (ISO 8601): the models.dev commit date of the
            bundled snapshot, or the fetch time of a live catalog.
        origin: A human-readable description of the data's origin.
        commit: The models.dev commit of a bundled snapshot (``None`` for live data).
    """

    _profiles: Mapping[str, OpenRouterProfile] = field(repr=False)
    source: str
    snapshot: str
    origin: str
    commit: str | None = None
    _layers: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __getitem__(self, model: str) -> OpenRouterProfile:
        return copy.deepcopy(self._profiles[model])

    def __contains__(self, model: object) -> bool:
        return model in self._profiles

    def __iter__(self) -> Iterator[str]:
        return iter(self._profiles)

    def __len__(self) -> int:
        return len(self._profiles)

    def to_dict(self) -> dict[str, OpenRouterProfile]:
        """Every profile, as a fresh dictionary the caller may change."""
        return copy.deepcopy(dict(self._profiles))

    def lookup(self, model: str) -> OpenRouterProfile:
        """The profile of ``model`` (a copy).

        Raises:
            CatalogError: the catalog does not know the id; the message names the nearest ones.
        """
        if model not in self._profiles:
            hint = ", ".join(self.nearest(model)) or "none"
            msg = f"unknown model {model!r} in the {self.source} catalog; nearest known: {hint}"
            raise CatalogError(msg)
        return self[model]

    def layer_of(self, model: str) -> str:
        """Which catalog an entry comes from (``"live"`` or ``"bundled"`` when layered)."""
        return self._layers.get(model, self.source)

    def nearest(self, model: str, n: int = 3) -> list[str]:
        """Known ids that look most like ``model`` (for "did you mean" messages)."""
        known = list(self._profiles)
        close = difflib.get_close_matches(model, known, n=n, cutoff=0.5)
        if close:
            return close
        tail = model.rsplit("/", 1)[-1]
        by_tail = {m.rsplit("/", 1)[-1]: m for m in known}
        return [by_tail[t] for t in difflib.get_close_matches(tail, list(by_tail), n=n)]

    def select(
        self,
        *,
        tool_calling: bool = False,
        structured_output: bool = False,
        inputs: Iterable[str] = (),
    ) -> list[str]:
        """Ids whose profile states every asked-for capability and input kind (sorted).

        Args:
            tool_calling: Keep only models with ``tool_calling``.
            structured_output: Keep only models with ``structured_output``.
            inputs: Media kinds of :data:`INPUT_KINDS` the model must accept.
        """
        unknown = sorted(set(inputs) - set(INPUT_KINDS))
        if unknown:
            msg = f"inputs: unknown kind(s) {unknown}; expected some of {list(INPUT_KINDS)}"
            raise ValueError(msg)
        wanted = {"tool_calling": tool_calling, "structured_output": structured_output}
        flags = [f for f, on in wanted.items() if on] + [f"{kind}_inputs" for kind in inputs]
        return sorted(m for m, p in self._profiles.items() if all(p.get(f) is True for f in flags))

    def about(self) -> dict[str, str | None]:
        """Where the data comes from, as a JSON-ready dictionary."""
        return {key: getattr(self, key) for key in ("source", "snapshot", "origin", "commit")}

    def describe(self) -> str:
        """One short line: how many models, which catalog, as of when (see ``origin``)."""
        return f"{len(self)} models, {self.source} catalog as of {self.snapshot}"

    def table(self, models: Iterable[str] | None = None) -> str:
        """A fixed-width table: id, list prices per 1M tokens, context, capabilities, inputs."""
        header = ("model", "$/1M in", "$/1M out", "context", "capabilities", "inputs")
        chosen = self if models is None else models
        rows = [header, *(_table_row(m, self._profiles[m]) for m in chosen)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        pads = [str.ljust, str.rjust, str.rjust, str.rjust, str.ljust, str.ljust]
        lines = [
            "  ".join(pad(c, w) for pad, c, w in zip(pads, row, widths, strict=True))
            for row in rows
        ]
        return "\n".join(line.rstrip() for line in lines)


def _table_row(model: str, profile: Mapping[str, Any]) -> tuple[str, ...]:
    context = profile.get("max_input_tokens")
    capabilities = [label for flag, label in _CAPABILITY_LABELS.items() if profile.get(flag)]
    inputs = [k for k in ("text", *INPUT_KINDS) if profile.get(f"{k}_inputs")]
    stated = any(f"{k}_inputs" in profile for k in ("text", *INPUT_KINDS))
    return (
        model,
        _usd(profile.get("input_usd_per_mtok")),
        _usd(profile.get("output_usd_per_mtok")),
        f"{context:,}" if isinstance(context, int) else "-",
        ",".join(capabilities) or "-",
        ",".join(inputs) if stated else "?",
    )


def _usd(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, (int, float)) else "-"


def list_price_cost(
    profile: Mapping[str, Any] | None, prompt_tokens: int, completion_tokens: int
) -> float | None:
    """USD for a call at list prices, or ``None`` when the profile has no prices."""
    if not profile or "input_usd_per_mtok" not in profile or "output_usd_per_mtok" not in profile:
        return None
    return (
        prompt_tokens * profile["input_usd_per_mtok"]
        + completion_tokens * profile["output_usd_per_mtok"]
    ) / 1e6


PRICE_FIELDS = ("input_usd_per_mtok", "output_usd_per_mtok")
TOKEN_FIELDS = ("max_input_tokens", "max_output_tokens")
FLAG_FIELDS = (
    "tool_calling",
    "tool_choice",
    "structured_output",
    "reasoning_output",
    "temperature",
)


def profile_problem(field_name: str, value: object) -> str | None:
    """What is wrong with one profile field's value, or ``None`` (unknown fields pass).

    Prices are numbers of USD per million tokens, finite, from 0 to $1,000 (see
    :func:`~langchain_avengers.openrouter.billing.price_problem`); token limits are positive
    whole numbers; capability flags and ``*_inputs``/``*_outputs`` are ``true``/``false``
    (never ``1``/``0`` or strings, which would read as a price or a claim).
    """
    if field_name in PRICE_FIELDS:
        return price_problem(value)
    if field_name in TOKEN_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return f"expected a positive whole number of tokens, got {value!r}"[:120]
        return None
    is_flag = field_name in FLAG_FIELDS or field_name.endswith(("_inputs", "_outputs"))
    if is_flag and not isinstance(value, bool):
        return f"expected true or false, got {value!r}"[:120]
    return None


def check_profile(model: str, profile: Mapping[str, Any], where: str) -> None:
    """Refuse a profile read from a file whose prices, limits or flags have the wrong type.

    Raises:
        CatalogError: naming ``where`` (the file), the model id, the field and what was
            expected.
    """
    for field_name, value in profile.items():
        problem = profile_problem(field_name, value)
        if problem:
            msg = f"{where}: model {model!r}: field {field_name!r}: {problem}"
            raise CatalogError(msg)
