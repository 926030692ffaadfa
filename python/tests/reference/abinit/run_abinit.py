#!/usr/bin/env python3
"""ABINIT 9.6.2 reference data for SolidXC tests (GTH pseudopotentials from PySCF's tables).

Two case sets share this script: `insulators` (occopt 1, the default) and `metals` (smeared occupations, occopt
3/4/6/7, and a spin-polarised magnet).  For every case this script
  1. builds the ABINIT input deck and writes it to decks/<tag>.abi (checked in),
  2. runs `abinit <tag>.abi` in a temporary directory (serial, OMP_NUM_THREADS=1, one case at a time),
  3. parses <tag>o_GSR.nc (full double precision; read with h5py) and the .abo / _EIG text files
     (and, for nsppol 2, the density <tag>o_DEN.nc to integrate |m(r)|),
  4. writes abinit_insulators.json or abinit_metals.json.

Usage (from anywhere):
    python3 run_abinit.py                 # regenerate psp files, decks and abinit_insulators.json (all cases)
    python3 run_abinit.py --set metals    # the same for the metal/magnet set -> abinit_metals.json
    python3 run_abinit.py --only TAG ...  # run a subset; the other cases already in the JSON are kept
    python3 run_abinit.py --decks-only    # only (re)write decks/*.abi
    python3 run_abinit.py --sanity        # sanity checks -> abinit_sanity_checks.json (decks in decks/sanity/)
    python3 run_abinit.py --set metals --sanity   # -> abinit_metals_sanity_checks.json
    python3 run_abinit.py --list
(--only/--decks-only/--sanity/--list act on the set chosen with --set.)

Geometry is fed to ABINIT exactly as recorded in the JSON: `acell 1 1 1`, `rprim` = lattice vectors (rows, bohr),
`xcart` = Cartesian positions (bohr), all numbers written with Python repr() (round-trip exact doubles).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import abinit_smearing  # noqa: E402
import write_psp10  # noqa: E402

PSPDIR = os.path.join(HERE, 'psp')
DECKDIR = os.path.join(HERE, 'decks')
OUT_JSON = os.path.join(HERE, 'abinit_insulators.json')
SANITY_JSON = os.path.join(HERE, 'abinit_sanity_checks.json')
METALS_JSON = os.path.join(HERE, 'abinit_metals.json')
METALS_SANITY_JSON = os.path.join(HERE, 'abinit_metals_sanity_checks.json')
SHARED_REF = '/work/shared/reference/abinit_same_gth_pp.json'

BOHR_ANGSTROM = 0.52917721092  # PySCF's lib.param.BOHR; used for every Angstrom -> bohr conversion

# SolidXC xc name -> (ABINIT ixc as written in the deck, integer value, pseudo table)
XC = {
    'lda,pw': ('-001012', -1012, 'gth-pade'),     # libxc LDA_X + LDA_C_PW (PW92)
    'lda,vwn': ('-001007', -1007, 'gth-pade'),    # libxc LDA_X + LDA_C_VWN (VWN5)
    'teter': ('1', 1, 'gth-pade'),                # ABINIT native Teter93 Pade LDA (= libxc LDA_XC_TETER93)
    'pbe': ('-101130', -101130, 'gth-pbe'),       # libxc GGA_X_PBE + GGA_C_PBE
}
DIEMAC = {'si': 12.0, 'c': 6.0, 'mgo': 3.0}       # preconditioner only; does not change the converged result

COMMON = dict(occopt=1, kptopt=2, nsym=1, istwfk='*1', toldfe=1e-12, nstep=200, chksymbreak=0, extra_bands=4)

# metals: occopt -> (SolidXC smearing name, tag abbreviation)
SMEARING = {3: ('fermi-dirac', 'fd'), 4: ('marzari-vanderbilt', 'mv'), 6: ('methfessel-paxton', 'mp'), 7: ('gaussian', 'gauss')}
COMMON_METALS = dict(kptopt=2, nsym=1, istwfk='*1', toldfe=1e-12, nstep=200, chksymbreak=0)

STRAIN = [[1.01, 0.005, -0.0075], [0.0025, 0.99, 0.01], [-0.005, 0.0075, 1.005]]  # see README: the 2x stronger example strain closes the LDA gap
STRAIN_DISP_BOHR = [0.05, -0.03, 0.02]


# ----------------------------------------------------------------------------------------------- structures
def fcc_prim(a_bohr):
    return (a_bohr / 2.0) * np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])


def structure(name):
    """Return (lattice rows bohr, [(element, cart bohr)], description dict)."""
    if name in ('si', 'c'):
        a_ang = {'si': 5.431, 'c': 3.567}[name]
        el = {'si': 'Si', 'c': 'C'}[name]
        a = a_ang / BOHR_ANGSTROM
        lat = fcc_prim(a)
        frac = np.array([[0.0, 0.0, 0.0], [0.25, 0.25, 0.25]])
        cart = frac @ lat
        desc = dict(kind='diamond', a_angstrom=a_ang, a_bohr=a,
                    construction='lattice = a/2*[[0,1,1],[1,0,1],[1,1,0]] (rows); atoms at frac (0,0,0), (1/4,1/4,1/4)')
        return lat, [(el, cart[0]), (el, cart[1])], desc
    if name == 'mgo':
        a_ang = 4.21
        a = a_ang / BOHR_ANGSTROM
        lat = fcc_prim(a)
        frac = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
        cart = frac @ lat
        desc = dict(kind='rocksalt', a_angstrom=a_ang, a_bohr=a,
                    construction='lattice = a/2*[[0,1,1],[1,0,1],[1,1,0]] (rows); Mg at frac (0,0,0), O at frac (1/2,1/2,1/2) = (a/2,a/2,a/2)')
        return lat, [('Mg', cart[0]), ('O', cart[1])], desc
    if name == 'si_strained':
        a_ang = 5.431
        a = a_ang / BOHR_ANGSTROM
        lat0 = fcc_prim(a)
        F = np.array(STRAIN)
        lat = lat0 @ F.T                      # each lattice vector a_i -> F a_i  (rows: A' = A F^T)
        frac = np.array([[0.0, 0.0, 0.0], [0.25, 0.25, 0.25]])
        cart = frac @ lat
        cart[1] = cart[1] + np.array(STRAIN_DISP_BOHR)
        desc = dict(kind='strained diamond Si, no symmetry', a_angstrom=a_ang, a_bohr=a, strain_matrix_F=STRAIN,
                    displacement_atom2_bohr=STRAIN_DISP_BOHR,
                    construction='lattice rows = (a/2*[[0,1,1],[1,0,1],[1,1,0]]) @ F.T, i.e. each vector a_i -> F a_i; '
                                 'atom 1 at 0, atom 2 at F (a/4,a/4,a/4) + displacement (Cartesian bohr)')
        return lat, [('Si', cart[0]), ('Si', cart[1])], desc
    if name in ('al', 'ca', 'ni'):
        a_ang = {'al': 4.05, 'ca': 5.58, 'ni': 3.52}[name]
        el = {'al': 'Al', 'ca': 'Ca', 'ni': 'Ni'}[name]
        a = a_ang / BOHR_ANGSTROM
        desc = dict(kind=f'fcc {el}', a_angstrom=a_ang, a_bohr=a,
                    construction='lattice = a/2*[[0,1,1],[1,0,1],[1,1,0]] (rows); one atom at the origin')
        return fcc_prim(a), [(el, np.zeros(3))], desc
    if name == 'graphene':
        a_ang, c_ang = 2.46, 12.0
        a, c = a_ang / BOHR_ANGSTROM, c_ang / BOHR_ANGSTROM
        lat = np.array([[a, 0.0, 0.0], [-a / 2.0, a * np.sqrt(3.0) / 2.0, 0.0], [0.0, 0.0, c]])
        frac = np.array([[1.0 / 3.0, 2.0 / 3.0, 0.5], [2.0 / 3.0, 1.0 / 3.0, 0.5]])
        cart = frac @ lat
        cart[np.abs(cart) < 1e-12] = 0.0        # frac (1/3, 2/3) has x = 0 exactly; drop the 1e-17 rounding residue
        desc = dict(kind='graphene (3-D periodic slab)', a_angstrom=a_ang, c_angstrom=c_ang, a_bohr=a, c_bohr=c,
                    construction='a1 = (a,0,0), a2 = (-a/2, a*sqrt(3)/2, 0), a3 = (0,0,c), c = 12 A total cell height '
                                 '(as /work/shared/reference); C at frac (1/3,2/3,1/2), (2/3,1/3,1/2); d(C-C) = a/sqrt(3); '
                                 'no Coulomb truncation')
        return lat, [('C', cart[0]), ('C', cart[1])], desc
    raise ValueError(name)


# ----------------------------------------------------------------------------------------------- cases
def shift_tag(shiftk):
    if not any(shiftk):
        return ''
    if len(set(shiftk)) == 1:
        return f'_sh{shiftk[0]:g}'.replace('.', 'p')
    return ('_sh' + '-'.join(f'{s:g}' for s in shiftk)).replace('.', 'p')


def case_list():
    C = []

    def add(system, xc, ngkpt, shiftk, ecut):
        xtag = xc.replace(',', '-')
        sh = shift_tag(shiftk)
        tag = f'{system}_{xtag}_k{"x".join(map(str, ngkpt))}{sh}_ec{ecut:g}'
        C.append(dict(tag=tag, system=system, xc=xc, ngkpt=list(ngkpt), shiftk=list(shiftk), ecut=ecut))

    for xc in ['lda,pw', 'lda,vwn', 'teter', 'pbe']:
        for k in (1, 2):
            add('si', xc, [k] * 3, [0.0] * 3, 15)
    add('si', 'lda,pw', [3, 3, 3], [0.5, 0.5, 0.5], 15)
    add('c', 'lda,pw', [2, 2, 2], [0.0] * 3, 25)
    add('mgo', 'lda,pw', [2, 2, 2], [0.0] * 3, 30)
    add('si_strained', 'lda,pw', [2, 2, 2], [0.0] * 3, 15)
    add('si_strained', 'pbe', [2, 2, 2], [0.0] * 3, 15)
    return C


def case_list_metals():
    """Metal/magnet set. nband is explicit (n_occupied + >= 50 %); see README 'Metals'."""
    C = []

    def add(system, xc, ngkpt, shiftk, ecut, occopt, tsmear, nband, nsppol=1, spinat=None, scf_extra=None, suffix=''):
        xtag = xc.replace(',', '-')
        stag = SMEARING[occopt][1] + f'{tsmear:g}'.replace('.', 'p')
        tag = f'{system}_{xtag}_{stag}_k{"x".join(map(str, ngkpt))}{shift_tag(shiftk)}_ec{ecut:g}{suffix}'
        C.append(dict(tag=tag, system=system, xc=xc, ngkpt=list(ngkpt), shiftk=list(shiftk), ecut=ecut,
                      occopt=occopt, tsmear=tsmear, nband=nband, nsppol=nsppol, spinat=spinat,
                      scf_extra=dict(scf_extra or {})))

    g0 = [0.0] * 3
    # nline 8 (default 4): with 4, the SCF meets toldfe after 8 steps while the highest (empty) bands still have
    # residuals ~1e-5 (their eigenvalues off by ~1e-4 Ha); with 8 every band is converged (residm ~1e-12) in as many
    # SCF steps. Ni needs ~30 SCF steps anyway (residm 1e-14 with the default), so it keeps nline 4 to stay fast.
    nl8 = {'nline': 8}
    add('al', 'lda,pw', [4, 4, 4], g0, 15, 3, 0.01, 6, scf_extra=nl8)
    add('al', 'pbe', [4, 4, 4], g0, 15, 3, 0.01, 6, scf_extra=nl8)
    for occopt in (7, 6, 4):
        add('al', 'lda,pw', [4, 4, 4], g0, 15, occopt, 0.02, 6, scf_extra=nl8)
    add('al', 'lda,pw', [4, 4, 4], [0.5] * 3, 15, 3, 0.01, 6, scf_extra=nl8)
    # Ca: the 3d bands start ~16 tsmear above the Fermi level, so FD tails reach far up: 14 bands make the top band
    # exactly empty (x < -30); 8 bands left 2e-4 electrons in band 8.
    add('ca', 'lda,pw', [2, 2, 2], g0, 40, 3, 0.01, 14, scf_extra=nl8)
    add('ni', 'pbe', [2, 2, 2], g0, 60, 3, 0.01, 14)
    # diemix 0.7: with ABINIT's default mixing (diemix 1) this SCF ends on the -1.236 muB solution (spin flipped
    # relative to spinat); 0.7 ends on +1.236 in the same number of steps. Mixing does not change the converged state.
    add('ni', 'pbe', [2, 2, 2], g0, 60, 3, 0.01, 14, nsppol=2, spinat=[[0.0, 0.0, 1.0]], scf_extra={'diemix': 0.7},
        suffix='_spin')
    add('graphene', 'lda,pw', [3, 3, 1], g0, 30, 3, 0.01, 8, scf_extra=nl8)
    return C


CASE_SETS = {'insulators': case_list, 'metals': case_list_metals}


def is_metal(case):
    return 'occopt' in case


def fmt(x):
    return repr(float(x))


def build(case, pp_dirpath='../psp', overrides=None):
    """Return (deck text, metadata dict) for a case. overrides: dict of extra/replacement ABINIT variables."""
    lat, atoms, desc = structure(case['system'])
    xc = case['xc']
    ixc_str, ixc, table = XC[xc]
    types = []
    for el, _ in atoms:
        if el not in types:
            types.append(el)
    pp = {el: write_psp10.gth_params(el, table) for el in types}
    zion = {el: write_psp10.zion_of(pp[el]) for el in types}
    from pyscf.data.elements import charge
    nel = sum(zion[el] for el, _ in atoms)
    metal = is_metal(case)
    nsppol = case.get('nsppol', 1)
    if metal:
        nocc = -(-nel // 2)          # bands needed per spin channel of a non-magnetic T=0 state
        nband = case['nband']
    else:
        assert nel % 2 == 0
        nocc = nel // 2
        nband = nocc + COMMON['extra_bands']
    psp_files = {el: f'{el}.{table}.psp10' for el in types}
    base = case['system'].split('_')[0]
    v = dict(
        acell='1 1 1',
        rprim='\n      '.join(' '.join(fmt(x) for x in row) for row in lat),
        natom=str(len(atoms)), ntypat=str(len(types)),
        typat=' '.join(str(types.index(el) + 1) for el, _ in atoms),
        znucl=' '.join(str(charge(el)) for el in types),
        xcart='\n      '.join(' '.join(fmt(x) for x in pos) for _, pos in atoms),
        ecut=f'{case["ecut"]:g}', ixc=ixc_str,
        occopt=str(case.get('occopt', COMMON['occopt'])))
    if metal:
        v['tsmear'] = f'{case["tsmear"]:g}'
    v['nband'] = str(nband)
    if nsppol != 1:
        v['nsppol'] = str(nsppol)
        v['spinat'] = '\n      '.join(' '.join(fmt(x) for x in sp) for sp in case['spinat'])
    v.update(
        kptopt=str(COMMON['kptopt']), ngkpt=' '.join(map(str, case['ngkpt'])), nshiftk='1',
        shiftk=' '.join(f'{s:g}' for s in case['shiftk']), istwfk=COMMON['istwfk'],
        nsym=str(COMMON['nsym']), chksymbreak=str(COMMON['chksymbreak']),
        nstep=str(COMMON['nstep']), toldfe=f'{COMMON["toldfe"]:g}')
    if base in DIEMAC:
        v['diemac'] = f'{DIEMAC[base]:g}'
    for k, val in case.get('scf_extra', {}).items():   # mixing only; does not change the converged result
        v[k] = f'{val:g}' if isinstance(val, float) else str(val)
    v.update(
        pp_dirpath=f'"{pp_dirpath}"', pseudos='"' + ', '.join(psp_files[t] for t in types) + '"',
        prteig='1', prtwf='0', prtden='0',
    )
    if nsppol == 2:   # write the density as netCDF (iomode 3 = ETSF-IO) to integrate |rho_up - rho_dn|
        v['prtden'] = '1'
        v['iomode'] = '3'
    for k, val in (overrides or {}).items():
        if val is None:
            v.pop(k, None)
        else:
            v[k] = str(val)
    smear = ''
    if metal:
        smear = (f'; occopt {case["occopt"]} ({SMEARING[case["occopt"]][0]}), tsmear {case["tsmear"]:g} Ha; '
                 f'nsppol {nsppol}')
    head = [f'# SolidXC ABINIT reference case {case["tag"]}',
            f'# {desc["kind"]}; xc {xc} (ixc {ixc}); {table}; ' + ', '.join(f'{e} q{zion[e]}' for e in types) + smear,
            '# generated by python/tests/reference/abinit/run_abinit.py; geometry in bohr (acell 1), Cartesian positions']
    deck = '\n'.join(head) + '\n' + '\n'.join(f'{k} {val}' for k, val in v.items()) + '\n'
    meta = dict(lat=lat, atoms=atoms, desc=desc, ixc=ixc, ixc_str=ixc_str, table=table, types=types, zion=zion,
                nel=nel, nocc=nocc, nband=nband, psp_files=psp_files, pp=pp, vars=v, metal=metal, nsppol=nsppol)
    return deck, meta


# ----------------------------------------------------------------------------------------------- running / parsing
def abinit_version():
    return subprocess.run(['abinit', '--version'], capture_output=True, text=True).stdout.strip()


def run_deck(deck, name, keep=None):
    """Run ABINIT on `deck` in a temp dir laid out as tmp/run/run.abi with tmp/psp -> PSPDIR (so the deck's
    pp_dirpath "../psp" resolves). `name` only labels the --keep copy.
    Returns (stdout-free result dict with abo text, GSR arrays, EIG text, wall seconds)."""
    tmp = tempfile.mkdtemp(prefix='solidxc_abinit_')
    try:
        os.symlink(PSPDIR, os.path.join(tmp, 'psp'))
        run = os.path.join(tmp, 'run')
        os.makedirs(run)
        with open(os.path.join(run, 'run.abi'), 'w') as f:
            f.write(deck)
        env = dict(os.environ, OMP_NUM_THREADS='1')
        t0 = time.perf_counter()
        p = subprocess.run(['abinit', 'run.abi'], cwd=run, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        rd = lambda fn: open(os.path.join(run, fn)).read() if os.path.exists(os.path.join(run, fn)) else None
        abo = rd('run.abo')
        eig = rd('runo_EIG')
        gsr = read_gsr(os.path.join(run, 'runo_GSR.nc'))
        den = read_den(os.path.join(run, 'runo_DEN.nc'))
        if keep:
            dst = os.path.join(keep, name)
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(run, dst)
        return dict(returncode=p.returncode, stderr=p.stderr[-3000:], stdout_tail=p.stdout[-3000:], abo=abo, eig=eig,
                    gsr=gsr, den=den, wall=wall, warnings=parse_warnings(p.stdout))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_gsr(path):
    if not os.path.exists(path):
        return None
    import h5py
    out = {}
    with h5py.File(path, 'r') as f:
        for k in ['etotal', 'e_kinetic', 'e_hartree', 'e_xc', 'e_ewald', 'e_corepsp', 'e_localpsp', 'e_nlpsp_vfock',
                  'e_eigenvalues', 'e_entropy', 'e_fermie', 'fermie', 'nelect', 'eigenvalues', 'occupations',
                  'reduced_coordinates_of_kpoints', 'kpoint_weights', 'number_of_coefficients', 'primitive_vectors',
                  'reduced_atom_positions', 'cartesian_forces', 'cartesian_stress_tensor', 'ixc', 'kptopt', 'istwfk',
                  'ecut', 'ecutsm', 'shiftk', 'kptrlatt', 'reduced_symmetry_matrices', 'valence_charges', 'residm',
                  'deltae', 'res2', 'occopt', 'entropy', 'tsmear']:
            if k in f:
                out[k] = np.array(f[k][()])
        out['codvsn'] = f['codvsn'][()].tobytes().decode().strip() if 'codvsn' in f else None
        out['abinit_version_attr'] = f.attrs.get('abinit_version')
        if isinstance(out['abinit_version_attr'], bytes):
            out['abinit_version_attr'] = out['abinit_version_attr'].decode()
    return out


def read_den(path):
    """Integrals of ABINIT's density (netCDF, iomode 3) on its FFT grid: N, N_up, N_dn, M = int m, |M| = int |m|.
    ABINIT stores (total, up) for nsppol 2 (checked: component 0 integrates to N)."""
    if not os.path.exists(path):
        return None
    import h5py
    with h5py.File(path, 'r') as f:
        rho = np.array(f['density'][()])[..., 0]          # (nspden, n3, n2, n1)
        lat = np.array(f['primitive_vectors'][()])
    dv = abs(np.linalg.det(lat)) / rho[0].size
    out = dict(n_components=int(rho.shape[0]), grid_zyx=list(rho.shape[1:]), n_total=float(rho[0].sum() * dv))
    if rho.shape[0] == 2:
        up = rho[1]
        dn = rho[0] - rho[1]
        m = up - dn
        out.update(n_up=float(up.sum() * dv), n_dn=float(dn.sum() * dv), magnetization=float(m.sum() * dv),
                   absolute_magnetization=float(np.abs(m).sum() * dv))
    return out


def parse_warnings(log):
    """Messages of the '--- !WARNING' YAML blocks ABINIT writes to stdout (the log)."""
    out = []
    for blk in re.findall(r'--- !WARNING\n(.*?)\n\.\.\.', log, re.S):
        m = re.search(r'message: \|\n(.*)', blk, re.S)
        msg = ' '.join(x.strip() for x in (m.group(1) if m else blk).splitlines())
        if msg not in out:
            out.append(msg)
    return out


def parse_abo(abo):
    r = {}
    # toldfe: 'At SCF step   10, etot is converged :'; tolvrs: 'At SCF step   15       vres2   =  ... =>converged.'
    m = re.findall(r'At SCF step\s+(\d+)(?:, etot is converged|.*=>converged)', abo)
    r['converged'] = bool(m) and 'not enough SCF cycles to converge' not in abo
    steps = re.findall(r'^ ETOT\s+(\d+)\s', abo, re.M)
    r['nstep_used'] = int(m[-1]) if m else (int(steps[-1]) if steps else None)
    ng = re.findall(r'^\s+ngfft\s+(\d+)\s+(\d+)\s+(\d+)\s*$', abo, re.M)
    r['ngfft'] = [int(x) for x in ng[-1]] if ng else None
    m = re.findall(r'ecut\(hartree\)=\s*([\d.]+)\s+=> boxcut\(ratio\)=\s*([\d.]+)', abo)
    r['boxcut_ratio'] = float(m[-1][1]) if m else None
    m = re.findall(r'Proc\.\s+0 individual time \(sec\): cpu=\s*([\d.]+)\s+wall=\s*([\d.]+)', abo)
    r['abinit_cpu_s'], r['abinit_wall_s'] = (float(m[-1][0]), float(m[-1][1])) if m else (None, None)
    m = re.findall(r'^\.Version\s+(\S+)\s+of ABINIT', abo, re.M)
    r['version'] = m[0] if m else None
    m = re.search(r'Components of total free energy in Hartree\n(.*?)\n\.\.\.', abo, re.S)
    comp = {}
    if m:
        for line in m.group(1).splitlines():
            if ':' in line:
                k, val = line.split(':', 1)
                try:
                    comp[k.strip()] = float(val)
                except ValueError:
                    pass
    r['components_yaml'] = comp
    hist = re.findall(r'^ ETOT\s+\d+\s+([-\d.E+]+)\s+([-\d.E+]+)', abo, re.M)
    r['etot_history'] = [float(h[0]) for h in hist]
    m = re.findall(r'^\s+etotal\s+([-\d.E+]+)\s*$', abo, re.M)
    r['etotal_echo'] = float(m[-1]) if m else None
    # spin-polarised runs: the magnetisation lines printed after the SCF (last occurrence)
    m = re.findall(r'Total magnetization \(exact up - dn\):\s+(\S+)', abo)
    r['magnetization_exact'] = float(m[-1]) if m else None
    m = re.findall(r'Total magnetization \(from the atomic spheres\):\s+(\S+)', abo)
    r['magnetization_spheres'] = float(m[-1]) if m else None
    blk = re.findall(r'Integrated electronic and magnetization densities in atomic spheres:\n.*?\n Atom .*?\n(.*?)\n -{10}', abo, re.S)
    r['sphere_rows'] = None
    if blk:
        r['sphere_rows'] = []
        for line in blk[-1].splitlines():
            t = line.split()
            r['sphere_rows'].append(dict(atom=int(t[0]), radius_bohr=float(t[1]), up=float(t[2]), dn=float(t[3]),
                                         total=float(t[4]), up_minus_dn=float(t[5])))
    return r


def parse_eig(eig):
    """_EIG text file (5 decimals): list of (kpt, wtk, eigenvalues)."""
    ks = []
    lines = eig.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r'\s*kpt#\s*(\d+), nband=\s*(\d+), wtk=\s*([\d.]+), kpt=\s*(\S+)\s+(\S+)\s+(\S+)', lines[i])
        if m:
            nb = int(m.group(2))
            vals = []
            i += 1
            while len(vals) < nb:
                vals += [float(x) for x in lines[i].split()]
                i += 1
            ks.append(dict(wtk=float(m.group(3)), kpt=[float(m.group(j)) for j in (4, 5, 6)], eig=vals))
        else:
            i += 1
    return ks


def check_kpoints(kpts, wtk, ngkpt, shiftk, tol=1e-10):
    """Verify ABINIT's list is the time-reversal reduction of k = (n + s)/N, n = 0..N-1 (modulo G)."""
    N = np.array(ngkpt)
    s = np.array(shiftk)
    full = np.array([(np.array([i, j, k]) + s) / N for i in range(N[0]) for j in range(N[1]) for k in range(N[2])])
    ntot = len(full)

    def idx(q):
        d = full - q
        d -= np.round(d)
        hit = np.where(np.all(np.abs(d) < tol, axis=1))[0]
        return int(hit[0]) if len(hit) else -1

    covered = np.zeros(ntot, int)
    ok = True
    details = []
    for k, w in zip(kpts, wtk):
        i1, i2 = idx(np.array(k)), idx(-np.array(k))
        if i1 < 0 or i2 < 0:
            ok = False
            details.append(f'k {k} not on grid')
            continue
        orbit = {i1, i2}
        for i in orbit:
            covered[i] += 1
        if abs(w - len(orbit) / ntot) > 1e-12:
            ok = False
            details.append(f'k {k} weight {w} != {len(orbit)}/{ntot}')
    if not np.all(covered == 1):
        ok = False
        details.append('grid not covered exactly once by the {k,-k} orbits')
    return dict(ok=ok, full_grid_size=ntot, n_irreducible=len(kpts), details=details,
                rule='k_red = (n + shiftk)/ngkpt, n_i = 0..N_i-1, taken modulo reciprocal lattice vectors; '
                     'ABINIT keeps one of each {k, -k} pair (kptopt 2), weight = |orbit|/N_total')


def grid_index(kpts, ngkpt, shiftk):
    """Integer n (0 <= n_i < N_i) with k = (n + s)/N modulo 1, for each ABINIT k-point."""
    N = np.array(ngkpt)
    n = np.rint(np.array(kpts) * N - np.array(shiftk)).astype(int) % N
    assert np.allclose(((n + np.array(shiftk)) / N - np.array(kpts) + 0.5) % 1.0 - 0.5, 0, atol=1e-10)
    return n.tolist()


def run_case(case, keep=None, version=None):
    deck, meta = build(case)
    os.makedirs(DECKDIR, exist_ok=True)
    deck_path = os.path.join(DECKDIR, case['tag'] + '.abi')
    with open(deck_path, 'w') as f:
        f.write(deck)
    res = run_deck(deck, case['tag'], keep=keep)
    if res['returncode'] != 0 or res['gsr'] is None:
        raise RuntimeError(f'ABINIT failed for {case["tag"]}: rc={res["returncode"]}\n{res["stderr"]}\n'
                           f'{(res["abo"] or "")[-3000:]}')
    a = parse_abo(res['abo'])
    g = res['gsr']
    metal, nsppol = meta['metal'], meta['nsppol']
    eig3 = g['eigenvalues']              # (nsppol, nkpt, nband)
    occ3 = g['occupations']
    assert eig3.shape[0] == nsppol
    eig = eig3[0]                        # insulators: (nkpt, nband), nsppol = 1
    occ = occ3[0]
    kpts = g['reduced_coordinates_of_kpoints']
    wtk = g['kpoint_weights']
    nk = len(kpts)
    # consistency checks between the parsed sources
    lat_abinit = g['primitive_vectors']
    assert np.array_equal(lat_abinit, meta['lat']), 'ABINIT lattice differs from the one written'
    cart_abinit = g['reduced_atom_positions'] @ lat_abinit
    pos = np.array([p for _, p in meta['atoms']])
    assert np.max(np.abs(cart_abinit - pos)) < 1e-12, 'ABINIT positions differ'
    eigtxt = parse_eig(res['eig'])       # spin up k-points, then spin down
    assert len(eigtxt) == nk * nsppol
    eig_flat = eig3.reshape(nsppol * nk, -1)
    eig_txt_maxdiff = max(np.max(np.abs(np.array(e['eig']) - eig_flat[i])) for i, e in enumerate(eigtxt))
    kpt_txt_maxdiff = max(np.max(np.abs(np.array(e['kpt']) - kpts[i % nk])) for i, e in enumerate(eigtxt))
    assert eig_txt_maxdiff <= 5.01e-6 and kpt_txt_maxdiff <= 5.01e-5, (eig_txt_maxdiff, kpt_txt_maxdiff)
    comp = dict(kinetic=float(g['e_kinetic']), hartree=float(g['e_hartree']), xc=float(g['e_xc']),
                ewald=float(g['e_ewald']), psp_core=float(g['e_corepsp']), local_psp=float(g['e_localpsp']),
                non_local_psp=float(g['e_nlpsp_vfock']))
    etot = float(g['etotal'])
    ysum_map = {'kinetic': 'kinetic', 'hartree': 'hartree', 'xc': 'xc', 'ewald': 'Ewald energy', 'psp_core': 'psp_core',
                'local_psp': 'local_psp', 'non_local_psp': 'non_local_psp'}
    if metal:
        internal = sum(comp.values())
        comp['minus_tsmear_times_entropy'] = float(g['e_entropy'])
        ysum_map['minus_tsmear_times_entropy'] = "'-kT*entropy'"
    yaml_maxdiff = max(abs(comp[k] - a['components_yaml'][v]) for k, v in ysum_map.items())
    assert yaml_maxdiff < 1e-13 * 100, yaml_maxdiff
    assert abs(a['components_yaml']['total_energy'] - etot) < 1e-13 * max(1.0, abs(etot))   # .abo prints 15 digits
    kcheck = check_kpoints(kpts, wtk, case['ngkpt'], case['shiftk'])
    assert kcheck['ok'], kcheck
    nocc = meta['nocc']
    nel = meta['nel']
    if metal:
        mx = metal_extras(case, meta, g, a, res, comp, internal)
    else:
        assert np.allclose(occ[:, :nocc], 2.0) and np.allclose(occ[:, nocc:], 0.0)
        homo = float(eig[:, :nocc].max())
        lumo = float(eig[:, nocc:].min())
        direct_gap = float((eig[:, nocc] - eig[:, nocc - 1]).min())
        assert lumo - homo > 1e-3, f'{case["tag"]}: indirect gap {lumo - homo} Ha: not a clean insulator for fixed occupations'
    psp_core = comp['psp_core']
    assert abs(float(g['nelect']) - nel) < 1e-12
    version = version or a['version']
    description = (f'{meta["desc"]["kind"]}, {case["xc"]}, {meta["table"]}, k {"x".join(map(str, case["ngkpt"]))} '
                   f'shift {" ".join(f"{s:g}" for s in case["shiftk"])}, ecut {case["ecut"]:g} Ha')
    if metal:
        description += (f', occopt {case["occopt"]} ({SMEARING[case["occopt"]][0]}) tsmear {case["tsmear"]:g} Ha, '
                        f'nsppol {nsppol}' + (f', spinat {case["spinat"]}' if nsppol == 2 else ''))
    out = dict(
        tag=case['tag'],
        description=description,
        system=dict(
            name=case['system'],
            lattice_bohr=meta['lat'].tolist(),
            atoms=[dict(element=el, cart_bohr=[float(x) for x in p]) for el, p in meta['atoms']],
            frac=(pos @ np.linalg.inv(meta['lat'])).tolist(),
            volume_bohr3=float(abs(np.linalg.det(meta['lat']))),
            construction=meta['desc'],
        ),
        xc=case['xc'], ixc=meta['ixc'], ixc_deck=meta['ixc_str'],
        pseudo=meta['table'],
        pseudo_files={el: f'psp/{fn}' for el, fn in meta['psp_files'].items()},
        valence={el: meta['zion'][el] for el in meta['types']},
        gth_params_pyscf={el: meta['pp'][el] for el in meta['types']},
        n_electrons=nel, n_occupied_bands=nocc, nband=meta['nband'],
        ecut_Ha=float(case['ecut']), ecutsm_Ha=float(g['ecutsm']),
        ngkpt=case['ngkpt'], shiftk=case['shiftk'], kptopt=COMMON['kptopt'], nsym=COMMON['nsym'], istwfk=1,
        occopt=case.get('occopt', COMMON['occopt']))
    if metal:
        out.update(mx['settings'])
    out.update(
        toldfe_Ha=COMMON['toldfe'], nstep_max=COMMON['nstep'],
        ngfft=a['ngfft'], boxcut_ratio=a['boxcut_ratio'],
        etotal_Ha=etot,
        energy_components_Ha=comp,
        components_sum_minus_etotal_Ha=sum(comp.values()) - etot,
        band_energy_Ha=float(g['e_eigenvalues']),
        fermie_Ha=float(g['fermie']))
    if metal:
        out.update(mx['energies'])
    else:
        out.update(homo_Ha=homo, lumo_Ha=lumo, gap_Ha=lumo - homo, min_direct_gap_Ha=direct_gap)
    out.update(
        psp_core_Ha=psp_core,
        eigenvalue_shift_psp_core_over_nel_Ha=psp_core / nel,
        nkpt=nk,
        kpoints_reduced=kpts.tolist(),
        kpoint_weights=wtk.tolist(),
        kpoint_grid_index=grid_index(kpts, case['ngkpt'], case['shiftk']),
        npw_per_kpt=[int(x) for x in g['number_of_coefficients']],
        eigenvalues_Ha=(eig3 if metal else eig).tolist(),
        occupations=(occ3 if metal else occ).tolist(),
        kpoint_check=kcheck)
    if metal:
        out.update(mx['bands'])
    out.update(
        forces_cart_Ha_per_bohr=g['cartesian_forces'].tolist(),
        stress_voigt_Ha_per_bohr3=g['cartesian_stress_tensor'].tolist(),
        nstep_used=a['nstep_used'], converged=a['converged'],
        scf_last_deltae_Ha=float(g['deltae']), scf_residm=float(g['residm']),
        etot_history_Ha=a['etot_history'],
        wall_time_s=res['wall'], abinit_wall_s=a['abinit_wall_s'], abinit_cpu_s=a['abinit_cpu_s'],
        abinit_version=version,
        abinit_warnings=res['warnings'],
        deck=f'decks/{case["tag"]}.abi',
        parse_checks=dict(eig_file_vs_gsr_max_abs_diff=float(eig_txt_maxdiff),
                          abo_yaml_components_vs_gsr_max_abs_diff=float(yaml_maxdiff),
                          lattice_written_equals_abinit=True, positions_max_abs_diff_bohr=float(np.max(np.abs(cart_abinit - pos)))),
    )
    if metal:
        out['parse_checks'].update(mx['parse_checks'])
    return out


def metal_extras(case, meta, g, a, res, comp, internal):
    """Keys of a metal case that the insulator schema does not have (grouped by where they go in the case dict)."""
    occopt, tsmear, nsppol = case['occopt'], case['tsmear'], meta['nsppol']
    maxocc = 2.0 / nsppol
    eig3, occ3, wtk = g['eigenvalues'], g['occupations'], g['kpoint_weights']
    nel = meta['nel']
    fermie = float(g['fermie'])
    entropy = float(g['entropy'])
    assert float(g['occopt']) == occopt and abs(float(g['tsmear']) - tsmear) < 1e-15
    assert abs(float(g['e_entropy']) + tsmear * entropy) < 1e-15, 'e_entropy != -tsmear*entropy'
    assert abs(a['components_yaml']['internal'] - internal) < 1e-13 * max(10.0, abs(internal))
    w = wtk[None, :, None]
    nel_occ = float((w * occ3).sum())
    assert abs(nel_occ - nel) < 1e-10, nel_occ
    # closed-form smearing functions (abinit_smearing.py) vs ABINIT's tabulated ones, on ABINIT's final eigenvalues
    f_an, s_an = abinit_smearing.occupations(occopt, tsmear, eig3, fermie, maxocc)
    nel_an, s_tot_an, _ = abinit_smearing.totals(occopt, tsmear, eig3, wtk, fermie, nsppol)
    mu_an = abinit_smearing.fermi_level(occopt, tsmear, eig3, wtk, nel, nsppol)
    sm_check = dict(
        formula='abinit_smearing.occ_entropy (closed forms; README "Smearing in ABINIT 9.6.2"), x = (fermie - eig)/tsmear, '
                'occ = maxocc*f(x), entropy = sum_k wtk sum_n maxocc*s(x)',
        maxocc=maxocc,
        occupations_max_abs_diff=float(np.max(np.abs(f_an - occ3))),
        entropy_recomputed=s_tot_an, entropy_diff=s_tot_an - entropy,
        minus_tsmear_times_entropy_diff_Ha=-tsmear * (s_tot_an - entropy),
        nelect_recomputed_diff=nel_an - nel,
        fermie_recomputed_Ha=mu_an, fermie_recomputed_diff_Ha=mu_an - fermie)
    assert sm_check['occupations_max_abs_diff'] < 1e-11 and abs(sm_check['entropy_diff']) < 1e-10, sm_check
    settings = dict(
        smearing=SMEARING[occopt][0], tsmear_Ha=float(tsmear), nsppol=nsppol,
        spinat=case['spinat'] if nsppol == 2 else None,
        magmoms_muB=[sp[2] for sp in case['spinat']] if nsppol == 2 else None,
        nband_rule='explicit per case: n_occupied_bands + >= 50 % (checked: top band occupation, top_band_max_occupation)',
        scf_extra_variables=case.get('scf_extra') or {})
    energies = dict(
        internal_energy_Ha=internal,
        smearing_entropy=entropy,
        etotal_sigma0_Ha=None,
        n_electrons_from_occupations=nel_occ,
        smearing_check=sm_check)
    d = res.get('den')
    if nsppol == 2:
        up = float((wtk[:, None] * occ3[0]).sum())
        dn = float((wtk[:, None] * occ3[1]).sum())
        mag = dict(
            total_magnetization_muB=up - dn, spin_up_electrons=up, spin_down_electrons=dn,
            total_magnetization_abo_muB=a['magnetization_exact'],
            absolute_magnetization_muB=d['absolute_magnetization'] if d else None,
            density_integrals=d,
            sphere_magnetization=dict(total_muB=a['magnetization_spheres'], atoms=a['sphere_rows'],
                                      note='ABINIT ratsph spheres (approximate local moments), printed in the .abo'))
        assert abs(mag['total_magnetization_muB'] - a['magnetization_exact']) < 2e-6
        assert d and abs(d['magnetization'] - mag['total_magnetization_muB']) < 1e-8 and abs(d['n_total'] - nel) < 1e-8, d
    else:
        mag = dict(total_magnetization_muB=None, absolute_magnetization_muB=None)
    top = float(np.max(np.abs(occ3[:, :, -1])))
    bands = dict(top_band_max_occupation=top, **mag)
    assert top < 1e-9, f'{case["tag"]}: top band occupation {top}: increase nband'
    return dict(settings=settings, energies=energies, bands=bands,
                parse_checks=dict(gsr_e_entropy_equals_minus_tsmear_entropy=True,
                                  abo_internal_vs_sum_of_components=float(a['components_yaml']['internal'] - internal)))


def header(version, which='insulators'):
    import pyscf
    h = dict(
        description='ABINIT 9.6.2 plane-wave reference data for SolidXC (insulators, occopt 1). GTH pseudopotentials '
                    'written from PySCF tables as ABINIT pspcod=10 files (psp/). See README.md.',
        generator=dict(script='python/tests/reference/abinit/run_abinit.py', command='python3 run_abinit.py',
                       abinit_version=version, pyscf_version=pyscf.__version__, numpy_version=np.__version__,
                       python=platform.python_version(), date=datetime.datetime.now().isoformat(timespec='seconds'),
                       parallel='serial ABINIT, OMP_NUM_THREADS=1, cases run one at a time'),
        units='Hartree atomic units (Ha, bohr); BOHR_ANGSTROM = 0.52917721092 (PySCF) used for every Angstrom -> bohr conversion',
        bohr_angstrom=BOHR_ANGSTROM,
        common_settings=dict(occopt=1, kptopt=2, nsym=1, istwfk='*1', toldfe=1e-12, nstep=200, chksymbreak=0,
                             nband='n_occupied + 4', ecutsm=0, boxcutmin='ABINIT default (2.0)', fftalg='ABINIT default (112)',
                             mqgrid='ABINIT default (3001)', diemac=DIEMAC, spin='nsppol 1 (closed shell)'),
        conventions=dict(
            lattice='lattice_bohr rows are the lattice vectors a1, a2, a3 (ABINIT rprim with acell 1 1 1)',
            positions='atoms[i].cart_bohr are Cartesian bohr, fed to ABINIT as xcart',
            kpoints='kpoints_reduced in units of the reciprocal lattice vectors b_i (a_i.b_j = 2 pi delta_ij); grid '
                    'k = (n + shiftk)/ngkpt, n = 0..N-1, Gamma-centred for shiftk 0; kptopt 2 keeps one k of each {k,-k} '
                    'pair (time reversal only, no spatial symmetry: nsym 1), weights sum to 1',
            eigenvalues='eigenvalues_Ha[ik][band], all nband bands, ascending; ABINIT convention: the G=0 term of the local '
                        'pseudopotential (sum_a alpha_a/Omega) is NOT in the potential (it is booked as the psp_core energy). '
                        'QE/PySCF-convention eigenvalue = ABINIT eigenvalue + eigenvalue_shift_psp_core_over_nel_Ha (= psp_core_Ha/n_electrons)',
            energies='etotal_Ha = sum(energy_components_Ha); hartree and local_psp exclude G=0; ewald uses point ions '
                     '(charge = valence) + neutralising background; psp_core = n_electrons * sum_a alpha_a / Omega',
            fermie='fermie_Ha is ABINIT\'s Fermi level = HOMO for occopt 1 (same as homo_Ha), ABINIT G=0 convention',
            stress='stress_voigt_Ha_per_bohr3 = (xx, yy, zz, yz, xz, xy)',
            ngfft='ABINIT\'s FFT grid for density/potential (chosen by ABINIT with boxcutmin 2; nsym 1 so no symmetry '
                  'constraint). SolidXC should use exactly this grid',
        ),
        cases=[],
    )
    if which == 'metals':
        h = metals_header(h)
    return h


def metals_header(h):
    """Header of abinit_metals.json: the insulator header with the metal-specific texts."""
    h['description'] = ('ABINIT 9.6.2 plane-wave reference data for SolidXC (metals and a magnet: smeared occupations, '
                        'occopt 3/4/6/7, nsppol 1 and 2). GTH pseudopotentials written from PySCF tables as ABINIT '
                        'pspcod=10 files (psp/). See README.md, section "Metals".')
    h['generator']['command'] = 'python3 run_abinit.py --set metals'
    h['common_settings'] = dict(
        kptopt=2, nsym=1, istwfk='*1', toldfe=1e-12, nstep=200, chksymbreak=0, ecutsm=0,
        nband='explicit per case (n_occupied_bands + >= 50 %); the top band is empty (top_band_max_occupation)',
        boxcutmin='ABINIT default (2.0)', fftalg='ABINIT default (112)', mqgrid='ABINIT default (3001)',
        diemac='ABINIT default (1e6, metallic preconditioner)',
        scf_mixing='ABINIT defaults except where scf_extra_variables says otherwise (mixing does not change the converged state)',
        smearing={str(k): v[0] for k, v in SMEARING.items()},
        spin='nsppol per case; nsppol 2 uses spinat (initial moment, magmoms_muB) and also writes the density '
             '(prtden 1, iomode 3) so that |m(r)| can be integrated')
    c = h['conventions']
    c['eigenvalues'] = ('eigenvalues_Ha[isppol][ik][band] (ALWAYS spin-resolved in this file, also for nsppol 1; the '
                        'insulator file has [ik][band]), all nband bands, ascending; ABINIT G=0 convention: '
                        'QE/PySCF-convention eigenvalue = ABINIT eigenvalue + eigenvalue_shift_psp_core_over_nel_Ha '
                        '(= psp_core_Ha/n_electrons). occupations[isppol][ik][band] as ABINIT used them (0..2 for '
                        'nsppol 1, 0..1 for nsppol 2; occopt 4/6 may give values slightly outside)')
    c['energies'] = ('etotal_Ha = sum(energy_components_Ha) = internal_energy_Ha + minus_tsmear_times_entropy: ABINIT etotal '
                     'is the FREE energy F = E - tsmear*S for occopt 3..7. internal_energy_Ha = E = sum of the 7 '
                     'insulator-style components (ABINIT "internal"). energy_components_Ha.minus_tsmear_times_entropy = '
                     'ABINIT "-kT*entropy" = GSR e_entropy = -tsmear*smearing_entropy. smearing_entropy (GSR "entropy", '
                     'dimensionless) = sum_s sum_k wtk sum_n maxocc*s(x_nk) with maxocc = 2/nsppol, so it includes the '
                     'spin factor 2 for nsppol 1. ABINIT 9.6.2 prints no sigma->0 extrapolated energy for a single '
                     'smearing (etotal_sigma0_Ha = null). hartree and local_psp exclude G=0; ewald = point ions + '
                     'background; psp_core = n_electrons * sum_a alpha_a / Omega')
    c['fermie'] = ('fermie_Ha: ABINIT\'s Fermi level (one for all k and both spins), ABINIT G=0 convention (add '
                   'eigenvalue_shift_psp_core_over_nel_Ha for the QE/PySCF convention). Found by bisection so that '
                   'sum wtk*occ = n_electrons to ~1e-14 relative')
    c['smearing'] = ('x = (fermie - eig)/tsmear (ABINIT\'s sign); occ = maxocc*f(x); S = sum wtk*maxocc*s(x); for occopt 3 '
                     'tsmear is kT exactly. f, s for each occopt in README "Smearing in ABINIT 9.6.2" and '
                     'abinit_smearing.py; smearing_check compares them with ABINIT\'s own occupations/entropy')
    c['magnetization'] = ('nsppol 2 only (null otherwise): total_magnetization_muB = sum_k wtk (sum_n occ_up - occ_dn) in '
                          'muB per cell (= ABINIT "Total magnetization (exact up - dn)"); absolute_magnetization_muB = '
                          'integral |rho_up - rho_dn| over the cell from ABINIT\'s own density on its FFT grid (DEN.nc; '
                          'ABINIT does not print it); magmoms_muB = spinat z per atom (initial moment, muB = n_up - n_dn)')
    return h


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--set', default='insulators', choices=sorted(CASE_SETS), help='case set (default: insulators)')
    ap.add_argument('--only', nargs='*')
    ap.add_argument('--decks-only', action='store_true')
    ap.add_argument('--sanity', action='store_true')
    ap.add_argument('--list', action='store_true')
    ap.add_argument('--keep', default=None, help='copy each raw ABINIT run directory into KEEP/<tag>/')
    a = ap.parse_args(argv)
    cases = CASE_SETS[a.set]()
    out_json = {'insulators': OUT_JSON, 'metals': METALS_JSON}[a.set]
    if a.list:
        for c in cases:
            print(c['tag'])
        return
    # psp files first (verbatim from PySCF)
    for el_table in sorted({(el, XC[c['xc']][2]) for c in cases for el, _ in structure(c['system'])[1]}):
        write_psp10.write(*el_table)
    if a.decks_only:
        os.makedirs(DECKDIR, exist_ok=True)
        for c in cases:
            deck, _ = build(c)
            open(os.path.join(DECKDIR, c['tag'] + '.abi'), 'w').write(deck)
        return
    if a.sanity:
        import sanity_checks
        (sanity_checks.main_metals if a.set == 'metals' else sanity_checks.main)(sys.modules[__name__])
        return
    version = abinit_version()
    data = header(version, a.set)
    if a.only and os.path.exists(out_json):
        old = json.load(open(out_json))
        data['cases'] = old.get('cases', [])
    todo = [c for c in cases if not a.only or c['tag'] in a.only]
    for c in todo:
        r = run_case(c, keep=a.keep, version=version)
        data['cases'] = [x for x in data['cases'] if x['tag'] != c['tag']] + [r]
        order = [x['tag'] for x in cases]
        data['cases'].sort(key=lambda x: order.index(x['tag']) if x['tag'] in order else 999)
        with open(out_json, 'w') as f:
            json.dump(data, f, indent=1)
        extra = ''
        if is_metal(c):
            extra = f' fermie {r["fermie_Ha"]:.6f}'
            if r['nsppol'] == 2:
                extra += f' M {r["total_magnetization_muB"]:.6f} |M| {r["absolute_magnetization_muB"]:.6f}'
        print(f'{r["tag"]:36s} ngfft {r["ngfft"]} nk {r["nkpt"]:3d} etotal {r["etotal_Ha"]:.12f}{extra} '
              f'nstep {r["nstep_used"]} conv {r["converged"]} wall {r["wall_time_s"]:.1f}s', flush=True)


if __name__ == '__main__':
    main()
