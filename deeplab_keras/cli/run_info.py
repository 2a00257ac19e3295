"""What reproduces a run: command line, flag values, software and hardware (run.json)."""

import os
import platform
import shlex
import sys

from deeplab_keras.cli import flags as cli_flags

COMMAND_LINE = []


def collect():
    """The run's record: command, flags, versions, hardware."""
    import keras

    versions = {"python": platform.python_version(), "keras": keras.__version__,
                "backend": keras.backend.backend()}
    for module in ("tensorflow", "jax"):
        if module in sys.modules:
            versions[module] = getattr(sys.modules[module], "__version__", "?")
    return {"command": shlex.join(COMMAND_LINE) if COMMAND_LINE else None,
            "flags": {name: cli_flags.FLAGS[name].value for name in sorted(cli_flags.FLAGS)},
            "software": versions,
            "hardware": f"{platform.machine()}, {os.cpu_count()} CPU cores" + _accelerators()}


def _accelerators():
    import keras

    try:
        if keras.backend.backend() == "jax":
            import jax

            devices = [d.device_kind for d in jax.devices() if d.platform != "cpu"]
        elif keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            devices = [d.name for d in tf.config.list_physical_devices("GPU")]
        else:
            devices = []
    except Exception:  # noqa: BLE001 - informational only
        devices = []
    return f", accelerators: {', '.join(devices)}" if devices else ", no GPU"


__all__ = ["COMMAND_LINE", "collect"]
