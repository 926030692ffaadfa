// The C libraries SolidXC calls: CBLAS and LAPACKE (OpenBLAS), FFTW3, and glibc's mallopt.
// Swift cannot import C99 `_Complex`, so LAPACK's complex types are declared as plain
// two-double structs (same layout) before lapacke.h is read; that also keeps <complex.h>
// out, and FFTW_NO_Complex keeps fftw_complex a plain double[2].
#ifndef SOLIDXC_DEPS_SHIM_H
#define SOLIDXC_DEPS_SHIM_H
typedef struct { float re, im; } sxc_lapack_complex_float;
typedef struct { double re, im; } sxc_lapack_complex_double;
#define lapack_complex_float sxc_lapack_complex_float
#define lapack_complex_double sxc_lapack_complex_double
#define FFTW_NO_Complex
#include <fftw3.h>
#include <cblas.h>
#include <lapacke.h>
#include <malloc.h>
#endif
