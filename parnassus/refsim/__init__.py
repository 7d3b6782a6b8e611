"""refsim: the project's reference detector simulation (CMS-2011-like), the target the learned models emulate.

It is not CMS: it is a detailed, slower, vectorised-numpy simulation that contains the effects that
per-particle smearing cannot produce (see docs/refsim.md). Chain per batch of events:

    hard-scatter final state + pileup (Poisson overlay of minimum-bias events)
      → tracker material: long-lived hadrons decay, electrons radiate (Bethe-Heitler), photons convert;
        pions/kaons may decay to muons in flight
      → propagation through the 3.8 T solenoid from each production point to the ECAL/HCAL surfaces
      → tracking (per-class efficiency, merging in dense cores, resolution, reference point, fakes, muon system)
      → ECAL/HCAL deposits (EM / clumpy hadronic showers, response), out-of-time pileup, noise, thresholds,
        clustering
      → particle flow (conversions, brem-road electrons, links, blocks, calibrated neutral excess) → candidates
        above the output cuts

It is a generator like the others (``generator.kind: refsim``), so ``parnassus refsim`` writes the same
ROOT layout as ``parnassus run``. It does not import torch.
"""
