#!/usr/bin/env python3
"""ABINIT 9.6.2 reference forces for SolidXC (issue 6): strained, low-symmetry cells with displaced atoms.

For every case this script writes the deck to decks/<tag>.abi (checked in; `cd decks && abinit <tag>.abi` works),
runs ABINIT serially in a temporary directory with the GTH psp10 files of ../psp, reads the GSR file at full double
precision and writes abinit_forces.json: the Cartesian forces (Ha/bohr) and the energy, with the settings SolidXC
must use to compare (lattice, Cartesian positions, ecut, k-grid, ngfft, smearing, spin).

Usage:  python3 run_abinit_forces.py [--only TAG ...] [--decks-only]

Settings: geometry as `acell 1 1 1`, `rprim` = lattice rows (bohr), `xcart` (bohr), numbers written with repr();
`kptopt 2` with `nsym 1` (no spatial symmetry: the cells have none but inversion through the atoms' midpoint, whose
translation is off the FFT grid, which SolidXC does not use either); `tolvrs 1e-18` so the forces are converged far
below 1e-5 Ha/bohr; `istwfk *1`, `ecutsm 0`. ABINIT removes the mean force (the drift, here the egg-box effect of the
FFT grid) from its Cartesian forces and prints it as 'avg' (`drift_Ha_per_bohr`), so the comparison removes the mean
from SolidXC's forces too.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PARENT = os.path.dirname(HERE)
sys.path.insert(0, PARENT)
import run_abinit  # noqa: E402  (deck conventions, runner and GSR reader of the energy references)
import write_psp10  # noqa: E402

DECKDIR = os.path.join(HERE, 'decks')
OUT_JSON = os.path.join(HERE, 'abinit_forces.json')
BOHR_ANGSTROM = run_abinit.BOHR_ANGSTROM

# The strain of the strained-Si energy references (see ../README.md), and displacements of both atoms.
STRAIN = np.array(run_abinit.STRAIN)
DISPLACEMENTS = {
    'si': [[-0.03, 0.04, 0.05], [0.05, -0.03, 0.02]],
    'al': [[0.02, -0.05, 0.03], [0.11, -0.07, 0.06]],
    'fe': [[0.03, 0.02, -0.04], [0.04, -0.03, 0.02]],
}


def structure(name):
    """(lattice rows bohr, [(element, cart bohr)], text)."""
    if name == 'si':
        lat = run_abinit.fcc_prim(5.431 / BOHR_ANGSTROM) @ STRAIN.T
        frac = np.array([[0.0, 0.0, 0.0], [0.25, 0.25, 0.25]])
        text = 'Si diamond a = 5.431 A, lattice rows (a/2 [[0,1,1],[1,0,1],[1,1,0]]) @ F.T'
        element = 'Si'
    elif name == 'al':
        a1, a2, a3 = run_abinit.fcc_prim(4.05 / BOHR_ANGSTROM)
        lat = np.array([2 * a1, a2, a3]) @ STRAIN.T
        frac = np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]])
        text = 'fcc Al a = 4.05 A doubled along a1 (rows 2 a1, a2, a3) @ F.T'
        element = 'Al'
    elif name == 'fe':
        lat = (2.87 / BOHR_ANGSTROM) * np.eye(3) @ STRAIN.T
        frac = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
        text = 'bcc Fe a = 2.87 A, cubic two-atom cell, rows a I @ F.T'
        element = 'Fe'
    else:
        raise ValueError(name)
    cart = frac @ lat + np.array(DISPLACEMENTS[name])
    text += f'; F = {STRAIN.tolist()}; atoms at frac {frac.tolist()} (Cartesian) + displacements {DISPLACEMENTS[name]} bohr'
    return lat, [(element, cart[0]), (element, cart[1])], text


def case_list():
    cases = []
    for xc in ('lda,pw', 'pbe'):
        cases.append(dict(system='si', xc=xc, ngkpt=[2, 2, 2], ecut=15, nband=8))
        cases.append(dict(system='al', xc=xc, ngkpt=[2, 3, 3], ecut=12, nband=8, occopt=3, tsmear=0.01))
    # From spinat alone ABINIT's SCF ends non-magnetic here (also with spinat 3.5, diemix 0.3 or diemixmag 2), 45 mHa
    # above the ferromagnetic state SolidXC finds from magmoms 2, 2. Dataset 1 therefore converges loosely at a fixed
    # total moment (spinmagntarget 6.4 muB), and dataset 2, the reference, starts from its wavefunctions without the
    # constraint: it relaxes to the free ferromagnetic state (6.42 muB).
    cases.append(dict(system='fe', xc='lda,pw', ngkpt=[2, 2, 2], ecut=20, nband=16, occopt=3, tsmear=0.01,
                      nsppol=2, magmoms=[2.0, 2.0], table='gth-pade-q8',
                      datasets=dict(ndtset='2', spinmagntarget1='6.4', tolvrs1='1e-8', prtwf1='1', getwfk2='1')))
    for c in cases:
        k = 'x'.join(map(str, c['ngkpt']))
        smear = f'_fd{c["tsmear"]:g}'.replace('.', 'p') if 'occopt' in c else ''
        spin = '_spin' if c.get('nsppol', 1) == 2 else ''
        c['tag'] = f'{c["system"]}_displaced_{c["xc"].replace(",", "-")}{smear}_k{k}_ec{c["ecut"]:g}{spin}'
    return cases


def fmt(x):
    return repr(float(x))


def build(case, pp_dirpath='../../psp'):
    lat, atoms, text = structure(case['system'])
    ixc_str, ixc, default_table = run_abinit.XC[case['xc']]
    table = case.get('table', default_table)
    element = atoms[0][0]
    psp = f'{element}.{table}.psp10'
    if not os.path.exists(os.path.join(run_abinit.PSPDIR, psp)):
        write_psp10.write(element, table)
    from pyscf.data.elements import charge
    v = dict(acell='1 1 1', rprim='\n      '.join(' '.join(fmt(x) for x in row) for row in lat),
             natom=str(len(atoms)), ntypat='1', typat='1 1', znucl=str(charge(element)),
             xcart='\n      '.join(' '.join(fmt(x) for x in pos) for _, pos in atoms),
             ecut=f'{case["ecut"]:g}', ixc=ixc_str, nband=str(case['nband']))
    if 'occopt' in case:
        v.update(occopt=str(case['occopt']), tsmear=f'{case["tsmear"]:g}')
    else:
        v['occopt'] = '1'
    if case.get('nsppol', 1) == 2:
        v.update(nsppol='2', spinat='\n      '.join(f'0 0 {m:g}' for m in case['magmoms']))
    v.update(kptopt='2', ngkpt=' '.join(map(str, case['ngkpt'])), nshiftk='1', shiftk='0 0 0', istwfk='*1',
             nsym='1', chksymbreak='0', nstep='300', tolvrs='1e-18', optforces='1', optstress='1',
             pp_dirpath=f'"{pp_dirpath}"', pseudos=f'"{psp}"', prtwf='0', prtden='0', prteig='0')
    v.update(case.get('datasets', {}))
    head = [f'# SolidXC ABINIT force reference {case["tag"]}', f'# {text}; xc {case["xc"]} (ixc {ixc}); {table}',
            '# generated by python/tests/reference/abinit/forces/run_abinit_forces.py; bohr, Cartesian positions']
    deck = '\n'.join(head) + '\n' + '\n'.join(f'{k} {val}' for k, val in v.items()) + '\n'
    return deck, dict(lattice=lat, atoms=atoms, text=text, ixc=ixc, table=table, psp=psp)


def run_case(case):
    deck, meta = build(case)
    os.makedirs(DECKDIR, exist_ok=True)
    with open(os.path.join(DECKDIR, case['tag'] + '.abi'), 'w') as f:
        f.write(deck)
    # run_abinit.run_deck lays out tmp/psp and tmp/run/run.abi, so the deck must say "../psp" there.
    keep = tempfile.mkdtemp(prefix='solidxc_abinit_forces_')
    try:
        res = run_abinit.run_deck(deck.replace('"../../psp"', '"../psp"'), case['tag'], keep=keep)
        # With datasets the last one is the reference.
        last = f'runo_DS{case["datasets"]["ndtset"]}_GSR.nc' if 'datasets' in case else 'runo_GSR.nc'
        g = run_abinit.read_gsr(os.path.join(keep, case['tag'], last))
    finally:
        shutil.rmtree(keep, ignore_errors=True)
    if res['returncode'] != 0 or g is None:
        raise RuntimeError(f'ABINIT failed for {case["tag"]}: {res["stderr"]}\n{(res["abo"] or "")[-3000:]}')
    lat = g['primitive_vectors']
    assert np.array_equal(lat, meta['lattice'])
    positions = np.array([p for _, p in meta['atoms']])
    assert np.abs(g['reduced_atom_positions'] @ lat - positions).max() < 1e-12
    forces = np.array(g['cartesian_forces'])
    # GSR's cartesian_stress_tensor is Voigt (xx, yy, zz, yz, xz, xy), Ha/bohr^3.
    v = np.array(g['cartesian_stress_tensor'], dtype=float)
    stress = np.array([[v[0], v[5], v[4]], [v[5], v[1], v[3]], [v[4], v[3], v[2]]])
    drift = parse_drift(res['abo'])
    nspin = case.get('nsppol', 1)
    out = dict(tag=case['tag'], description=meta['text'], xc=case['xc'], ixc=meta['ixc'], pseudo=meta['table'],
               pseudo_file=f'psp/{meta["psp"]}',
               lattice_bohr=lat.tolist(), atoms=[dict(element=e, cart_bohr=p.tolist()) for e, p in meta['atoms']],
               ecut_Ha=case['ecut'], ngkpt=case['ngkpt'], shiftk=[0.0, 0.0, 0.0], nband=case['nband'],
               ngfft=None, smearing='fermi-dirac' if case.get('occopt') == 3 else None,
               tsmear_Ha=case.get('tsmear'), nsppol=nspin, magmoms_muB=case.get('magmoms'),
               etotal_Ha=float(g['etotal']), forces_cart_Ha_per_bohr=forces.tolist(), drift_Ha_per_bohr=drift,
               stress_cart_Ha_per_bohr3=stress.tolist(),
               residual_res2=float(g['res2']) if 'res2' in g else None, abinit_wall_s=res['wall'],
               deck=f'decks/{case["tag"]}.abi', abinit_warnings=res['warnings'])
    if nspin == 2:
        out['total_magnetization_muB'] = float(re.findall(r'Total magnetization \(exact up - dn\):\s+(\S+)', res['abo'])[-1])
    out['ngfft'] = parse_ngfft(res['abo'])
    return out


def parse_drift(abo):
    """ABINIT's 'avg' of the Cartesian forces in Ha/bohr (the line after 'cartesian forces (hartree/bohr)')."""
    block = abo[abo.rindex('cartesian forces (hartree/bohr) at end:'):]
    m = re.search(r'frms,max,avg=\s*(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+h/b', block)
    return [float(x) for x in m.groups()[2:]]


def parse_ngfft(abo):
    m = re.search(r'^\s*ngfft\s+(\d+)\s+(\d+)\s+(\d+)', abo, flags=re.M)
    return [int(x) for x in m.groups()]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--only', nargs='*')
    ap.add_argument('--decks-only', action='store_true')
    args = ap.parse_args(argv)
    cases = [c for c in case_list() if not args.only or c['tag'] in args.only]
    if args.decks_only:
        for c in cases:
            deck, _ = build(c)
            os.makedirs(DECKDIR, exist_ok=True)
            with open(os.path.join(DECKDIR, c['tag'] + '.abi'), 'w') as f:
                f.write(deck)
        return
    old = {}
    if os.path.exists(OUT_JSON):
        old = {c['tag']: c for c in json.load(open(OUT_JSON))['cases']}
    for c in cases:
        print('running', c['tag'], flush=True)
        old[c['tag']] = run_case(c)
        print('  forces', old[c['tag']]['forces_cart_Ha_per_bohr'], 'drift', old[c['tag']]['drift_Ha_per_bohr'],
              'stress', old[c['tag']]['stress_cart_Ha_per_bohr3'],
              f'{old[c["tag"]]["abinit_wall_s"]:.1f} s', flush=True)
    order = [c['tag'] for c in case_list()]
    data = dict(description='ABINIT reference forces and stress on strained, displaced two-atom cells (GTH pseudopotentials)',
                units=dict(forces='Ha/bohr', stress='Ha/bohr^3', energy='Ha', lengths='bohr'),
                generator=dict(script='python/tests/reference/abinit/forces/run_abinit_forces.py',
                               abinit_version=run_abinit.abinit_version(),
                               date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')),
                conventions=dict(forces='cartesian_forces of the GSR file: -dE/dR with the mean force (drift) removed',
                                 drift="ABINIT's printed 'avg' of the Cartesian forces (frms,max,avg line), Ha/bohr",
                                 stress='cartesian_stress_tensor of the GSR file (Voigt xx yy zz yz xz xy) as a 3x3 matrix: '
                                        '(1/Omega) dE/d(strain) at fixed plane-wave set, ecutsm 0',
                                 symmetry='kptopt 2, nsym 1: no spatial symmetry'),
                cases=[old[t] for t in order if t in old])
    with open(OUT_JSON, 'w') as f:
        json.dump(data, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
