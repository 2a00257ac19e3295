#!/usr/bin/env bash
# The one command to give the lent GPU machine for issue 18: trains the CamVid DeepLabV3+ on JAX
# and leaves weights and logs under $OUT.
#
# Before it, here, from the repository root (once):
#   python3 zoo/camvid_gpu/pack_data.py      # .camvid_pack/ (JPEG-95 + PNG labels) and .whl/
# The device tool's call (from the repository root; ~54 MiB travel, the limit is 64 MiB):
#   run(command="bash zoo/camvid_gpu/run_on_device.sh",
#       carry=[".camvid_pack", ".whl"], timeout_s=480)
# Timing: the training script stops itself by --deadline_minutes (6.5 min: ~4 min of training,
# the rest data, compilation, evaluations and saving); `timeout` below kills it at
# TRAIN_TIMEOUT seconds (420) if it hangs; timeout_s=480 covers the wheel install too. With a
# machine start of 1-2 min this is about 9 of the session's 15 device minutes, which leaves a
# fresh start (no machine starts under 4 minutes left) and a short rerun, e.g.
#   run(command="bash zoo/camvid_gpu/run_on_device.sh --minutes 1.5 --deadline_minutes 3",
#       carry=[".camvid_pack", ".whl"], timeout_s=240)
# Then call give_back, and here:
#   python3 zoo/camvid_gpu/finish_bundle.py --run_dir <files_at> --output runs/camvid_gpu/weights.h5
#
# Arguments after the script name go to train_on_device.py (they override its defaults).
# Environment: OUT (required; the device sets it), PYTHON (python3), SKIP_WHEELS=1 (use the
# keras already installed, e.g. for a rehearsal here), TRAIN_TIMEOUT (seconds, 420).
# Outputs (at most 8 files come back): best.weights-K-of-3.h5, train_log.json, train_log.txt,
# probe.npz, curves.png and run.log (this script's whole output).
set -u -o pipefail
cd "$(dirname "$0")/../.." || exit 1
: "${OUT:?set OUT to the output folder (the device sets it)}"
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
. device/env.sh
{
  device_env || exit 3
  $PYTHON -c "import jax, keras; print('jax', jax.__version__, jax.devices(), '| keras', \
keras.__version__, keras.backend.backend())" || exit 4
  timeout --kill-after=15 "${TRAIN_TIMEOUT:-420}" \
    $PYTHON zoo/camvid_gpu/train_on_device.py --output_dir "$OUT" "$@"
  status=$?
  rm -f "$OUT"/.*.partial*  # temporary files of writes cut short (deeplab_keras.files)
  echo "== train_on_device.py exit status $status"
  ls -l "$OUT"
  exit $status
} 2>&1 | tee "$OUT/run.log"
exit "${PIPESTATUS[0]}"
