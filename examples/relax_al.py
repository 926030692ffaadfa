"""Relax the fcc aluminium lattice with ASE (BFGS + FrechetCellFilter) and compare with the equation of state.

Run with:  python examples/relax_al.py [ecut_Ha]     (ecut 20 Ha: about 15 s on one core; output in relax_al.txt)

PBE with GTH-PBE, 8x8x8 k-points, Fermi-Dirac smearing 0.01 Ha. The cell starts at +2 % of the EOS
lattice constant and relaxes on the analytic stress until every force and stress component (FrechetCellFilter
scales the stress by the volume) is below 1e-4 eV/Å. The EOS is ASE's Birch-Murnaghan fit of the free
energies of seven cells (+-1.5 %), computed with the same calculator, the same settings and the same FFT grid.

The two lattice constants differ by the Pulay stress: the analytic stress is the derivative at a fixed set of
plane waves, the EOS compares cells at a fixed cutoff. The difference shrinks with ecut (about -0.02 % at
20 Ha, see python/tests/test_ase.py); 'dE/dEcut' below gives the estimate
Δa/a = (2/3) (Ecut / V) (dE/dEcut) / (3 B).
"""

import sys
import time

import numpy as np
from ase.build import bulk
from ase.eos import EquationOfState
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS
from ase.units import GPa

from solidxc.ase import SolidXC

ecut = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0  # Hartree
settings = dict(xc="pbe", ecut=ecut, kpts=(8, 8, 8), smearing="fermi-dirac", temperature=0.01, tol=1e-11, threads=1)
a_guess = 4.04  # Å, near the PBE minimum

# One FFT grid for everything: the core's grid for the largest cell visited (scan end or relaxation start).
calc = SolidXC(**settings)
calc.set(fft_size=calc.default_fft_size(bulk("Al", "fcc", a=1.03 * a_guess)))
print(calc)

# 1. Equation of state: free energies (force_consistent=True, the energy the stress differentiates).
t0 = time.time()
atoms = bulk("Al", "fcc", a=a_guess)
atoms.calc = calc
cell = atoms.cell.array.copy()
volumes, energies = [], []
print(f"{'scale':>7} {'a (Å)':>8} {'V (Å^3)':>9} {'F (eV)':>14} {'p (GPa)':>8}")
for s in np.linspace(0.985, 1.015, 7):
    atoms.set_cell(cell * s, scale_atoms=True)
    volumes.append(atoms.get_volume())
    energies.append(atoms.get_potential_energy(force_consistent=True))
    pressure = -np.mean(atoms.get_stress()[:3]) / GPa
    print(f"{s:7.4f} {s * a_guess:8.5f} {volumes[-1]:9.4f} {energies[-1]:14.8f} {pressure:8.3f}")
v0, e0, b0 = EquationOfState(volumes, energies, eos="birchmurnaghan").fit()
a0_eos = (4 * v0) ** (1 / 3)
t1 = time.time()
print(f"EOS: a0 = {a0_eos:.5f} Å, B0 = {b0 / GPa:.1f} GPa ({t1 - t0:.1f} s)")

# 2. Relaxation from +2 %.
atoms = bulk("Al", "fcc", a=1.02 * a0_eos)
atoms.calc = calc
optimizer = BFGS(FrechetCellFilter(atoms), logfile="-")
optimizer.run(fmax=1e-4, steps=100)
a0_relaxed = (4 * atoms.get_volume()) ** (1 / 3)
t2 = time.time()
print(f"relaxed: a0 = {a0_relaxed:.5f} Å in {optimizer.nsteps} BFGS steps ({t2 - t1:.1f} s); "
      f"stress {np.abs(atoms.get_stress()).max():.1e} eV/Å^3")

# 3. The Pulay estimate at a0: dE/dEcut from cutoffs ecut -+ 1 Ha on the same grid.
shifted = []
for d in (-1.0, 1.0):
    c = SolidXC(**{**settings, "ecut": ecut + d, "fft_size": calc.parameters["fft_size"]})
    shifted.append(c.get_potential_energy(bulk("Al", "fcc", a=a0_eos), force_consistent=True))
de_decut = (shifted[1] - shifted[0]) / 2.0  # eV per Ha
pulay = (2 / 3) * (ecut / v0) * de_decut / (3 * b0)  # eV/Å^3 / (eV/Å^3) -> relative Δa
print(f"dE/dEcut = {de_decut:.3e} eV/Ha: Pulay estimate Δa/a = {100 * pulay:+.4f} %")
print(f"a0 relaxed - a0 EOS = {a0_relaxed - a0_eos:+.5f} Å ({100 * (a0_relaxed / a0_eos - 1):+.4f} %)")
