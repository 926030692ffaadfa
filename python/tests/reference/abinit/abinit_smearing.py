#!/usr/bin/env python3
"""ABINIT 9.6.2 smearing functions (occopt 3, 4, 5, 6, 7) in closed form, plus ABINIT's Fermi-level bisection.

ABINIT (src/61_occeig/m_occ.F90: newocc -> getnel -> init_occ_ent) works with the argument

    x = (fermie - eig) / tsmear                      (note the sign: x > 0 means below the Fermi level)

and a smeared delta function delta(t) (init_occ_ent's `smdfun`), from which it tabulates on a grid
(12001 points on [-limit, limit], limit = 30 for occopt 3 and 6 otherwise; cumulative 4th-order quadrature,
normalised to occ(+limit) = 1, then a cubic spline):

    occ(x)     = Integral_{-inf}^{x} delta(t) dt                  (occupation per state, between 0 and 1)
    entropy(x) = Integral_{-inf}^{x} (-t) delta(t) dt             ("generalised entropy" per state)

Per band and k-point:  occ_nk = maxocc * occ(x_nk),  with maxocc = 2/(nsppol*nspinor)  (2 for nsppol 1, 1 for nsppol 2).
Totals:   nelect  = sum_{s,k,n} wtk_k * maxocc * occ(x)
          entropy = sum_{s,k,n} wtk_k * maxocc * entropy(x)       (GSR 'entropy', dimensionless; includes the factor 2 of nsppol 1)
          '-kT*entropy' (GSR 'e_entropy') = -tsmear * entropy      (negative; added to the internal energy)
          etotal = internal + (-tsmear * entropy)                  (ABINIT's etotal is the free energy F = E - sigma*S)
One Fermi level for all k and both spins (no spinmagntarget).  Beyond |x| > limit ABINIT uses the end values of its
tables (occ exactly 0 or 1).

The closed forms below are the exact integrals of ABINIT's delta functions; ABINIT's tabulated values agree with
them to ~1e-12 (checked for every case: run_abinit.py --set metals stores `smearing_check`).
"""
import math

import numpy as np
from scipy.special import erfc

SQRT_PI = math.sqrt(math.pi)
OCCOPT_NAME = {3: 'fermi-dirac', 4: 'marzari-vanderbilt', 5: 'marzari-vanderbilt-monotonic', 6: 'methfessel-paxton',
               7: 'gaussian'}
# ABINIT's "a" parameter of Marzari's cold smearing (occopt 4: minimal bump, 5: monotonic occupations).
# init_occ_ent writes `aa=-.5634` / `aa=-.8165`: default-REAL (single-precision) Fortran literals, so the value used
# is the float32 number promoted to double.  Using -0.5634 exactly changes the occupations by up to 3.6e-9
# (Al, tsmear 0.02); with the float32 value the closed form matches ABINIT to 6e-14.
COLD_A = {4: float(np.float32(-0.5634)), 5: float(np.float32(-0.8165))}   # -0.5633999705314636, -0.8165000081062317
LIMIT = {3: 30.0, 4: 6.0, 5: 6.0, 6: 6.0, 7: 6.0}


def delta(occopt, t):
    """ABINIT's smeared delta function delta(t) (init_occ_ent smdfun, before normalisation)."""
    t = np.asarray(t, float)
    g = np.exp(-t * t) / SQRT_PI
    if occopt == 3:
        return 0.25 / np.cosh(t / 2.0) ** 2
    if occopt in (4, 5):
        a = COLD_A[occopt]
        return g * (1.5 - 1.5 * a * t - t * t + a * t ** 3)
    if occopt == 6:
        return g * (1.5 - t * t)
    if occopt == 7:
        return g
    raise ValueError(occopt)


def occ_entropy(occopt, x):
    """Closed-form occ(x) and entropy(x) per state (no maxocc), x = (mu - eig)/tsmear."""
    x = np.asarray(x, float)
    if occopt == 3:
        ax = np.abs(x)
        e = np.exp(-ax)
        f = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        s = np.log1p(e) + ax * e / (1.0 + e)        # = -[f ln f + (1-f) ln(1-f)]
        return f, s
    g = np.exp(-x * x) / SQRT_PI
    f = 0.5 * erfc(-x)                              # Gaussian part
    s = 0.5 * g
    if occopt == 7:
        return f, s
    f = f + 0.5 * x * g                             # Methfessel-Paxton N=1
    s = 0.25 * (1.0 - 2.0 * x * x) * g
    if occopt == 6:
        return f, s
    if occopt in (4, 5):
        a = COLD_A[occopt]
        f = f + 0.25 * a * (1.0 - 2.0 * x * x) * g
        s = s + 0.5 * a * x ** 3 * g
        return f, s
    raise ValueError(occopt)


def occupations(occopt, tsmear, eig, mu, maxocc, clip=True):
    """maxocc*occ(x), maxocc*entropy(x) for eigenvalues `eig` (any shape). clip=True mimics ABINIT's table ends."""
    x = (mu - np.asarray(eig, float)) / tsmear
    f, s = occ_entropy(occopt, x)
    if clip:
        lim = LIMIT[occopt]
        f = np.where(x > lim, 1.0, np.where(x < -lim, 0.0, f))
        s = np.where(np.abs(x) > lim, 0.0, s)
    return maxocc * f, maxocc * s


def totals(occopt, tsmear, eig, wtk, mu, nsppol):
    """eig: (nsppol, nkpt, nband). Returns (nelect, entropy, occ array)."""
    maxocc = 2.0 / nsppol
    f, s = occupations(occopt, tsmear, eig, mu, maxocc)
    w = np.asarray(wtk)[None, :, None]
    return float((w * f).sum()), float((w * s).sum()), f


def fermi_level(occopt, tsmear, eig, wtk, nelect, nsppol):
    """ABINIT newocc's bisection (same bounds and stopping rule) with the closed-form functions."""
    eig = np.asarray(eig, float)
    lo = eig.min() - 6.001 * tsmear - (24.0 * tsmear if occopt == 3 else 0.0)
    hi = min(eig.max() + 6.001 * tsmear, 1e6) + (24.0 * tsmear if occopt == 3 else 0.0)
    n_lo = totals(occopt, tsmear, eig, wtk, lo, nsppol)[0]
    n_hi = totals(occopt, tsmear, eig, wtk, hi, nsppol)[0]
    tol14 = 1e-14
    mid = 0.5 * (lo + hi)
    for _ in range(120):
        mid = 0.5 * (hi + lo)
        n_mid = totals(occopt, tsmear, eig, wtk, mid, nsppol)[0]
        if n_mid > nelect * (1 - tol14):
            hi, n_hi = mid, n_mid
        if n_mid < nelect * (1 + tol14):
            lo, n_lo = mid, n_mid
        if abs(n_hi - n_lo) <= nelect * 2 * tol14 or abs(hi - lo) <= tol14 * abs(hi + lo):
            break
    return mid


def mv1999_occ_entropy(x):
    """For comparison only (NOT what ABINIT occopt 4 does): the Marzari-Vanderbilt-De Vita-Payne (PRL 82, 3296, 1999)
    cold smearing used e.g. by QE 'm-v': delta(t) = exp(-(t - 1/sqrt2)^2) (2 - sqrt2 t)/sqrt(pi), with t = x here."""
    x = np.asarray(x, float)
    u = x - 1.0 / math.sqrt(2.0)
    f = 0.5 * erfc(-u) + np.exp(-u * u) / math.sqrt(2.0 * math.pi)
    s = -u * np.exp(-u * u) / math.sqrt(2.0 * math.pi)
    return f, s


if __name__ == '__main__':
    # self-check: closed forms vs direct numerical integration of delta(t)
    import warnings
    from scipy.integrate import quad
    warnings.filterwarnings('ignore')
    for oc in (3, 4, 5, 6, 7):
        worst = 0.0
        for x in np.linspace(-5, 5, 41):
            lo = -40 if oc == 3 else -12
            fo = quad(lambda t: delta(oc, t), lo, x, epsabs=1e-14, epsrel=1e-14, limit=200)[0]
            so = quad(lambda t: -t * delta(oc, t), lo, x, epsabs=1e-14, epsrel=1e-14, limit=200)[0]
            f, s = occ_entropy(oc, x)
            worst = max(worst, abs(f - fo), abs(s - so))
        print(f'occopt {oc} ({OCCOPT_NAME[oc]}): closed form vs quadrature max diff {worst:.2e}')
    d99 = lambda t: np.exp(-(t - 2 ** -0.5) ** 2) * (2 - 2 ** 0.5 * t) / SQRT_PI
    worst = 0.0
    for x in np.linspace(-5, 5, 41):
        fo = quad(d99, -12, x, epsabs=1e-14, epsrel=1e-14, limit=200)[0]
        so = quad(lambda t: -t * d99(t), -12, x, epsabs=1e-14, epsrel=1e-14, limit=200)[0]
        f, s = mv1999_occ_entropy(x)
        worst = max(worst, abs(f - fo), abs(s - so))
    print(f'MV-1999 (comparison only): closed form vs quadrature max diff {worst:.2e}')
