"""Band structure of silicon and density of states of aluminium (LDA, GTH-Pade).

Run with:  python examples/bands_dos.py      (about 30 s on 2 cores; writes examples/si_bands.png, examples/al_dos.png)

Silicon: SCF on a 4x4x4 grid at ecut 15 Ha, then non-self-consistent bands along ASE's fcc path
G-X-W-K-G-L-U-W-L-K|U-X. The LDA gap is indirect, VBM at Gamma and CBM at about 0.85 of the way to X:
0.47 eV here (ABINIT's at the same settings: python/tests/reference/abinit/bands/README.md); experiment 1.17 eV.
Aluminium: SCF with Fermi-Dirac smearing on 6x6x6 k-points, then the DOS from a denser 12x12x12 grid solved
non-self-consistently, Gaussian broadening 0.025 Ha; free-electron-like, N(E) ~ sqrt(E - E_0).
"""

import pathlib

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

import solidxc  # noqa: E402
from solidxc.units import angstrom_to_bohr  # noqa: E402

here = pathlib.Path(__file__).parent
fcc = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]) / 2  # primitive vectors (rows) / a

# ---- Si band structure
a = angstrom_to_bohr(5.431)
si = solidxc.System(a * fcc, [("Si", (0, 0, 0)), ("Si", (a / 4, a / 4, a / 4))], ecut=15, kpts=(4, 4, 4))
result = solidxc.scf(si, xc="lda,pw")
print(result)
bands = result.band_structure("GXWKGLUWLK,UX", npoints=150, nbands=8, progress=True)
print(bands)
print(bands.gap())
figure = bands.plot(emin=-13, emax=7)
figure.axes[0].set_title("Si: LDA (PW92), GTH-Pade, ecut 15 Ha, SCF 4x4x4", fontsize="medium")
figure.tight_layout()
figure.savefig(here / "si_bands.png", dpi=100)
print(f"wrote {here / 'si_bands.png'}")

# ---- Al density of states
a = angstrom_to_bohr(4.05)
al = solidxc.System(a * fcc, [("Al", (0, 0, 0))], ecut=12, kpts=(6, 6, 6), smearing="fermi-dirac", temperature=0.01)
result = solidxc.scf(al, xc="lda,pw")
print(result)
dos = result.dos(kpts=(12, 12, 12), width=0.025, kind="gaussian", progress=True)
print(dos)
print(f"electrons below E_F on the 12x12x12 grid: {dos.electrons_below(result.fermi_level):.4f} "
      f"(SCF: {result.nelectrons:g})")
figure = dos.plot(emin=-12, emax=6)
figure.axes[0].set_title("Al: LDA (PW92), GTH-Pade, ecut 12 Ha, NSCF 12x12x12, Gaussian 0.025 Ha", fontsize="medium")
figure.tight_layout()
figure.savefig(here / "al_dos.png", dpi=100)
print(f"wrote {here / 'al_dos.png'}")
