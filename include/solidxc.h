/*
 * solidxc.h: the C ABI of SolidXC, a plane-wave Kohn-Sham DFT core.
 *
 * This header is the only contract between the Swift core and every other language
 * (Python reaches it through ctypes). Conventions that hold for every entry point:
 *
 * - Every function except sxc_version and sxc_last_error returns an int status, SXC_OK (0)
 *   on success. On failure a message is stored for the calling thread; read it with
 *   sxc_last_error(). Successful calls leave the stored message alone.
 * - Objects are opaque handles created and freed in pairs (sxc_system_create/sxc_system_free,
 *   sxc_scf_forward/sxc_result_free). A handle is a key into a table, never dereferenced:
 *   a NULL, freed, double-freed or foreign handle, or a handle of the wrong kind, gives
 *   SXC_ERR_HANDLE, never a crash. Handles may be used from any thread; a handle that is
 *   freed while another thread is using it stays alive until that call returns.
 * - NULL pointers are errors, never crashes: a NULL handle gives SXC_ERR_HANDLE, a NULL
 *   input string (json, xc) SXC_ERR_INPUT, a NULL output pointer SXC_ERR_BUFFER.
 * - Array accessors copy into caller buffers. `count` is the buffer's capacity in elements;
 *   a buffer that is NULL or holds fewer elements than needed gives SXC_ERR_BUFFER and
 *   nothing is written. Sizes follow from sxc_result_dims.
 * - Units are atomic: bohr, Hartree, electrons. Arrays are row-major (C order):
 *   eigenvalues and occupations [nspin][nk][nband], k-points [nk][3] (reduced
 *   coordinates), density [nspin][n1][n2][n3] (n3 fastest, electrons/bohr^3).
 * - Input is JSON (UTF-8, at most 4 MiB, nesting at most 64 deep). As an extension
 *   matching Python's json module, the literals NaN, Infinity and -Infinity are read as
 *   numbers, so non-finite values reach the core's validation and are reported by field.
 * - No function prints, exits or aborts on bad input.
 */
#ifndef SOLIDXC_H
#define SOLIDXC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status codes ------------------------------------------------------------------ */

#define SXC_OK               0  /* success */
#define SXC_ERR_INPUT        1  /* invalid input: the message starts with the field, e.g. "ecut: ..." */
#define SXC_ERR_CONVERGENCE  2  /* an iterative solve did not reach its tolerance; see sxc_last_error_history */
#define SXC_ERR_CALLBACK     3  /* a user callback failed or returned non-finite values */
#define SXC_ERR_MEMORY       4  /* the calculation would need more memory than allowed; refused up front */
#define SXC_ERR_NUMERICAL    5  /* a numerical library failed (LAPACK info != 0, FFTW plan) */
#define SXC_ERR_HANDLE       6  /* NULL, freed, foreign or wrong-kind handle */
#define SXC_ERR_BUFFER       7  /* output buffer NULL or too small */
#define SXC_ERR_INTERNAL     8  /* a bug in SolidXC; please report the message */

/* ---- Opaque handles ---------------------------------------------------------------- */

typedef struct sxc_system sxc_system;  /* a validated crystal: lattice, atoms, pseudopotentials, Ecut, k-grid */
typedef struct sxc_result sxc_result;  /* the outcome of one SCF run */

/* ---- Library ----------------------------------------------------------------------- */

/* Version string, e.g. "0.1.0". Static storage; never NULL. */
const char* sxc_version(void);

/* Message of the last failing call on this thread ("" if none). Valid until the next
 * failing call on this thread. Never NULL. */
const char* sxc_last_error(void);

/* Residual history attached to the last failing call on this thread (for SXC_ERR_CONVERGENCE:
 * the density residual per SCF iteration, electrons). `*written` receives the number of
 * values in the history; with count smaller than that, SXC_ERR_BUFFER and nothing is
 * copied (call with values = NULL, count = 0 to query the length: returns SXC_OK if the
 * history is empty, SXC_ERR_BUFFER otherwise, without changing sxc_last_error). */
int sxc_last_error_history(double* values, size_t count, size_t* written);

/* ---- Systems ----------------------------------------------------------------------- */

/* Creates a system from JSON and validates it eagerly (lattice, atoms, elements,
 * pseudopotentials, distances, charge, Ecut, k-grid), so bad input fails here.
 *
 *   {
 *     "lattice": [[a1x,a1y,a1z],[a2x,a2y,a2z],[a3x,a3y,a3z]],   rows, bohr        (required)
 *     "atoms":   [{"element": "Si", "position": [x,y,z]}, ...],  Cartesian bohr    (required)
 *     "pseudo":  "gth-pade" | {"Si": "gth-pbe", ...} | "/path/to/cp2k/file"       (default "gth-pade")
 *     "ecut":    20,                                             Ha                (required)
 *     "kpts":    [4,4,4],                                        Monkhorst-Pack    (default [1,1,1])
 *     "kshift":  [0,0,0],                                        ABINIT convention (default [0,0,0])
 *     "fft_size": null | [n1,n2,n3],                                               (default null: automatic)
 *     "charge":  0                                               net charge, e     (default 0)
 *     "smearing": null | "fermi-dirac" | "gaussian" | "methfessel-paxton" | "marzari-vanderbilt"
 *                                                                                  (default null: insulator)
 *     "temperature": null | 0.01                                 smearing width, Ha (default 0.01 with smearing)
 *     "magmoms": null | [m1, m2, ...]                            initial moments, Bohr magnetons, one per
 *                                                                atom; turns on collinear spin (default null)
 *     "symmetry": true                                           reduce k-points by the space group and
 *                                                                symmetrise the density (default true;
 *                                                                false keeps time reversal only)
 *     "basis_lattice": null | [[...],[...],[...]]                a reference cell whose metric selects the
 *                                                                plane waves (|k+G|^2/2 <= ecut in it), so a
 *                                                                strained cell keeps the reference's plane-wave
 *                                                                set, as the analytic stress assumes; each vector
 *                                                                within 20 % of the lattice's (default null: lattice)
 *   }
 *
 * Unknown keys and wrong types are SXC_ERR_INPUT naming the key or field
 * ("kpts[2]: expected an integer, got 2.5"); malformed JSON names the offset
 * ("json: unexpected character 'x' at offset 17"). */
int sxc_system_create(const char* json, sxc_system** out);
int sxc_system_free(sxc_system* sys);

/* Cell volume (bohr^3) and valence electron count (after charge). */
int sxc_system_volume(const sxc_system* sys, double* volume);
int sxc_system_nelectrons(const sxc_system* sys, double* nelectrons);
/* FFT grid the SCF will use: the explicit fft_size, or the automatic one. */
int sxc_system_fft_size(const sxc_system* sys, int fft[3]);
/* Space-group operations in use (1 with "symmetry": false; only those that also keep the k-grid
 * and the FFT grid invariant) and the number of irreducible k-points. */
int sxc_system_symmetry(const sxc_system* sys, int* noperations, int* nkpoints);

/* ---- Functionals ------------------------------------------------------------------- */

/* Families (libxc's numbering). */
#define SXC_LDA 1
#define SXC_GGA 2

/* Array layouts shared by every functional call, over a batch of npoints grid points:
 *   nspin = 1: rho[np] (total density), sigma[np] = |grad rho|^2;
 *   nspin = 2: rho[2][np] (up, down), sigma[3][np] (up.up, up.down, down.down).
 *   e[np]: energy per volume (Ha/bohr^3, rho*eps_xc); vrho like rho: de/drho_s;
 *   vsigma like sigma: de/dsigma_ab. Densities in electrons/bohr^3.
 * sigma and vsigma (and their perturbations) exist for GGAs only: an LDA ignores them
 * (they may be NULL). The caller's arrays must hold these sizes; other NULL arrays are
 * SXC_ERR_INPUT (inputs) or SXC_ERR_BUFFER (outputs), naming the argument. */

/* A user functional's evaluation: fills e, vrho and (GGA) vsigma at rho, sigma. Returns 0 on
 * success and anything else on failure (the core then fails with SXC_ERR_CALLBACK, naming
 * the functional and the status). The outputs arrive filled with NaN; every value must be
 * written and finite (a NaN or infinity is SXC_ERR_CALLBACK naming the output and the first
 * bad point). LDA callbacks receive NULL sigma and vsigma. It may be called from any thread,
 * and from several at once when calculations run concurrently: it must be thread-safe or
 * serialise itself (Python callbacks do, through the GIL). */
typedef int (*sxc_eval_cb)(void* user_data, int64_t npoints, int nspin, const double* rho,
                           const double* sigma, double* e, double* vrho, double* vsigma);

/* A user functional's second derivatives applied to a perturbation (drho, dsigma):
 *   dvrho_s   = sum_t d2e/drho_s drho_t drho_t + sum_ab d2e/drho_s dsigma_ab dsigma_ab,
 *   dvsigma_ab likewise. The response and backward passes need it; the SCF does not.
 * LDA callbacks receive NULL sigma, dsigma and dvsigma. Same status and output rules. */
typedef int (*sxc_kernel_cb)(void* user_data, int64_t npoints, int nspin, const double* rho,
                             const double* sigma, const double* drho, const double* dsigma,
                             double* dvrho, double* dvsigma);

/* Registers a user (for example neural) functional; *id receives its id (>= 1000, never
 * reused). `name` must be non-empty and must not be a built-in's name or alias ("pbe",
 * "gga_x_pbe+gga_c_pbe", ...); matching ignores case and whitespace. A later registration
 * under the same name wins name lookups. `family` is SXC_LDA or SXC_GGA. `kernel` may be
 * NULL, in which case response and backward calls fail with a message saying so. The name
 * can then be passed to sxc_scf_forward like a built-in's. */
int sxc_functional_register(const char* name, int family, sxc_eval_cb eval, sxc_kernel_cb kernel,
                            void* user_data, int32_t* id);

/* Registers the built-in `builtin` with parameter overrides `params_json` ({"kappa": 0.9},
 * NULL or "" for none) under a new `name` (same rules as above), for use by name in an SCF. */
int sxc_functional_register_builtin(const char* name, const char* builtin, const char* params_json,
                                    int32_t* id);

/* Removes a registered functional. Calculations that still hold it fail at their next
 * evaluation with SXC_ERR_CALLBACK ("... was unregistered while in use"), without calling
 * back. Returns once no other thread is inside one of its callbacks, so user_data may be
 * freed afterwards (a callback that unregisters its own functional is not waited for). */
int sxc_functional_unregister(int32_t id);

/* What the registry knows about the functional `name`, or, when name is NULL, the one with
 * id `id`: its id, family (SXC_LDA or SXC_GGA) and number of named parameters. */
int sxc_functional_info(const char* name, int32_t id, int32_t* id_out, int* family, int* nparams);

/* Parameter `index` (0 to nparams - 1) of a functional: its name, NUL-terminated, into
 * name_buffer (capacity bytes, SXC_ERR_BUFFER if too small), and its default value. */
int sxc_functional_parameter(const char* name, int32_t id, int index, char* name_buffer, size_t capacity,
                             double* value);

/* Evaluates the functional `name` (or, when name is NULL, the one with id `id`) on caller
 * arrays: built-ins, registered functionals (through their callbacks) and, for built-ins,
 * parameter overrides `params_json` ({"kappa": 0.9}; NULL or "" for the defaults). */
int sxc_functional_eval(const char* name, int32_t id, const char* params_json, int64_t npoints, int nspin,
                        const double* rho, const double* sigma, double* e, double* vrho, double* vsigma);

/* The second derivatives of that functional applied to (drho, dsigma), as sxc_kernel_cb. */
int sxc_functional_kernel(const char* name, int32_t id, const char* params_json, int64_t npoints, int nspin,
                          const double* rho, const double* sigma, const double* drho, const double* dsigma,
                          double* dvrho, double* dvsigma);

/* d(e, vrho, vsigma)/d(param) of a built-in (with overrides params_json) at fixed rho and
 * sigma, for one of its named parameters ("kappa", "mu", "beta" of "pbe"). Exact: the
 * parameter is carried through the same code as the energy as a dual number. */
int sxc_functional_param_derivative(const char* name, const char* params_json, const char* param,
                                    int64_t npoints, int nspin, const double* rho, const double* sigma,
                                    double* de, double* dvrho, double* dvsigma);

/* ---- SCF --------------------------------------------------------------------------- */

/* Runs the self-consistent field with functional `xc` ("lda,pw", "lda,vwn", "teter", "pbe",
 * or a name registered with sxc_functional_register[_builtin]). `options_json` may be NULL
 * or "" for defaults, or an object with:
 *   "tol" (Ha, 1e-9), "maxiter" (100), "nbands" (null: automatic), "mixing_beta" (null: 1.0, 0.7 with spin),
 *   "kerker_q0" (1/bohr, 0.8), "raise_on_nonconvergence" (true), "memory_limit_bytes"
 *   (null: available memory), "verbose" (false: one line per iteration on stderr if true),
 *   "threads" (null: one per core), "time_limit" (seconds, null: none; checked before every
 *   iteration: an SCF still running past it returns SXC_ERR_CONVERGENCE, the message starting
 *   "time_limit:", with the residual history so far).
 * When the SCF does not converge and raise_on_nonconvergence is true, returns
 * SXC_ERR_CONVERGENCE; the message ends with the residual history, and
 * sxc_last_error_history returns it as numbers. With raise_on_nonconvergence false the
 * result is returned and sxc_result_converged reports 0.
 * The call blocks for the duration of the SCF; it may run concurrently on other threads. */
int sxc_scf_forward(const sxc_system* sys, const char* xc, const char* options_json, sxc_result** out);
/* As sxc_scf_forward, starting from a previous result's density (same FFT grid and spin) and
 * orbitals (same k-points and bands, mapped by Miller index): for example the previous point of
 * an equation-of-state scan. start may be NULL. */
int sxc_scf_forward_from(const sxc_system* sys, const char* xc, const char* options_json,
                         const sxc_result* start, sxc_result** out);

/* ---- Results ----------------------------------------------------------------------- */

int sxc_result_free(sxc_result* res);

/* Array sizes: spin channels, k-points, bands per k-point, FFT grid (n1, n2, n3). */
int sxc_result_dims(const sxc_result* res, int* nspin, int* nk, int* nband, int fft[3]);

int sxc_result_energy(const sxc_result* res, double* energy);             /* total free energy, Ha */
int sxc_result_fermi_level(const sxc_result* res, double* fermi_level);   /* Ha */
/* Energy extrapolated to zero smearing width (Ha; equals the energy without smearing). */
int sxc_result_energy_zero_width(const sxc_result* res, double* energy);
/* Total and absolute magnetisation, Bohr magnetons per cell (0 without spin). */
int sxc_result_magnetization(const sxc_result* res, double* total, double* absolute);
int sxc_result_converged(const sxc_result* res, int* converged);          /* 1 or 0 */
int sxc_result_iterations(const sxc_result* res, int* iterations);
int sxc_result_volume(const sxc_result* res, double* volume);             /* bohr^3 */
int sxc_result_nelectrons(const sxc_result* res, double* nelectrons);

/* Energy terms, in a fixed order: kinetic, local, nonlocal, hartree, xc, ewald,
 * psp_correction (Ha). Their sum is the total energy. The name pointer stays valid
 * until the result is freed. */
int sxc_result_energy_term_count(const sxc_result* res, int* count);
int sxc_result_energy_terms(const sxc_result* res, double* values, size_t count);
int sxc_result_energy_term_name(const sxc_result* res, int i, const char** name);

int sxc_result_eigenvalues(const sxc_result* res, double* values, size_t count);  /* [nspin][nk][nband], Ha */
int sxc_result_occupations(const sxc_result* res, double* values, size_t count);  /* [nspin][nk][nband] */
int sxc_result_kpoints(const sxc_result* res, double* values, size_t count);      /* [nk][3], reduced */
int sxc_result_kweights(const sxc_result* res, double* values, size_t count);     /* [nk], sum 1 */
int sxc_result_density(const sxc_result* res, double* values, size_t count);      /* [nspin][n1][n2][n3] */
/* Hellmann-Feynman forces on the atoms, F = -dE/dR of the (free) energy, Ha/bohr, [natom][3]
 * Cartesian, atoms in the system's order, symmetrised with the crystal's space group: local and
 * nonlocal pseudopotential and Ewald terms at the converged density and orbitals. Computed on
 * each call; n must be at least natom*3 (SXC_ERR_BUFFER otherwise). */
int sxc_result_forces(const sxc_result* res, double* out, size_t n);
/* Stress tensor sigma_ab = (1/Omega) dE/d(eps_ab) of the (free) energy under the strain
 * r -> (1 + eps) r at a fixed plane-wave set, Ha/bohr^3, [3][3] Cartesian, symmetric (ABINIT's
 * and ASE's sign: pressure = -trace/3). Kinetic, Hartree, xc (with the GGA gradient term), local
 * and nonlocal pseudopotential, Ewald and psp-correction terms, symmetrised with the crystal's
 * space group. Computed on each call; n must be at least 9 (SXC_ERR_BUFFER otherwise). */
int sxc_result_stress(const sxc_result* res, double* out, size_t n);

/* Per-iteration histories (length = iterations). `*written` receives the length, also
 * when the buffer is too small (SXC_ERR_BUFFER), so a call with count = 0 sizes it. */
int sxc_result_residual_history(const sxc_result* res, double* values, size_t count, size_t* written);  /* electrons */
int sxc_result_energy_history(const sxc_result* res, double* values, size_t count, size_t* written);    /* energy change, Ha */

/* ---- Gradients: the adjoint of the converged SCF --------------------------------------- */

/* The functional's inputs at the converged density, exactly as the SCF evaluated them:
 * family 1 (LDA) or 2 (GGA); nsigma 0 (LDA), 1 (GGA, nspin 1) or 3 (GGA, nspin 2: uu, ud, dd).
 * rho [nspin][n1][n2][n3]; sigma = |grad rho|^2 blocks [nsigma][n1][n2][n3] (ignored for LDA:
 * pass NULL, 0), gradients by FFT as in the SCF. */
int sxc_result_xc_dims(const sxc_result* res, int* family, int* nsigma);
int sxc_result_xc_inputs(const sxc_result* res, double* rho, size_t nrho, double* sigma, size_t nsigma);

/* The vector-Jacobian product of the converged SCF (reverse mode, adjoint method; see
 * ARCHITECTURE.md section 5). Inputs are the plain partial derivatives of a scalar loss L:
 *   dL_dE     with respect to the (free) energy, Ha;
 *   dL_drho   [nspin][n1][n2][n3] with respect to the density (NULL, 0 for none);
 *   dL_deig   [nspin][nk][nband] with respect to the eigenvalues (NULL, 0 for none). A loss must
 *             weight the members of a degenerate level alike (SXC_ERR_INPUT otherwise).
 * options_json: NULL or {"tol": 1e-10, "maxiter": 100, "time_limit": null}, the relative residual,
 * the GMRES iteration limit and the wall-clock limit (seconds, null: none; checked before every
 * chi0 application, each bounded by its own Sternheimer iteration limit; past it
 * SXC_ERR_CONVERGENCE, the message starting "time_limit:") of the Dyson solve
 * (1 - chi0 K) w = chi0 g, g = dL_drho + K rho_eig.
 * Outputs (the grid adjoints, so that dL/dtheta = sum adj_e de/dtheta + sum adj_vrho dvrho/dtheta
 * + sum adj_vsigma dvsigma/dtheta over grid points, in sxc_functional_register's layouts):
 *   adj_e [n1 n2 n3], adj_vrho [nspin][n1 n2 n3], adj_vsigma [nsigma][n1 n2 n3] (GGA; NULL, 0 for LDA),
 *   residual: the achieved relative residual (0 when no solve was needed: energy-only losses),
 *   iterations: GMRES iterations.
 * A response solve that does not reach tol is SXC_ERR_CONVERGENCE (history: residual per
 * iteration). Can be called any number of times on a live result, for different losses. */
int sxc_scf_backward(const sxc_result* res, double dL_dE,
                     const double* dL_drho, size_t n_drho,
                     const double* dL_deig, size_t n_deig,
                     const char* options_json,
                     double* adj_e, size_t n_e,
                     double* adj_vrho, size_t n_vrho,
                     double* adj_vsigma, size_t n_vsigma,
                     double* residual, int* iterations);

/* ---- Band structures: non-self-consistent eigenvalues at given k-points --------------- */

/* Kohn-Sham eigenvalues at nk arbitrary k-points, with the converged SCF's local potential
 * (local pseudopotential + Hartree + xc) and the k-dependent operators (kinetic, nonlocal):
 * the non-self-consistent band structure, for every spin channel.
 *   kfrac   [nk][3] reduced coordinates of the reciprocal vectors (k = sum_i kfrac_i b_i);
 *           finite, any range (eigenvalues are periodic in k). NULL or non-finite: SXC_ERR_INPUT.
 *   nk      1 .. 10^6; nbands 1 .. 10^5 and at most the plane-wave count at every k.
 *   out     [nspin][nk][nbands], Ha, ascending per k, the SCF's G = 0 convention (the SCF's
 *           eigenvalues at its own k-points are reproduced); n must be at least nspin*nk*nbands
 *           (SXC_ERR_BUFFER otherwise, checked before any work).
 * Every band is converged to a residual |H psi - eps psi| <= 1e-8 Ha; an eigensolve that does
 * not get there is SXC_ERR_CONVERGENCE (history: the largest residual per solver pass), never a
 * silent result. Threads over k-points as the SCF's `threads` option says; the call blocks. */
int sxc_result_bands(const sxc_result* res, const double* kfrac, size_t nk, int nbands, double* out, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* SOLIDXC_H */
