"""Fuzzing of SolidXC's two text inputs: ``sxc_system_create``'s JSON and the DeepChem YAML dataset
loader (``solidxc.deepchem.DFTYamlLoader``).

::

    python bench/fuzz.py system-json -runs=100000            # atheris (libFuzzer), 100k inputs
    python bench/fuzz.py yaml -runs=100000
    python bench/fuzz.py system-json --seeded 3000 --seed 1  # no atheris: a seeded random mutator

A failure is a crash (a signal in the core), a hang (libFuzzer's -timeout, 30 s by default here),
or any outcome other than the documented ones:

- system-json: a status from 0 to 8 with a non-empty message on failure and a NULL handle; on
  success finite, positive volume and electron count and a positive FFT grid, and the handle frees.
- yaml: a list of entries, or a SolidXCError (InputError) naming what is wrong; any other Python
  exception (TypeError, KeyError, RecursionError, UnicodeDecodeError, ...) is a bug.

Each input is read three ways, chosen by its first byte: as raw JSON/YAML text; as a valid template
(silicon, aluminium with smearing, spin-polarised iron) with values replaced by hostile ones
(NaN, 1e308, -1, huge strings, deep nesting, wrong types, device paths, ...) under the control of
the remaining bytes; or as a template's text with the bytes spliced in. The structured modes reach
the core's validation, which random bytes alone rarely pass the parser to reach (libFuzzer only
sees the coverage of this Python harness, not of the Swift library).

The seeded mutator (``--seeded N``) is a plain random mutator over the same three modes, for
machines without atheris; it is not coverage-guided.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))
sys.setrecursionlimit(10_000)

A_SI = 10.263102582513
A_AL = 7.65339
A_FE = 5.42

TEMPLATES = [
    {"lattice": [[0, A_SI / 2, A_SI / 2], [A_SI / 2, 0, A_SI / 2], [A_SI / 2, A_SI / 2, 0]],
     "atoms": [{"element": "Si", "position": [0, 0, 0]}, {"element": "Si", "position": [A_SI / 4] * 3}],
     "ecut": 5, "kpts": [2, 2, 2]},
    {"lattice": [[0, A_AL / 2, A_AL / 2], [A_AL / 2, 0, A_AL / 2], [A_AL / 2, A_AL / 2, 0]],
     "atoms": [{"element": "Al", "position": [0, 0, 0]}], "ecut": 5, "kpts": [2, 2, 2],
     "smearing": "fermi-dirac", "temperature": 0.01, "pseudo": "gth-pade"},
    {"lattice": [[A_FE, 0, 0], [0, A_FE, 0], [0, 0, A_FE]],
     "atoms": [{"element": "Fe", "position": [0, 0, 0]}, {"element": "Fe", "position": [A_FE / 2] * 3}],
     "ecut": 5, "kpts": [1, 1, 1], "smearing": "gaussian", "magmoms": [2.0, 2.0], "symmetry": True,
     "pseudo": {"Fe": "gth-pbe-q16"}, "kshift": [0.5, 0.5, 0.5], "charge": 0, "fft_size": None,
     "basis_lattice": None},
]

NUMBERS = [0, -1, 1, 2, 3, 0.5, -0.0, 1e-320, 1e308, -1e308, math.nan, math.inf, -math.inf, 2 ** 31, 2 ** 63,
           -2 ** 31, 1e6, 4e5, 100, 1000.5, 7, 64]
STRINGS = ["", "Si", "Al", "Fe", "Xx", "H", "\u0000", "\ud7ff", "é", "x" * 10_000, "gth-pade", "gth-pbe-q4",
           "gth-pbe-q99", "fermi-dirac", "lorentzian", "/dev/zero", "/dev/stdin", "/nonexistent", ".", "/",
           "methfessel-paxton", "0", "NaN", "null"]
KEYS = ["lattice", "atoms", "pseudo", "ecut", "kpts", "kshift", "fft_size", "charge", "smearing", "temperature",
        "magmoms", "symmetry", "basis_lattice", "element", "position", "bogus"]


class Bytes:
    """Choices drawn from the input's bytes (zeros once they run out), so that libFuzzer's
    mutations of the bytes become mutations of the structure."""

    def __init__(self, data: bytes):
        self.data = data
        self.i = 0

    def byte(self) -> int:
        if self.i >= len(self.data):
            return 0
        self.i += 1
        return self.data[self.i - 1]

    def below(self, n: int) -> int:
        return (self.byte() | self.byte() << 8) % n if n > 1 else 0

    def choice(self, items):
        return items[self.below(len(items))]

    def rest(self) -> bytes:
        return self.data[self.i:]


def hostile(b: Bytes, depth: int = 0, keys=KEYS):
    """A value of any JSON type, biased to the edges."""
    kind = b.below(9)
    if kind == 0:
        return b.choice(NUMBERS)
    if kind == 1:
        return b.choice(STRINGS)
    if kind == 2:
        return b.choice([None, True, False])
    if kind == 3:
        return [hostile(b, depth + 1, keys) for _ in range(b.below(5))] if depth < 4 else []
    if kind == 4:
        return {b.choice(keys): hostile(b, depth + 1, keys) for _ in range(b.below(4))} if depth < 4 else {}
    if kind == 5:  # deep nesting
        value = b.below(3)
        for _ in range(b.below(200)):
            value = [value]
        return value
    if kind == 6:  # a long list of numbers
        return [b.choice(NUMBERS) for _ in range(b.below(3000))]
    if kind == 7:
        return (b.below(65536) - 32768) / (1 + b.below(256))
    return b.below(20)


def mutate(value, b: Bytes, depth: int = 0, keys=KEYS):
    """Replaces, deletes or adds one member somewhere inside `value`."""
    if isinstance(value, dict) and value:
        key = b.choice(sorted(value))
        action = b.below(6)
        if action == 0:
            value.pop(key)
        elif action == 1:
            value[b.choice(keys)] = hostile(b, 0, keys)
        elif action == 2 or depth > 6:
            value[key] = hostile(b, 0, keys)
        else:
            value[key] = mutate(value[key], b, depth + 1, keys)
        return value
    if isinstance(value, list) and value:
        i = b.below(len(value))
        action = b.below(6)
        if action == 0:
            value.pop(i)
        elif action == 1:
            value.append(json.loads(json.dumps(value[i])))  # duplicate: two atoms at one place, 4 lattice rows
        elif action == 2 or depth > 6:
            value[i] = hostile(b, 0, keys)
        else:
            value[i] = mutate(value[i], b, depth + 1, keys)
        return value
    return hostile(b, 0, keys)


def structured_system(b: Bytes) -> bytes:
    spec = json.loads(json.dumps(b.choice(TEMPLATES)))
    for _ in range(1 + b.below(4)):
        spec = mutate(spec, b)
    return json.dumps(spec).encode("utf-8", errors="surrogatepass")


def spliced(text: bytes, b: Bytes) -> bytes:
    at = b.below(len(text) + 1)
    cut = b.below(8)
    return text[:at] + b.rest() + text[at + cut:]


def system_input(data: bytes) -> bytes:
    b = Bytes(data)
    mode = b.below(3)
    if mode == 0:
        return b.rest()
    if mode == 1:
        return structured_system(b)
    return spliced(json.dumps(b.choice(TEMPLATES)).encode(), b)


# ---- Target 1: sxc_system_create --------------------------------------------------------------

_lib = None


def library():
    global _lib
    if _lib is None:
        from solidxc import _lib as lib_module
        _lib = lib_module.load()
    return _lib


#: Fields the core names, for the outcome signal below.
FIELDS = ["json", "lattice", "atoms", "pseudo", "ecut", "kpts", "kshift", "fft_size", "charge", "smearing",
          "temperature", "magmoms", "symmetry", "basis_lattice", "inputs", "systems", "e_type", "true_val",
          "weight", "moldesc", "alattice", "bands", "scales", "scale_axes", "basis", "structure", "spin, charge, number"]
_source = "def outcome(status, field):\n" + "".join(
    f"    {'if' if i == 0 else 'elif'} field == {f!r}:\n        return status * 100 + {i}\n" for i, f in enumerate(FIELDS))
_source += "    return -status\n"
exec(_source)  # one branch per (field): libFuzzer sees a new edge for each kind of refusal
outcome = globals()["outcome"]


def field_of(message: str) -> str:
    """The field a message names: "atoms[1].element: ..." -> "atoms"."""
    head = message.split(":", 1)[0]
    for stop in "[.":
        head = head.split(stop, 1)[0]
    return head.strip()


def check_system_json(text: bytes) -> None:
    lib = library()
    handle = ctypes.c_void_p()
    status = lib.sxc_system_create(text, ctypes.byref(handle))
    if status != 0:
        message = lib.sxc_last_error()
        if not (1 <= status <= 8 and message and handle.value is None):
            raise AssertionError(f"status {status}, message {message!r}, handle {handle.value} for {text[:200]!r}")
        outcome(status, field_of(message.decode("utf-8", "replace")))
        return
    volume, nelectrons = ctypes.c_double(), ctypes.c_double()
    fft = (ctypes.c_int * 3)()
    try:
        assert lib.sxc_system_volume(handle, ctypes.byref(volume)) == 0
        assert lib.sxc_system_nelectrons(handle, ctypes.byref(nelectrons)) == 0
        assert lib.sxc_system_fft_size(handle, fft) == 0
        if not (math.isfinite(volume.value) and volume.value > 0 and math.isfinite(nelectrons.value)
                and nelectrons.value > 0 and min(fft) > 0):
            raise AssertionError(f"accepted with volume {volume.value}, {nelectrons.value} electrons, fft "
                                 f"{list(fft)}: {text[:300]!r}")
    finally:
        assert lib.sxc_system_free(handle) == 0


def system_json_target(data: bytes) -> None:
    check_system_json(system_input(data))


# ---- Target 2: the YAML dataset loader --------------------------------------------------------

YAML_TEMPLATES = [
    [{"e_type": "energy", "true_val": -7.9, "name": "Si", "weight": 1,
      "systems": [{"moldesc": "Si 0 0 0; Si 2.5658 2.5658 2.5658",
                   "alattice": [[0, 5.1316, 5.1316], [5.1316, 0, 5.1316], [5.1316, 5.1316, 0]],
                   "ecut": 5, "kpts": [1, 1, 1], "pseudo": "gth-pade"}]}],
    [{"e_type": "ae", "true_val": "0.1", "systems": [
        {"moldesc": "Al 0 0 0", "alattice": [[0, 3.8, 3.8], [3.8, 0, 3.8], [3.8, 3.8, 0]], "smearing": "fermi-dirac",
         "spin": 1, "charge": 0, "number": 2},
        {"moldesc": "Al 0 0 0", "alattice": [[0, 3.8, 3.8], [3.8, 0, 3.8], [3.8, 3.8, 0]], "basis": "pw"}]},
     {"e_type": "eig", "true_val": [0.1, 0.2], "bands": [[0, 0, 1], [0, 0, 2]], "split": "test",
      "systems": [{"moldesc": "C 0 0 0; C 1.68 1.68 1.68",
                   "alattice": [[0, 3.37, 3.37], [3.37, 0, 3.37], [3.37, 3.37, 0]]}]},
     {"e_type": "lattice", "true_val": 10.26, "scales": [0.98, 1.0, 1.02],
      "systems": [{"moldesc": "Si 0 0 0; Si 2.5658 2.5658 2.5658",
                   "alattice": [[0, 5.1316, 5.1316], [5.1316, 0, 5.1316], [5.1316, 5.1316, 0]]}]},
     {"e_type": "gap", "true_val": 0.05, "systems": ["si.cif"]},
     {"e_type": "dens", "true_val": "rho.npy", "systems": [{"structure": "POSCAR"}]}],
]
YAML_KEYS = ["e_type", "true_val", "systems", "weight", "name", "split", "bands", "scales", "moldesc", "alattice",
             "structure", "spin", "charge", "number", "basis", "ecut", "kpts", "magmoms", "nbands", "fft_size"]


def yaml_input(data: bytes) -> bytes:
    import yaml
    b = Bytes(data)
    mode = b.below(3)
    if mode == 0:
        return b.rest()
    template = json.loads(json.dumps(b.choice(YAML_TEMPLATES)))
    if mode == 1:
        for _ in range(1 + b.below(4)):
            template = mutate(template, b, keys=YAML_KEYS + KEYS)
        return yaml.safe_dump(template, allow_unicode=True).encode("utf-8", errors="surrogatepass")
    return spliced(yaml.safe_dump(template).encode(), b)


_workdir = None


def check_yaml(text: bytes) -> None:
    global _workdir
    from solidxc import SolidXCError
    from solidxc.deepchem import DFTYamlLoader
    if _workdir is None:
        _workdir = tempfile.mkdtemp(prefix="solidxc-fuzz-")
    path = os.path.join(_workdir, "entries.yaml")
    with open(path, "wb") as f:
        f.write(text)
    try:
        entries = DFTYamlLoader.load_entries(path)
    except SolidXCError as exc:
        if not str(exc):
            raise AssertionError(f"{type(exc).__name__} without a message for {text[:200]!r}") from exc
        message = str(exc)
        outcome(exc.status or 0, field_of(message.split(": ", 1)[1] if message.startswith("/") else message))
        return
    if not isinstance(entries, list) or not entries:
        raise AssertionError(f"load_entries returned {entries!r}")


def yaml_target(data: bytes) -> None:
    check_yaml(yaml_input(data))


TARGETS = {"system-json": (system_json_target, lambda: [json.dumps(t).encode() for t in TEMPLATES]),
           "yaml": (yaml_target, lambda: [b""])}


# ---- Drivers ----------------------------------------------------------------------------------

def seeded(target, runs: int, seed: int) -> None:
    """A plain (not coverage-guided) random mutator: random byte strings of random length, and
    bit flips, insertions and deletions of earlier inputs."""
    rng = random.Random(seed)
    pool = [bytes(rng.randrange(256) for _ in range(64)) for _ in range(16)]
    start = time.time()
    for i in range(runs):
        if rng.random() < 0.3 or not pool:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 512)))
        else:
            data = bytearray(rng.choice(pool))
            for _ in range(rng.randrange(1, 8)):
                op = rng.randrange(3)
                at = rng.randrange(len(data) + 1)
                if op == 0 and data:
                    data[min(at, len(data) - 1)] ^= 1 << rng.randrange(8)
                elif op == 1:
                    data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
                else:
                    del data[at:at + rng.randrange(1, 16)]
            data = bytes(data)
        target(data)
        if rng.random() < 0.05:
            pool.append(data)
    print(f"seeded mutator: {runs} inputs, no failure, {time.time() - start:.1f} s")


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        raise SystemExit(f"usage: {argv[0]} {{{'|'.join(TARGETS)}}} [-runs=N ...] [--seeded N [--seed S]]")
    target, seeds = TARGETS[argv[1]]
    rest = argv[2:]
    if "--seeded" in rest:
        runs = int(rest[rest.index("--seeded") + 1])
        seed = int(rest[rest.index("--seed") + 1]) if "--seed" in rest else 0
        seeded(target, runs, seed)
        return
    import atheris
    with atheris.instrument_imports(include=["solidxc", "yaml"]):
        import solidxc  # noqa: F401
        import yaml  # noqa: F401
        if argv[1] == "yaml":
            import solidxc.deepchem  # noqa: F401
    # The harness itself: its generator's branches and the outcome signal guide libFuzzer.
    g = globals()
    for name in ("hostile", "mutate", "structured_system", "spliced", "system_input", "yaml_input",
                 "check_system_json", "check_yaml", "outcome", "field_of"):
        g[name] = atheris.instrument_func(g[name])
    Bytes.below = atheris.instrument_func(Bytes.below)
    corpus = tempfile.mkdtemp(prefix=f"solidxc-fuzz-{argv[1]}-corpus-")
    for i, s in enumerate(seeds()):
        # A seed's first two bytes select mode 0 (raw text) and the text follows.
        Path(corpus, f"seed{i}").write_bytes(b"\x00\x00" + s)
    args = [argv[0]] + (rest if any(a.startswith("-timeout") for a in rest) else rest + ["-timeout=30"])
    args += ["-rss_limit_mb=4096", f"-artifact_prefix={tempfile.gettempdir()}/solidxc-fuzz-{argv[1]}-", corpus]
    start = time.time()

    def report():
        print(f"fuzz {argv[1]}: finished in {time.time() - start:.1f} s", flush=True)

    import atexit
    atexit.register(report)
    atheris.Setup(args, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
