"""The learned model against refsim and the parametric generator, on held-out processes and generator settings.

    python benchmarks/validate_model.py [--events 500] [--processes ttbar,qcd470,...] [--settings project,defaults]
                                        [--card cards/cms2011.yaml] [--out runs/validation] [--rerun neural]
                                        [--student cards/cms2011_2step.yaml] [--other-seed 4242] [--baseline CARD]

For each process (``examples/<process>_7TeV.cmnd``) and generator setting -- ``project``: the card as is (the
training data's convention: K0S/Lambda stable in the generator, CMS-2011 luminous region); ``defaults``:
Pythia's defaults (``ParticleDecays:limitTau0 = off``, ``Beams:allowVertexSpread = off``) -- the script
generates one HepMC3 file (seed 7000 + process index; none of these seeds made training data), runs refsim
(the target), the learned card and the parametric card on it, and writes ``parnassus validate`` reports under
``--out``. The parametric card gets the refsim card's ``truth.stable_ctau_mm``: the report needs the same
truth particles in all files. It prints, per sample, the number of observables on which each candidate is
closest to refsim (all, and event + jet level), the learned model's event-level observables within 2x refsim's
split-half noise floor (event and MET figures), and per-event means of HT, MET and the PFC multiplicity.
Files already in ``--out`` are reused, except those of the generators named in ``--rerun`` (default: neural).
With ``--student CARD`` (a distilled model), the student runs too, is counted among the candidates, and is
also compared with the teacher as the target: the event- and jet-level observables on which the student is
within 2x the teacher's split-half noise floor (the same truth events, other random numbers). The teacher runs
a second time with sampling seed ``--other-seed`` (``teacher_other_seed.root``, made again with ``neural``) and is
put to the same test: it calibrates the test, since an exact copy of the teacher differs from it only by
statistics (at 2000 events it is outside 2x on 0-1 of ~50 observables per sample). With
``--baseline CARD`` (another learned model, for an ablation) that card runs too and is counted among the
candidates as ``baseline``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import awkward as ak
import uproot

from parnassus.card import load_card
from parnassus.io.pythia import write_hepmc
from parnassus.run import run
from parnassus.validate.observables import OBSERVABLES
from parnassus.validate.report import validate

ROOT = Path(__file__).resolve().parents[1]
PROCESSES = ("ttbar", "qcd470", "qcd600", "ggH_ZZ_4l", "zprime_tt")
DEFAULTS = {"ParticleDecays:limitTau0": "off", "Beams:allowVertexSpread": "off"}
EVENT_AND_JET = ("event", "met", "jet", "isolated")  # figure-name prefixes of event-, object- and jet-level
EVENT = ("event", "met")


def with_settings(cmnd: Path, setting: str, folder: Path) -> Path:
    """``cmnd`` as is (``project``) or a copy with Pythia's default decays and no luminous region."""
    if setting == "project":
        return cmnd
    lines = [line for line in cmnd.read_text().splitlines() if line.split("=")[0].strip() not in DEFAULTS]
    copy = folder / f"{cmnd.stem}_{setting}.cmnd"
    copy.write_text("\n".join(lines + [f"{key} = {value}" for key, value in DEFAULTS.items()]) + "\n")
    return copy


def means(path: Path) -> dict[str, float]:
    with uproot.open(path) as file:
        a = file["Delphes"].arrays(["ParticleFlowCandidate_size", "ParticleFlowCandidate.PT", "MissingET.MET"])
    return {"HT": float(ak.mean(ak.sum(a["ParticleFlowCandidate.PT"], axis=1))),  # all candidates (the papers')
            "MET": float(ak.mean(a["MissingET.MET"][:, 0])),
            "N": float(ak.mean(a["ParticleFlowCandidate_size"]))}


def within_floor(metrics: dict, label: str, prefixes: tuple[str, ...]) -> tuple[int, int, list[str]]:
    """(observables of the figures ``prefixes`` on which ``label`` is within 2x the target's noise floor, how many
    were compared, the keys of those outside)."""
    figure = {spec.key: spec.figure for spec in OBSERVABLES}
    compared = {key: e for key, e in metrics["observables"].items()  # a floor needs enough entries in the target
                if e["closest"] and figure[key].startswith(prefixes) and e["noise_floor"]["value"] is not None}
    outside = [key for key, e in compared.items() if e["w1"][label]["value"] > 2 * e["noise_floor"]["value"]]
    return len(compared) - len(outside), len(compared), outside


def summarise(metrics: dict, labels: list[str]) -> dict:
    """Closest counts (all, event + jet level) and the first candidate's event-level observables within 2x the
    target's noise floor."""
    figure = {spec.key: spec.figure for spec in OBSERVABLES}
    entries = metrics["observables"]
    counted = {key: e for key, e in entries.items() if e["closest"]}
    event_jet = {key: e for key, e in counted.items() if figure[key].startswith(EVENT_AND_JET)}
    within, n_event, _ = within_floor(metrics, labels[0], EVENT)
    return {"closest": {label: sum(e["closest"] == label for e in counted.values()) for label in labels},
            "closest_event_jet": {label: sum(e["closest"] == label for e in event_jet.values()) for label in labels},
            "observables": len(counted), "event_jet_observables": len(event_jet),
            "event_within_2x_floor": f"{within}/{n_event}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--processes", default=",".join(PROCESSES))
    parser.add_argument("--settings", default="project,defaults")
    parser.add_argument("--card", default=str(ROOT / "cards" / "cms2011.yaml"))
    parser.add_argument("--out", default=str(ROOT / "runs" / "validation"))
    parser.add_argument("--rerun", default="neural", help="generators whose existing output is made again")
    parser.add_argument("--student", default=None, help="card of a distilled student of --card's model")
    parser.add_argument("--other-seed", type=int, default=4242, help="sampling seed of the teacher's second run")
    parser.add_argument("--baseline", default=None, help="card of another learned model to compare with")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cards = {"refsim": load_card(ROOT / "cards" / "refsim_cms2011.yaml"), "neural": load_card(args.card),
             "parametric": load_card(ROOT / "cards" / "delphes_cms_like.yaml")}
    # the report compares files with the same truth: the parametric card reads the record with the same rule
    cards["parametric"].truth.stable_ctau_mm = cards["refsim"].truth.stable_ctau_mm
    labels = ["neural", "parametric"]
    if args.student:
        cards["student"] = load_card(args.student)
        labels.insert(1, "student")
        cards["teacher_other_seed"] = load_card(args.card)
        cards["teacher_other_seed"].sampling.seed = args.other_seed
    if args.baseline:
        cards["baseline"] = load_card(args.baseline)
        labels.insert(1, "baseline")
    rerun = args.rerun.split(",")
    if "neural" in rerun:  # the teacher's second run is the teacher's output too
        rerun.append("teacher_other_seed")
    rows = {}
    for process in args.processes.split(","):
        for setting in args.settings.split(","):
            name = f"{process}_{setting}"
            folder = out / name
            folder.mkdir(exist_ok=True)
            source = with_settings(ROOT / "examples" / f"{process}_7TeV.cmnd", setting, folder)
            truth = folder / "truth.hepmc.gz"
            if not truth.exists():
                write_hepmc(source, args.events, truth, seed=7000 + PROCESSES.index(process))
            files, seconds = {}, {}
            for label, card in cards.items():
                files[label] = folder / f"{label}.root"
                if files[label].exists() and label not in rerun:
                    continue
                start = time.perf_counter()
                run(card, truth, files[label], progress=False)
                seconds[label] = round(time.perf_counter() - start, 1)
            metrics = validate(files["refsim"], [files[label] for label in labels], folder / "report",
                               labels=["refsim", *labels], formats=("png",), progress=False)
            rows[name] = {**summarise(metrics, labels), "means": {k: means(f) for k, f in files.items()},
                          "seconds": seconds}
            if args.student:
                against = validate(files["neural"], [files["student"], files["teacher_other_seed"]],
                                   folder / "student_report", labels=["teacher", "student", "teacher_other_seed"],
                                   formats=("png",), progress=False)
                for label in ("student", "teacher_other_seed"):
                    within, compared, outside = within_floor(against, label, EVENT_AND_JET)
                    rows[name][f"{label}_within_2x_teacher_floor"] = f"{within}/{compared}"
                    rows[name][f"{label}_outside"] = outside
            print(name, json.dumps(rows[name]), flush=True)
    (out / "summary.json").write_text(json.dumps(rows, indent=1))
    print(f"candidates: {' / '.join(labels)}")
    print(f"{'sample':22s} {'closest (all)':>22s} {'closest (event+jet)':>22s} {'event <2x floor':>16s}"
          + (f" {'student <2x teacher floor':>26s} {'other seed':>11s}" if args.student else ""))
    for name, row in rows.items():
        closest = " / ".join(str(row["closest"][label]) for label in labels)
        event_jet = " / ".join(str(row["closest_event_jet"][label]) for label in labels)
        print(f"{name:22s} {closest:>14s} of {row['observables']:3d} {event_jet:>14s} of "
              f"{row['event_jet_observables']:3d} {row['event_within_2x_floor']:>16s}"
              + (f" {row['student_within_2x_teacher_floor']:>26s} "
                 f"{row['teacher_other_seed_within_2x_teacher_floor']:>11s}" if args.student else ""))


if __name__ == "__main__":
    main()
