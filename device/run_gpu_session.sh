#!/usr/bin/env bash
# One command for a session lent a GPU while issues 17 and 18 are both open: 15 device minutes
# hold one machine start and one call of at most 10 minutes, not the two ~8-minute calls of
# zoo/camvid_gpu/run_on_device.sh and benchmarks/run_gpu_on_device.sh. So:
#   1. the CamVid training (issue 18) first, as in run_on_device.sh but stopped by
#      --deadline_minutes 5.75 (4 minutes of training): its weights are on disk before 2 starts;
#   2. the speed benchmark (issue 17: inference fp32 + bf16 and a bf16 training step against
#      torchvision) in the time left of SESSION_S (575 s), without torch.compile (its compilations
#      do not fit; a warm second call can add them: PARTS=inference with cl_compile_* configs).
# The device returns at most 8 files: the CamVid run's small logs are folded into logs.tar, and
# the benchmark keeps only inference.log and train_step.log, so $OUT holds
#   camvid/  best.weights-K-of-N.h5 (N <= 3), train_log.json, probe.npz, logs.tar
#            (train_log.txt, run.log, curves.png)
#   bench/   inference.log, train_step.log
# The device call (from the repository root, after `python3 zoo/camvid_gpu/pack_data.py`):
#   run(command="bash device/run_gpu_session.sh", carry=[".camvid_pack", ".whl"], timeout_s=600)
# Arguments go to train_on_device.py (after the defaults, so they win). Environment: OUT
# (required), PYTHON, SKIP_WHEELS=1, SMOKE=1 and DEVICE=cpu (rehearsal, as in the two scripts),
# SESSION_S (575), CAMVID_TIMEOUT (370).
set -u -o pipefail
cd "$(dirname "$0")/.." || exit 1
: "${OUT:?set OUT to the output folder (the device sets it)}"
export PYTHON=${PYTHON:-python3}
ROOT_OUT=$OUT
start=$SECONDS

echo "== [session] 1/2 CamVid training (issue 18)"
OUT="$ROOT_OUT/camvid" TRAIN_TIMEOUT=${CAMVID_TIMEOUT:-370} \
  bash zoo/camvid_gpu/run_on_device.sh --deadline_minutes 5.75 "$@"
camvid=$?
( cd "$ROOT_OUT/camvid" 2>/dev/null && small=$(ls train_log.txt run.log curves.png 2>/dev/null) \
  && [ -n "$small" ] && tar -cf logs.tar $small && rm -f $small )
if [ "${SKIP_WHEELS:-0}" != 1 ]; then  # installed by the first part
  export SKIP_WHEELS=1 PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

left=$(( ${SESSION_S:-575} - (SECONDS - start) ))
echo "== [session] CamVid part exit status $camvid after $(( SECONDS - start )) s; ${left} s left"
bench=0
if [ "$left" -lt 90 ]; then
  echo "== [session] 2/2 speed benchmark skipped: under 90 s left"
else
  infer=$(( left * 11 / 20 )); train=$(( left - infer - 5 ))
  echo "== [session] 2/2 speed benchmark (issue 17): inference ${infer} s, training step ${train} s"
  OUT="$ROOT_OUT/bench" RUN_LOG=/tmp/bench_run.log TORCH_COMPILE=0 \
    INFER_TIMEOUT=$infer TRAIN_TIMEOUT=$train CONTENDER_TIMEOUT=$(( (train - 10) / 2 )) \
    bash benchmarks/run_gpu_on_device.sh
  bench=$?
fi
echo "== [session] done after $(( SECONDS - start )) s: CamVid $camvid, benchmark $bench"
ls -lR "$ROOT_OUT"
[ "$camvid" = 0 ] && [ "$bench" = 0 ]
