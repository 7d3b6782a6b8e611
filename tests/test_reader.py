import gzip
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from parnassus.card import TruthCuts
from parnassus.errors import InputError
from parnassus.events import RunCounts
from parnassus.io.hepmc import HepMCReader
from parnassus.pdg import CHARGED_HADRON, ELECTRON, MUON, NEUTRAL_HADRON, PHOTON, charge_and_class

from .conftest import CARD, EXAMPLE, SIMPLE_EVENT, make_event, write_events


def read_all(path, cuts=None, batch_size=2, **kwargs):
    counts = RunCounts()
    reader = HepMCReader(path, cuts or TruthCuts(), batch_size, counts, **kwargs)
    batches = list(reader)
    return batches, counts, reader


def concat(batches):
    return ak.concatenate([b.particles for b in batches]), np.concatenate([b.number for b in batches])


def test_class_and_charge_mapping():
    pids = np.array([211, -211, 321, 2212, -11, 11, 13, -13, 130, 2112, 3122, 310, 22])
    charge, cls = charge_and_class(pids)
    np.testing.assert_array_equal(charge, [1, -1, 1, 1, 1, -1, -1, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(cls, [CHARGED_HADRON] * 4 + [ELECTRON] * 2 + [MUON] * 2
                                  + [NEUTRAL_HADRON] * 4 + [PHOTON])
    assert charge_and_class(np.array([99999999]))[1][0] == -1


def test_reads_events_applies_cuts_and_classes(simple_file):
    batches, counts, _ = read_all(simple_file)
    particles, numbers = concat(batches)
    assert counts.read == 3 and sum(counts.skipped.values()) == 0
    np.testing.assert_array_equal(numbers, [0, 1, 2])
    first = particles[0]
    assert 12 not in first.pid.tolist()  # neutrino dropped
    assert 2212 not in first.pid.tolist()  # |eta| of the forward proton is above 2.7
    assert sorted(first.pid.tolist()) == sorted([211, -211, 22, 130, 11, 13])
    by_pid = {int(p): (int(c), int(k)) for p, c, k in zip(first.pid, first.charge, first.cls, strict=True)}
    assert by_pid[11] == (-1, ELECTRON) and by_pid[13] == (-1, MUON) and by_pid[130] == (0, NEUTRAL_HADRON)
    np.testing.assert_allclose(ak.to_numpy(first.pt[first.pid == 22]), [5.0])


def test_pt_status_and_pid_cuts(simple_file):
    cuts = TruthCuts(pt_min=7.0, eta_max=5.0, drop_pids=[13])
    particles, _ = concat(read_all(simple_file, cuts)[0])
    assert sorted(particles[0].pid.tolist()) == sorted([211, -211, 11, 12])
    particles, _ = concat(read_all(simple_file, TruthCuts(status=[2]))[0])
    assert ak.sum(ak.num(particles)) == 0


def test_unit_conversion_and_vertex(tmp_path):
    gev = write_events(tmp_path / "gev.hepmc", [make_event(0, SIMPLE_EVENT, vertex=(1.0, 2.0, 3.0, 4.0))])
    mev = write_events(tmp_path / "mev.hepmc", [make_event(0, SIMPLE_EVENT, vertex=(0.1, 0.2, 0.3, 0.4),
                                                           momentum_unit="MEV", length_unit="CM")])
    a, _ = concat(read_all(gev)[0])
    b, _ = concat(read_all(mev)[0])
    for field in ("pt", "eta", "phi", "e", "mass", "x", "y", "z", "t"):
        np.testing.assert_allclose(ak.to_numpy(ak.flatten(a[field])), ak.to_numpy(ak.flatten(b[field])),
                                   rtol=1e-6, atol=1e-12, err_msg=field)
    np.testing.assert_allclose(ak.to_numpy(ak.flatten(a.z)), 3.0)


def test_truncation_keeps_hardest_and_counts(simple_file):
    batches, counts, _ = read_all(simple_file, TruthCuts(max_particles=3))
    particles, _ = concat(batches)
    assert counts.truncated == 3
    assert ak.num(particles).tolist() == [3, 3, 3]
    np.testing.assert_allclose(sorted(particles[0].pt.tolist()), sorted([np.hypot(15, 15), 20.0, 10.0]))


def test_gzip_skip_and_max_events():
    batches, counts, _ = read_all(EXAMPLE, batch_size=7, skip=10, max_events=15)
    _, numbers = concat(batches)
    np.testing.assert_array_equal(numbers, np.arange(10, 25))
    assert counts.read == 15
    assert max(len(b) for b in batches) == 7


def test_stdin_through_cli(tmp_path):
    output = tmp_path / "stdin.root"
    with gzip.open(EXAMPLE, "rb") as source:
        text = source.read()
    result = subprocess.run([sys.executable, "-m", "parnassus", "run", "--quiet", "--card", str(CARD), "-n",
                             "5", "-", str(output)], input=text, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
    assert b"events read 5, written 5" in result.stderr
    assert output.exists()


def _text(path: Path) -> str:
    return path.read_text()


def test_truncated_file_counts_the_partial_event(simple_file, tmp_path):
    text = _text(simple_file)
    cut = text.index("\nE 2 ") + 60
    truncated = tmp_path / "truncated.hepmc"
    truncated.write_text(text[:cut])
    batches, counts, _ = read_all(truncated)
    assert concat(batches)[1].tolist() == [0, 1]
    assert counts.skipped == {"truncated or malformed event": 1}


def test_truncated_gzip_warns_and_counts(tmp_path):
    data = EXAMPLE.read_bytes()
    broken = tmp_path / "broken.hepmc.gz"
    broken.write_bytes(data[: len(data) // 3])
    batches, counts, reader = read_all(broken, batch_size=50)
    assert 5 < sum(len(b) for b in batches) < 50
    assert counts.skipped.get("truncated or malformed event", 0) <= 1
    assert reader.warnings and "input ends early" in reader.warnings[0]


def test_non_finite_empty_and_malformed_events_are_skipped(simple_file, tmp_path):
    text = _text(simple_file)
    lines = text.splitlines(keepends=True)
    event1 = next(i for i, line in enumerate(lines) if line.startswith("E 1 "))
    particle = next(i for i in range(event1, len(lines)) if lines[i].startswith("P ") and " 211 " in lines[i])
    fields = lines[particle].split()
    fields[4] = "nan"
    lines[particle] = " ".join(fields) + "\n"
    event2 = next(i for i, line in enumerate(lines) if line.startswith("E 2 "))
    lines.insert(event2, "E 7 0 0\nU GEV MM\n")
    broken = next(i for i in range(event2 + 1, len(lines)) if lines[i].startswith("P 3 "))
    lines[broken] = "P 3 -1 211 not a number 1\n"
    lines.insert(len(lines) - 1, "".join(lines[event1:event2]).replace("E 1 ", "E 9 ", 1))
    path = tmp_path / "bad.hepmc"
    path.write_text("".join(lines))
    batches, counts, _ = read_all(path, batch_size=10)
    assert concat(batches)[1].tolist() == [0]
    assert counts.skipped == {"non-finite momentum": 2, "empty event": 1, "malformed event": 1}
    assert counts.read == 5


@pytest.mark.parametrize("content, message", [
    ("hello world\n", "not a HepMC3 ASCII file"),
    ("HepMC::Version 2.06.09\nHepMC::IO_GenEvent-START_EVENT_LISTING\nE 0 -1\n", "HepMC2 input is not supported"),
])
def test_wrong_format_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "input.hepmc"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_all(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="nope.hepmc: cannot open input"):
        read_all(tmp_path / "nope.hepmc")


def test_memory_does_not_grow_with_events():
    """The reader holds one batch and one read chunk at a time, however long the input."""
    import tracemalloc

    def peak(max_events):
        tracemalloc.start()
        for _ in HepMCReader(EXAMPLE, TruthCuts(), 5, RunCounts(), max_events=max_events):
            pass
        result = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return result

    with gzip.open(EXAMPLE, "rb") as source:
        text_size = len(source.read())
    assert peak(50) < 1.5 * peak(20)
    assert peak(50) < 0.6 * text_size


# -- truth.stable_ctau_mm: decayed long-lived particles put back in place of their decay products ----------------

def _add_decay(event, mother, products: list[int], position: tuple) -> list:
    """Decay ``mother`` at ``position`` (mm) into ``products`` (status 1) sharing its momentum equally."""
    import pyhepmc
    from particle import Particle

    vertex = pyhepmc.GenVertex(pyhepmc.FourVector(*position))
    vertex.add_particle_in(mother)
    mother.status = 2
    out = []
    for pid in products:
        p = mother.momentum
        px, py, pz = p.px / len(products), p.py / len(products), p.pz / len(products)
        energy = (px**2 + py**2 + pz**2 + ((Particle.from_pdgid(pid).mass or 0.0) / 1000.0) ** 2) ** 0.5
        out.append(pyhepmc.GenParticle(pyhepmc.FourVector(px, py, pz, energy), pid, 1))
        vertex.add_particle_out(out[-1])
    event.add_vertex(vertex)
    return out


def _long_lived_event():
    """Prompt pi+; K0S -> pi+ pi-; Lambda -> p pi-; Xi- -> Lambda pi-, Lambda -> p pi-; D0 -> K- pi+."""
    event = make_event(0, [(211, 1.0, 0.5, 0.2), (310, 3.0, 1.0, 1.0), (3122, -2.0, 2.0, 0.5),
                           (3312, 0.0, -4.0, 2.0), (421, -5.0, -1.0, -1.0)], vertex=(0.1, 0.2, 3.0, 0.5))
    _, k0s, lam, xi, d0 = event.particles[1:]
    _add_decay(event, k0s, [211, -211], (30.0, 10.0, 10.0, 40.0))
    _add_decay(event, lam, [2212, -211], (-50.0, 50.0, 12.0, 90.0))
    inner_lambda, _ = _add_decay(event, xi, [3122, -211], (0.0, -40.0, 20.0, 60.0))
    _add_decay(event, inner_lambda, [2212, -211], (0.0, -80.0, 40.0, 120.0))
    _add_decay(event, d0, [-321, 211], (-0.2, -0.04, -0.04, 0.3))
    return event


def test_stable_ctau_puts_long_lived_particles_back(tmp_path):
    path = write_events(tmp_path / "long_lived.hepmc", [_long_lived_event()])
    wide = {"pt_min": 0.01, "eta_max": 10.0}
    as_is, _ = concat(read_all(path, TruthCuts(**wide))[0])
    assert sorted(as_is[0].pid.tolist()) == sorted([211, 211, -211, 2212, -211, 2212, -211, -211, -321, 211])
    batches, counts, _ = read_all(path, TruthCuts(stable_ctau_mm=10.0, **wide))
    restored = batches[0].particles[0]
    assert not counts.skipped
    assert sorted(restored.pid.tolist()) == sorted([211, 310, 3122, 3312, -321, 211])
    assert restored.status.tolist() == [1] * 6
    k0s = restored[restored.pid == 310][0]
    np.testing.assert_allclose([k0s.px, k0s.py, k0s.pz, k0s.mass], [3.0, 1.0, 1.0, 0.497611], atol=1e-6)
    np.testing.assert_allclose([k0s.x, k0s.y, k0s.z, k0s.t], [0.1, 0.2, 3.0, 0.5])  # its production vertex
    kaon = restored[restored.pid == -321][0]  # the D0 (c*tau 0.12 mm) stays decayed
    np.testing.assert_allclose([kaon.x, kaon.y, kaon.z], [-0.2, -0.04, -0.04])
    final = batches[0].final_state[0]
    assert sorted(final.pid.tolist()) == sorted(restored.pid.tolist())
    for name in ("px", "py", "pz"):  # no momentum lost or counted twice
        np.testing.assert_allclose(ak.sum(final[name]), ak.sum(as_is[0][name]), atol=1e-9)
    # between c*tau(Xi-) = 49 mm and c*tau(Lambda) = 79 mm: both Lambdas are kept, the K0S and Xi- decay
    # (drop_pids, here all pions, still applies)
    lambdas, _ = concat(read_all(path, TruthCuts(stable_ctau_mm=60.0, drop_pids=[211], **wide))[0])
    assert sorted(lambdas[0].pid.tolist()) == [-321, 3122, 3122]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 4096])
def test_events_are_the_same_whatever_the_chunks_the_input_arrives_in(monkeypatch, chunk):
    """Event starts straddling chunk borders are found once: the search resumes where it stopped."""
    whole, _, _ = read_all(EXAMPLE, batch_size=7, max_events=6)
    monkeypatch.setattr("parnassus.io.hepmc.CHUNK_BYTES", chunk)
    reader = HepMCReader(EXAMPLE, TruthCuts(), 7, RunCounts(), max_events=6)
    reader._stream.read1 = lambda size, read=reader._stream.read: read(min(size, chunk))  # decompressors' small chunks
    pieces = list(reader)
    (particles, numbers), (expected, expected_numbers) = concat(pieces), concat(whole)
    np.testing.assert_array_equal(numbers, expected_numbers)
    assert len(numbers) == 6 and ak.all(particles.px == expected.px)
