#!/usr/bin/env bash
# Regenerates the README's montages of the built-in simulators: one row per class, the
# first 8 items of each (classes are drawn round-robin, so n_samples = 8 x classes).
# Run from the repository root: bash experiments/figures/make_figures.sh
set -euo pipefail

clustergrid inspect "{plugin: sim-galaxies, n_samples: 32, size: 64, bands: 3, seed: 0}" \
    --per-class 8 --montage experiments/figures/sim-galaxies.png
clustergrid inspect "{plugin: sim-lenses, n_samples: 24, size: 64, seed: 0}" \
    --per-class 8 --montage experiments/figures/sim-lenses.png
clustergrid inspect "{plugin: sim-cherenkov, n_samples: 24, size: 64, seed: 0}" \
    --per-class 8 --montage experiments/figures/sim-cherenkov.png
