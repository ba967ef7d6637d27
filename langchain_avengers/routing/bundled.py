"""The router shipped with the package (the model catalog lives in :mod:`catalog`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from langchain_avengers.routing.router import ClusterRouter

__all__ = ["default_router_path", "load_default_router", "load_router"]

DEFAULT_ROUTER_DIR = Path(str(resources.files("langchain_avengers") / "data" / "default_router"))


def default_router_path() -> Path:
    """Directory of the router shipped in the package."""
    return DEFAULT_ROUTER_DIR


def load_default_router() -> ClusterRouter:
    """The shipped router: fitted on ParetoBandit's 4-model OpenRouter data (Apache-2.0).

    Models: meta-llama/llama-3.1-8b-instruct, mistralai/mistral-large-2512,
    google/gemini-2.5-flash, google/gemini-2.5-pro; default embedder (WordLlama).
    Regenerate with ``python scripts/build_default_router.py``; see ``data/NOTICE``.
    """
    return ClusterRouter.load(DEFAULT_ROUTER_DIR)


def load_router(value: Any) -> ClusterRouter:
    """A fitted router, the one saved at a path, or (``None``) the shipped one.

    File errors come out as they are.
    """
    if value is None:
        return load_default_router()
    if isinstance(value, (str, Path)):
        return ClusterRouter.load(value)
    if not isinstance(value, ClusterRouter):
        msg = f"router: expected a fitted ClusterRouter or a path, got {type(value).__name__}"
        raise TypeError(msg)
    return value
