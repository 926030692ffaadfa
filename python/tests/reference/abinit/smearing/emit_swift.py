#!/usr/bin/env python3
"""Print smearing_refs.json as the Swift literal used in Tests/SolidXCTests/SmearingTests.swift."""
import json, os
HERE = os.path.dirname(os.path.abspath(__file__))
d = json.load(open(os.path.join(HERE, 'smearing_refs.json')))
r = repr
out = []
for c in d['cases']:
    blocks = [b for spin in c['eigenvalues_Ha'] for b in spin]
    occs = [b for spin in c['occupations'] for b in spin]
    wt = c['kpoint_weights'] * c['nsppol']
    out.append(f"        AbinitSmearingCase(\n"
               f"            tag: \"{c['tag']}\", occopt: {c['occopt']}, nsppol: {c['nsppol']}, nelect: {r(c['nelect'])},\n"
               f"            weights: [{', '.join(r(x) for x in wt)}],\n"
               f"            eigenvalues: [\n" + ''.join(f"                [{', '.join(r(x) for x in b)}],\n" for b in blocks) +
               f"            ],\n"
               f"            occupations: [\n" + ''.join(f"                [{', '.join(r(x) for x in b)}],\n" for b in occs) +
               f"            ],\n"
               f"            fermie: {r(c['fermie_Ha'])}, minusKTEntropy: {r(c['gsr_e_entropy_Ha'])},\n"
               f"            internalEnergy: {r(c['internal_Ha'])}, totalEnergy: {r(c['total_energy_Ha'])}),\n")
print(''.join(out))
