#!/usr/bin/env python3
"""Write ABINIT pspcod=10 (HGH/GTH, full h-matrix) pseudopotential files from PySCF's GTH tables.

The parameters are taken verbatim from PySCF (`pyscf.pbc.gto.pseudo.load(table, element)`, which is exactly
what `Cell(pseudo=table)._pseudo[element]` holds, i.e. the entry PySCF picks by default for a bare element
symbol; e.g. 'Mg' in gth-pade/gth-pbe resolves to the q10 semicore entry).  Numbers are written with repr()
so ABINIT reads back the identical doubles.  Spin-orbit k_ij are written as zero.

Usage:
    python3 write_psp10.py                       # the files used by run_abinit.py (insulators: Si,C,Mg,O gth-pade;
                                                 # Si gth-pbe; metals: Al gth-pade/gth-pbe, Ca gth-pade, Ni gth-pbe)
    python3 write_psp10.py Fe:gth-pbe Mg:gth-pade-q2 [--outdir DIR]

Output file name: <El>.<table>.psp10 (e.g. Si.gth-pade.psp10).
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PSPDIR = os.path.join(HERE, 'psp')
DEFAULT_SET = ['Si:gth-pade', 'Si:gth-pbe', 'C:gth-pade', 'Mg:gth-pade', 'O:gth-pade',
               'Al:gth-pade', 'Al:gth-pbe', 'Ca:gth-pade', 'Ni:gth-pbe']


def gth_params(element, table):
    """PySCF's parsed GTH entry: [[n_s, n_p, ...], rloc, nexp, [C1..], nproj, [r_l, n_l, h_l], ...]."""
    from pyscf.pbc.gto.pseudo import load
    return load(table, element)


def zion_of(pp):
    return int(sum(pp[0]))


def psp10_text(element, table, pp=None):
    import pyscf
    from pyscf.data.elements import charge
    if pp is None:
        pp = gth_params(element, table)
    zion = zion_of(pp)
    rloc, nexp, cexp, nproj = pp[1], pp[2], list(pp[3]), pp[4]
    projs = pp[5:5 + nproj]
    lmax = max(nproj - 1, 0)
    low = table.lower()
    if 'pbe' in low:
        pspxc = 11
    elif 'pade' in low or 'lda' in low:
        pspxc = 1
    else:
        raise ValueError(f'unknown xc family for table {table!r}')
    r = repr
    L = [f'GTH {element} {table} q{zion}: PySCF {pyscf.__version__} pyscf.pbc.gto.pseudo.load({table!r},{element!r}), ABINIT pspcod=10',
         f'{charge(element)} {zion} 010101 zatom,zion,pspdat',
         f'10 {pspxc} {lmax} {lmax} 2001 0 pspcod,pspxc,lmax,lloc,mmax,r2well',
         f'{r(float(rloc))} {nexp} ' + ' '.join(r(float(c)) for c in cexp) + ' rloc nloc c1 ...',
         f'{nproj} nnonloc']
    for l, (rl, nl, hl) in enumerate(projs):
        if nl == 0:
            L.append(f'{r(float(rl))} 0 r_l n_l (l={l}: no projectors)')
            continue
        h = [[float(hl[i][j]) for j in range(nl)] for i in range(nl)]
        for i in range(nl):
            for j in range(nl):
                if abs(h[i][j] - h[j][i]) > 0:
                    raise ValueError('non-symmetric h matrix')
        L.append(f'{r(float(rl))} {nl} ' + ' '.join(r(h[0][j]) for j in range(nl)) + f' r_l n_l h_1j (l={l})')
        for i in range(1, nl):
            L.append(' '.join(r(h[i][j]) for j in range(i, nl)))
        if l > 0:
            for i in range(nl):
                L.append(' '.join('0.0' for _ in range(i, nl)) + (' k_ij (spin-orbit, zero)' if i == 0 else ''))
    return '\n'.join(L) + '\n', pp


def parse_psp10(path):
    """Read a pspcod=10 file back (only the numbers), for the round-trip check."""
    toks = []
    lines = open(path).read().splitlines()[1:]

    def nums(line):
        out = []
        for t in line.split():
            try:
                out.append(float(t))
            except ValueError:
                break
        return out
    it = iter(lines)
    zatom, zion, _ = nums(next(it))[:3]
    pspcod, pspxc, lmax = [int(x) for x in nums(next(it))[:3]]
    v = nums(next(it))
    rloc, nloc = v[0], int(v[1]); cexp = v[2:2 + nloc]
    nnonloc = int(nums(next(it))[0])
    projs = []
    for l in range(nnonloc):
        v = nums(next(it)); rl, nl = v[0], int(v[1])
        h = [[0.0] * nl for _ in range(nl)]
        for j in range(nl):
            h[0][j] = h[j][0] = v[2 + j]
        for i in range(1, nl):
            w = nums(next(it))
            for j in range(i, nl):
                h[i][j] = h[j][i] = w[j - i]
        if l > 0:
            for i in range(nl):
                next(it)
        projs.append([rl, nl, h])
    return dict(zatom=zatom, zion=zion, pspcod=pspcod, pspxc=pspxc, rloc=rloc, cexp=cexp, projs=projs)


def write(element, table, outdir=PSPDIR):
    os.makedirs(outdir, exist_ok=True)
    text, pp = psp10_text(element, table)
    path = os.path.join(outdir, f'{element}.{table}.psp10')
    with open(path, 'w') as f:
        f.write(text)
    # round-trip check: the numbers ABINIT will read are PySCF's numbers, bit for bit
    back = parse_psp10(path)
    assert back['zion'] == zion_of(pp) and back['rloc'] == pp[1] and back['cexp'] == [float(c) for c in pp[3]]
    for (rl, nl, h), (rl0, nl0, h0) in zip(back['projs'], pp[5:]):
        assert rl == rl0 and nl == nl0
        assert all(h[i][j] == float(h0[i][j]) for i in range(nl) for j in range(nl))
    return path, pp


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('specs', nargs='*', help='Element:table, e.g. Si:gth-pade (default: the set used by run_abinit.py)')
    ap.add_argument('--outdir', default=PSPDIR)
    a = ap.parse_args(argv)
    for spec in (a.specs or DEFAULT_SET):
        el, table = spec.split(':')
        path, pp = write(el, table, a.outdir)
        print(f'{path}: zion={zion_of(pp)} {pp}')


if __name__ == '__main__':
    main()
