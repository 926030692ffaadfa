"""Bad input is refused with the right exception and a message that names the field.

Python-level cases go through ``solidxc.System`` / ``solidxc.scf``. Raw C ABI cases
(malformed JSON, NULL / freed / foreign handles, small buffers) run in a fresh interpreter
each (``isolated``), so that a crash fails the test instead of ending the run.
"""

from __future__ import annotations

import ctypes
import json
import math
import threading

import numpy as np
import pytest

import solidxc
from solidxc import InputError, ResourceError
from conftest import SI_A, si_atoms, si_lattice

pytestmark = pytest.mark.fast

SXC_OK, SXC_ERR_INPUT, SXC_ERR_HANDLE, SXC_ERR_BUFFER = 0, 1, 6, 7


def si(**overrides):
    args = dict(lattice=si_lattice(), atoms=si_atoms(), ecut=8.0, kpts=(1, 1, 1))
    args.update(overrides)
    return solidxc.System(**args)


def assert_input_error(excinfo, field: str):
    message = str(excinfo.value)
    assert message.startswith(field + ":") or f"{field}:" in message, message
    assert excinfo.value.status == 1


# ---- System validation (at creation, in the core's Model) ------------------------------------

def test_singular_lattice_is_refused_naming_lattice():
    coplanar = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]]
    with pytest.raises(InputError) as excinfo:
        si(lattice=coplanar, atoms=[("Si", (0, 0, 0))])
    assert_input_error(excinfo, "lattice")
    assert "volume" in str(excinfo.value)


def test_zero_lattice_is_refused_naming_lattice():
    with pytest.raises(InputError) as excinfo:
        si(lattice=np.zeros((3, 3)), atoms=[("Si", (0, 0, 0))])
    assert_input_error(excinfo, "lattice")


def test_atoms_closer_than_0p1_bohr_are_refused():
    with pytest.raises(InputError) as excinfo:
        si(atoms=[("Si", (0, 0, 0)), ("Si", (0.05, 0.0, 0.0))])
    assert_input_error(excinfo, "atoms")
    assert "0.1 bohr" in str(excinfo.value)


def test_atoms_close_through_a_periodic_image_are_refused():
    # (a/2, a/2, 0) is a lattice vector of fcc: the second atom sits on the first one's image.
    with pytest.raises(InputError) as excinfo:
        si(atoms=[("Si", (0, 0, 0)), ("Si", (SI_A / 2 + 0.01, SI_A / 2, 0.0))])
    assert_input_error(excinfo, "atoms")


def test_unknown_element_is_refused_naming_the_atom():
    with pytest.raises(InputError) as excinfo:
        si(atoms=[("Si", (0, 0, 0)), ("Xx", (SI_A / 4,) * 3)])
    assert_input_error(excinfo, "atoms[1].element")
    assert "Xx" in str(excinfo.value)


def test_missing_pseudopotential_for_an_element_is_refused():
    with pytest.raises(InputError) as excinfo:
        si(atoms=[("Si", (0, 0, 0)), ("C", (SI_A / 4,) * 3)], pseudo={"Si": "gth-pade"})
    assert_input_error(excinfo, "pseudo")
    assert "'C'" in str(excinfo.value)


@pytest.mark.parametrize("ecut", [0.0, -5.0])
def test_non_positive_ecut_is_refused(ecut):
    with pytest.raises(InputError) as excinfo:
        si(ecut=ecut)
    assert_input_error(excinfo, "ecut")


@pytest.mark.parametrize("kpts", [(0, 1, 1), (2, -2, 2), (4, 4, 0)])
def test_kgrid_with_zero_or_negative_entry_is_refused(kpts):
    with pytest.raises(InputError) as excinfo:
        si(kpts=kpts)
    assert_input_error(excinfo, "kpts")


def test_non_integer_kgrid_entry_is_refused_naming_the_entry():
    with pytest.raises(InputError) as excinfo:
        si(kpts=(4, 4, 2.5))
    assert str(excinfo.value) == "kpts[2]: expected an integer, got 2.5"


def test_kgrid_of_wrong_length_is_refused():
    with pytest.raises(InputError) as excinfo:
        si(kpts=(2, 2))
    assert_input_error(excinfo, "kpts")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_lattice_is_refused(bad):
    lattice = si_lattice()
    lattice[1][2] = bad
    with pytest.raises(InputError) as excinfo:
        si(lattice=lattice)
    assert_input_error(excinfo, "lattice")


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_position_is_refused_naming_the_atom(bad):
    with pytest.raises(InputError) as excinfo:
        si(atoms=[("Si", (0, 0, 0)), ("Si", (1.0, bad, 1.0))])
    assert_input_error(excinfo, "atoms[1].position")


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_ecut_is_refused(bad):
    with pytest.raises(InputError) as excinfo:
        si(ecut=bad)
    assert_input_error(excinfo, "ecut")


def test_non_finite_charge_is_refused():
    with pytest.raises(InputError) as excinfo:
        si(charge=math.nan)
    assert_input_error(excinfo, "charge")


def test_charge_removing_every_electron_is_refused():
    with pytest.raises(InputError) as excinfo:
        si(charge=8)
    assert_input_error(excinfo, "charge")


def test_fft_size_of_wrong_length_is_refused():
    with pytest.raises(InputError) as excinfo:
        si(fft_size=(16, 16))
    assert_input_error(excinfo, "fft_size")


def test_wrong_type_for_atoms_entry_names_the_atom():
    with pytest.raises(InputError) as excinfo:
        si(atoms=[("Si", (0, 0, 0)), "Si"])
    assert_input_error(excinfo, "atoms[1]")


def test_string_ecut_is_refused_naming_ecut():
    with pytest.raises(InputError) as excinfo:
        si(ecut="20")
    assert str(excinfo.value).startswith("ecut: expected a number")


# ---- SCF options (checked by the core before any work) ---------------------------------------

@pytest.mark.parametrize("tol", [0.0, -1e-6, math.nan])
def test_non_positive_tolerance_is_refused(tol):
    with pytest.raises(InputError) as excinfo:
        solidxc.scf(si(), tol=tol)
    assert_input_error(excinfo, "tol")


def test_unknown_functional_is_refused_naming_xc():
    with pytest.raises(InputError) as excinfo:
        solidxc.scf(si(), xc="lda,nonexistent")
    assert_input_error(excinfo, "xc")
    assert "lda,nonexistent" in str(excinfo.value)


def test_zero_maxiter_is_refused():
    with pytest.raises(InputError) as excinfo:
        solidxc.scf(si(), maxiter=0)
    assert_input_error(excinfo, "maxiter")


def test_mixing_beta_out_of_range_is_refused():
    with pytest.raises(InputError) as excinfo:
        solidxc.scf(si(), mixing_beta=1.5)
    assert_input_error(excinfo, "mixing_beta")


def test_kerker_q0_zero_is_plain_anderson_not_nan():
    """q0 = 0 switches Kerker damping off; its G = 0 factor was 0/0 (NaN densities)."""
    plain = solidxc.scf(si(), kerker_q0=0.0, tol=1e-10)
    default = solidxc.scf(si(), tol=1e-10)
    assert plain.converged and abs(plain.energy - default.energy) < 1e-8


def test_default_mixing_beta_is_one_without_spin_and_0_7_with_spin():
    """Default (None) = 1.0 without spin and 0.7 with collinear spin: bitwise the explicit runs,
    and not the other value's."""
    for system, beta, other in ((si(), 1.0, 0.7),
                                (si(magmoms=[0.5, 0.5], smearing="fermi-dirac", temperature=0.01), 0.7, 1.0)):
        default = solidxc.scf(system, tol=1e-10)
        assert default.energy == solidxc.scf(system, tol=1e-10, mixing_beta=beta).energy
        assert list(default.residual_history) != list(solidxc.scf(system, tol=1e-10, mixing_beta=other).residual_history)


def test_non_integer_maxiter_is_refused():
    with pytest.raises(InputError) as excinfo:
        solidxc.scf(si(), maxiter=10.5)
    assert str(excinfo.value) == "maxiter: expected an integer, got 10.5"


# ---- Refused during the SCF set-up (needs the full core) -------------------------------------

def test_fft_grid_too_small_for_the_ecut_sphere_is_refused():
    with pytest.raises(InputError) as excinfo:
        si(ecut=15.0, fft_size=(6, 6, 6))
    assert_input_error(excinfo, "fft_size")
    assert "too small" in str(excinfo.value)


def test_odd_electron_count_without_smearing_says_what_to_set_aluminium():
    a = 7.6  # fcc Al, bohr; GTH-Pade Al has 3 valence electrons
    lattice = [[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]]
    with pytest.raises(InputError) as excinfo:
        solidxc.System(lattice, [("Al", (0, 0, 0))], ecut=5.0, kpts=(1, 1, 1))
    message = str(excinfo.value)
    assert_input_error(excinfo, "smearing")
    assert "set smearing" in message


def test_odd_electron_count_without_smearing_says_what_to_set_hydrogen_atom():
    box = [[8.0, 0, 0], [0, 8.0, 0], [0, 0, 8.0]]
    with pytest.raises(InputError) as excinfo:
        solidxc.System(box, [("H", (0, 0, 0))], ecut=5.0, kpts=(1, 1, 1))
    assert_input_error(excinfo, "smearing")
    assert "set smearing" in str(excinfo.value)


def case_memory_estimate_is_refused_without_allocating():
    import resource

    # One Si atom in a 40 bohr cube at ecut 2000 Ha: an FFT grid of ~1600^3 points, TB of memory.
    # Refused when the system is created, from the estimate alone.
    box = [[40.0, 0, 0], [0, 40.0, 0], [0, 0, 40.0]]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    try:
        solidxc.System(box, [("Si", (0, 0, 0))], ecut=2000.0, kpts=(1, 1, 1))
    except ResourceError as exc:
        error = exc
    else:
        raise AssertionError("expected ResourceError")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    message = str(error)
    assert message.startswith("ecut:"), message
    assert "MB" in message, message
    assert grown_mib < 100, f"peak memory grew by {grown_mib:.0f} MiB before refusing"
    assert isinstance(error, solidxc.SolidXCError) and error.status == 4


def test_memory_estimate_exceeding_available_memory_is_refused_up_front(isolated):
    isolated(case_memory_estimate_is_refused_without_allocating)


def case_memory_estimate_of_the_scf_is_refused_without_allocating():
    import resource

    # Si in a 40 bohr cube at ecut 60 Ha: the grid is allowed (about 280^3) but the SCF would need
    # tens of GB (millions of plane waves, dozens of grid-sized arrays).
    box = [[40.0, 0, 0], [0, 40.0, 0], [0, 0, 40.0]]
    system = solidxc.System(box, [("Si", (0, 0, 0)), ("Si", (5.0, 0, 0))], ecut=60.0, kpts=(1, 1, 1))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        solidxc.scf(system, memory_limit_bytes=4e9)
    except ResourceError as exc:
        error = exc
    else:
        raise AssertionError("expected ResourceError")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert str(error).startswith("ecut:") and "MB" in str(error), str(error)
    assert grown_mib < 100, f"peak memory grew by {grown_mib:.0f} MiB before refusing"


def test_scf_memory_estimate_is_refused_up_front(isolated):
    isolated(case_memory_estimate_of_the_scf_is_refused_without_allocating)


def test_explicit_memory_limit_is_honoured():
    with pytest.raises(ResourceError) as excinfo:
        solidxc.scf(si(), memory_limit_bytes=1000.0)
    assert "MB" in str(excinfo.value)


# ---- Raw C ABI (each case in a fresh interpreter) --------------------------------------------

def _raw():
    from solidxc import _lib
    return _lib.load()


def _message(lib) -> str:
    return lib.sxc_last_error().decode()


def _si_json(**overrides) -> bytes:
    spec = {"lattice": si_lattice(), "atoms": [{"element": e, "position": list(p)} for e, p in si_atoms()],
            "ecut": 8, "kpts": [1, 1, 1]}
    spec.update(overrides)
    return json.dumps(spec).encode()


def _create(lib, text: bytes):
    handle = ctypes.c_void_p()
    status = lib.sxc_system_create(text, ctypes.byref(handle))
    return status, handle


def case_malformed_json():
    lib = _raw()
    status, handle = _create(lib, b"{bad")
    assert status == SXC_ERR_INPUT, status
    assert handle.value is None
    assert _message(lib) == "json: unexpected character 'b' at offset 1", _message(lib)


def case_json_syntax_errors_name_the_offset():
    lib = _raw()
    cases = [
        (b"", "json: empty input; expected a JSON value"),
        (b"   ", "json: empty input; expected a JSON value"),
        (b'{"ecut": 1,}', "json: unexpected character '}' at offset 11"),
        (b'{"ecut": 01}', "json: unexpected character '1' at offset 10"),
        (b'{"ecut" 1}', "json: unexpected character '1' at offset 8"),
        (b'{"ecut": 1} x', "json: unexpected 'x' after the end of the value at offset 12"),
        (b'{"ecut": tru}', "json: unexpected character '}' at offset 12"),
        (b'{"ecut": 1', "json: unexpected end of input at offset 10"),
        (b'{"ecut": "abc', "json: unterminated string starting at offset 9"),
        (b'{"a\\q": 1}', "json: invalid escape '\\q' at offset 3"),
        (b'{"a": "\x01"}', "json: control character 0x1 in a string at offset 7; escape it"),
        (b'{"a": "\xff"}', "json: invalid UTF-8 in the string starting at offset 6"),
        (b'{"a": "\\ud800"}', "json: unpaired surrogate \\u escape at offset 7"),
        (b'{"ecut": 1, "ecut": 2}', 'json: duplicate key "ecut" at offset 12'),
        (b"[" * 65 + b"]" * 65, "json: nesting deeper than 64 levels at offset 64"),
        (b"[1, -]", "json: unexpected character ']' at offset 5"),
        (b"[1.]", "json: unexpected character ']' at offset 3"),
    ]
    for text, expected in cases:
        status, handle = _create(lib, text)
        assert status == SXC_ERR_INPUT, (text, status)
        assert handle.value is None
        assert _message(lib) == expected, (text, _message(lib))
    # The size limit is checked before parsing.
    status, _ = _create(lib, b" " * (4 * 1024 * 1024 + 1))
    assert status == SXC_ERR_INPUT
    assert _message(lib).startswith("json: input is longer than the limit"), _message(lib)


def case_json_unknown_keys_and_wrong_types_name_the_field():
    lib = _raw()
    base = json.loads(_si_json())
    cases = [
        (dict(base, ecutt=5), "ecutt: unknown key"),
        (dict(base, kpts=[4, 4, 2.5]), "kpts[2]: expected an integer, got 2.5"),
        (dict(base, kpts=[4, 4, "4"]), 'kpts[2]: expected an integer, got the string "4"'),
        (dict(base, kpts=4), "kpts: expected 3 positive integers, got 4"),
        (dict(base, lattice="fcc"), "lattice: expected 3 rows of 3 numbers (bohr)"),
        (dict(base, lattice=[[1, 0, 0], [0, 1, None], [0, 0, 1]]), "lattice[1][2]: expected a number, got null"),
        (dict(base, atoms=[{"element": "Si", "pos": [0, 0, 0]}]), "atoms[0].pos: unknown key"),
        (dict(base, atoms=[{"position": [0, 0, 0]}]), "atoms[0].element: required key is missing"),
        (dict(base, atoms=[{"element": 14, "position": [0, 0, 0]}]), "atoms[0].element: expected a string, got 14"),
        (dict(base, pseudo={"Si": 3}), "pseudo.Si: expected a string, got 3"),
        (dict(base, fft_size=[16, 16, True]), "fft_size[2]: expected an integer, got true"),
        (dict(base, charge="+1"), 'charge: expected a number, got the string "+1"'),
        ({k: v for k, v in base.items() if k != "ecut"}, "ecut: required key is missing"),
        ([1, 2], "json: expected an object with keys lattice, atoms"),
    ]
    for spec, expected in cases:
        status, handle = _create(lib, json.dumps(spec).encode())
        assert status == SXC_ERR_INPUT, (spec, status)
        assert _message(lib).startswith(expected), (expected, _message(lib))
    # Options JSON is decoded the same way.
    status, sys_handle = _create(lib, _si_json())
    assert status == SXC_OK, _message(lib)
    res = ctypes.c_void_p()
    for options, expected in [(b'{"tol": "small"}', 'tol: expected a number, got the string "small"'),
                              (b'{"toll": 1e-6}', "toll: unknown key"),
                              (b'{"raise_on_nonconvergence": 1}', "raise_on_nonconvergence: expected true or false, got 1"),
                              (b'{"memory_limit_bytes": -1}', "memory_limit_bytes: must be a positive number"),
                              (b'{"maxiter": 1e30}', "maxiter: integer 1e+30 is out of range"),
                              (b"{bad", "json: unexpected character 'b' at offset 1")]:
        status = lib.sxc_scf_forward(sys_handle, b"lda,pw", options, ctypes.byref(res))
        assert status == SXC_ERR_INPUT, (options, status)
        assert res.value is None
        assert _message(lib).startswith(expected), (expected, _message(lib))
    assert lib.sxc_system_free(sys_handle) == SXC_OK


def case_null_pointers_are_errors_not_crashes():
    lib = _raw()
    handle = ctypes.c_void_p()
    assert lib.sxc_system_create(None, ctypes.byref(handle)) == SXC_ERR_INPUT
    assert _message(lib) == "json: is NULL"
    assert lib.sxc_system_create(_si_json(), None) == SXC_ERR_BUFFER
    assert "out is NULL" in _message(lib)
    assert lib.sxc_system_free(None) == SXC_ERR_HANDLE
    assert "NULL" in _message(lib)
    value = ctypes.c_double()
    assert lib.sxc_system_volume(None, ctypes.byref(value)) == SXC_ERR_HANDLE
    res = ctypes.c_void_p()
    assert lib.sxc_scf_forward(None, b"lda,pw", None, ctypes.byref(res)) == SXC_ERR_HANDLE
    assert lib.sxc_result_free(None) == SXC_ERR_HANDLE
    assert lib.sxc_result_energy(None, ctypes.byref(value)) == SXC_ERR_HANDLE
    n = ctypes.c_int()
    assert lib.sxc_result_dims(None, ctypes.byref(n), ctypes.byref(n), ctypes.byref(n), (ctypes.c_int * 3)()) == SXC_ERR_HANDLE
    # NULL arguments on a live system
    status, sys_handle = _create(lib, _si_json())
    assert status == SXC_OK
    assert lib.sxc_system_volume(sys_handle, None) == SXC_ERR_BUFFER
    assert lib.sxc_system_fft_size(sys_handle, None) == SXC_ERR_BUFFER
    assert lib.sxc_scf_forward(sys_handle, None, None, ctypes.byref(res)) == SXC_ERR_INPUT
    assert _message(lib) == "xc: is NULL"
    assert lib.sxc_scf_forward(sys_handle, b"lda,pw", None, None) == SXC_ERR_BUFFER
    assert lib.sxc_system_free(sys_handle) == SXC_OK
    # never NULL
    assert lib.sxc_last_error() is not None and lib.sxc_version() is not None


def case_freed_double_freed_and_foreign_handles():
    lib = _raw()
    status, sys_handle = _create(lib, _si_json())
    assert status == SXC_OK, _message(lib)
    volume = ctypes.c_double()
    assert lib.sxc_system_volume(sys_handle, ctypes.byref(volume)) == SXC_OK
    assert abs(volume.value - SI_A ** 3 / 4) < 1e-9
    assert lib.sxc_system_free(sys_handle) == SXC_OK
    # use after free
    assert lib.sxc_system_volume(sys_handle, ctypes.byref(volume)) == SXC_ERR_HANDLE
    assert "not a live system handle" in _message(lib), _message(lib)
    res = ctypes.c_void_p()
    assert lib.sxc_scf_forward(sys_handle, b"lda,pw", None, ctypes.byref(res)) == SXC_ERR_HANDLE
    # double free
    assert lib.sxc_system_free(sys_handle) == SXC_ERR_HANDLE
    assert "not a live system handle" in _message(lib)
    # foreign pointers: a real heap address, and arbitrary values
    buffer = ctypes.create_string_buffer(64)
    for foreign in (ctypes.addressof(buffer), 0xDEADBEEF, 1, 2 ** 63 + 5):
        assert lib.sxc_system_free(foreign) == SXC_ERR_HANDLE
        assert lib.sxc_system_volume(foreign, ctypes.byref(volume)) == SXC_ERR_HANDLE
        assert lib.sxc_result_free(foreign) == SXC_ERR_HANDLE
        assert lib.sxc_result_energy(foreign, ctypes.byref(volume)) == SXC_ERR_HANDLE
    # the wrong kind of handle
    status, sys_handle = _create(lib, _si_json())
    assert status == SXC_OK
    assert lib.sxc_result_free(sys_handle) == SXC_ERR_HANDLE
    assert "is a system handle, not a result" in _message(lib), _message(lib)
    assert lib.sxc_result_energy(sys_handle, ctypes.byref(volume)) == SXC_ERR_HANDLE
    assert lib.sxc_system_free(sys_handle) == SXC_OK  # still live after the wrong-kind free


def case_system_buffer_errors():
    lib = _raw()
    status, sys_handle = _create(lib, _si_json())
    assert status == SXC_OK
    assert lib.sxc_system_nelectrons(sys_handle, None) == SXC_ERR_BUFFER
    assert "NULL" in _message(lib)
    # the history query reports the length without touching the last message
    n = ctypes.c_size_t(99)
    assert lib.sxc_last_error_history(None, 0, ctypes.byref(n)) == SXC_OK
    assert n.value == 0
    assert lib.sxc_system_free(sys_handle) == SXC_OK


def case_last_error_is_thread_local():
    lib = _raw()
    _create(lib, b"{bad")
    main_message = _message(lib)
    seen = {}

    def worker():
        seen["before"] = lib.sxc_last_error().decode()
        _create(lib, b"[1,]")
        seen["after"] = lib.sxc_last_error().decode()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["before"] == ""
    assert seen["after"] == "json: unexpected character ']' at offset 3"
    assert _message(lib) == main_message == "json: unexpected character 'b' at offset 1"
    # success leaves the message alone
    status, sys_handle = _create(lib, _si_json())
    assert status == SXC_OK and _message(lib) == main_message
    lib.sxc_system_free(sys_handle)


def case_result_buffer_too_small():
    lib = _raw()
    status, sys_handle = _create(lib, _si_json())
    assert status == SXC_OK
    res = ctypes.c_void_p()
    assert lib.sxc_scf_forward(sys_handle, b"lda,pw", b'{"tol": 1e-6}', ctypes.byref(res)) == SXC_OK, _message(lib)
    nspin, nk, nband = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    fft = (ctypes.c_int * 3)()
    assert lib.sxc_result_dims(res, ctypes.byref(nspin), ctypes.byref(nk), ctypes.byref(nband), fft) == SXC_OK
    n = nspin.value * nk.value * nband.value
    small = (ctypes.c_double * n)(*([-7.0] * n))
    assert lib.sxc_result_eigenvalues(res, small, n - 1) == SXC_ERR_BUFFER
    assert f"needs {n} elements, buffer holds {n - 1}" in _message(lib), _message(lib)
    assert list(small) == [-7.0] * n  # nothing written
    assert lib.sxc_result_eigenvalues(res, None, n) == SXC_ERR_BUFFER
    assert lib.sxc_result_eigenvalues(res, small, n) == SXC_OK
    grid = fft[0] * fft[1] * fft[2]
    assert lib.sxc_result_density(res, (ctypes.c_double * 10)(), 10) == SXC_ERR_BUFFER
    assert f"needs {grid * nspin.value}" in _message(lib)
    written = ctypes.c_size_t()
    assert lib.sxc_result_residual_history(res, None, 0, ctypes.byref(written)) == SXC_ERR_BUFFER
    iterations = ctypes.c_int()
    assert lib.sxc_result_iterations(res, ctypes.byref(iterations)) == SXC_OK
    assert written.value == iterations.value > 0
    count = ctypes.c_int()
    assert lib.sxc_result_energy_term_count(res, ctypes.byref(count)) == SXC_OK
    assert lib.sxc_result_energy_terms(res, (ctypes.c_double * 1)(), 1) == SXC_ERR_BUFFER
    name = ctypes.c_char_p()
    assert lib.sxc_result_energy_term_name(res, count.value, ctypes.byref(name)) == SXC_ERR_INPUT
    assert lib.sxc_result_energy_term_name(res, -1, ctypes.byref(name)) == SXC_ERR_INPUT
    forces = (ctypes.c_double * 6)(*([-7.0] * 6))
    assert lib.sxc_result_forces(res, forces, 5) == SXC_ERR_BUFFER
    assert "forces [natom][3] needs 6 elements, buffer holds 5" in _message(lib), _message(lib)
    assert list(forces) == [-7.0] * 6
    assert lib.sxc_result_forces(res, None, 6) == SXC_ERR_BUFFER
    assert lib.sxc_result_forces(res, forces, 6) == SXC_OK
    # result handles: double free and use after free
    assert lib.sxc_result_free(res) == SXC_OK
    assert lib.sxc_result_free(res) == SXC_ERR_HANDLE
    assert lib.sxc_result_eigenvalues(res, small, n) == SXC_ERR_HANDLE
    assert lib.sxc_result_forces(res, forces, 6) == SXC_ERR_HANDLE
    assert lib.sxc_system_free(res) == SXC_ERR_HANDLE
    assert lib.sxc_system_free(sys_handle) == SXC_OK


def test_raw_abi_malformed_json_is_an_input_error_with_offset(isolated):
    isolated(case_malformed_json)


def test_raw_abi_json_syntax_errors_name_the_offset(isolated):
    isolated(case_json_syntax_errors_name_the_offset)


def test_raw_abi_unknown_keys_and_wrong_types_name_the_field(isolated):
    isolated(case_json_unknown_keys_and_wrong_types_name_the_field)


def test_raw_abi_null_pointers_are_errors(isolated):
    isolated(case_null_pointers_are_errors_not_crashes)


def test_raw_abi_freed_double_freed_and_foreign_handles_are_handle_errors(isolated):
    isolated(case_freed_double_freed_and_foreign_handles)


def test_raw_abi_null_output_buffers_are_buffer_errors(isolated):
    isolated(case_system_buffer_errors)


def test_raw_abi_last_error_is_thread_local(isolated):
    isolated(case_last_error_is_thread_local)


def test_raw_abi_result_buffer_too_small_writes_nothing(isolated):
    isolated(case_result_buffer_too_small)


def test_python_handle_errors_map_to_handle_error():
    from solidxc import _lib
    with pytest.raises(solidxc.HandleError) as excinfo:
        _lib.check(_lib.load().sxc_system_free(0xDEADBEEF))
    assert "not a live system handle" in str(excinfo.value)
