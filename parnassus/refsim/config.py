"""Parameters of the reference detector simulation (the ``generator.refsim`` section of a card).

Every number lives in the card (``cards/refsim_cms2011.yaml``) with a comment giving its source; these
dataclasses only name and type them. Formulas are :class:`parnassus.formula.Formula` in pt, eta, energy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from parnassus.formula import Formula


@dataclass
class Effects:
    """Switches: each detector effect can be turned off to see what it does."""

    bending: bool = True  # charged particles follow a helix to the calorimeter surface
    loopers: bool = True  # low-pT charged particles that curl up never reach the calorimeters
    track_merging: bool = True  # close-by tracks in dense jet cores merge (the softer is lost)
    fake_tracks: bool = True
    vertex_resolution: bool = True
    hadron_response: bool = True  # hadronic response below 1 with large fluctuations
    shower_spread: bool = True  # lateral spread of showers into neighbouring cells
    noise: bool = True  # electronic noise in every cell
    cluster_splitting: bool = True  # topological clusters shared between local maxima
    brem: bool = True  # electrons radiate photons in the tracker material
    decays_in_flight: bool = True  # pions/kaons decaying to muons inside the tracker
    punch_through: bool = True  # hadron showers leaking into the muon system
    pileup: bool = True
    long_lived_decays: bool = True  # K0S, Lambda, ... left stable by the generator decay in the tracker
    conversions: bool = True  # photons convert to e+e- pairs in the tracker material
    shower_fragments: bool = True  # the ECAL part of a hadron shower is clumpy (several EM sub-showers)
    out_of_time_pileup: bool = True  # calorimeter energy from the interactions of the neighbouring bunch crossings


@dataclass
class Geometry:
    magnetic_field: float  # T
    tracker_radius: float  # mm, outer radius of the tracker
    tracker_half_length: float  # mm
    ecal_radius: float  # mm, front face of the barrel ECAL
    hcal_radius: float  # mm, front face of the barrel HCAL
    ecal_half_length: float  # mm, z of the endcap ECAL front face
    hcal_half_length: float  # mm
    tracker_eta_max: float
    calorimeter_eta_max: float
    muon_eta_max: float
    looper_max_turn: float  # rad: a track turning more than this before the endcap is lost
    ecal_cell: float  # cell size in eta and in phi (rad)
    hcal_cell: float


@dataclass
class Tracking:
    pt_min: float  # GeV
    production_radius_max: float  # mm: particles born further out have no reconstructable track
    efficiency: Formula  # charged hadrons (nuclear interactions in the material cost them hits)
    muon_efficiency: Formula
    electron_efficiency: Formula  # Gaussian-sum-filter tracking of electrons (brem)
    pt_resolution: Formula  # relative sigma(pT)/pT
    electron_pt_resolution: Formula  # relative, of the electron momentum at the vertex (Gaussian-sum fit)
    angular_resolution: Formula  # rad, in eta and in phi
    d0_resolution: Formula  # mm
    dz_resolution: Formula  # mm
    merge_distance: float  # eta-phi distance under which two tracks cannot be separated
    merge_probability: float  # probability that the softer of two close tracks is lost
    fake_rate: float  # fake tracks per real track
    fake_pt_mean: float  # GeV above pt_min, exponential


@dataclass
class Calorimetry:
    ecal_resolution: Formula  # absolute sigma(E) for electrons/photons, GeV
    hadron_response: Formula  # mean visible fraction of a hadron's energy
    hadron_resolution: Formula  # relative sigma of the visible energy
    hadron_mip_probability: float  # a hadron crosses the ECAL as a MIP and showers in the HCAL
    hadron_em_fraction_mean: float  # mean ECAL fraction of a hadron that showers in the ECAL
    hadron_em_fraction_width: float  # its spread (beta distribution)
    mip_ecal: float  # GeV deposited by a MIP in the ECAL
    mip_hcal: float  # GeV in the HCAL
    em_spread: float  # lateral sigma of an EM shower, in ECAL cells
    hadron_ecal_spread: float  # in ECAL cells
    hadron_hcal_spread: float  # in HCAL cells
    ecal_noise: float  # GeV per cell
    hcal_noise: float  # GeV per cell
    ecal_threshold: float  # GeV: cells below are dropped
    hcal_threshold: float
    ecal_seed: float  # GeV: a local maximum above this seeds a cluster
    hcal_seed: float
    ecal_share_width: float  # cells: sigma of the sharing of a topocluster between seeds
    hcal_share_width: float


@dataclass
class ParticleFlow:
    ecal_link_distance: float  # eta-phi distance for track -> ECAL cluster links
    hcal_link_distance: float
    neutral_excess_significance: float  # calo excess over tracks (in sigmas) that makes neutrals
    neutral_energy_min: float  # GeV added to that sigma: small excesses are noise
    photon_calibration: Formula  # factor applied to the energy of photon candidates (energy = raw cluster energy)
    hadron_calibration: Formula  # factor applied to hadronic cluster energy (energy = raw cluster energy)
    electron_e_over_p_min: float
    electron_e_over_p_max: float
    electron_h_over_e_max: float
    electron_pt_min: float
    electron_road_eta: float  # brem road half-width in eta around the track's ECAL entry point
    electron_road_margin: float  # rad, added on both sides of the road in phi
    electron_road_phi: float  # rad: the road's length for a track that curls up before the ECAL
    conversion_identification: float  # probability that a conversion with both legs tracked is identified
    electron_id_efficiency: Formula  # for tracks of true electrons passing the E/p, H/E criteria
    electron_fake_probability: float  # for other tracks passing them
    muon_p_min: float  # GeV: momentum needed to reach the muon stations
    muon_calo_energy: float  # GeV of calorimeter energy attributed to each muon track of a block (its MIP deposits)
    muon_id_efficiency: Formula
    decay_muon_id_efficiency: float  # a muon from a decay in flight is identified as muon
    punch_through_probability: Formula  # per charged hadron reaching the calorimeter


@dataclass
class Channel:
    fraction: float  # branching fraction
    products: list[int]  # two PDG ids


@dataclass
class Decay:
    pid: int  # the particle (its antiparticle decays to the conjugate products); c*tau from the particle package
    channels: list[Channel]


@dataclass
class Interactions:
    """Material of the tracker and what happens in it before the calorimeters."""

    radiation_lengths: Formula  # X/X0 of the tracker material in front of the ECAL, as a function of eta
    material_inner_radius: float  # mm: the beam pipe, where the material starts
    decays: list[Decay]  # long-lived hadrons that decay in the detector if the generator left them stable
    hadron_fragments: Formula  # mean number of extra EM sub-showers of a hadron's ECAL deposit (energy: of it)
    fragment_spread: float  # ECAL cells: lateral sigma of the sub-shower positions around the entry point
    fragment_core_weight: float  # the core's Dirichlet weight (each sub-shower has 1)


@dataclass
class Pileup:
    # minimum-bias truth events (.npz written by parnassus.refsim.pileup); made from source on first use if missing
    pool: Path = field(metadata={"may_not_exist": True})
    mu: float  # mean number of pileup interactions per event
    sigma_z: float  # mm: spread of the interaction vertices along z
    sigma_xy: float  # mm
    # out-of-time pileup: Poisson(2 mu) interactions of the neighbouring bunch crossings (-50 ns, +50 ns) leave
    # these fractions of their energy in the reconstructed ECAL and HCAL amplitudes (no tracks)
    out_of_time_ecal: float = 0.0
    out_of_time_hcal: float = 0.0
    source: Path | None = field(default=None, metadata={"may_not_exist": True})  # Pythia .cmnd or HepMC3 file
    events: int = field(default=5000, metadata={"positive": True})  # minimum-bias events in the pool
    seed: int = 1  # Pythia seed of the pool


@dataclass
class RefSimParameters:
    geometry: Geometry
    tracking: Tracking
    calorimetry: Calorimetry
    particle_flow: ParticleFlow
    interactions: Interactions
    pileup: Pileup | None = None
    effects: Effects = field(default_factory=Effects)
