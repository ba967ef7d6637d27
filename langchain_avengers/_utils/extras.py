"""Optional dependencies: import them where they are needed, or say which extra brings them.

``pip install langchain-avengers`` installs what routing a call needs. Fitting and evaluating
(scikit-learn), plots (matplotlib) and the agent middleware (langchain, langgraph) come with
extras, so a chat application does not carry them.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

__all__ = ["EXTRAS", "MissingExtraError", "check_installed", "install_line", "require"]

EXTRAS = {
    "train": "fitting and evaluating routers (scikit-learn)",
    "plot": "plots (matplotlib)",
    "agents": "agent middleware and the decision model (langchain, langgraph)",
}
"""The package's extras and what each brings."""


class MissingExtraError(ImportError):
    """A feature was used whose optional dependency is not installed."""


def install_line(extra: str) -> str:
    """The command that installs ``extra``."""
    return f'pip install "langchain-avengers[{extra}]"'


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` naming the install line.

    Args:
        module: The module to import (``"sklearn.cluster"``).
        extra: The extra that installs it (a key of :data:`EXTRAS`).
        feature: What needs it, for the message (``"fitting a router"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        top = module.split(".")[0]
        msg = f"{feature} needs {top}, which is not installed: {install_line(extra)}"
        raise MissingExtraError(msg) from error


def check_installed(module: str, extra: str, feature: str) -> None:
    """Like :func:`require`, without importing ``module`` (scikit-learn takes a second).

    Raises:
        MissingExtraError: ``module`` cannot be imported here.
    """
    top = module.split(".")[0]
    try:
        found = sys.modules.get(top, ...) is not None and importlib.util.find_spec(top)
    except (ImportError, ValueError):
        found = None
    if not found:
        msg = f"{feature} needs {top}, which is not installed: {install_line(extra)}"
        raise MissingExtraError(msg)
