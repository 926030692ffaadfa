#!/usr/bin/env python3
"""Regenerate ``Sources/SolidXC/Pseudo/GTHTables.swift`` from the CP2K-format GTH
tables distributed with PySCF (``pyscf/pbc/gto/pseudo/gth-pade.dat`` and
``gth-pbe.dat``).

The data files are embedded verbatim, header comments included, as raw Swift
string literals, so the parser in ``GTHPseudopotential.swift`` reads exactly the
text PySCF reads.

Usage (from the repository root)::

    python3 Sources/SolidXC/Pseudo/tools/make_gth_tables.py [--pyscf-dir DIR] [--out FILE]
"""
import argparse
import hashlib
import os
import sys

TABLES = [
    # (Swift property, file name, table name accepted by GTHPseudopotential.load)
    ("gthPade", "gth-pade.dat", "gth-pade"),
    ("gthPBE", "gth-pbe.dat", "gth-pbe"),
]

HEADER = """\
// GENERATED FILE, do not edit. Regenerate with
//     python3 Sources/SolidXC/Pseudo/tools/make_gth_tables.py
// from PySCF {pyscf_version} (pyscf/pbc/gto/pseudo/).
//
// Goedecker-Teter-Hutter (GTH) / Hartwigsen-Goedecker-Hutter (HGH) pseudopotential
// parameters in CP2K format, embedded verbatim:
{file_lines}
//
// Sources of the parameters:
//   S. Goedecker, M. Teter, J. Hutter, Phys. Rev. B 54, 1703 (1996).
//   C. Hartwigsen, S. Goedecker, J. Hutter, Phys. Rev. B 58, 3641 (1998).
//   M. Krack, Theor. Chem. Acc. 114, 145 (2005).
// Data files: the CP2K potential database (Matthias Krack et al.), as distributed with
// PySCF (https://github.com/pyscf/pyscf, Apache License 2.0).

/// The bundled CP2K-format GTH tables, one raw string per file.
enum GTHTables {{
"""


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pyscf-dir", default=None,
                    help="directory holding gth-pade.dat and gth-pbe.dat "
                         "(default: <pyscf>/pbc/gto/pseudo of the installed PySCF)")
    ap.add_argument("--out", default=os.path.join(here, "..", "GTHTables.swift"))
    args = ap.parse_args()

    version = "(unknown version)"
    src = args.pyscf_dir
    if src is None:
        import pyscf
        version = pyscf.__version__
        src = os.path.join(os.path.dirname(pyscf.__file__), "pbc", "gto", "pseudo")

    file_lines = []
    bodies = []
    for prop, fname, table in TABLES:
        with open(os.path.join(src, fname), "r", encoding="ascii") as f:
            text = f.read()
        if '"#' in text or "\\" in text or "\t" in text:
            sys.exit(f"{fname}: contains characters that would need escaping; "
                     "extend the generator")
        digest = hashlib.sha256(text.encode()).hexdigest()
        nentries = sum(1 for ln in text.splitlines() if ln[:1].isalpha())
        file_lines.append(f"//   {fname:13s} ({table}): {nentries} entries, sha256 {digest}")
        if not text.endswith("\n"):
            text += "\n"
        bodies.append(f"    /// `{fname}` ({table}).\n"
                      f"    static let {prop}: String = #\"\"\"\n{text}\"\"\"#\n")

    out = HEADER.format(pyscf_version=version, file_lines="\n".join(file_lines))
    out += "\n".join(bodies) + "}\n"
    with open(args.out, "w", encoding="ascii") as f:
        f.write(out)
    print(f"wrote {os.path.normpath(args.out)} ({len(out)} bytes)")


if __name__ == "__main__":
    main()
