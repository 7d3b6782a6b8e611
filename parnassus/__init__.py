"""Parnassus: a learned fast detector simulation that reads HepMC3 truth and writes Delphes-like ROOT."""

__version__ = "0.1.0"
