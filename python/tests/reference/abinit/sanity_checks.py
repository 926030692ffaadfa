"""Sanity checks for the ABINIT reference set; run via `python3 run_abinit.py --sanity`.

Writes abinit_sanity_checks.json and the decks used to decks/sanity/*.abi.
  reproduce_shared        : rerun /work/shared/reference's si_a5.4310_lda-pw_gth-pade_ec50_k2x2x2 (kptopt 1) -> etotal to 1e-8
  kptopt1_vs_kptopt2      : production deck (kptopt 2, nsym 1) vs kptopt 1 / kptopt 2 with ABINIT's symmetry finder
  shifted_grid_symmetry   : same for the shifted 3x3x3 grid (breaks the point group: symmetrised density differs)
  mqgrid                  : ABINIT's splined form factors (mqgrid 3001) vs mqgrid 30001
  scf_tightness           : toldfe 1e-12 vs tolvrs 1e-20 + nline 8 (etotal and all eigenvalues)
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
    out = dict(description=__doc__, abinit_version=R.abinit_version(), checks=res, runs=runs)
    with open(R.SANITY_JSON, 'w') as f:
        json.dump(out, f, indent=1)
    print(json.dumps(res, indent=1))
