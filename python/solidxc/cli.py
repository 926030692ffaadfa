"""Command line: ``solidxc scf FILE.yaml``.

The YAML file holds a system and SCF settings, in bohr and Hartree::

    lattice: [[0, 5.13, 5.13], [5.13, 0, 5.13], [5.13, 5.13, 0]]   # rows, bohr
    atoms: [[Si, [0, 0, 0]], [Si, [2.57, 2.57, 2.57]]]            # Cartesian bohr
    pseudo: gth-pade          # or {Si: gth-pbe} or a CP2K file path
    xc: lda,pw
    ecut: 15                  # Ha
    kpts: [2, 2, 2]
    kshift: [0, 0, 0]
    tol: 1.0e-9               # Ha

See examples/si.yaml.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Sequence

from . import __version__
from .errors import SolidXCError
from .scf import scf
from .system import System
from .units import HARTREE_IN_EV

SYSTEM_KEYS = ("lattice", "atoms", "pseudo", "ecut", "kpts", "kshift", "fft_size", "charge")
SCF_KEYS = ("xc", "tol", "maxiter", "nbands", "mixing_beta", "kerker_q0", "threads", "raise_on_nonconvergence",
            "memory_limit_bytes")


class CLIError(Exception):
    """A problem with the command line or the YAML file (exit status 2)."""


def load_yaml(path: str) -> dict:
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise CLIError(f"{path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CLIError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CLIError(f"{path}: expected a mapping of keys ({', '.join(SYSTEM_KEYS + SCF_KEYS)})")
    unknown = [k for k in data if k not in SYSTEM_KEYS + SCF_KEYS]
    if unknown:
        raise CLIError(f"{path}: unknown key {unknown[0]!r}; known keys are {', '.join(SYSTEM_KEYS + SCF_KEYS)}")
    for key in ("lattice", "atoms", "ecut"):
        if key not in data:
            raise CLIError(f"{path}: required key {key!r} is missing")
    return data


def _atoms(entries: Any, path: str) -> list:
    if not isinstance(entries, list):
        raise CLIError(f"{path}: atoms: expected a list of [element, [x, y, z]] (bohr)")
    atoms = []
    for i, entry in enumerate(entries):
        if isinstance(entry, dict):
            atoms.append(entry)
        elif isinstance(entry, (list, tuple)) and len(entry) == 2:
            atoms.append((entry[0], entry[1]))
        else:
            raise CLIError(f"{path}: atoms[{i}]: expected [element, [x, y, z]] (bohr), got {entry!r}")
    return atoms


def _resolve_pseudo(pseudo: Any, base: str) -> Any:
    """Relative pseudopotential file paths are relative to the YAML file."""
    if isinstance(pseudo, dict):
        return {k: _resolve_pseudo(v, base) for k, v in pseudo.items()}
    if isinstance(pseudo, str) and not os.path.isabs(pseudo):
        candidate = os.path.join(base, pseudo)
        if os.path.isfile(candidate):
            return candidate
    return pseudo


def format_table(system: System, result, xc: str) -> str:
    lines = [
        f"SolidXC {__version__}   {system.formula}   xc {xc}   ecut {system.ecut:g} Ha   "
        f"kpts {'x'.join(map(str, system.kpts))}   fft {'x'.join(map(str, result.fft_size))}",
        "",
        f"{'term':<16}{'energy (Ha)':>20}{'energy (eV)':>20}",
        "-" * 56,
    ]
    for name, value in result.energies.items():
        lines.append(f"{name:<16}{value:>20.10f}{value * HARTREE_IN_EV:>20.8f}")
    lines.append("-" * 56)
    lines.append(f"{'total':<16}{result.energy:>20.10f}{result.energy * HARTREE_IN_EV:>20.8f}")
    lines.append(f"{'fermi level':<16}{result.fermi_level:>20.10f}{result.fermi_level * HARTREE_IN_EV:>20.8f}")
    lines.append("")
    lines.append(f"iterations      {result.iterations}")
    lines.append(f"converged       {'yes' if result.converged else 'no'}")
    return "\n".join(lines)


def run_scf(args: argparse.Namespace) -> int:
    data = load_yaml(args.file)
    base = os.path.dirname(os.path.abspath(args.file))
    system_kwargs = {k: data[k] for k in SYSTEM_KEYS if k in data}
    system_kwargs["atoms"] = _atoms(data["atoms"], args.file)
    if "pseudo" in system_kwargs:
        system_kwargs["pseudo"] = _resolve_pseudo(system_kwargs["pseudo"], base)
    if "kpts" not in system_kwargs:
        system_kwargs["kpts"] = (1, 1, 1)
    options = {k: data[k] for k in SCF_KEYS if k in data and k != "xc"}
    if args.threads is not None:
        options["threads"] = args.threads
    # Not converging still prints the table (marked "converged no") and exits with status 1.
    options.setdefault("raise_on_nonconvergence", False)
    xc = str(data.get("xc", "lda,pw"))
    system = System(**system_kwargs)
    result = scf(system, xc=xc, verbose=args.verbose, **options)
    print(format_table(system, result, xc))
    if not result.converged:
        print(f"solidxc: warning: SCF not converged after {result.iterations} iterations "
              f"(last density residual {result.residual_history[-1]:.3e} electrons)", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="solidxc", description="SolidXC: plane-wave Kohn-Sham DFT for crystals.")
    parser.add_argument("--version", action="version", version=f"solidxc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p_scf = sub.add_parser("scf", help="run an SCF from a YAML file and print the energy terms")
    p_scf.add_argument("file", help="YAML input (see examples/si.yaml)")
    p_scf.add_argument("-v", "--verbose", action="store_true", help="print one line per SCF iteration to stderr")
    p_scf.add_argument("--threads", type=int, default=None, help="threads over k-points (default: one per core)")
    from . import train
    train.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        if args.command == "scf":
            return run_scf(args)
        if args.command == "train":
            return train.run(args)
    except CLIError as exc:
        print(f"solidxc: error: {exc}", file=sys.stderr)
        return 2
    except SolidXCError as exc:
        print(f"solidxc: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
