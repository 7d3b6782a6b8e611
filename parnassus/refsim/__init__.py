"""refsim: the project's reference detector simulation (CMS-2011-like), the target the learned models emulate.

It is not CMS: it is a detailed, slower, vectorised-numpy simulation that contains the effects that
per-particle smearing cannot produce (see docs/refsim.md). Chain per batch of events:

    hard-scatter final state + pileup (Poisson overlay of minimum-bias events)
      → electrons radiate brem photons; pions/kaons may decay to muons in flight
      → propagation through the 3.8 T solenoid to the ECAL/HCAL surfaces (loopers never arrive)
      → tracking (efficiency, merging in dense cores, resolution, vertex resolution, fakes, muon system)
      → ECAL/HCAL deposits (EM / hadronic response, lateral spread), noise, thresholds, clustering
      → particle flow (links, electrons, blocks, neutral excess) → candidates above the output cuts

It is a generator like the others (``generator.kind: refsim``), so ``parnassus refsim`` writes the same
ROOT layout as ``parnassus run``. It does not import torch.
"""
