# Sourced by the commands given to a lent GPU machine (zoo/camvid_gpu/run_on_device.sh,
# benchmarks/run_gpu_on_device.sh): prints what the machine is, installs the carried
# keras/namex/optree wheels from .whl/ (the machine's own keras may differ; it has no
# TensorFlow) and selects Keras' JAX backend. Run from the repository root.
# Environment: PYTHON (python3), SKIP_WHEELS=1 (use the keras already installed, e.g. for a
# rehearsal on a CPU). Returns 3 if the wheels do not install.
device_env() {
  echo "== $(date -u +%FT%TZ) $(hostname) $(uname -m); $($PYTHON --version 2>&1)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true
  if [ "${SKIP_WHEELS:-0}" != 1 ]; then
    $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/keras-*.whl .whl/namex-*.whl .whl/optree-*.whl || return 3
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  fi
  export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
}
