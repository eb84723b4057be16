"""Configuration errors that name the field, the offending value and the allowed range.

Both classes keep the pieces (``field``, ``value``, ``allowed``) so that a loader that knows
more context (for example the TOML section ``conductance``) can re-raise the same error with
a fuller dotted path via :meth:`with_path`.
"""

from __future__ import annotations

from typing import Any


class _FieldProblem:
    """The pieces both error types keep (``field``, ``value``, ``allowed``, ``problem``) and
    their one-line wording ``field = value problem; allowed: allowed``."""

    default_problem = "is invalid"

    def __init__(self, field: str, value: Any, allowed: str, problem: str | None = None):
        self.field = field
        self.value = value
        self.allowed = allowed
        self.problem = self.default_problem if problem is None else problem
        super().__init__(self._text())

    def _text(self) -> str:
        return f"{self.field} = {self.value!r} {self.problem}; allowed: {self.allowed}"

    def with_path(self, path: str) -> Any:
        """The same error, naming the field by ``path`` (e.g. ``"conductance.g_max_us"``)."""
        return type(self)(path, self.value, self.allowed, self.problem)


class ConfigError(_FieldProblem, ValueError):
    """A configuration value is out of range or otherwise invalid (a ``ValueError``)."""


class ConfigTypeError(_FieldProblem, TypeError):
    """A configuration value has the wrong type (a ``TypeError``)."""

    default_problem = "has the wrong type"


class _ArgumentWording(_FieldProblem):
    """Worded the way the argument is spelled in a call: ``name=value problem; allowed: ...``;
    ``message`` replaces that wording where the value does not print (an array: ``weight has
    shape (80,); expected a 2-D array``)."""

    def __init__(
        self,
        field: str,
        value: Any,
        allowed: str,
        problem: str | None = None,
        *,
        message: str | None = None,
    ):
        self.message = message
        super().__init__(field, value, allowed, problem)

    def _text(self) -> str:
        if self.message is not None:
            return self.message
        return f"{self.field}={self.value!r} {self.problem}; allowed: {self.allowed}"


class ArgumentError(_ArgumentWording, ConfigError):
    """A function argument is out of range (a ``ValueError``): ``name=value is ...; allowed: ...``.

    The same pieces as :class:`ConfigError`, written the way the argument is spelled in a call.
    """

    default_problem = "is out of range"


class ArgumentTypeError(_ArgumentWording, ConfigTypeError):
    """A function argument has the wrong type (a ``TypeError``), worded like ArgumentError."""

    default_problem = "has the wrong type"
