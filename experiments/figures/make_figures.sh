#!/usr/bin/env bash
# Regenerates the manual's figures in docs/figures: montages of the built-in simulators
# (one row per class, the first 8 items of each; classes are drawn round-robin, so
# n_samples = 8 x classes),
# and screenshots of the report of experiments/simulated.yaml (about a minute; needs
# chromium). Run from the repository root: `make figures`, or with clustergrid and python
# on PATH: bash experiments/figures/make_figures.sh
set -euo pipefail

clustergrid inspect "{plugin: sim-galaxies, n_samples: 32, size: 64, bands: 3, seed: 0}" \
    --per-class 8 --montage docs/figures/sim-galaxies.png
clustergrid inspect "{plugin: sim-lenses, n_samples: 24, size: 64, seed: 0}" \
    --per-class 8 --montage docs/figures/sim-lenses.png
clustergrid inspect "{plugin: sim-cherenkov, n_samples: 24, size: 64, seed: 0}" \
    --per-class 8 --montage docs/figures/sim-cherenkov.png

# In a scratch folder, so its store and cache leave nothing behind.
root=$(pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
(cd "$scratch" && clustergrid run "$root/experiments/simulated.yaml" --report report.html)
python experiments/figures/report_screenshots.py "$scratch/report.html" docs/figures
