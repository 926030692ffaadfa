#!/usr/bin/env python3
"""Builds abinit_eos.json (the E(a) reference for python/tests/test_eos.py) from the shared ABINIT scans.

Source: /work/shared/reference/abinit_eos_same_gth_pp.json, made by
/work/shared/reference/scripts/abinit_eos.py (which calls scripts/abinit_run.py:run) with ABINIT 9.6.2
(Debian). That file keeps per point only a, V, etotal, the internal energy and nstep: neither the input deck
nor ABINIT's FFT grid (ngfft). This script

  1. copies the Si (ecut 40, 3x3x3) and Al (ecut 30, 4x4x4, Fermi-Dirac 0.01 Ha) scans,
  2. rebuilds each point's deck exactly as scripts/abinit_run.py:run writes it (the same text, including
     its `pp_dirpath "psp_gth_for_abinit_qe"` line; the deck builder below is a copy of that function's),
  3. with --run (the default), reruns every deck with `abinit` (serial, OMP_NUM_THREADS=1, one at a time,
     in a temporary directory with pp_dirpath pointing at /work/shared/reference/psp_gth_for_abinit_qe),
     records ABINIT's ngfft and npw, and checks that the rerun's etotal equals the stored one (|diff| <
     1e-9 Ha: the stored values have 10 decimals, toldfe is 1e-10),
  4. writes abinit_eos.json next to this script.

Usage:  python3 make_abinit_eos.py            # ~40 s on one core
        python3 make_abinit_eos.py --no-run   # decks and stored numbers only (no ngfft)
"""
import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = '/work/shared/reference'
SOURCE_JSON = os.path.join(SHARED, 'abinit_eos_same_gth_pp.json')
SHARED_PSPDIR = os.path.join(SHARED, 'psp_gth_for_abinit_qe')
OUT_JSON = os.path.join(HERE, 'abinit_eos.json')

BOHR = 0.52917721092  # scripts/abinit_run.py: BOHR (PySCF's constant), used for every Angstrom -> bohr
ZNUC = {'Al': 13, 'Si': 14}
IXC = {'lda,vwn': -1007}
SCANS = [('si', [3, 3, 3]), ('al', [4, 4, 4])]  # (system, ngkpt) selected from the shared file
NBAND = 8  # scripts/abinit_eos.py: every job uses nband 8
XC = 'lda,vwn'
PSEUDO = 'gth-pade'


def structure(name, a):
    """scripts/abinit_run.py:structure for si and al (a in Angstrom)."""
    rprim = [[0, .5, .5], [.5, 0, .5], [.5, .5, 0]]
    if name == 'si':
        xred, el = [[0, 0, 0], [.25, .25, .25]], ['Si', 'Si']
    else:
        xred, el = [[0, 0, 0]], [name.capitalize()]
    return [a / BOHR] * 3, rprim, xred, el


def deck(name, a, ecut, ngkpt, smear, nband=NBAND, tol=1e-10, nstep=100, pspdir='psp_gth_for_abinit_qe'):
    """The input text scripts/abinit_run.py:run writes (same lines, same number formats)."""
    acell, rprim, xred, el = structure(name, a)
    types = sorted(set(el), key=el.index)
    inp = ['acell ' + ' '.join(f'{x:.12f}' for x in acell),
           'rprim ' + '  '.join(' '.join(f'{x:.15f}' for x in r) for r in rprim),
           f'ntypat {len(types)}\nznucl ' + ' '.join(str(ZNUC[t]) for t in types),
           f'natom {len(el)}\ntypat ' + ' '.join(str(types.index(e) + 1) for e in el),
           'xred ' + '  '.join(' '.join(f'{x:.15f}' for x in r) for r in xred),
           f'ecut {ecut}\nixc {IXC[XC]}',
           f'kptopt 1\nngkpt {" ".join(map(str, ngkpt))}\nnshiftk 1\nshiftk 0 0 0']
    if smear:
        inp.append(f'occopt 3\ntsmear {smear}')
    if nband:
        inp.append(f'nband {nband}')
    inp.append(f'nstep {nstep}\ntoldfe {tol}\ndiemac {12 if name == "si" else 1e6}')
    inp.append(f'pp_dirpath "{pspdir}"\npseudos "' + ', '.join(f'{t}.{PSEUDO}.psp10' for t in types) + '"')
    inp.append('prtwf 0\nprtden 0\nprteig 1\nchksymbreak 0')
    inp.append('')  # abinit_run.py appends `extra` (empty for the EOS scans)
    return '\n'.join(inp) + '\n', acell[0], xred, el


def run_abinit(text):
    """Runs one deck in a temp dir; returns etotal, ngfft, npw average, wall time."""
    work = tempfile.mkdtemp(prefix='abinit_eos_')
    try:
        with open(os.path.join(work, 'run.abi'), 'w') as f:
            f.write(text.replace('pp_dirpath "psp_gth_for_abinit_qe"', f'pp_dirpath "{SHARED_PSPDIR}"'))
        t0 = time.perf_counter()
        proc = subprocess.run(['abinit', 'run.abi'], cwd=work, capture_output=True, text=True,
                              env=dict(os.environ, OMP_NUM_THREADS='1'))
        wall = time.perf_counter() - t0
        out = open(os.path.join(work, 'run.abo')).read()
        if proc.returncode != 0:
            raise RuntimeError(f'abinit failed: {proc.stderr[-2000:]}\n{out[-3000:]}')
        etotal = float(re.findall(r'\n\s+etotal\s+([-\d.E+]+)', out)[-1])
        ngfft = [int(n) for n in re.findall(r'ngfft\s+([\d\s]+)\n', out)[-1].split()]
        npw = float(re.findall(r'Arith\. and geom\. avg\. npw \(full set\) are\s+([\d.]+)', out)[-1])
        nkpt = int(re.findall(r'\n\s+nkpt\s+(\d+)', out)[-1])
        return dict(etotal_Ha=etotal, ngfft=ngfft, npw_avg=npw, nkpt_irreducible=nkpt, wall_s=wall)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--no-run', action='store_true', help='do not rerun ABINIT (no ngfft in the output)')
    args = parser.parse_args()

    source = json.load(open(SOURCE_JSON))
    version = None
    if not args.no_run:
        version = subprocess.run(['abinit', '--version'], capture_output=True, text=True).stdout.strip()
        assert version == '9.6.2', f'the shared scans were made with ABINIT 9.6.2, found {version}'
    scans = []
    for name, ngkpt in SCANS:
        (scan,) = [s for s in source['scans'] if s['system'] == name and s['ngkpt'] == ngkpt]
        points = []
        for p in scan['points']:
            text, acell, xred, el = deck(name, p['a_angstrom'], scan['ecut_Ha'], ngkpt, scan['tsmear'])
            a_bohr = float(f'{acell:.12f}')  # what ABINIT read
            point = dict(a_angstrom=p['a_angstrom'], a_bohr=a_bohr, volume_bohr3=a_bohr ** 3 / 4,
                         etotal_Ha=p['etotal_Ha'], internal_Ha=p['internal_Ha'], nstep=p['nstep'], deck=text)
            if not args.no_run:
                rerun = run_abinit(text)
                diff = rerun['etotal_Ha'] - p['etotal_Ha']
                assert abs(diff) < 1e-9, f'{name} a={p["a_angstrom"]}: rerun etotal differs by {diff:.3e} Ha'
                point.update(ngfft=rerun['ngfft'], npw_avg=rerun['npw_avg'], nkpt_irreducible=rerun['nkpt_irreducible'],
                             rerun_etotal_minus_stored_Ha=diff, rerun_wall_s=rerun['wall_s'])
                print(name, p['a_angstrom'], rerun, flush=True)
            points.append(point)
        scans.append(dict(
            system=name, elements=el, xred=xred, rprim_over_a=[[0, .5, .5], [.5, 0, .5], [.5, .5, 0]],
            xc=XC, ixc=IXC[XC], pseudo=PSEUDO, ecut_Ha=scan['ecut_Ha'], ngkpt=ngkpt, shiftk=[0, 0, 0], kptopt=1,
            nband=NBAND, occopt=3 if scan['tsmear'] else 1, tsmear_Ha=scan['tsmear'], toldfe_Ha=1e-10,
            energy=('etotal = Mermin free energy F = E - tsmear*S' if scan['tsmear'] else 'etotal'),
            points=points, bm_fit_on_etotal=scan['bm_fit_on_etotal']))
    out = dict(
        description=('ABINIT 9.6.2 E(a) scans of Si diamond (LDA lda,vwn = libxc LDA_X+LDA_C_VWN, ixc -1007, gth-pade, '
                     'ecut 40 Ha, Gamma-centred 3x3x3) and Al fcc (same functional and table, ecut 30 Ha, 4x4x4, '
                     'Fermi-Dirac tsmear 0.01 Ha), 7 lattice constants a_ref*(0.955 ... 1.045) each, with the '
                     'Birch-Murnaghan fit made by the source script (scipy curve_fit on etotal(V), V = a^3/4).'),
        source=('/work/shared/reference/abinit_eos_same_gth_pp.json (scans "si" ngkpt [3,3,3] and "al" ngkpt [4,4,4]; '
                'made by /work/shared/reference/scripts/abinit_eos.py + abinit_run.py; pseudopotential files '
                '/work/shared/reference/psp_gth_for_abinit_qe/{Si,Al}.gth-pade.psp10). Decks rebuilt and, for '
                'ngfft/npw, rerun by python/tests/reference/abinit/make_abinit_eos.py.'),
        generator=dict(script='python/tests/reference/abinit/make_abinit_eos.py', abinit_version=version,
                       reran_abinit=not args.no_run, date=datetime.datetime.now().isoformat(timespec='seconds')),
        units='Hartree atomic units; a_angstrom uses bohr = 0.52917721092 Angstrom (PySCF/abinit_run.py constant)',
        bohr_angstrom=BOHR,
        conventions=dict(
            lattice='rows a_bohr * rprim_over_a, i.e. a/2 [[0,1,1],[1,0,1],[1,1,0]] (fcc primitive cell)',
            positions='xred (fractional); Cartesian = xred @ lattice',
            a_bohr='float of the acell written in the deck (12 decimals), i.e. exactly what ABINIT used',
            kpoints=('kptopt 1: ABINIT reduced the Gamma-centred grid with the full O_h point group and symmetrised '
                     'the density; for these Gamma-centred grids this equals a time-reversal-only calculation '
                     '(see abinit_sanity_checks.json: kptopt 1 vs kptopt 2 + nsym 1 <= 1e-11 Ha for Si)'),
            ngfft='ABINIT default (boxcutmin 2) for each a; recorded from the rerun',
            deck=('exact input text of scripts/abinit_run.py:run; pp_dirpath is relative to the shared reference '
                  'directory (the rerun points it at /work/shared/reference/psp_gth_for_abinit_qe)')),
        scans=scans)
    with open(OUT_JSON, 'w') as f:
        json.dump(out, f, indent=1)
        f.write('\n')
    print('wrote', OUT_JSON)


if __name__ == '__main__':
    main()
