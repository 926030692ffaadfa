"""Sanity checks for the ABINIT reference set; run via `python3 run_abinit.py --sanity`.

Writes abinit_sanity_checks.json and the decks used to decks/sanity/*.abi.
  reproduce_shared        : rerun /work/shared/reference's si_a5.4310_lda-pw_gth-pade_ec50_k2x2x2 (kptopt 1) -> etotal to 1e-8
  kptopt1_vs_kptopt2      : production deck (kptopt 2, nsym 1) vs kptopt 1 / kptopt 2 with ABINIT's symmetry finder
  shifted_grid_symmetry   : same for the shifted 3x3x3 grid (breaks the point group: symmetrised density differs)
  mqgrid                  : ABINIT's splined form factors (mqgrid 3001) vs mqgrid 30001
  scf_tightness           : toldfe 1e-12 vs tolvrs 1e-20 + nline 8 (etotal and all eigenvalues)

Metals (`python3 run_abinit.py --set metals --sanity` -> abinit_metals_sanity_checks.json, decks in decks/sanity/):
  reproduce_shared        : rerun /work/shared/reference's al_a4.0500_lda-vwn_gth-pade_ec40_k4x4x4 (kptopt 1, FD 0.01)
                            -> etotal to 1e-8; plus the same physics through this tooling (kptopt 2, nsym 1, Cartesian)
  nband                   : production nband vs more bands (etotal, fermie)
  kptopt1_vs_kptopt2      : production (kptopt 2, nsym 1) vs kptopt 1 with ABINIT's symmetry (Gamma-centred and shifted)
  scf_tightness           : toldfe 1e-12 vs tolvrs 1e-18/1e-20 + nline 8 (etotal, fermie, eigenvalues, magnetisation)
  spin_mixing             : Ni spin with ABINIT's default mixing (ends on -M) vs production (diemix 0.7, +M)
  density_output          : Ni spin production vs the same deck without prtden/iomode 3 (must be identical)
"""
import json
import os

import numpy as np

OLD_TAG = 'si_a5.4310_lda-pw_gth-pade_ec50_k2x2x2'


def main(R):
    sdir = os.path.join(R.DECKDIR, 'sanity')
    os.makedirs(sdir, exist_ok=True)
    cases = {c['tag']: c for c in R.case_list()}
    runs = {}

    def go(name, deck):
        with open(os.path.join(sdir, name + '.abi'), 'w') as f:
            f.write(deck)
        r = R.run_deck(deck, name)
        if r['gsr'] is None:
            raise RuntimeError(name + '\n' + (r['abo'] or '')[-2000:] + r['stderr'])
        a = R.parse_abo(r['abo'])
        g = r['gsr']
        out = dict(deck=f'decks/sanity/{name}.abi', etotal_Ha=float(g['etotal']), ngfft=a['ngfft'],
                   nkpt=int(len(g['kpoint_weights'])), nstep_used=a['nstep_used'], converged=a['converged'],
                   wall_time_s=r['wall'], eigenvalues=g['eigenvalues'][0])
        print(f'{name:40s} E={out["etotal_Ha"]:.12f} ngfft {out["ngfft"]} nk {out["nkpt"]} nstep {out["nstep_used"]} '
              f'{r["wall"]:.1f}s', flush=True)
        runs[name] = out
        return out

    def prod(tag, name=None, **ov):
        deck, _ = R.build(cases[tag], overrides=ov)
        return go(name or (tag + '__production'), deck)

    res = {}
    # 1. reproduce the shared reference
    shared = json.load(open(R.SHARED_REF))
    old = [x for x in shared['runs'] if x['tag'] == OLD_TAG][0]
    deck = old['input'].replace('pp_dirpath "psp_gth_for_abinit_qe"', 'pp_dirpath "../psp"')
    assert deck != old['input']
    r1 = go('shared_' + OLD_TAG, deck)
    r2 = go('shared_' + OLD_TAG + '_toldfe1e-12', deck.replace('toldfe 1e-10', 'toldfe 1e-12'))
    c = dict(cases['si_lda-pw_k2x2x2_ec15'], ecut=50)
    d, _ = R.build(c)
    r3 = go('si_lda-pw_k2x2x2_ec50__production_style', d)
    ref = old['etotal_Ha']
    res['reproduce_shared'] = dict(
        shared_file=R.SHARED_REF, shared_tag=OLD_TAG, shared_etotal_Ha=ref,
        note='shared deck rerun verbatim except pp_dirpath (our psp/Si.gth-pade.psp10 holds the same numbers as the shared file)',
        rerun_same_deck=dict(etotal_Ha=r1['etotal_Ha'], diff_Ha=r1['etotal_Ha'] - ref, ngfft=r1['ngfft'], pass_1e_8=abs(r1['etotal_Ha'] - ref) < 1e-8),
        rerun_toldfe_1e_12=dict(etotal_Ha=r2['etotal_Ha'], diff_Ha=r2['etotal_Ha'] - ref, ngfft=r2['ngfft'], pass_1e_8=abs(r2['etotal_Ha'] - ref) < 1e-8),
        production_style_deck_ecut50=dict(etotal_Ha=r3['etotal_Ha'], diff_Ha=r3['etotal_Ha'] - ref, ngfft=r3['ngfft'],
                                          note='cartesian geometry, kptopt 2, nsym 1, toldfe 1e-12; ABINIT may pick a different ngfft'),
    )
    # 2. kptopt 1 vs 2
    res['kptopt1_vs_kptopt2'] = {}
    for tag in ['si_lda-pw_k2x2x2_ec15', 'si_pbe_k2x2x2_ec15', 'mgo_lda-pw_k2x2x2_ec30']:
        p = prod(tag)
        k1 = prod(tag, tag + '__kptopt1_sym', kptopt=1, nsym=None)
        k2 = prod(tag, tag + '__kptopt2_sym', kptopt=2, nsym=None)
        res['kptopt1_vs_kptopt2'][tag] = dict(
            production_kptopt2_nsym1=dict(etotal_Ha=p['etotal_Ha'], nkpt=p['nkpt'], ngfft=p['ngfft']),
            kptopt1_symmetry_on=dict(etotal_Ha=k1['etotal_Ha'], nkpt=k1['nkpt'], ngfft=k1['ngfft'], diff_vs_production_Ha=k1['etotal_Ha'] - p['etotal_Ha']),
            kptopt2_symmetry_on=dict(etotal_Ha=k2['etotal_Ha'], nkpt=k2['nkpt'], ngfft=k2['ngfft'], diff_vs_production_Ha=k2['etotal_Ha'] - p['etotal_Ha']),
            kptopt1_minus_kptopt2_both_symmetry_on_Ha=k1['etotal_Ha'] - k2['etotal_Ha'],
        )
    # 3. shifted grid
    tag = 'si_lda-pw_k3x3x3_sh0p5_ec15'
    p = prod(tag)
    k1 = prod(tag, tag + '__kptopt1_sym', kptopt=1, nsym=None)
    k2 = prod(tag, tag + '__kptopt2_sym', kptopt=2, nsym=None)
    res['shifted_grid_symmetry'] = dict(
        tag=tag,
        note='shift (1/2,1/2,1/2) on the fcc reciprocal lattice breaks the Oh point group; with symmetry on, ABINIT '
             'symmetrises the density, which changes etotal. The reference (nsym 1) is what an unsymmetrised TR-only code computes.',
        production_kptopt2_nsym1=dict(etotal_Ha=p['etotal_Ha'], nkpt=p['nkpt'], ngfft=p['ngfft']),
        kptopt1_symmetry_on=dict(etotal_Ha=k1['etotal_Ha'], nkpt=k1['nkpt'], ngfft=k1['ngfft'], diff_vs_production_Ha=k1['etotal_Ha'] - p['etotal_Ha']),
        kptopt2_symmetry_on=dict(etotal_Ha=k2['etotal_Ha'], nkpt=k2['nkpt'], ngfft=k2['ngfft'], diff_vs_production_Ha=k2['etotal_Ha'] - p['etotal_Ha']),
    )
    # 4. mqgrid, 5. SCF tightness
    res['mqgrid'] = {}
    res['scf_tightness'] = {}
    for tag in ['si_lda-pw_k2x2x2_ec15', 'mgo_lda-pw_k2x2x2_ec30', 'si_strained_pbe_k2x2x2_ec15']:
        p = runs.get(tag + '__production') or prod(tag)
        m = prod(tag, tag + '__mqgrid30001', mqgrid=30001)
        res['mqgrid'][tag] = dict(etotal_diff_Ha=m['etotal_Ha'] - p['etotal_Ha'],
                                  max_abs_eig_diff_Ha=float(np.max(np.abs(m['eigenvalues'] - p['eigenvalues']))))
        t = prod(tag, tag + '__tolvrs1e-20', toldfe=None, tolvrs='1e-20', nline=8, nstep=60)
        nocc = R.build(cases[tag])[1]['nocc']
        de = np.abs(t['eigenvalues'] - p['eigenvalues'])
        res['scf_tightness'][tag] = dict(etotal_diff_Ha=t['etotal_Ha'] - p['etotal_Ha'],
                                         max_abs_eig_diff_occupied_Ha=float(de[:, :nocc].max()),
                                         max_abs_eig_diff_all_bands_Ha=float(de.max()),
                                         nstep_tight=t['nstep_used'], converged_tight=t['converged'])
    for v in runs.values():
        v.pop('eigenvalues')
    out = dict(description=__doc__.split('\nMetals (')[0],   # the insulator part of the docstring
               abinit_version=R.abinit_version(), checks=res, runs=runs)
    with open(R.SANITY_JSON, 'w') as f:
        json.dump(out, f, indent=1)
    print(json.dumps(res, indent=1))


METAL_SHARED_TAG = 'al_a4.0500_lda-vwn_gth-pade_ec40_k4x4x4'


def main_metals(R):
    sdir = os.path.join(R.DECKDIR, 'sanity')
    os.makedirs(sdir, exist_ok=True)
    cases = {c['tag']: c for c in R.case_list_metals()}
    runs = {}

    def go(name, deck):
        with open(os.path.join(sdir, name + '.abi'), 'w') as f:
            f.write(deck)
        r = R.run_deck(deck, name)
        if r['gsr'] is None:
            raise RuntimeError(name + '\n' + (r['abo'] or '')[-2000:] + r['stderr'])
        a = R.parse_abo(r['abo'])
        g = r['gsr']
        occ = g['occupations']
        w = g['kpoint_weights'][None, :, None]
        mag = float((w[0] * (occ[0] - occ[1])).sum()) if occ.shape[0] == 2 else None
        out = dict(deck=f'decks/sanity/{name}.abi', etotal_Ha=float(g['etotal']), fermie_Ha=float(g['fermie']),
                   ngfft=a['ngfft'], nkpt=int(len(g['kpoint_weights'])), nband=int(g['eigenvalues'].shape[2]),
                   magnetization_muB=mag, nstep_used=a['nstep_used'], converged=a['converged'], wall_time_s=r['wall'],
                   eig=g['eigenvalues'], occ=occ)
        print(f'{name:50s} E={out["etotal_Ha"]:.12f} mu={out["fermie_Ha"]:.10f} M={mag} ngfft {out["ngfft"]} '
              f'nk {out["nkpt"]} nstep {out["nstep_used"]} {r["wall"]:.1f}s', flush=True)
        runs[name] = out
        return out

    def prod(tag, name=None, case_over=None, **ov):
        c = dict(cases[tag], **(case_over or {}))
        deck, _ = R.build(c, overrides=ov)
        return go(name or (tag + '__production'), deck)

    def diff(x, p):
        d = dict(etotal_diff_Ha=x['etotal_Ha'] - p['etotal_Ha'], fermie_diff_Ha=x['fermie_Ha'] - p['fermie_Ha'])
        if p['magnetization_muB'] is not None:
            d['magnetization_diff_muB'] = x['magnetization_muB'] - p['magnetization_muB']
        return d

    res = {}
    # 1. reproduce the shared reference (Al, lda,vwn, FD 0.01, ecut 40, kptopt 1 with symmetry)
    shared = json.load(open(R.SHARED_REF))
    old = [x for x in shared['runs'] if x['tag'] == METAL_SHARED_TAG][0]
    deck = old['input'].replace('pp_dirpath "psp_gth_for_abinit_qe"', 'pp_dirpath "../psp"')
    assert deck != old['input']
    r1 = go('shared_' + METAL_SHARED_TAG, deck)
    r2 = go('shared_' + METAL_SHARED_TAG + '_toldfe1e-12', deck.replace('toldfe 1e-10', 'toldfe 1e-12'))
    c = dict(cases['al_lda-pw_fd0p01_k4x4x4_ec15'], xc='lda,vwn', ecut=40, nband=8,
             tag='al_lda-vwn_fd0p01_k4x4x4_ec40')
    d, _ = R.build(c)
    r3 = go('al_lda-vwn_fd0p01_k4x4x4_ec40__production_style', d)
    ref = old['etotal_Ha']
    res['reproduce_shared'] = dict(
        shared_file=R.SHARED_REF, shared_tag=METAL_SHARED_TAG, shared_etotal_Ha=ref, shared_fermi_Ha_5dp=old['fermi_Ha'],
        shared_ngfft=old.get('ngfft'),
        note='shared deck rerun verbatim except pp_dirpath (psp/Al.gth-pade.psp10 holds the same numbers as the shared '
             'file; only the comment/format of the header lines differ). The shared etotal is stored to 10 decimals.',
        rerun_same_deck=dict(etotal_Ha=r1['etotal_Ha'], diff_Ha=r1['etotal_Ha'] - ref, ngfft=r1['ngfft'],
                             pass_1e_8=abs(r1['etotal_Ha'] - ref) < 1e-8),
        rerun_toldfe_1e_12=dict(etotal_Ha=r2['etotal_Ha'], diff_Ha=r2['etotal_Ha'] - ref, ngfft=r2['ngfft'],
                                pass_1e_8=abs(r2['etotal_Ha'] - ref) < 1e-8),
        production_style_deck=dict(etotal_Ha=r3['etotal_Ha'], diff_Ha=r3['etotal_Ha'] - ref, ngfft=r3['ngfft'],
                                   pass_1e_8=abs(r3['etotal_Ha'] - ref) < 1e-8,
                                   note='this tooling: Cartesian geometry, kptopt 2 + nsym 1 (36 k instead of 8 '
                                        'symmetry-reduced), toldfe 1e-12, xc lda,vwn (ixc -001007), nband 8 as the shared deck'),
    )
    # 2. nband
    res['nband'] = {}
    for tag, nb in [('al_lda-pw_fd0p01_k4x4x4_ec15', 10), ('al_lda-pw_mv0p02_k4x4x4_ec15', 10),
                    ('graphene_lda-pw_fd0p01_k3x3x1_ec30', 12)]:
        p = runs.get(tag + '__production') or prod(tag)
        x = prod(tag, f'{tag}__nband{nb}', case_over=dict(nband=nb))
        res['nband'][tag] = dict(production_nband=p['nband'], more_bands=nb, **diff(x, p))
    # 3. symmetry
    res['kptopt1_vs_kptopt2'] = {}
    for tag in ['al_lda-pw_fd0p01_k4x4x4_ec15', 'al_lda-pw_fd0p01_k4x4x4_sh0p5_ec15']:
        p = runs.get(tag + '__production') or prod(tag)
        k1 = prod(tag, tag + '__kptopt1_sym', kptopt=1, nsym=None)
        res['kptopt1_vs_kptopt2'][tag] = dict(production_nkpt=p['nkpt'], kptopt1_nkpt=k1['nkpt'], **diff(k1, p))
    # 4. SCF tightness
    res['scf_tightness'] = {}
    for tag, tol in [('al_lda-pw_fd0p01_k4x4x4_ec15', '1e-20'), ('al_lda-pw_mv0p02_k4x4x4_ec15', '1e-20'),
                     ('graphene_lda-pw_fd0p01_k3x3x1_ec30', '1e-20'), ('ca_lda-pw_fd0p01_k2x2x2_ec40', '1e-20'),
                     ('ni_pbe_fd0p01_k2x2x2_ec60_spin', '1e-18')]:
        p = runs.get(tag + '__production') or prod(tag)
        t = prod(tag, f'{tag}__tolvrs{tol}', toldfe=None, tolvrs=tol, nline=8, nstep=100)
        de = np.abs(t['eig'] - p['eig'])
        wocc = p["occ"] > 1e-6 * p["occ"].max()   # bands with occupation > 1e-6 of the maximum
        res['scf_tightness'][tag] = dict(tolvrs=float(tol), nstep_tight=t['nstep_used'], converged_tight=t['converged'],
                                         max_abs_eig_diff_partly_occupied_bands_Ha=float(de[wocc].max()),
                                         max_abs_eig_diff_all_bands_Ha=float(de.max()),
                                         max_abs_occ_diff=float(np.abs(t['occ'] - p['occ']).max()), **diff(t, p))
    # 5. Ni spin: default mixing, and density output
    tag = 'ni_pbe_fd0p01_k2x2x2_ec60_spin'
    p = runs[tag + '__production']
    dm = prod(tag, tag + '__default_mixing', diemix=None)
    res['spin_mixing'] = dict(
        note='ABINIT default mixing (diemix 1) from the same spinat ends on the spin-flipped state; production uses '
             'diemix 0.7. Same |M| and energy: mixing selects the branch, not the solution.',
        production_magnetization_muB=p['magnetization_muB'], default_mixing_magnetization_muB=dm['magnetization_muB'],
        etotal_diff_Ha=dm['etotal_Ha'] - p['etotal_Ha'], fermie_diff_Ha=dm['fermie_Ha'] - p['fermie_Ha'],
        abs_magnetization_diff_muB=abs(dm['magnetization_muB']) - abs(p['magnetization_muB']),
        nstep_default=dm['nstep_used'], nstep_production=p['nstep_used'])
    nd = prod(tag, tag + '__no_density_output', prtden=0, iomode=None)
    res['density_output'] = dict(note='prtden 1 + iomode 3 (netCDF density, for |M|) vs prtden 0, default iomode',
                                 **diff(nd, p))
    for v in runs.values():
        v.pop('eig')
        v.pop('occ')
    out = dict(description=__doc__, abinit_version=R.abinit_version(), checks=res, runs=runs)
    with open(R.METALS_SANITY_JSON, 'w') as f:
        json.dump(out, f, indent=1)
    print(json.dumps(res, indent=1))
