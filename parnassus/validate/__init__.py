"""The fidelity report (``parnassus validate``): candidate files against a target on the same truth events.

:func:`validate` reads the files in chunks, matches jets and particles to truth (:mod:`.matching`), extracts
the observables (:mod:`.observables`), computes 1-Wasserstein distances with noise floor and bootstrap
uncertainties (:mod:`.metrics`), and writes figures (:mod:`.plots`), ``metrics.json`` and ``index.md``
(:mod:`.report`).
"""

from parnassus.validate.report import validate

__all__ = ["validate"]
