"""Exceptions raised by SolidXC. Each carries the core's message unchanged."""

from __future__ import annotations

from typing import Sequence

import numpy as np


class SolidXCError(Exception):
    """Base class of every SolidXC failure.

    Attributes
    ----------
    status : int
        The C ABI status code (see include/solidxc.h).
    message : str
        The core's message; for input errors it starts with the field, e.g. ``"ecut: ..."``.
    """

    status = None

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class InputError(SolidXCError, ValueError):
    """Invalid input. The message names the field, the value and what was expected."""

    status = 1


class ConvergenceError(SolidXCError):
    """An SCF (or response) loop did not reach its tolerance.

    Attributes
    ----------
    history : numpy.ndarray
        Density residual per iteration (integral of |rho_out - rho_in|, electrons).
    """

    status = 2

    def __init__(self, message: str, status: int | None = None, history: Sequence[float] = ()):
        super().__init__(message, status)
        self.history = np.asarray(history, dtype=float)


class CallbackError(SolidXCError):
    """A user (neural) functional callback failed or returned non-finite values."""

    status = 3


class ResourceError(SolidXCError):
    """The calculation would need more memory than allowed; refused before allocating."""

    status = 4


class NumericalError(SolidXCError):
    """A numerical library failed (LAPACK, FFTW)."""

    status = 5


class HandleError(SolidXCError):
    """A NULL, freed, foreign or wrong-kind handle reached the C ABI."""

    status = 6


class BufferSizeError(SolidXCError):
    """An output buffer passed to the C ABI was NULL or too small (a bug in the caller)."""

    status = 7


class InternalError(SolidXCError):
    """A bug in SolidXC. Please report the message."""

    status = 8


#: C ABI status code -> exception class.
STATUS_EXCEPTIONS = {
    cls.status: cls
    for cls in (InputError, ConvergenceError, CallbackError, ResourceError, NumericalError,
                HandleError, BufferSizeError, InternalError)
}
