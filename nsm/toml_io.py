"""TOML files read with their errors told in one line naming the file (standard library only,
like :mod:`nsm.atomic_io`: ``nsmx`` reads its sweep files through it without loading torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def read_toml_file(
    path: Path, error: type[Exception], *, missing: str, unreadable: str
) -> dict[str, Any]:
    """The table of the TOML file ``path``; a missing file raises ``error("PATH: missing")``, an
    unreadable or invalid one ``error("PATH: unreadable (reason)")``."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise error(f"{path}: {unreadable} ({exc})") from None


__all__ = ["read_toml_file"]
