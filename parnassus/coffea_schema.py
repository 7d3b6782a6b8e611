"""coffea support for Parnassus output (needs the optional ``coffea`` package).

Parnassus writes each Delphes leaf as a flat branch ``Jet.PT`` (uproot cannot write Delphes' split
branches). coffea's stock ``DelphesSchema`` looks for the nested names ``Jet/Jet.PT`` of real Delphes
files; this subclass gives it those names, so a coffea analysis changes one import::

    from parnassus.coffea_schema import DelphesSchema
    events = NanoEventsFactory.from_root({"out.root": "Delphes"}, schemaclass=DelphesSchema).events()
"""

from __future__ import annotations

from coffea.nanoevents.schemas import DelphesSchema as _CoffeaDelphesSchema


def nested_name(branch: str) -> str:
    """``Jet.PT`` → ``Jet/Jet.PT``; counters (``Jet_size``) and nested names are unchanged."""
    if "." in branch and "/" not in branch:
        return f"{branch.split('.', 1)[0]}/{branch}"
    return branch


class DelphesSchema(_CoffeaDelphesSchema):
    """coffea's DelphesSchema for the flat ``Collection.Leaf`` branch names that Parnassus writes.

    ``Rho`` stays a collection (one entry per eta range, as Delphes writes it): coffea's schema would take it for a
    one-per-event singleton and misalign the values of events with more than one range."""

    singletons = [name for name in _CoffeaDelphesSchema.singletons if name != "Rho"]

    def __init__(self, base_form: dict, *args, **kwargs):
        base_form = dict(base_form)
        base_form["fields"] = [nested_name(name) for name in base_form["fields"]]
        super().__init__(base_form, *args, **kwargs)
