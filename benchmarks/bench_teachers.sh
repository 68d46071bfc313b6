#!/usr/bin/env bash
# Issue 9: which teacher, and which of M3GNet's blocks, distils best — chosen on VALIDATION
# gain (benchmarks/select_recipe.py reads the same store), CGCNN at 1,000 crystals, 5 paired
# seeds, λ = 10 (the weight validation chose for M3GNet on perov5). Shares the main store, so
# the vanilla runs of bench_main.sh stage 3 are the reference and are not rerun.
# Stage alignn: ALIGNN (alignn, reduced as in bench_main.sh) on perov5 with CHGNet and M3GNet
# (λ = 10) and the bundled CrysGNN teacher (the default recipe), each against vanilla.
# Stage alignn-tasks: the same ALIGNN on dielectric (L1 loss) and log_kvrh: vanilla, and each teacher
# distilled, then shuffled, at the λ validation chose for it with CGCNN on that task (CrysGNN 100; CHGNet
# 100 on dielectric, 10 on log_kvrh; M3GNet 300 on dielectric, 10 on log_kvrh), not re-chosen for
# ALIGNN. About 10 (log_kvrh) and 17 (dielectric) min per run with 2 jobs on 2 cores: 70 runs, ≈ 8 h;
# it resumes.
# Stage lambda: CGCNN on perov5 distilled from CHGNet at λ = 3, 30, 100 (the λ is chosen on validation
# gain; λ = 10 is in stage chgnet), and the shuffled controls at λ = 30 and 100.
# Stage m3gnet-lambda: CGCNN distilled from M3GNet at λ = 30, 100 and 300 on perov5, dielectric (L1
# loss) and log_kvrh (λ = 1 and 10 are in bench_main.sh); stage m3gnet-lambda-control: the shuffled
# control at the λ validation chose on each task (perov5 100, dielectric 300, log_kvrh 10). About 1
# (perov5) to 3 min per run.
# Stage denoise: CGCNN distilled from the long denoising-only CrysGNN pre-training (issue 8; TEACHER,
# default benchmarks/results/pretrain_denoise/denoise_teacher.pt) on mp_eform and perov5 at λ = 1 and 10;
# stage denoise-control: its shuffled control at the λ validation chose (LAMBDA, default 10);
# stage denoise-conv1: the same teacher's first convolution (--teacher-depth 1, where its probes are
# best) on mp_eform, distilled and shuffled at that λ.
# Usage: bash benchmarks/bench_teachers.sh [JOBS] [STAGE...]   (stages: blocks chgnet lambda m3gnet-lambda m3gnet-lambda-control alignn alignn-tasks denoise denoise-control denoise-conv1)
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${1:-2}
shift || true
STAGES=${*:-blocks chgnet lambda alignn}
OUT=${OUT:-benchmarks/results/bench/main}
B="crysgnn-dgl bench --jobs $JOBS --out $OUT --report-all --train-sizes 1000 --seeds 5 --kd-weights 10"
for STAGE in $STAGES; do
  case $STAGE in
    blocks) for TASK in perov5 log_kvrh; do
              for BLOCK in gc_2 gc_3; do $B --task $TASK --modes distilled --teacher m3gnet:$BLOCK; done
            done ;;
    chgnet) for TASK in perov5 log_kvrh; do $B --task $TASK --modes distilled,shuffled-teacher --teacher chgnet; done
            $B --task dielectric --loss l1 --modes distilled,shuffled-teacher --teacher chgnet ;;
    lambda) C="crysgnn-dgl bench --jobs $JOBS --out $OUT --report-all --train-sizes 1000 --seeds 5 --task perov5 --teacher chgnet"
            $C --modes distilled --kd-weights 3,30,100
            $C --modes shuffled-teacher --kd-weights 30,100 ;;
    m3gnet-lambda|m3gnet-lambda-control)
            M="crysgnn-dgl bench --jobs $JOBS --out $OUT --report-all --train-sizes 1000 --seeds 5 --teacher m3gnet"
            for TASK in perov5 dielectric log_kvrh; do
              T="--task $TASK"
              case $TASK in perov5) CHOSEN=100 ;; dielectric) T="$T --loss l1"; CHOSEN=300 ;; log_kvrh) CHOSEN=10 ;; esac
              if [ "$STAGE" = m3gnet-lambda ]; then $M $T --modes distilled --kd-weights 30,100,300
              else $M $T --modes shuffled-teacher --kd-weights $CHOSEN; fi
            done ;;
    alignn) A="crysgnn-dgl bench --jobs $JOBS --out $OUT --report-all --train-sizes 1000 --seeds 5 --task perov5 --predictors alignn"
            $A --modes vanilla,distilled,shuffled-teacher --teacher chgnet --kd-weights 10
            $A --modes distilled,shuffled-teacher --teacher m3gnet --kd-weights 10
            $A --modes distilled ;;
    alignn-tasks)
            for TASK in log_kvrh dielectric; do
              A="crysgnn-dgl bench --jobs $JOBS --out $OUT --report-all --train-sizes 1000 --seeds 5 --task $TASK --predictors alignn"
              if [ "$TASK" = dielectric ]; then A="$A --loss l1"; CHGNET_LAMBDA=100; M3GNET_LAMBDA=300
              else CHGNET_LAMBDA=10; M3GNET_LAMBDA=10; fi
              # distilled arms first, so that an interrupted cell already answers "does it beat vanilla"
              $A --modes vanilla,distilled --teacher chgnet --kd-weights $CHGNET_LAMBDA
              $A --modes distilled
              $A --modes distilled --teacher m3gnet --kd-weights $M3GNET_LAMBDA
              $A --modes shuffled-teacher --teacher chgnet --kd-weights $CHGNET_LAMBDA
              $A --modes shuffled-teacher
              $A --modes shuffled-teacher --teacher m3gnet --kd-weights $M3GNET_LAMBDA
            done ;;
    denoise|denoise-control)
            T=${TEACHER:-benchmarks/results/pretrain_denoise/denoise_teacher.pt}
            D="crysgnn-dgl bench --jobs $JOBS --out $OUT --report-all --train-sizes 1000 --seeds 5 --teacher $T"
            for TASK in mp_eform perov5; do
              if [ "$STAGE" = denoise ]; then $D --task $TASK --modes distilled --kd-weights 1,10
              else $D --task $TASK --modes shuffled-teacher --kd-weights "${LAMBDA:-10}"; fi
            done ;;
    denoise-conv1)
            T=${TEACHER:-benchmarks/results/pretrain_denoise/denoise_teacher.pt}
            crysgnn-dgl bench --jobs $JOBS --out $OUT --report-all --train-sizes 1000 --seeds 5 --teacher $T \
              --teacher-depth 1 --task mp_eform --modes distilled,shuffled-teacher --kd-weights "${LAMBDA:-10}" ;;
    *)      echo "unknown stage $STAGE" >&2; exit 2 ;;
  esac
done
