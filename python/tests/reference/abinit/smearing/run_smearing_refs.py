#!/usr/bin/env python3
"""ABINIT 9.6.2 reference data for SolidXC's smearing module (Sources/SolidXC/SCF/Smearing.swift).

Runs fcc Al (GTH-Pade q3, LDA, ecut 8 Ha, 4x4x4 Gamma-centred grid, kptopt 1) with occopt 3, 4, 6, 7
(tsmear 0.02 Ha, nsppol 1) and occopt 3 and 6 with nsppol 2, and writes, per case, ABINIT's final
eigenvalues, k weights, occupations and Fermi level (full precision from <tag>o_GSR.nc) and the
'-kT*entropy', 'internal' and 'total_energy' lines of the last EnergyTerms YAML block of the .abo file.

The smearing test only needs ABINIT's newocc (Fermi level, occupations, entropy) applied to ABINIT's own
eigenvalues, so the physics of the run (ecut, grid, convergence) does not matter beyond being a metal.

Usage: python3 run_smearing_refs.py   ->  decks/*.abi, smearing_refs.json
"""
import json, os, re, shutil, subprocess, tempfile
import h5py, numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
A_BOHR = 4.05 / 0.52917721092
CASES = [(3, 1), (4, 1), (6, 1), (7, 1), (3, 2), (6, 2)]
TSMEAR = 0.02


def deck(occopt, nsppol):
    h = A_BOHR / 2
    r = repr
    return f"""# SolidXC smearing reference: fcc Al, occopt {occopt}, nsppol {nsppol}, tsmear {TSMEAR}
acell 1 1 1
rprim 0.0 {r(h)} {r(h)}
      {r(h)} 0.0 {r(h)}
      {r(h)} {r(h)} 0.0
natom 1
ntypat 1
typat 1
znucl 13
xred 0 0 0
ecut 8
ixc -001012
occopt {occopt}
tsmear {TSMEAR}
nsppol {nsppol}
{"spinat 0 0 0.5" if nsppol == 2 else ""}
nband 6
kptopt 1
ngkpt 4 4 4
nshiftk 1
shiftk 0 0 0
nstep 100
toldfe 1e-12
pp_dirpath "../psp"
pseudos "Al.gth-pade.psp10"
prtwf 0
prtden 0
prteig 1
"""


def last_yaml_energy(abo, key):
    pat = re.compile(r"^\s*'?" + re.escape(key) + r"'?\s*:\s*([-+0-9.Ee]+)", re.M)
    vals = pat.findall(open(abo).read())
    return float(vals[-1])


def main():
    os.makedirs(os.path.join(HERE, 'decks'), exist_ok=True)
    out = {'abinit_version': subprocess.run(['abinit', '--version'], capture_output=True, text=True).stdout.strip(),
           'system': 'fcc Al a=4.05 A, GTH-Pade q3, ixc -1012, ecut 8, ngkpt 4x4x4 kptopt 1, nband 6',
           'tsmear_Ha': TSMEAR, 'cases': []}
    for occopt, nsppol in CASES:
        tag = f'al_occopt{occopt}_nsppol{nsppol}'
        text = deck(occopt, nsppol)
        open(os.path.join(HERE, 'decks', tag + '.abi'), 'w').write(text)
        tmp = tempfile.mkdtemp()
        os.makedirs(os.path.join(tmp, 'decks'))
        shutil.copytree(os.path.join(HERE, 'psp'), os.path.join(tmp, 'psp'))
        open(os.path.join(tmp, 'decks', tag + '.abi'), 'w').write(text)
        env = dict(os.environ, OMP_NUM_THREADS='1')
        subprocess.run(['abinit', tag + '.abi'], cwd=os.path.join(tmp, 'decks'), env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        d = os.path.join(tmp, 'decks')
        with h5py.File(os.path.join(d, tag + 'o_GSR.nc'), 'r') as g:
            eig = np.array(g['eigenvalues'])          # (nsppol, nkpt, nband)
            occ = np.array(g['occupations'])
            wtk = np.array(g['kpoint_weights'])
            fermie = float(np.array(g['fermie']))
            nelect = float(np.array(g['nelect'])) if 'nelect' in g else 3.0
            keys = list(g.keys())
            gsr_entropy = float(np.array(g['entropy']))
            gsr_e_entropy = float(np.array(g['e_entropy']))
            gsr_etotal = float(np.array(g['etotal']))
        abo = os.path.join(d, tag + '.abo')
        case = dict(tag=tag, occopt=occopt, nsppol=nsppol, nelect=nelect, fermie_Ha=fermie,
                    kpoint_weights=wtk.tolist(), eigenvalues_Ha=eig.tolist(), occupations=occ.tolist(),
                    minus_kT_entropy_Ha=last_yaml_energy(abo, '-kT*entropy'),
                    internal_Ha=last_yaml_energy(abo, 'internal'),
                    total_energy_Ha=last_yaml_energy(abo, 'total_energy'),
                    gsr_entropy=gsr_entropy, gsr_e_entropy_Ha=gsr_e_entropy, gsr_etotal_Ha=gsr_etotal)
        out['cases'].append(case)
        print(tag, 'fermie', fermie, '-kT*S', case['minus_kT_entropy_Ha'], 'GSR entropy', gsr_entropy, 'e_entropy', gsr_e_entropy, 'etotal', gsr_etotal, case['total_energy_Ha'], 'internal', case['internal_Ha'])
        shutil.copy(abo, os.path.join(HERE, tag + '.abo'))
        shutil.rmtree(tmp)
    json.dump(out, open(os.path.join(HERE, 'smearing_refs.json'), 'w'), indent=1)


if __name__ == '__main__':
    main()
