"""Parnassus: a learned fast detector simulation that reads HepMC3 truth and writes Delphes-like ROOT."""

import os

# torch's OpenMP threads spin while idle unless told otherwise, which makes small ops on few cores 15-60x
# slower; this must be set before torch is imported, and every parnassus module is imported after this file.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
