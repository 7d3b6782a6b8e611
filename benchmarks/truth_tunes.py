"""Truth multiplicities of the refsim training processes under different Pythia 8 tunes.

    python benchmarks/truth_tunes.py [--events 300]

How much of refsim's distance from the CMS 2011 statistics (`../shared/reference/README.md`, Pythia 6 Z2
truth) is the truth generator's? Generates ttbar and QCD pTHat 470-600 (and minimum bias, for the pileup
part) with the example cards under each tune and prints, per event, the final-state particles with
pT > 1 GeV and |eta| < 2.7 by class (charged with |eta| < 2.5 separately: what the tracker sees), and HT.
The hard-scatter mix is half ttbar, half QCD470, as the CMS table; minimum bias is reported per interaction.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import awkward as ak
import numpy as np

from parnassus.card import load_card
from parnassus.events import RunCounts
from parnassus.io.pythia import PythiaReader

ROOT = Path(__file__).resolve().parents[1]
TUNES = {
    "Monash 2013 (default)": ["Tune:pp = 14"],
    "4C": ["Tune:pp = 5"],
    "CUETP8M1 (CMS, UE like Z2*)": ["Tune:pp = 14", "MultipartonInteractions:pT0Ref = 2.4024",
                                    "MultipartonInteractions:ecmPow = 0.25208",
                                    "MultipartonInteractions:expPow = 1.6"],
}
CLASSES = ("charged hadrons", "electrons", "muons", "neutral hadrons", "photons")


def counts(cmnd: Path, extra: list[str], events: int, seed: int) -> dict[str, float]:
    """Per-event means of the truth multiplicities of ``events`` events of ``cmnd`` with ``extra`` settings."""
    card = load_card(ROOT / "cards" / "delphes_cms_like.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        tuned = Path(tmp) / cmnd.name
        tuned.write_text(cmnd.read_text() + "\n" + "\n".join(extra) + "\n")
        values: dict[str, list] = {}
        for batch in PythiaReader(tuned, card.truth, 100, RunCounts(), max_events=events, seed=seed):
            t = batch.final_state
            visible = (t.pt > 1.0) & (abs(t.eta) < 2.7)
            row = {name: ak.sum(visible & (t.cls == code), axis=1) for code, name in enumerate(CLASSES)}
            row["charged |eta|<2.5"] = ak.sum(visible & (t.charge != 0) & (abs(t.eta) < 2.5), axis=1)
            row["all"] = ak.sum(visible, axis=1)
            row["HT [GeV]"] = ak.sum(t.pt[visible], axis=1)
            for key, value in row.items():
                values.setdefault(key, []).append(ak.to_numpy(value))
    return {key: float(np.concatenate(v).mean()) for key, v in values.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300, help="events per process and tune")
    parser.add_argument("--seed", type=int, default=424242)
    args = parser.parse_args()
    examples = ROOT / "examples"
    table = {}
    for tune, extra in TUNES.items():
        tt = counts(examples / "ttbar_7TeV.cmnd", extra, args.events, args.seed)
        qcd = counts(examples / "qcd470_7TeV.cmnd", extra, args.events, args.seed + 1)
        mb = counts(examples / "minbias_7TeV.cmnd", extra, 4 * args.events, args.seed + 2)
        table[tune] = {key: (0.5 * (tt[key] + qcd[key]), mb[key]) for key in tt}
    print(f"truth per event, pT > 1 GeV, |eta| < 2.7; {args.events} ttbar + {args.events} QCD470 "
          f"(mix) and {4 * args.events} minimum-bias events per tune")
    header = "".join(f"{tune[:24]:>27s}" for tune in table)
    print(f"{'':22s}{header}")
    print(f"{'':22s}" + "".join(f"{'mix':>14s}{'min bias':>13s}" for _ in table))
    for key in next(iter(table.values())):
        print(f"{key:22s}" + "".join(f"{mix:14.2f}{mb:13.2f}" for mix, mb in (table[t][key] for t in table)))


if __name__ == "__main__":
    main()
