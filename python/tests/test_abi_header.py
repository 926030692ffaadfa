"""The C header, the exported symbols and the Python declarations agree, and the header
compiles and links from plain C."""

from __future__ import annotations

import ctypes
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import solidxc
from solidxc import _lib, errors
from conftest import REPO, si_atoms, si_lattice

pytestmark = pytest.mark.fast

HEADER = REPO / "include" / "solidxc.h"


def header_functions() -> set[str]:
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)  # drop comments (and the reserved API)
    return set(re.findall(r"\b(sxc_\w+)\s*\(", text))


def header_status_codes() -> dict[str, int]:
    return {name: int(value) for name, value in re.findall(r"#define\s+(SXC_\w+)\s+(\d+)", HEADER.read_text())}


def test_every_header_function_is_exported_and_declared_in_python(lib):
    functions = header_functions()
    assert "sxc_scf_forward" in functions and len(functions) > 20
    missing = [f for f in sorted(functions) if not hasattr(lib, f)]
    assert not missing, f"declared in solidxc.h but not exported: {missing}"
    undeclared = functions - set(_lib._SIGNATURES) - {"sxc_version", "sxc_last_error"}
    assert not undeclared, f"no ctypes signature in solidxc/_lib.py: {sorted(undeclared)}"
    assert set(_lib._SIGNATURES) <= functions


def test_every_exported_sxc_symbol_is_in_the_header():
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm not available")
    out = subprocess.run([nm, "-D", "--defined-only", _lib.library_path()], capture_output=True, text=True,
                         check=True).stdout
    exported = {line.split()[-1] for line in out.splitlines() if re.search(r"\bsxc_\w+$", line)}
    assert exported == header_functions()


def test_status_codes_match_the_exception_classes():
    codes = header_status_codes()
    assert codes["SXC_OK"] == 0
    expected = {"SXC_ERR_INPUT": errors.InputError, "SXC_ERR_CONVERGENCE": errors.ConvergenceError,
                "SXC_ERR_CALLBACK": errors.CallbackError, "SXC_ERR_MEMORY": errors.ResourceError,
                "SXC_ERR_NUMERICAL": errors.NumericalError, "SXC_ERR_HANDLE": errors.HandleError,
                "SXC_ERR_BUFFER": errors.BufferSizeError, "SXC_ERR_INTERNAL": errors.InternalError}
    for name, cls in expected.items():
        assert codes[name] == cls.status, name
        assert errors.STATUS_EXCEPTIONS[cls.status] is cls
        assert issubclass(cls, solidxc.SolidXCError)


def test_library_version_matches_the_package():
    assert solidxc.library_version() == solidxc.__version__
    setup_text = (REPO / "setup.py").read_text()
    assert f'version="{solidxc.__version__}"' in setup_text


def test_nan_literal_reaches_the_core_validation_by_field(lib):
    text = json.dumps({"lattice": si_lattice(), "atoms": [{"element": e, "position": list(p)} for e, p in si_atoms()],
                       "ecut": float("nan")})
    assert "NaN" in text
    handle = ctypes.c_void_p()
    assert lib.sxc_system_create(text.encode(), ctypes.byref(handle)) == 1
    assert lib.sxc_last_error().decode() == "ecut: must be a positive number of Hartree, got nan"


def test_unicode_escapes_decode_to_the_same_element(lib):
    text = ('{"lattice": [[0, 5.13, 5.13], [5.13, 0, 5.13], [5.13, 5.13, 0]], '
            '"atoms": [{"element": "\\u0053i", "position": [0, 0, 0]}], "ecut": 5}')
    handle = ctypes.c_void_p()
    assert lib.sxc_system_create(text.encode(), ctypes.byref(handle)) == 0, lib.sxc_last_error()
    nel = ctypes.c_double()
    assert lib.sxc_system_nelectrons(handle, ctypes.byref(nel)) == 0
    assert nel.value == 4
    assert lib.sxc_system_free(handle) == 0


def test_header_compiles_and_links_from_c(tmp_path: Path):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler")
    library = Path(_lib.library_path())
    source = tmp_path / "smoke.c"
    source.write_text(r'''
#include <stdio.h>
#include <string.h>
#include "solidxc.h"
int main(void) {
    sxc_system* sys = NULL;
    int status = sxc_system_create("{bad", &sys);
    if (status != SXC_ERR_INPUT || sys != NULL) return 10;
    if (strcmp(sxc_last_error(), "json: unexpected character 'b' at offset 1") != 0) return 11;
    status = sxc_system_create("{\"lattice\": [[0,5.13,5.13],[5.13,0,5.13],[5.13,5.13,0]],"
                               " \"atoms\": [{\"element\": \"Si\", \"position\": [0,0,0]}], \"ecut\": 5}", &sys);
    if (status != SXC_OK) { fprintf(stderr, "%s\n", sxc_last_error()); return 12; }
    double volume = 0; int fft[3] = {0, 0, 0};
    if (sxc_system_volume(sys, &volume) != SXC_OK || volume <= 0) return 13;
    if (sxc_system_fft_size(sys, fft) != SXC_OK || fft[0] <= 0) return 14;
    if (sxc_system_free(sys) != SXC_OK) return 15;
    if (sxc_system_free(sys) != SXC_ERR_HANDLE) return 16;
    if (sxc_result_free((sxc_result*)sys) != SXC_ERR_HANDLE) return 17;
    printf("%s %.6f\n", sxc_version(), volume);
    return 0;
}
''')
    exe = tmp_path / "smoke"
    subprocess.run([cc, "-std=c99", "-Wall", "-Werror", "-I", str(HEADER.parent), str(source), "-o", str(exe),
                    str(library), f"-Wl,-rpath,{library.parent}"], check=True)
    proc = subprocess.run([str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stdout.startswith(solidxc.__version__ + " ")
