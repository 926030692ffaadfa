"""Equation of state of fcc aluminium: LDA, GTH-Pade, Fermi-Dirac smearing, Birch-Murnaghan fit.

Run with:  python examples/eos_al.py      (about 10 s on 2 cores; writes examples/eos_al.png)

Modest settings (ecut 15 Ha, 6x6x6 k-points) for a quick scan: the converged LDA value with this
pseudopotential is a0 = 3.975 Å (ABINIT, ecut 30 Ha, 12x12x12, /work/shared/reference/README.md §5);
experiment at room temperature is 4.05 Å.
"""

import pathlib

import numpy as np

import solidxc
from solidxc.units import BOHR_IN_ANGSTROM, angstrom_to_bohr

a = angstrom_to_bohr(4.00)  # conventional cubic lattice constant, bohr (near the LDA minimum)
lattice = a / 2 * np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])  # fcc primitive vectors (rows)
system = solidxc.System(lattice, [("Al", (0.0, 0.0, 0.0))], pseudo="gth-pade", ecut=15, kpts=(6, 6, 6),
                        smearing="fermi-dirac", temperature=0.01)
print(system)

# Seven points a * (0.97 ... 1.03) on one FFT grid, each SCF started from its neighbour; fit the free energy.
# a_ref=a makes EOSResult.a0 the conventional lattice constant (the default would be |a1| = a / sqrt(2)).
result = solidxc.eos(system, xc="lda,pw", energy="free", a_ref=a, tol=1e-9)
print(result)

print(f"{'scale':>7} {'a (Å)':>8} {'V (bohr^3)':>11} {'F (Ha)':>15} {'F - fit (Ha)':>13} {'SCF it':>6}")
for s, v, e, r, it in zip(result.scales, result.volumes, result.energies, result.residuals, result.iterations):
    print(f"{s:7.4f} {s * a * BOHR_IN_ANGSTROM:8.4f} {v:11.4f} {e:15.10f} {r:13.2e} {it:6d}")
print(f"a0 = {result.a0_angstrom:.4f} Å, B0 = {result.b0_gpa:.1f} GPa, B0' = {result.b0_prime:.2f}, "
      f"fft {result.fft_sizes[0]}")

figure = result.plot()
figure.axes[0].set_title("Al fcc: LDA (PW92), GTH-Pade, ecut 15 Ha, 6x6x6 k, FD 0.01 Ha", fontsize="medium")
out = pathlib.Path(__file__).with_name("eos_al.png")
figure.savefig(out, dpi=120)
print(f"wrote {out}")
