#!/usr/bin/env bash
# The one command to give a lent GPU machine for issue 17's GPU part: inference (fp32 and bf16,
# batch 16, 513x513) and a bf16 training step (batch 16, 513x513), DeepLabV3-ResNet101 OS8,
# ours on Keras 3 + JAX against torchvision in the same run; logs and JSON under $OUT.
#
# Before it, here, once: the keras/namex/optree wheels for Python 3.12 in .whl/ (made by
# `python3 zoo/camvid_gpu/pack_data.py`, or the pip download line in BUILD.md). The device call:
#   run(command="bash benchmarks/run_gpu_on_device.sh", carry=[".whl"], timeout_s=480)
# then give_back, and copy the two logs into docs/results/issue17_gpu/ and the figures into
# BENCHMARKS.md.
#
# Time (estimates, to be replaced by the first run's figures): each part is stopped by
# `timeout` at its budget, so the whole stays inside timeout_s=480 (with a 1-2 minute machine
# start, ~10 of the session's 15 device minutes; a warm rerun of one part, e.g.
# PARTS=train TORCH_COMPILE=0, fits in the rest):
#   inference  INFER_TIMEOUT=200 s  (2 compilations of ours, torchvision eager + compiled)
#   training   TRAIN_TIMEOUT=240 s  (ours, torchvision eager, torchvision compiled: 3 processes,
#              each stopped by the part's budget so that the results are always printed)
# A shorter run without torch.compile (e.g. to leave room for issue 18's run in the same
# session's 15 device minutes): TORCH_COMPILE=0.
#
# Environment: OUT (required; the device sets it), PYTHON (python3), SKIP_WHEELS=1 (use the
# keras already installed, e.g. for a rehearsal), PARTS (inference,train), TORCH_COMPILE (1),
# TRAIN_TORCH_COMPILE (TORCH_COMPILE's value; the training part only), INFER_TIMEOUT (200),
# TRAIN_TIMEOUT (240), CONTENDER_TIMEOUT (150: each training contender's share), RUN_LOG
# ($OUT/run.log; another path keeps $OUT to the two part logs), SMOKE=1 (tiny sizes: the
# rehearsal on a CPU, with DEVICE=cpu).
# Outputs: run.log (everything), inference.log, train_step.log (each ends with RESULT_JSON).
set -u -o pipefail
cd "$(dirname "$0")/.." || exit 1
: "${OUT:?set OUT to the output folder (the device sets it)}"
PYTHON=${PYTHON:-python3}
PARTS=${PARTS:-inference,train}
DEVICE=${DEVICE:-gpu}
mkdir -p "$OUT"
. device/env.sh
{
  device_env || exit 3
  export XLA_PYTHON_CLIENT_PREALLOCATE=false
  if [ "$DEVICE" = cpu ]; then export JAX_PLATFORMS=cpu; fi
  $PYTHON -c "import jax, keras, torch, torchvision; print('jax', jax.__version__, \
jax.devices(), '| keras', keras.__version__, '| torch', torch.__version__, \
'| torchvision', torchvision.__version__)" || exit 4
  smoke=()
  if [ "${SMOKE:-0}" = 1 ]; then smoke=(--smoke); fi
  status=0
  if [[ ",$PARTS," == *,inference,* ]]; then
    configs=cl_fp32,cl_bf16
    if [ "${TORCH_COMPILE:-1}" = 1 ]; then configs=$configs,cl_compile_fp32,cl_compile_bf16; fi
    echo "== inference (budget ${INFER_TIMEOUT:-200} s)"
    timeout --kill-after=10 "${INFER_TIMEOUT:-200}" $PYTHON benchmarks/inference.py \
      --backend jax --device "$DEVICE" --precisions fp32,bf16 --torch-configs "$configs" \
      "${smoke[@]}" 2>&1 | tee "$OUT/inference.log"
    code=${PIPESTATUS[0]}; echo "== inference exit status $code"; [ "$code" = 0 ] || status=$code
  fi
  if [[ ",$PARTS," == *,train,* ]]; then
    configs=cl
    if [ "${TRAIN_TORCH_COMPILE:-${TORCH_COMPILE:-1}}" = 1 ]; then configs=cl,cl_compile; fi
    echo "== training step (budget ${TRAIN_TIMEOUT:-240} s)"
    timeout --kill-after=10 "${TRAIN_TIMEOUT:-240}" $PYTHON benchmarks/train_step.py \
      --backend jax --device "$DEVICE" --precision bf16 --torch_configs "$configs" \
      --contender_timeout "${CONTENDER_TIMEOUT:-150}" --budget_s $(( ${TRAIN_TIMEOUT:-240} - 10 )) "${smoke[@]}" 2>&1 \
      | tee "$OUT/train_step.log"
    code=${PIPESTATUS[0]}; echo "== training step exit status $code"; [ "$code" = 0 ] || status=$code
  fi
  ls -l "$OUT"
  exit $status
} 2>&1 | tee "${RUN_LOG:-$OUT/run.log}"
exit "${PIPESTATUS[0]}"
