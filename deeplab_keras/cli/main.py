"""The entry point: choose the backend before Keras loads, parse the flags, run the command,
and turn every expected failure into one line naming the problem (exit code 1 or 2)."""

import contextlib
import os
import re
import sys
import tempfile

from absl import app
from absl import flags

from deeplab_keras import backend_choice
from deeplab_keras.cli import flags as cli_flags
from deeplab_keras.cli import run_info

USAGE = (f"usage: deeplab-keras {{{'|'.join(cli_flags.COMMANDS)}}} [--flags]; "
         "`deeplab-keras COMMAND --help` lists a command's flags.")
# Lines TensorFlow's native code prints on every start of a CPU-only machine.
_NATIVE_NOISE = re.compile(r"All log messages before absl::InitializeLog|oneDNN custom "
                           r"operations are on|Could not find cuda drivers|failed call to cuInit|"
                           r"TF-TRT Warning|computation placer already registered|"
                           r"Unable to register cu(DNN|FFT|BLAS) factory|This TensorFlow binary "
                           r"is optimized|To enable the following instructions|rebuild "
                           r"TensorFlow with the appropriate compiler flags")


def _choose_backend(argv):
    """--backend wins over $KERAS_BACKEND; it must be set before Keras is imported."""
    value = None
    for i, arg in enumerate(argv):
        if arg.startswith("--backend="):
            value = arg.split("=", 1)[1]
        elif arg == "--backend" and i + 1 < len(argv):
            value = argv[i + 1]
    if value is None:
        return
    if value not in ("tensorflow", "jax"):
        raise app.UsageError(f"--backend {value!r}: deeplab-keras runs on 'tensorflow' or "
                             "'jax' (the torch backend is not supported).")
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != value:
            raise app.UsageError(f"--backend {value}: this process already imported Keras "
                                 f"with the {keras.backend.backend()} backend.")
    os.environ["KERAS_BACKEND"] = value
    backend_choice.user_chose()


@contextlib.contextmanager
def quiet_native_start():
    """Hides the known start-up noise TensorFlow's native code writes to stderr (CUDA probes on
    CPU machines, CPU-feature banners); every other line is passed on."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode("utf-8", "replace").splitlines():
                if line.strip() and not _NATIVE_NOISE.search(line):
                    print(line, file=sys.stderr)


def _start_keras():
    # TensorFlow's native INFO/WARNING lines (e.g. a traceback logged for every failed input
    # batch, which we report as one line anyway); errors still print. $TF_CPP_MIN_LOG_LEVEL wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_native_start():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe happens here, inside the filter


def user_error(error):
    """The one-line message for an expected failure, or None for a bug (shown in full)."""
    from deeplab_keras.weights.errors import DownloadError

    if isinstance(error, (ValueError, FileNotFoundError, PermissionError, DownloadError,
                          TypeError)):
        return str(error)
    if isinstance(error, OSError):
        return f"{type(error).__name__}: {error}"
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        if isinstance(error, tf.errors.OpError):
            from deeplab_keras.data.tf_dataset import python_error

            original = python_error(error)
            if original is not None:
                return user_error(original) or f"{type(original).__name__}: {original}"
            return f"{type(error).__name__}: {error.message.splitlines()[0]}"
    return None


def main(argv):
    if len(argv) < 2 or argv[1] not in cli_flags.COMMANDS:
        print(USAGE, file=sys.stderr)
        return 2
    if len(argv) > 2:
        raise app.UsageError(f"Unexpected arguments {argv[2:]}; flags start with --.")
    from deeplab_keras.cli import commands

    commands.check_flags(argv[1])
    _start_keras()
    return commands.COMMAND_FUNCTIONS[argv[1]](cli_flags.OUTPUT_DIR.value)


def run(argv=None):
    """Entry point of `deeplab-keras`; `argv` defaults to sys.argv. Returns the exit code."""
    from deeplab_keras import cli as cli_pkg

    argv = list(sys.argv if argv is None else argv)
    command = argv[1] if len(argv) > 1 and argv[1] in cli_flags.COMMANDS else None
    if any(a in ("-h", "--help", "--helpfull") for a in argv[1:]):
        if command is None:
            print(cli_pkg.__doc__ + "\nCommands:")
            for name, text in cli_pkg.COMMAND_HELP.items():
                print(f"  {name}: {text}")
            print()
        else:
            print(f"deeplab-keras {command}: {cli_pkg.COMMAND_HELP[command]}")
        print(f"Flags{' of ' + command if command else ''}:\n" + cli_flags.help_text(command))
        return 0
    prog = f"deeplab-keras {command or ''}".strip()
    try:
        _choose_backend(argv)
        run_info.COMMAND_LINE[:] = ["deeplab-keras"] + argv[1:]
        cli_flags.FLAGS.unparse_flags()
        try:
            argv = cli_flags.FLAGS(argv)
        except flags.Error as err:
            raise app.UsageError(f"{err}. Run `{prog} --help` for the flags.") from None
        return main(argv)
    except app.UsageError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted.", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - expected failures become one line
        message = user_error(err)
        if message is None or os.environ.get("DEEPLAB_KERAS_DEBUG"):
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 1


def main_entry():
    """Console-script entry point."""
    sys.exit(run())


__all__ = ["main_entry", "quiet_native_start", "run", "user_error"]
