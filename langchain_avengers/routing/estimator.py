"""scikit-learn's estimator conventions without importing scikit-learn.

``import sklearn.base`` costs about a second (it pulls in scipy), which every chat application
would pay at import although routing never needs it. :class:`Estimator` gives a router the
same habits: parameters read from the ``__init__`` signature by ``get_params``/``set_params``
(so ``sklearn.base.clone`` and grid searches work), a repr of the changed parameters, and a
fitted check that raises scikit-learn's own ``NotFittedError`` when scikit-learn is installed.
scikit-learn (the ``train`` extra) is imported only where it is really used: fitting.
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["Estimator", "check_fitted"]


class Estimator:
    """Base of estimators: scikit-learn's parameter, repr and fitted-state protocol."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """Parameter names of ``__init__``, sorted as scikit-learn does."""
        signature = inspect.signature(cls.__init__)
        names = []
        for parameter in list(signature.parameters.values())[1:]:
            if parameter.kind == parameter.VAR_POSITIONAL:
                msg = f"{cls.__name__}.__init__ must not take *args (scikit-learn convention)"
                raise TypeError(msg)
            if parameter.kind != parameter.VAR_KEYWORD:
                names.append(parameter.name)
        return sorted(names)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters; with ``deep``, also nested estimators' as ``a__b``."""
        params: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            params[name] = value
        return params

    def set_params(self, **params: Any) -> Estimator:
        """Set constructor parameters (``a__b`` reaches a nested estimator's ``b``).

        Raises:
            ValueError: a name that is not a parameter.
        """
        valid = self._get_param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, _, sub_key = key.partition("__")
            if name not in valid:
                msg = (
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}. "
                    f"Valid parameters are: {valid!r}."
                )
                raise ValueError(msg)
            if sub_key:
                nested.setdefault(name, {})[sub_key] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        defaults = {
            name: parameter.default
            for name, parameter in inspect.signature(type(self).__init__).parameters.items()
        }
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params(deep=False).items()
            if not _same(value, defaults.get(name, inspect.Parameter.empty))
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_is_fitted__(self) -> bool:
        """Fitted once any public attribute ends with ``_`` (scikit-learn's rule)."""
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def __sklearn_tags__(self) -> Any:
        """Tags for scikit-learn's own checks (``check_is_fitted``, ``clone``...)."""
        from sklearn.utils import Tags, TargetTags  # only scikit-learn itself asks for tags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False))


def check_fitted(estimator: Estimator) -> None:
    """Raise ``NotFittedError`` (scikit-learn's, when it is installed) if not fitted yet."""
    if estimator.__sklearn_is_fitted__():
        return
    name = type(estimator).__name__
    msg = (
        f"This {name} instance is not fitted yet. Call 'fit' with appropriate arguments "
        "before using this estimator."
    )
    raise _not_fitted_error()(msg)


def _not_fitted_error() -> type[Exception]:
    """scikit-learn's ``NotFittedError`` if installed (so its users catch it), else ours."""
    try:
        from sklearn.exceptions import NotFittedError
    except ImportError:
        return RouterNotFittedError
    return NotFittedError


class RouterNotFittedError(ValueError, AttributeError):
    """Raised when an unfitted router is used; scikit-learn's class when it is installed."""


def _same(value: Any, default: Any) -> bool:
    """Whether a parameter still has its default (identity first: values may not compare)."""
    if value is default:
        return True
    try:
        return bool(type(value) is type(default) and value == default)
    except (TypeError, ValueError):
        return False
