"""solidxc.deepchem: DeepChem's DFT training API on crystals ([train] issue).

- A lattice entry's a0 and its gradient (through the scan's energy gradients, no response solve)
  against central finite differences of re-converged scans.
- The equation-of-state fit against synthetic third-order Birch-Murnaghan data.
- XCModel: every entry of a batch enters the loss; failing entries are skipped and counted (or
  raise); DeepChem's TorchModel when installed, the standalone model otherwise.
- DFTSystem's DeepChem and periodic keys, structure files, and errors; the CLI's training,
  checkpoint and resume.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")

import solidxc  # noqa: E402
from solidxc import InputError  # noqa: E402
from solidxc import deepchem as sdc  # noqa: E402
from solidxc.eos import birch_murnaghan  # noqa: E402

A_AL = 7.6526  # bohr (4.05 A)
AL = {"moldesc": "Al 0 0 0", "alattice": [[0, A_AL / 2, A_AL / 2], [A_AL / 2, 0, A_AL / 2], [A_AL / 2, A_AL / 2, 0]],
      "pseudo": "gth-pbe", "ecut": 8, "kpts": [4, 4, 4], "smearing": "fermi-dirac", "temperature": 0.02}
TIGHT = {"tol": 1e-13, "density_tol": 1e-10, "maxiter": 300}


def _network(seed=0):
    torch.manual_seed(seed)
    return sdc._construct_nn_model(3, 6, 1, 1)


def _lattice_entry(**options):
    return sdc.DFTEntry.create("lattice", str(A_AL), [AL], a_ref=A_AL, name="Al", **options)


def test_lattice_gradient_matches_finite_differences():
    entry = _lattice_entry()
    xc = sdc.HybridXC("pbe", _network(), aweight0=0.2, bweight0=1.0)

    def a0(xc_):
        return entry.get_val(entry.run(xc_, **TIGHT))

    value = a0(xc)
    value.backward()
    grads = {"aweight": float(xc.aweight.grad), "bweight": float(xc.bweight.grad)}
    h = 1e-3
    for name, grad in grads.items():
        values = []
        for sign in (1, -1):
            shifted = sdc.HybridXC("pbe", _network(), aweight0=0.2 + sign * h * (name == "aweight"),
                                   bweight0=1.0 + sign * h * (name == "bweight"))
            with torch.no_grad():
                values.append(float(a0(shifted)))
        fd = (values[0] - values[1]) / (2 * h)
        print(f"Al lattice: da0/d{name}: backward {grad:.10e}, finite difference {fd:.10e}, "
              f"relative {abs(grad - fd) / abs(fd):.1e}")
        assert abs(fd) > 1e-3, "the parameter must move a0"
        assert abs(grad - fd) <= 1e-5 * abs(fd)
    # The fitted a0 lies inside the scan and near the plain PBE equation of state.
    assert 0.97 * A_AL < float(value.detach()) < 1.03 * A_AL


def test_equilibrium_scale_recovers_birch_murnaghan_minimum():
    v_ref = 120.0
    for v0 in (110.0, 120.0, 128.0):
        scales = np.array(sdc.DEFAULT_SCALES)
        energies = birch_murnaghan(v_ref * scales ** 3, -5.0, v0, 0.004, 4.3)
        s0 = float(sdc.equilibrium_scale(scales, torch.from_numpy(energies)))
        assert abs(s0 - (v0 / v_ref) ** (1 / 3)) < 1e-9
    energies = birch_murnaghan(v_ref * scales ** 3, -5.0, 150.0, 0.004, 4.3)  # minimum beyond the scan
    with pytest.raises(sdc.EntryError, match="no energy minimum inside the scanned scales"):
        sdc.equilibrium_scale(scales, torch.from_numpy(energies))
    with pytest.raises(InputError, match="scales"):
        sdc.equilibrium_scale([1.0, 1.0, 1.01, 1.02], torch.zeros(4))


def _energy_entries():
    entries = []
    for i, scale in enumerate((1.0, 1.02)):
        system = dict(AL, alattice=(np.array(AL["alattice"]) * scale).tolist())
        entries.append(sdc.DFTEntry.create("energy", f"{-2.1 - 0.01 * i}", [system], weight=1 + i, name=f"Al{i}"))
    return entries


def test_every_entry_of_a_batch_enters_the_loss(tmp_path):
    entries = _energy_entries()
    dataset = sdc.EntryDataset(entries) if not sdc.HAVE_DEEPCHEM else _disk(entries, tmp_path)
    torch.manual_seed(1)
    model = sdc.XCModel("pbe", batch_size=2, model_dir=str(tmp_path / "m"), aweight0=0.1)
    with torch.no_grad():
        model.model.eval()
        p = model.model(np.array(entries, dtype=object)).numpy().ravel()
    y = np.array([float(e.true_val) for e in entries])
    w = np.array([e.get_weight() for e in entries])
    expected = np.mean(w * (p - y) ** 2)
    first_only = w[0] * (p[0] - y[0]) ** 2
    assert abs(expected - first_only) > 1e-3 * expected
    loss = model.fit(dataset, nb_epoch=1, checkpoint_interval=0)
    assert abs(loss - expected) < 1e-9 * expected
    assert model.failures == 0


def _disk(entries, tmp_path):
    from deepchem.data import DiskDataset

    def shards():
        for i, e in enumerate(entries):
            yield np.array([e], dtype=object), e.label().reshape(1, -1), np.array([[e.get_weight()]]), np.array([i])
    return DiskDataset.create_dataset(shards(), str(tmp_path / "data"))


def test_failing_entry_is_skipped_counted_or_raises(tmp_path):
    good = _energy_entries()[0]
    metal_gap = sdc.DFTEntry.create("gap", "0.1", [AL], name="Al-gap")  # a metal has no gap
    entries = [good, metal_gap]
    dataset = sdc.EntryDataset(entries) if not sdc.HAVE_DEEPCHEM else _disk(entries, tmp_path)
    model = sdc.XCModel("pbe", batch_size=2, model_dir=str(tmp_path / "m"), aweight0=0.1)
    with pytest.warns(RuntimeWarning, match="skipping entry 'Al-gap'.*no gap"):
        model.fit(dataset, nb_epoch=1, checkpoint_interval=0)
    assert model.failures == 1
    assert "Al-gap" in model.model.failure_log[0]
    with pytest.warns(RuntimeWarning):
        predictions = model.predict(dataset).ravel()
    assert np.isfinite(predictions[0]) and np.isnan(predictions[1])
    strict = sdc.XCModel("pbe", batch_size=2, model_dir=str(tmp_path / "s"), on_failure="raise")
    with pytest.raises(sdc.EntryError, match="Al-gap.*no gap"):
        strict.fit(dataset, nb_epoch=1, checkpoint_interval=0)


def test_dftsystem_keys_structure_files_and_errors(tmp_path):
    system = sdc.DFTSystem(AL)
    assert system.basis == "pw" and system.spin == 0 and system.no == 1
    built = system.get_system()
    np.testing.assert_allclose(built.lattice, AL["alattice"])
    # DeepChem's (atomzs, atompos) form and a structure file give the same cell.
    assert sdc.DFTSystem({**AL, "moldesc": ([13], [[0, 0, 0]])}).atoms[0][0] == "Al"
    ase_io = pytest.importorskip("ase.io")
    from ase import Atoms
    poscar = tmp_path / "POSCAR"
    ase_io.write(str(poscar), Atoms("Al", positions=[[0, 0, 0]], cell=np.array(AL["alattice"]) * 0.52917721092, pbc=True),
                 format="vasp")
    from_file = sdc.DFTSystem({"structure": str(poscar), "ecut": 8, "kpts": [4, 4, 4]})
    np.testing.assert_allclose(from_file.lattice, AL["alattice"], atol=1e-6)
    # Spin becomes initial moments; scaling two axes keeps the third.
    magnetic = sdc.DFTSystem({**AL, "spin": 1})
    assert magnetic.settings["magmoms"] == [1.0]
    scaled = system.get_system(1.1, axes=(0, 1))
    np.testing.assert_allclose(scaled.lattice[2], AL["alattice"][2])
    np.testing.assert_allclose(scaled.lattice[0], 1.1 * np.array(AL["alattice"][0]))
    with pytest.raises(InputError, match="basis"):
        sdc.DFTSystem({**AL, "basis": "6-311++G(3df,3pd)"})
    with pytest.raises(InputError, match="alattice"):
        sdc.DFTSystem({"moldesc": "Al 0 0 0"})
    with pytest.raises(InputError, match="moldesc: atom 0"):
        sdc.DFTSystem({**AL, "moldesc": "Al 0 0"})
    with pytest.raises(InputError, match="e_type"):
        sdc.DFTEntry.create("dm", "x.npy", [AL])
    with pytest.raises(InputError, match="systems: a 'lattice' entry has exactly one system"):
        sdc.DFTEntry.create("lattice", "7.6", [AL, AL])


def test_yaml_loader_and_standalone_model_without_deepchem(tmp_path):
    data = [{"e_type": "energy", "true_val": "-2.1", "name": "Al", "systems": [AL]},
            {"e_type": "ae", "true_val": "0.0", "systems": [AL, {**AL, "number": 2}]}]
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(data))
    entries = sdc.DFTYamlLoader.load_entries(str(path))
    assert [e.entry_type for e in entries] == ["energy", "ae"] and entries[0].name == "Al"
    bad = tmp_path / "bad.yaml"
    bad.write_text("- e_type: energy\n  true_val: '1'\n")
    with pytest.raises(InputError, match="entry 0 lacks systems"):
        sdc.DFTYamlLoader.load_entries(str(bad))
    # Without DeepChem: the same API from the standalone model (deepchem hidden from the import).
    script = textwrap.dedent(f"""
        import sys, json
        sys.modules["deepchem"] = None
        import numpy as np
        from solidxc import deepchem as sdc
        assert not sdc.HAVE_DEEPCHEM
        ds = sdc.DFTYamlLoader().create_dataset({str(path)!r})
        model = sdc.XCModel("pbe", batch_size=2, model_dir={str(tmp_path / 'sa')!r})
        before = model.predict(ds).ravel()
        loss = model.fit(ds, nb_epoch=1)
        model.restore()
        print(json.dumps({{"pred": before.tolist(), "loss": loss, "type": type(ds).__name__}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["type"] == "EntryDataset"
    e_al = result["pred"][0]
    assert abs(result["pred"][1] - (e_al + 2 * e_al - 2 * e_al)) < 1e-8  # ae: E0 + 2 E1 - 2 E0 with E1 = E0
    assert np.isfinite(result["loss"])


def test_cli_trains_checkpoints_and_resumes(tmp_path):
    data = [{"e_type": "lattice", "name": "Al", "true_val": str(7.5948), "a_ref": A_AL, "split": "train", "systems": [AL]},
            {"e_type": "lattice", "name": "Al-test", "true_val": str(7.5948), "a_ref": A_AL, "split": "test",
             "systems": [{**AL, "kpts": [3, 3, 3]}]}]
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "solidxc.cli", "train", str(path), "--out", str(out), "--no-progress", "--threads", "1"]
    first = subprocess.run(cmd + ["--epochs", "1"], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["epoch"] == 0 and len(state["history"]) == 1
    second = subprocess.run(cmd + ["--epochs", "2"], capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in second.stdout
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert [h["epoch"] for h in state["history"]] == [1, 2]
    for name in ("results.md", "results.csv", "training_curve.png", "parity.png"):
        assert (out / name).stat().st_size > 0
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0].startswith("name,split,type") and len(rows) == 3
    table = (out / "results.md").read_text()
    assert "| Al | train | lattice |" in table and "| Al-test | test | lattice |" in table


def test_failing_response_solve_is_skipped_and_counted(tmp_path):
    """A gap entry's backward pass solves the response; if that fails (here: one GMRES iteration
    for a 1e-14 residual) the entry adds no gradient, with a warning and a count."""
    a = 10.2622
    si = {"moldesc": f"Si 0 0 0; Si {a / 4} {a / 4} {a / 4}",
          "alattice": [[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]],
          "ecut": 8, "kpts": [2, 2, 2], "nbands": 8}
    entry = sdc.DFTEntry.create("gap", "0.1", [si], name="Si-gap")
    dataset = sdc.EntryDataset([entry]) if not sdc.HAVE_DEEPCHEM else _disk([entry], tmp_path)
    model = sdc.XCModel("pbe", batch_size=1, model_dir=str(tmp_path / "m"), aweight0=0.1,
                        scf_options={"backward_maxiter": 1, "backward_tol": 1e-14})
    before = [p.detach().clone() for p in model.model.parameters()]
    with pytest.warns(RuntimeWarning, match="skipping entry 'Si-gap'.*GMRES"):
        model.fit(dataset, nb_epoch=1, checkpoint_interval=0)
    assert model.failures == 1
    for p, q in zip(before, model.model.parameters()):
        assert torch.equal(p, q.detach())
    # With a working solve the same entry moves the parameters. (a = 0 at the start: with a != 0,
    # DeepChem's NNPBE makes the xc kernel singular where grad rho = 0, s = |grad n| / n^(4/3)
    # being non-differentiable there, and the response solve stalls; see bench/RESULTS.md.)
    model = sdc.XCModel("pbe", batch_size=1, model_dir=str(tmp_path / "n"), aweight0=0.0)
    model.fit(dataset, nb_epoch=1, checkpoint_interval=0)
    assert model.failures == 0
    assert float(model.model.hybridxc.aweight.detach()) != 0.0


@pytest.mark.parametrize("text, match", [
    ("- true_val: '1.0'\n  systems: [{}]\n", r"entry 0 lacks e_type"),
    ("- e_type: energy\n  true_val: '1.0'\n", r"entry 0 lacks systems"),
    ("- e_type: bandstructure\n  true_val: '1.0'\n  systems: [SYS]\n", r"entry 0 \(bandstructure\).*e_type: unknown entry type"),
    ("- e_type: energy\n  name: Al\n  true_val: 'minus two'\n  systems: [SYS]\n", r"entry 0 \(Al\).*true_val: expected a number"),
    ("- e_type: energy\n  name: Al\n  true_val: '-2'\n  systems: [{structure: missing.cif}]\n", r"entry 0 \(Al\).*structure: cannot read"),
    ("- e_type: energy\n  name: Fe\n  true_val: '-2'\n  systems: [{SYSBODY, spin: 2, magmoms: [0.0]}]\n",
     r"entry 0 \(Fe\).*systems\[0\]: spin 2 disagrees with magmoms"),
    ("- e_type: ae\n  name: AlAl\n  true_val: '0.1'\n  systems: [SYS, {SYSBODY, charge: 1}]\n",
     r"entry 0 \(AlAl\).*systems\[1\]: charge 1 in an 'ae' entry"),
    ("- e_type: dens\n  name: Al\n  true_val: nothere.npy\n  systems: [SYS]\n", r"entry 0 \(Al\).*true_val: density file"),
    ("", r"holds no entries"),
    ("[]\n", r"holds no entries"),
])
def test_bad_datasets_name_the_entry_and_the_key(tmp_path, text, match):
    body = ", ".join(f"{k}: {json.dumps(v)}" for k, v in AL.items())
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace("SYSBODY", body).replace("SYS", "{" + body + "}"))
    with pytest.raises(InputError, match=match):
        sdc.DFTYamlLoader().create_dataset(str(path))


@pytest.mark.skipif(not sdc.HAVE_DEEPCHEM, reason="DeepChem is not installed")
def test_deepchem_tutorial_loop_runs_unmodified(tmp_path):
    import deepchem as dc
    from solidxc.deepchem import DFTYamlLoader, XCModel
    data = [{"e_type": "energy", "true_val": "-2.08", "systems": [AL]},
            {"e_type": "energy", "true_val": "-2.07", "systems": [{**AL, "kpts": [3, 3, 3]}]}]
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(data))
    loader = DFTYamlLoader()
    ds = loader.create_dataset(str(path))
    assert isinstance(ds, dc.data.DiskDataset)
    model = XCModel("pbe", batch_size=2, model_dir=str(tmp_path / "model"))
    assert isinstance(model, dc.models.TorchModel)
    model.fit(ds, nb_epoch=1)
    predictions = model.predict(ds)
    assert predictions.shape == (2, 1) and np.all(np.isfinite(predictions))
    scores = model.evaluate(ds, [dc.metrics.Metric(dc.metrics.mean_absolute_error)])
    assert np.isfinite(list(scores.values())[0])
    # Checkpoints and restore are DeepChem's.
    model.restore()
    assert np.allclose(model.predict(ds), predictions, atol=1e-8)


def test_custom_loss_example_runs():
    example = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "custom_loss.py")
    out = subprocess.run([sys.executable, example, "--steps", "2"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    steps = [line.split() for line in out.stdout.splitlines()[1:] if line.strip()]
    assert len(steps) == 2 and all(np.isfinite(float(s[1])) for s in steps)
