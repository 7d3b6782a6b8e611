#!/usr/bin/env bash
# generator -> FIFO -> parnassus run -> analysis, the chain Delphes users run: the generator writes HepMC3 events
# into a named pipe and `parnassus run` simulates them as they come; no event file is stored.
#
#   examples/fifo_chain.sh [OUTPUT.root]       (default ttbar_fifo.root; EVENTS=100, CARD=cms2011, SEED=1)
#
# The generator here is Pythia 8 (`parnassus pythia` with the example ttbar card). With
# MadGraph5_aMC@NLO, let its Pythia 8 shower write into the FIFO instead: in the shower dialogue,
#   set HEPMCoutput:file fifo@/path/to/events.hepmc
# parnassus reads HepMC3 ASCII (Asciiv3); a HepMC2 (IO_GenEvent) stream is refused with a one-line error.
set -euo pipefail

output=${1:-ttbar_fifo.root}
here=$(cd "$(dirname "$0")" && pwd)
fifo_dir=$(mktemp -d)
fifo="$fifo_dir/events.hepmc"
mkfifo "$fifo"
generator=
simulation=
# on any exit, stop what still runs (one side left alone waits on the FIFO forever) and remove the FIFO
trap 'kill $generator $simulation 2>/dev/null || true; rm -rf "$fifo_dir"' EXIT

parnassus pythia "$here/ttbar_7TeV.cmnd" -n "${EVENTS:-100}" --seed "${SEED:-1}" "$fifo" &
generator=$!
parnassus run --card "${CARD:-cms2011}" --quiet "$fifo" "$output" &
simulation=$!

# wait for the first one to end; if it failed, `wait` exits the script (set -e) and the trap stops the other
while kill -0 "$generator" 2>/dev/null && kill -0 "$simulation" 2>/dev/null; do sleep 0.2; done
if ! kill -0 "$simulation" 2>/dev/null; then wait "$simulation"; fi
wait "$generator"
wait "$simulation"
generator=
simulation=

python "$here/analysis.py" "$output"
