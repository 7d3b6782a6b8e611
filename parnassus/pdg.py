"""PDG ids → the 5 particle-flow classes, electric charge and proper decay length (via the ``particle`` package)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from particle import InvalidParticle, Particle, ParticleNotFound, pdgid

CHARGED_HADRON, ELECTRON, MUON, NEUTRAL_HADRON, PHOTON = range(5)
CLASS_NAMES = ("charged_hadron", "electron", "muon", "neutral_hadron", "photon")

# Representative PDG id and mass (GeV) written for a reconstructed candidate of each class.
CLASS_PID = np.array([211, -11, -13, 130, 22], dtype=np.int32)  # positive charge for the charged classes
CLASS_MASS = np.array([0.13957039, 0.00051099895, 0.1056583755, 0.0, 0.0])


@lru_cache(maxsize=4096)
def _charge_and_class(pid: int) -> tuple[int, int]:
    """(charge in units of e, class) for one PDG id; class -1 when the id is not a valid PDG id, or a valid one
    that the ``particle`` package's PDG table does not know (9999999 is no neutral hadron)."""
    if not pdgid.is_valid(pid):
        return 0, -1
    try:
        Particle.from_pdgid(pid)
    except (ParticleNotFound, InvalidParticle):
        return 0, -1
    three_charge = pdgid.three_charge(pid)
    charge = 0 if three_charge is None else int(round(three_charge / 3))
    apid = abs(pid)
    if apid == 11:
        return charge, ELECTRON
    if apid == 13:
        return charge, MUON
    if apid == 22:
        return charge, PHOTON
    return charge, CHARGED_HADRON if charge != 0 else NEUTRAL_HADRON


def charge_and_class(pids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`_charge_and_class`: looks up each distinct PDG id once."""
    unique, inverse = np.unique(np.asarray(pids, dtype=np.int64), return_inverse=True)
    table = np.array([_charge_and_class(int(p)) for p in unique], dtype=np.int32).reshape(-1, 2)
    return table[inverse, 0], table[inverse, 1]


def delphes_charge(pids: np.ndarray) -> np.ndarray:
    """The charge Delphes writes for generator particles: the PDG charge truncated to an integer (quarks 0),
    -999 for an id the PDG table does not know (strings, clusters, generator-internal codes)."""
    unique, inverse = np.unique(np.asarray(pids, dtype=np.int64), return_inverse=True)
    table = np.array([_truncated_charge(int(p)) for p in unique], dtype=np.int32)
    return table[inverse.reshape(-1)]


@lru_cache(maxsize=4096)
def _truncated_charge(pid: int) -> int:
    three_charge = pdgid.three_charge(pid) if _charge_and_class(pid)[1] >= 0 else None
    return -999 if three_charge is None else int(three_charge / 3)


@lru_cache(maxsize=4096)
def _ctau_mm(apid: int) -> float:
    """c*tau in mm of one (positive) PDG id; 0 when unknown, without a lifetime, or stable (inf)."""
    try:
        ctau = Particle.from_pdgid(apid).ctau
    except (ParticleNotFound, InvalidParticle):
        return 0.0
    return float(ctau) if ctau is not None and np.isfinite(ctau) else 0.0


def ctau_mm(pids: np.ndarray) -> np.ndarray:
    """Vectorised :func:`_ctau_mm` of ``|pids|``: looks up each distinct id once."""
    unique, inverse = np.unique(np.abs(np.asarray(pids, dtype=np.int64)), return_inverse=True)
    return np.array([_ctau_mm(int(p)) for p in unique], dtype=np.float64)[inverse.reshape(-1)]


def candidate_pid(classes: np.ndarray, charges: np.ndarray) -> np.ndarray:
    """PDG id written for reconstructed candidates: 211/-211, 11/-11, 13/-13, 130, 22."""
    pid = CLASS_PID[classes]  # the id of the positive particle, so the charge's sign gives the id's sign
    return np.where(charges != 0, pid * np.sign(charges), pid).astype(np.int32)


def has_quark(pids, quark: int):
    """Per PDG id: a hadron with ``quark`` (4: charm, 5: bottom) among its quark digits.

    Hadrons are codes with the quark digits n_q2 and n_q3 set (n_q3 = 0 for diquarks) and no SUSY, excited-fermion
    or nuclear code (digit n of n n_r n_L n_q1 n_q2 n_q3 n_J is 0 or 9, at most 7 digits). Only arithmetic and
    comparisons: works on numpy and awkward arrays alike.
    """
    apid = abs(pids)
    digits = (apid // 10) % 10, (apid // 100) % 10, (apid // 1000) % 10
    hadron = (apid > 100) & (apid < 10**7) & (digits[0] > 0) & (digits[1] > 0)
    hadron = hadron & (((apid // 10**6) == 0) | ((apid // 10**6) == 9))
    return hadron & ((digits[0] == quark) | (digits[1] == quark) | (digits[2] == quark))
