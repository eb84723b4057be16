"""Configuration errors that name the field, the offending value and the allowed range.

Both classes keep the pieces (``field``, ``value``, ``allowed``) so that a loader that knows
more context (for example the TOML section ``conductance``) can re-raise the same error with
a fuller dotted path via :meth:`with_path`.
"""

from __future__ import annotations

from typing import Any


def _message(field: str, value: Any, allowed: str, problem: str) -> str:
    return f"{field} = {value!r} {problem}; allowed: {allowed}"


class ConfigError(ValueError):
    """A configuration value is out of range or otherwise invalid (a ``ValueError``)."""

    def __init__(self, field: str, value: Any, allowed: str, problem: str = "is invalid"):
        self.field = field
        self.value = value
        self.allowed = allowed
        self.problem = problem
        super().__init__(_message(field, value, allowed, problem))

    def with_path(self, path: str) -> ConfigError:
        """The same error, naming the field by ``path`` (e.g. ``"conductance.g_max_us"``)."""
        return type(self)(path, self.value, self.allowed, self.problem)


class ConfigTypeError(TypeError):
    """A configuration value has the wrong type (a ``TypeError``)."""

    def __init__(self, field: str, value: Any, allowed: str, problem: str = "has the wrong type"):
        self.field = field
        self.value = value
        self.allowed = allowed
        self.problem = problem
        super().__init__(_message(field, value, allowed, problem))

    def with_path(self, path: str) -> ConfigTypeError:
        """The same error, naming the field by ``path``."""
        return type(self)(path, self.value, self.allowed, self.problem)


class ArgumentError(ConfigError):
    """A function argument is out of range (a ``ValueError``): ``name=value is ...; allowed: ...``.

    The same pieces as :class:`ConfigError`, written the way the argument is spelled in a call.
    ``message`` replaces that wording where the value does not print (an array: ``weight has
    shape (80,); expected a 2-D array``).
    """

    def __init__(
        self,
        field: str,
        value: Any,
        allowed: str,
        problem: str = "is out of range",
        *,
        message: str | None = None,
    ):
        super().__init__(field, value, allowed, problem)
        text = f"{field}={value!r} {problem}; allowed: {allowed}" if message is None else message
        ValueError.__init__(self, text)


class ArgumentTypeError(ConfigTypeError):
    """A function argument has the wrong type (a ``TypeError``), worded like ArgumentError."""

    def __init__(
        self,
        field: str,
        value: Any,
        allowed: str,
        problem: str = "has the wrong type",
        *,
        message: str | None = None,
    ):
        super().__init__(field, value, allowed, problem)
        text = f"{field}={value!r} {problem}; allowed: {allowed}" if message is None else message
        TypeError.__init__(self, text)
