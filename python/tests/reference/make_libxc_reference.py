#!/usr/bin/env python3
"""Write the libxc reference data that Tests/SolidXCTests/XCTests.swift checks the XC built-ins against.

The values come from libxc through ``pyscf.dft.libxc.eval_xc`` (PySCF ships libxc; the versions used
are recorded in the output). Run from the repository root::

    python3 python/tests/reference/make_libxc_reference.py

and commit the regenerated ``Tests/SolidXCTests/Resources/libxc_reference.json``.

Layout of every case in the JSON file (the same spin-major layout as the Swift ``Functional``
contract, so the Swift test passes the arrays straight through):

- ``rho[nspin*np]``: up block then down block (nspin = 2), or the total density (nspin = 1).
- ``sigma[nsigma*np]``: (uu, ud, dd) blocks, or |grad rho|^2; GGA only.
- ``exc[np]``: libxc's energy per particle. The Swift energy per volume is ``rho_total * exc``.
- ``vrho[nspin*np]``, ``vsigma[nsigma*np]``: libxc's first derivatives of the energy per volume.
- ``drho``, ``dsigma``: a perturbation, and ``dvrho``, ``dvsigma``: libxc's second-derivative
  matrix (v2rho2, v2rhosigma, v2sigma2) contracted with it, i.e. what ``applyKernel`` returns.

pyscf's eval_xc takes density gradients, not sigma; sigma is formed here exactly as libxc_itrf.c
forms it (gx*gx + gy*gy + gz*gz, left to right) so the Swift side sees bit-identical inputs.

PBE with overridden parameters is evaluated through ``libxc.register_custom_functional_`` with
libxc ext_params (GGA_X_PBE ``_kappa``, ``_mu``; GGA_C_PBE ``_beta``), which the JSON records next
to the SolidXC parameter names.

The random gradients and perturbations come from a fixed seed, so rerunning with the same
PySCF/libxc reproduces the file byte for byte.
"""

import json
import math
import os
import sys

import numpy as np
import pyscf
from pyscf.dft import libxc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
OUT = os.path.join(ROOT, "Tests", "SolidXCTests", "Resources", "libxc_reference.json")

# Total densities (electrons/bohr^3). 1e-16, 1.5e-15 and 5e-13 probe libxc's screening: every
# component's dens_threshold (1e-15; 1e-12 for GGA_C_PBE) and the per-spin exchange screening.
DENSITIES = [1e-16, 1.5e-15, 5e-13, 1e-10, 1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.3,
             1.0, 3.0, 10.0, 100.0, 1e3]
ZETAS = [-1.0, -0.5, 0.0, 0.3, 1.0]
# Reduced gradients s = |grad rho| / (2 (3 pi^2)^(1/3) rho^(4/3)) for nspin = 1.
S_UNPOLARISED = [0.0, 0.1, 0.5, 1.0, 2.0, 5.0]
# Number of random gradient configurations per (density, zeta) for nspin = 2, besides s = 0.
N_GRADIENTS_POLARISED = 4
# The cases with overridden parameters use fewer points: the parameters change no code path.
DENSITIES_OVERRIDES = [1e-10, 1e-6, 1e-3, 0.1, 1.0, 10.0, 1e3]
N_GRADIENTS_OVERRIDES = 2

# name in the Swift registry, libxc code for pyscf, family, parameter overrides,
# libxc ext_params (functional id -> {name: value}) that realise the same overrides.
CASES = [
    ("lda,pw", "lda_x,lda_c_pw", "lda", {}, None),
    ("lda,pw_mod", "lda_x,lda_c_pw_mod", "lda", {}, None),
    ("lda,vwn", "lda_x,lda_c_vwn", "lda", {}, None),
    ("teter", "lda_xc_teter93", "lda", {}, None),
    ("pbe", "gga_x_pbe,gga_c_pbe", "gga", {}, None),
    # PBEsol's parameter values, reached through overrides of PBE.
    ("pbe", "gga_x_pbe,gga_c_pbe", "gga", {"mu": 10.0 / 81.0, "beta": 0.046},
     {101: {"_mu": 10.0 / 81.0}, 130: {"_beta": 0.046}}),
    # An arbitrary point in parameter space, all three parameters changed.
    ("pbe", "gga_x_pbe,gga_c_pbe", "gga", {"kappa": 0.5, "mu": 0.3, "beta": 0.05},
     {101: {"_kappa": 0.5, "_mu": 0.3}, 130: {"_beta": 0.05}}),
    # Exchange only (DeepChem's "lda_x" and "gga_x_pbe").
    ("lda_x", "lda_x", "lda", {}, None),
    ("gga_x_pbe", "gga_x_pbe", "gga", {}, None),
]

CF = 2.0 * (3.0 * math.pi ** 2) ** (1.0 / 3.0)          # |grad n| = CF * s * n^(4/3), unpolarised
CF_SPIN = 2.0 * (6.0 * math.pi ** 2) ** (1.0 / 3.0)     # |grad n_s| = CF_SPIN * s_s * n_s^(4/3)


def dot3(a, b):
    # Same operation order as libxc_itrf.c so that sigma is bit-identical to what libxc sees.
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def polarised_points(family, rng, densities, ngradients):
    """Rows (rho_u, rho_d, grad_u[3], grad_d[3])."""
    rows = []
    for n in densities:
        for zeta in ZETAS:
            ru = 0.5 * n * (1.0 + zeta)
            rd = 0.5 * n * (1.0 - zeta)
            zero = (0.0, 0.0, 0.0)
            rows.append((ru, rd, zero, zero))
            if family == "lda":
                continue
            for _ in range(ngradients):
                su, sd = rng.uniform(0.05, 3.0, size=2)
                gu = CF_SPIN * su * ru ** (4.0 / 3.0)
                gd = CF_SPIN * sd * rd ** (4.0 / 3.0)
                theta = rng.uniform(0.0, math.pi)
                rows.append((ru, rd, (gu, 0.0, 0.0), (gd * math.cos(theta), gd * math.sin(theta), 0.0)))
    return rows


def unpolarised_points(family, densities):
    rows = []
    for n in densities:
        for s in (S_UNPOLARISED if family == "gga" else [0.0]):
            rows.append((n, (CF * s * n ** (4.0 / 3.0), 0.0, 0.0)))
    return rows


def perturbation(values, rng, floor):
    """A deterministic random perturbation with the scale of each input."""
    scale = np.maximum(np.abs(values), floor)
    return scale * rng.uniform(-0.5, 0.5, size=values.shape)


def evaluate(code, nspin, family, rng, densities, ngradients):
    if nspin == 1:
        rows = unpolarised_points(family, densities)
        n = np.array([r[0] for r in rows])
        grad = np.array([r[1] for r in rows]).T
        sigma = np.array([dot3(r[1], r[1]) for r in rows])
        rho_in = np.vstack([n, grad]) if family == "gga" else n
        exc, vxc, fxc, _ = libxc.eval_xc(code, rho_in, spin=0, deriv=2)
        rho = n
        vrho = vxc[0]
        drho = perturbation(n, rng, 1e-300)
        dvrho = fxc[0] * drho
        out = dict(rho=rho, exc=exc, vrho=vrho, drho=drho)
        if family == "gga":
            dsigma = perturbation(sigma, rng, 1e-3 * n ** (8.0 / 3.0))
            dvrho = dvrho + fxc[1] * dsigma
            dvsigma = fxc[1] * drho + fxc[2] * dsigma
            out.update(sigma=sigma, vsigma=vxc[1], dsigma=dsigma, dvsigma=dvsigma)
        out["dvrho"] = dvrho
        return out

    rows = polarised_points(family, rng, densities, ngradients)
    np_ = len(rows)
    ru = np.array([r[0] for r in rows])
    rd = np.array([r[1] for r in rows])
    gu = np.array([r[2] for r in rows]).T
    gd = np.array([r[3] for r in rows]).T
    suu = np.array([dot3(r[2], r[2]) for r in rows])
    sud = np.array([dot3(r[2], r[3]) for r in rows])
    sdd = np.array([dot3(r[3], r[3]) for r in rows])
    if family == "gga":
        rho_in = (np.vstack([ru, gu]), np.vstack([rd, gd]))
    else:
        rho_in = (ru, rd)
    exc, vxc, fxc, _ = libxc.eval_xc(code, rho_in, spin=1, deriv=2)
    rho = np.concatenate([ru, rd])
    vrho = vxc[0].T.reshape(-1)
    ntot = ru + rd
    drho2 = np.vstack([perturbation(ru, rng, 0.0) + 0.1 * ntot * rng.uniform(0.0, 1.0, np_),
                       perturbation(rd, rng, 0.0) + 0.1 * ntot * rng.uniform(0.0, 1.0, np_)])
    v2rho2 = fxc[0]                      # (u_u, u_d, d_d)
    dvrho2 = np.vstack([v2rho2[:, 0] * drho2[0] + v2rho2[:, 1] * drho2[1],
                        v2rho2[:, 1] * drho2[0] + v2rho2[:, 2] * drho2[1]])
    out = dict(rho=rho, exc=exc, vrho=vrho, drho=drho2.reshape(-1))
    if family == "gga":
        sigma3 = np.vstack([suu, sud, sdd])
        floor = 1e-3 * ntot ** (8.0 / 3.0)
        dsigma3 = np.vstack([perturbation(s, rng, floor) for s in sigma3])
        v2rhosigma = fxc[1].reshape(np_, 2, 3)     # [point, s, ab]
        # v2sigma2 packs the symmetric 3x3 matrix (uu_uu, uu_ud, uu_dd, ud_ud, ud_dd, dd_dd).
        idx = [[0, 1, 2], [1, 3, 4], [2, 4, 5]]
        v2sigma2 = fxc[2][:, idx]                  # [point, ab, cd]
        dvrho2 = dvrho2 + np.einsum("psa,ap->sp", v2rhosigma, dsigma3)
        dvsigma3 = (np.einsum("psa,sp->ap", v2rhosigma, drho2)
                    + np.einsum("pac,cp->ap", v2sigma2, dsigma3))
        out.update(sigma=sigma3.reshape(-1), vsigma=vxc[1].T.reshape(-1),
                   dsigma=dsigma3.reshape(-1), dvsigma=dvsigma3.reshape(-1))
    out["dvrho"] = dvrho2.reshape(-1)
    return out


def main():
    rng = np.random.default_rng(20240611)
    cases = []
    for index, (name, code, family, parameters, ext_params) in enumerate(CASES):
        libxc_code = code
        if ext_params is not None:
            libxc_code = f"solidxc_case_{index}"
            libxc.register_custom_functional_(libxc_code, code, ext_params=ext_params)
        for nspin in (1, 2):
            if ext_params is None:
                out = evaluate(libxc_code, nspin, family, rng, DENSITIES, N_GRADIENTS_POLARISED)
            else:
                out = evaluate(libxc_code, nspin, family, rng, DENSITIES_OVERRIDES, N_GRADIENTS_OVERRIDES)
            case = dict(name=name, libxc=code, family=family, parameters=parameters,
                        libxc_ext_params={str(k): v for k, v in (ext_params or {}).items()},
                        nspin=nspin, npoints=len(out["exc"]))
            for key, value in out.items():
                case[key] = [float(x) for x in np.asarray(value).reshape(-1)]
            cases.append(case)
        if ext_params is not None:
            libxc.unregister_custom_functional_(libxc_code)
    doc = dict(
        description="libxc reference values for the SolidXC XC built-ins; see the generator's docstring",
        generator="python/tests/reference/make_libxc_reference.py",
        libxc_version=libxc.__version__,
        pyscf_version=pyscf.__version__,
        numpy_version=np.__version__,
        python_version=sys.version.split()[0],
        cases=cases,
    )
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    npts = sum(c["npoints"] for c in cases)
    print(f"wrote {OUT}: {len(cases)} cases, {npts} points, libxc {libxc.__version__}")


if __name__ == "__main__":
    main()
