#!/usr/bin/env bash
# KD-recipe ablation (issue 7 §2): recipes chosen on VALIDATION MAE only.
# CGCNN, 500 training crystals, 3 paired seeds, mp_eform and perov5, 500 validation crystals.
# Resumable: rerunning skips every stored run. Usage: bash benchmarks/bench_ablation.sh [JOBS]
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${1:-2}
OUT=${OUT:-benchmarks/results/bench/ablation}
B="crysgnn-dgl bench --train-sizes 500 --seeds 3 --val-limit 500 --jobs $JOBS --out $OUT --report-all"
$B --task mp_eform --modes vanilla,distilled --kd-weights 1,10,100 --target-norms l2,standardize
# standardised targets lost 9 % / 43 % / 101 % of validation MAE at λ = 1 / 10 / 100 on
# mp_eform: on the second task only the least harmful of them is repeated
$B --task perov5 --modes vanilla,distilled --kd-weights 1,10,100
$B --task perov5 --modes distilled --kd-weights 1 --target-norms standardize
$B --task mp_eform --modes distilled --kd-weights 10 --projections identity --target-norms l2,standardize
$B --task mp_eform --modes distilled --kd-weights 10 --kd-losses cosine
$B --task mp_eform --modes distilled --kd-weights 10 --projections mlp
$B --task mp_eform --modes distilled --kd-weights 10 --kd-decays linear
