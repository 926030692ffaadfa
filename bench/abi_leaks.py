"""Exercises every kind of C ABI call in a loop, for a leak checker to watch: systems, SCFs (built-in and
Python-callback functionals), accessors, backward, bands, failing calls of every status (their
last-error messages and histories), handle misuse, and functional registration.

With an AddressSanitizer build of the library (LeakSanitizer at exit)::

    swift build -c release --product solidxc --scratch-path .build-asan -Xswiftc -sanitize=address
    LD_PRELOAD=$(ls /opt/swift/usr/lib/clang/*/lib/linux/libclang_rt.asan-x86_64.so) \\
    ASAN_OPTIONS=detect_leaks=1 SOLIDXC_LIBRARY=.build-asan/release/libsolidxc.so \\
    python bench/abi_leaks.py --loops 20 2> asan.txt

LeakSanitizer then reports every allocation still unreachable at exit, the interpreter's own
included; ``--report asan.txt`` keeps the leaks whose stacks pass through libsolidxc.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

A_SI = 10.263102582513


def loop(n: int) -> None:
    import numpy as np
    from solidxc import _lib
    lib = _lib.load()
    P = ctypes.POINTER(ctypes.c_double)
    si = {"lattice": [[0, A_SI / 2, A_SI / 2], [A_SI / 2, 0, A_SI / 2], [A_SI / 2, A_SI / 2, 0]],
          "atoms": [{"element": "Si", "position": [0, 0, 0]}, {"element": "Si", "position": [A_SI / 4] * 3}],
          "ecut": 5, "kpts": [2, 2, 2]}

    def lda(user, npoints, nspin, rho, sigma, e, vrho, vsigma):
        return lib.sxc_functional_eval(b"lda,pw", -1, None, npoints, nspin, rho, None, e, vrho, None)

    def lda_kernel(user, npoints, nspin, rho, sigma, drho, dsigma, dvrho, dvsigma):
        return lib.sxc_functional_kernel(b"lda,pw", -1, None, npoints, nspin, rho, None, drho, None, dvrho, None)

    ev, ke = _lib.EVAL_CALLBACK(lda), _lib.KERNEL_CALLBACK(lda_kernel)
    for i in range(n):
        fid = ctypes.c_int32()
        assert lib.sxc_functional_register(f"leak-{i}".encode(), 1, ev, ke, None, ctypes.byref(fid)) == 0
        builtin = ctypes.c_int32()
        assert lib.sxc_functional_register_builtin(f"leak-pbe-{i}".encode(), b"pbe", b'{"kappa": 0.9}',
                                                   ctypes.byref(builtin)) == 0
        for spec, xc in ((si, b"lda,pw"), (si, f"leak-{i}".encode()), (dict(si, magmoms=[0.5, 0.5],
                                                                              smearing="gaussian"), b"lda,pw")):
            system = ctypes.c_void_p()
            assert lib.sxc_system_create(json.dumps(spec).encode(), ctypes.byref(system)) == 0
            result = ctypes.c_void_p()
            assert lib.sxc_scf_forward(system, xc, b'{"tol": 1e-8}', ctypes.byref(result)) == 0, _lib.last_error()
            nspin, nk, nband = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
            fft = (ctypes.c_int * 3)()
            assert lib.sxc_result_dims(result, ctypes.byref(nspin), ctypes.byref(nk), ctypes.byref(nband), fft) == 0
            ngrid = fft[0] * fft[1] * fft[2]
            density = np.empty(nspin.value * ngrid)
            assert lib.sxc_result_density(result, density.ctypes.data_as(P), density.size) == 0
            forces, stress = np.empty(6), np.empty(9)
            assert lib.sxc_result_forces(result, forces.ctypes.data_as(P), 6) == 0
            assert lib.sxc_result_stress(result, stress.ctypes.data_as(P), 9) == 0
            name = ctypes.c_char_p()
            assert lib.sxc_result_energy_term_name(result, 0, ctypes.byref(name)) == 0
            adj_e, adj_v = np.empty(ngrid), np.empty(nspin.value * ngrid)
            res, its = ctypes.c_double(), ctypes.c_int()
            drho = np.full(density.size, 1.0)
            assert lib.sxc_scf_backward(result, 1.0, drho.ctypes.data_as(P), drho.size, None, 0, None,
                                        adj_e.ctypes.data_as(P), ngrid, adj_v.ctypes.data_as(P), adj_v.size, None, 0,
                                        ctypes.byref(res), ctypes.byref(its)) == 0, _lib.last_error()
            bands = np.empty(nspin.value * 2 * 6)
            k = np.array([0.0, 0.0, 0.0, 0.5, 0.0, 0.0])
            assert lib.sxc_result_bands(result, k.ctypes.data_as(P), 2, 6, bands.ctypes.data_as(P), bands.size) == 0
            # failures that store messages and histories
            assert lib.sxc_scf_backward(result, 0.0, drho.ctypes.data_as(P), drho.size, None, 0,
                                        b'{"tol": 1e-15, "maxiter": 1}', adj_e.ctypes.data_as(P), ngrid,
                                        adj_v.ctypes.data_as(P), adj_v.size, None, 0, ctypes.byref(res),
                                        ctypes.byref(its)) == 2
            written = ctypes.c_size_t()
            lib.sxc_last_error_history(None, 0, ctypes.byref(written))
            assert lib.sxc_result_density(result, density.ctypes.data_as(P), 1) == 7
            assert lib.sxc_result_free(result) == 0
            assert lib.sxc_result_free(result) == 6
            bad = ctypes.c_void_p()
            assert lib.sxc_scf_forward(system, xc, b'{"maxiter": 2, "tol": 1e-14}', ctypes.byref(bad)) == 2
            assert lib.sxc_scf_forward(system, b"no-such", None, ctypes.byref(bad)) == 1
            assert lib.sxc_system_free(system) == 0
        for text in (b"{bad", b"[" * 100 + b"]" * 100, json.dumps(dict(si, ecut=50000)).encode(),
                     json.dumps(dict(si, pseudo="/dev/zero")).encode(), b'{"lattice": "\xff"}'):
            assert lib.sxc_system_create(text, ctypes.byref(ctypes.c_void_p())) != 0
        assert lib.sxc_functional_unregister(fid) == 0
        assert lib.sxc_functional_unregister(builtin) == 0
        assert lib.sxc_functional_unregister(fid) == 1


def report(path: str) -> int:
    """Prints the LeakSanitizer reports whose stacks pass through libsolidxc; returns their count."""
    text = Path(path).read_text(errors="replace")
    blocks = re.split(r"\n(?=(?:Direct|Indirect) leak of )", text)
    ours = [b for b in blocks if re.match(r"(Direct|Indirect) leak of ", b) and "libsolidxc" in b]
    total = [b for b in blocks if re.match(r"(Direct|Indirect) leak of ", b)]
    for b in ours:
        print(b.strip()[:3000], "\n")
    summary = re.search(r"SUMMARY: AddressSanitizer: .*", text)
    print(f"{len(total)} leak reports in all ({summary.group(0) if summary else 'no summary'}); "
          f"{len(ours)} through libsolidxc")
    return len(ours)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=10)
    parser.add_argument("--report", help="an ASan log to filter instead of running")
    args = parser.parse_args()
    if args.report:
        sys.exit(1 if report(args.report) else 0)
    loop(args.loops)
    print(f"abi_leaks: {args.loops} loops done")
