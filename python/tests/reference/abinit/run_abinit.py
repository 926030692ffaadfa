#!/usr/bin/env python3
"""ABINIT 9.6.2 reference data for SolidXC insulator tests (GTH pseudopotentials from PySCF's tables).

For every case this script
  1. builds the ABINIT input deck and writes it to decks/<tag>.abi (checked in),
  2. runs `abinit <tag>.abi` in a temporary directory (serial, OMP_NUM_THREADS=1, one case at a time),
  3. parses <tag>o_GSR.nc (full double precision; read with h5py) and the .abo / _EIG text files,
  4. writes abinit_insulators.json.

Usage (from anywhere):
    python3 run_abinit.py                 # regenerate psp files, decks and abinit_insulators.json (all cases)
    python3 run_abinit.py --only TAG ...  # run a subset; the other cases already in the JSON are kept
    python3 run_abinit.py --decks-only    # only (re)write decks/*.abi
    python3 run_abinit.py --sanity        # sanity checks -> abinit_sanity_checks.json (decks in decks/sanity/)
    python3 run_abinit.py --list

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
import write_psp10  # noqa: E402

PSPDIR = os.path.join(HERE, 'psp')
DECKDIR = os.path.join(HERE, 'decks')
OUT_JSON = os.path.join(HERE, 'abinit_insulators.json')
SANITY_JSON = os.path.join(HERE, 'abinit_sanity_checks.json')
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
    raise ValueError(name)


# ----------------------------------------------------------------------------------------------- cases
def case_list():
    C = []

    def add(system, xc, ngkpt, shiftk, ecut):
        xtag = xc.replace(',', '-')
        if not any(shiftk):
            sh = ''
        elif len(set(shiftk)) == 1:
            sh = f'_sh{shiftk[0]:g}'.replace('.', 'p')
        else:
            sh = ('_sh' + '-'.join(f'{s:g}' for s in shiftk)).replace('.', 'p')
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
        occopt=str(COMMON['occopt']), nband=str(nband),
        kptopt=str(COMMON['kptopt']), ngkpt=' '.join(map(str, case['ngkpt'])), nshiftk='1',
        shiftk=' '.join(f'{s:g}' for s in case['shiftk']), istwfk=COMMON['istwfk'],
        nsym=str(COMMON['nsym']), chksymbreak=str(COMMON['chksymbreak']),
        nstep=str(COMMON['nstep']), toldfe=f'{COMMON["toldfe"]:g}', diemac=f'{DIEMAC[base]:g}',
        pp_dirpath=f'"{pp_dirpath}"', pseudos='"' + ', '.join(psp_files[t] for t in types) + '"',
        prteig='1', prtwf='0', prtden='0',
    )
    for k, val in (overrides or {}).items():
        if val is None:
            v.pop(k, None)
        else:
            v[k] = str(val)
    head = [f'# SolidXC ABINIT reference case {case["tag"]}',
            f'# {desc["kind"]}; xc {xc} (ixc {ixc}); {table}; ' + ', '.join(f'{e} q{zion[e]}' for e in types),
            '# generated by python/tests/reference/abinit/run_abinit.py; geometry in bohr (acell 1), Cartesian positions']
    deck = '\n'.join(head) + '\n' + '\n'.join(f'{k} {val}' for k, val in v.items()) + '\n'
    meta = dict(lat=lat, atoms=atoms, desc=desc, ixc=ixc, ixc_str=ixc_str, table=table, types=types, zion=zion,
                nel=nel, nocc=nocc, nband=nband, psp_files=psp_files, pp=pp, vars=v)
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
        if keep:
            dst = os.path.join(keep, name)
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(run, dst)
        return dict(returncode=p.returncode, stderr=p.stderr[-3000:], stdout_tail=p.stdout[-3000:], abo=abo, eig=eig,
                    gsr=gsr, wall=wall, warnings=parse_warnings(p.stdout))
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
                  'deltae', 'res2', 'occopt']:
            if k in f:
                out[k] = np.array(f[k][()])
        out['codvsn'] = f['codvsn'][()].tobytes().decode().strip() if 'codvsn' in f else None
        out['abinit_version_attr'] = f.attrs.get('abinit_version')
        if isinstance(out['abinit_version_attr'], bytes):
            out['abinit_version_attr'] = out['abinit_version_attr'].decode()
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
    eig = g['eigenvalues'][0]            # (nkpt, nband), nsppol = 1
    occ = g['occupations'][0]
    kpts = g['reduced_coordinates_of_kpoints']
    wtk = g['kpoint_weights']
    nk = len(kpts)
    # consistency checks between the parsed sources
    lat_abinit = g['primitive_vectors']
    assert np.array_equal(lat_abinit, meta['lat']), 'ABINIT lattice differs from the one written'
    cart_abinit = g['reduced_atom_positions'] @ lat_abinit
    pos = np.array([p for _, p in meta['atoms']])
    assert np.max(np.abs(cart_abinit - pos)) < 1e-12, 'ABINIT positions differ'
    eigtxt = parse_eig(res['eig'])
    assert len(eigtxt) == nk
    eig_txt_maxdiff = max(np.max(np.abs(np.array(e['eig']) - eig[i])) for i, e in enumerate(eigtxt))
    kpt_txt_maxdiff = max(np.max(np.abs(np.array(e['kpt']) - kpts[i])) for i, e in enumerate(eigtxt))
    assert eig_txt_maxdiff <= 5.01e-6 and kpt_txt_maxdiff <= 5.01e-5, (eig_txt_maxdiff, kpt_txt_maxdiff)
    comp = dict(kinetic=float(g['e_kinetic']), hartree=float(g['e_hartree']), xc=float(g['e_xc']),
                ewald=float(g['e_ewald']), psp_core=float(g['e_corepsp']), local_psp=float(g['e_localpsp']),
                non_local_psp=float(g['e_nlpsp_vfock']))
    etot = float(g['etotal'])
    ysum_map = {'kinetic': 'kinetic', 'hartree': 'hartree', 'xc': 'xc', 'ewald': 'Ewald energy', 'psp_core': 'psp_core',
                'local_psp': 'local_psp', 'non_local_psp': 'non_local_psp'}
    yaml_maxdiff = max(abs(comp[k] - a['components_yaml'][v]) for k, v in ysum_map.items())
    assert yaml_maxdiff < 1e-13 * 100, yaml_maxdiff
    assert abs(a['components_yaml']['total_energy'] - etot) < 1e-13
    kcheck = check_kpoints(kpts, wtk, case['ngkpt'], case['shiftk'])
    assert kcheck['ok'], kcheck
    nocc = meta['nocc']
    assert np.allclose(occ[:, :nocc], 2.0) and np.allclose(occ[:, nocc:], 0.0)
    homo = float(eig[:, :nocc].max())
    lumo = float(eig[:, nocc:].min())
    direct_gap = float((eig[:, nocc] - eig[:, nocc - 1]).min())
    assert lumo - homo > 1e-3, f'{case["tag"]}: indirect gap {lumo - homo} Ha: not a clean insulator for fixed occupations'
    psp_core = comp['psp_core']
    nel = meta['nel']
    assert abs(float(g['nelect']) - nel) < 1e-12
    version = version or a['version']
    out = dict(
        tag=case['tag'],
        description=f'{meta["desc"]["kind"]}, {case["xc"]}, {meta["table"]}, k {"x".join(map(str, case["ngkpt"]))} '
                    f'shift {" ".join(f"{s:g}" for s in case["shiftk"])}, ecut {case["ecut"]:g} Ha',
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
        occopt=COMMON['occopt'], toldfe_Ha=COMMON['toldfe'], nstep_max=COMMON['nstep'],
        ngfft=a['ngfft'], boxcut_ratio=a['boxcut_ratio'],
        etotal_Ha=etot,
        energy_components_Ha=comp,
        components_sum_minus_etotal_Ha=sum(comp.values()) - etot,
        band_energy_Ha=float(g['e_eigenvalues']),
        fermie_Ha=float(g['fermie']),
        homo_Ha=homo, lumo_Ha=lumo, gap_Ha=lumo - homo, min_direct_gap_Ha=direct_gap,
        psp_core_Ha=psp_core,
        eigenvalue_shift_psp_core_over_nel_Ha=psp_core / nel,
        nkpt=nk,
        kpoints_reduced=kpts.tolist(),
        kpoint_weights=wtk.tolist(),
        kpoint_grid_index=grid_index(kpts, case['ngkpt'], case['shiftk']),
        npw_per_kpt=[int(x) for x in g['number_of_coefficients']],
        eigenvalues_Ha=eig.tolist(),
        occupations=occ.tolist(),
        kpoint_check=kcheck,
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
    return out


def header(version):
    import pyscf
    return dict(
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--only', nargs='*')
    ap.add_argument('--decks-only', action='store_true')
    ap.add_argument('--sanity', action='store_true')
    ap.add_argument('--list', action='store_true')
    ap.add_argument('--keep', default=None, help='copy each raw ABINIT run directory into KEEP/<tag>/')
    a = ap.parse_args(argv)
    cases = case_list()
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
        sanity_checks.main(sys.modules[__name__])
        return
    version = abinit_version()
    data = header(version)
    if a.only and os.path.exists(OUT_JSON):
        old = json.load(open(OUT_JSON))
        data['cases'] = old.get('cases', [])
    todo = [c for c in cases if not a.only or c['tag'] in a.only]
    for c in todo:
        r = run_case(c, keep=a.keep, version=version)
        data['cases'] = [x for x in data['cases'] if x['tag'] != c['tag']] + [r]
        order = [x['tag'] for x in cases]
        data['cases'].sort(key=lambda x: order.index(x['tag']) if x['tag'] in order else 999)
        with open(OUT_JSON, 'w') as f:
            json.dump(data, f, indent=1)
        print(f'{r["tag"]:36s} ngfft {r["ngfft"]} nk {r["nkpt"]:3d} etotal {r["etotal_Ha"]:.12f} '
              f'nstep {r["nstep_used"]} conv {r["converged"]} wall {r["wall_time_s"]:.1f}s', flush=True)


if __name__ == '__main__':
    main()
