"""Bundled datasets (see README.md in this directory).

``solids.yaml`` is the lattice-constant training/test set, ``small.yaml`` the quick demo/CI subset.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def path(name: str) -> str:
    """Absolute path of a bundled data file, e.g. ``path("solids.yaml")`` (``".yaml"`` may be omitted)."""
    candidate = _HERE / name
    if not candidate.suffix:
        candidate = candidate.with_suffix(".yaml")
    if candidate.parent != _HERE or not candidate.is_file():
        available = sorted(p.name for p in _HERE.glob("*.yaml"))
        raise FileNotFoundError(f"solidxc.data: no bundled file {name!r}; available: {available}")
    return str(candidate)
