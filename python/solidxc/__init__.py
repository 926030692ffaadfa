"""SolidXC: plane-wave Kohn-Sham DFT for crystals with learnable exchange-correlation.

A thin ctypes layer over the Swift core (libsolidxc.so, C ABI in include/solidxc.h).
Atomic units throughout (bohr, Hartree); see :mod:`solidxc.units` for Å and eV.

Example::

    import solidxc
    a = 10.263102582513  # bohr
    lattice = [[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]]
    system = solidxc.System(lattice, [("Si", (0, 0, 0)), ("Si", (a / 4, a / 4, a / 4))], ecut=15, kpts=(2, 2, 2))
    result = solidxc.scf(system, xc="lda,pw")
    result.energy, result.energies["xc"], result.density.shape
"""

from . import units
from .eos import EOSResult, eos
from .functional import Builtin, RegisteredFunctional, register_functional
from .errors import (BufferSizeError, CallbackError, ConvergenceError, HandleError, InputError, InternalError,
                     NumericalError, ResourceError, SolidXCError)
from .scf import SCFResult, scf
from .system import System
from .bands import DOS, BandStructure, band_structure, dos

__version__ = "0.1.0"


def library_version() -> str:
    """Version of the loaded libsolidxc.so (should equal ``__version__``)."""
    from . import _lib
    return _lib.version()


__all__ = [
    "System", "scf", "SCFResult", "eos", "EOSResult", "units", "library_version", "__version__",
    "register_functional", "RegisteredFunctional", "Builtin",
    "SolidXCError", "InputError", "ConvergenceError", "CallbackError", "ResourceError", "NumericalError",
    "HandleError", "BufferSizeError", "InternalError",
    "band_structure", "dos", "BandStructure", "DOS",
]
