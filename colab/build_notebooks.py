"""Builds the colab/ notebooks from their sources and executes them in a fresh kernel.

Each notebook is written from `colab/source/<name>.py` (cells in the "percent" format:
`# %%` starts a code cell, `# %% [markdown]` a markdown cell whose lines start with `# `), with
two cells added in front: the "Open in Colab" badge and the set-up cell, both taking the
repository address from `[project.urls] Repository` in pyproject.toml. The set-up cell installs
the package unless it is importable and reads DEEPLAB_KERAS_NOTEBOOK_MODE: `small` (tiny
images, few steps; what CI runs) or `full` (what Colab users get). The source's first code cell
(sizes and step counts only) is appended to it; no other cell reads the mode.

Usage:
    python colab/build_notebooks.py                 # full mode; writes colab/*.ipynb with outputs
    python colab/build_notebooks.py --mode small --check   # CI: execute, write nothing, fail on
                                                           # any error cell
    python colab/build_notebooks.py --only 03       # one notebook

A written notebook records in its metadata the sha256 of the package source it was executed
with (`package_source_sha256`); tests/test_notebooks.py fails when the package has changed since.
"""

import argparse
import hashlib
import os
import re
import sys
import tempfile
import time

COLAB = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(COLAB)
SOURCES = os.path.join(COLAB, "source")
MODE_ENV = "DEEPLAB_KERAS_NOTEBOOK_MODE"
REGENERATE = "python colab/build_notebooks.py"
PINNED = ("keras==3.15.1", "tensorflow==2.21.0")

SETUP = '''\
# Set-up, the same in every notebook (written by colab/build_notebooks.py).
import importlib.util
import os
import subprocess
import sys

REPOSITORY = "{repository}"  # pyproject.toml [project.urls]
PINNED = {pinned!r}  # the versions these outputs were made with
if importlib.util.find_spec("deeplab_keras") is None:
    checkout = os.path.abspath("..")  # inside a clone of the repository: install that clone
    inside = os.path.isfile(os.path.join(checkout, "deeplab_keras", "__init__.py"))
    source = checkout if inside else f"git+{{REPOSITORY}}"
    print("installing deeplab-keras from", source)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", source, *PINNED])
else:
    print("deeplab-keras is already importable:", importlib.util.find_spec("deeplab_keras").origin)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up messages

# {mode_env}=small runs on tiny images with few steps (CI); full is the real run.
FULL = os.environ.get("{mode_env}", "full") != "small"
print("mode:", "full" if FULL else "small")
'''


def repository_url():
    """`[project.urls] Repository` from pyproject.toml (the one place it is written)."""
    text = open(os.path.join(ROOT, "pyproject.toml")).read()
    match = re.search(r'^\[project\.urls\][^\[]*?^Repository\s*=\s*"([^"]+)"', text,
                      re.MULTILINE | re.DOTALL)
    if not match:
        raise SystemExit("pyproject.toml: no `Repository = \"...\"` under [project.urls].")
    return match.group(1)


def badge(name):
    """Markdown of the "Open in Colab" badge for colab/<name>.ipynb."""
    path = repository_url().removeprefix("https://github.com/")
    url = f"https://colab.research.google.com/github/{path}/blob/main/colab/{name}.ipynb"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def setup_source():
    return SETUP.format(repository=repository_url(), pinned=list(PINNED), mode_env=MODE_ENV)


def package_source_sha256(root=ROOT):
    """sha256 over every file of the deeplab_keras package (path and bytes, sorted)."""
    digest = hashlib.sha256()
    package = os.path.join(root, "deeplab_keras")
    for folder, dirs, names in sorted(os.walk(package)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, root).replace(os.sep, "/").encode() + b"\0")
            with open(path, "rb") as f:
                digest.update(f.read())
            digest.update(b"\0")
    return digest.hexdigest()


def read_cells(path):
    """[(kind, source)] of a percent-format file; kind is 'code' or 'markdown'."""
    cells, kind, lines = [], None, []

    def close():
        if kind is not None:
            text = "\n".join(lines).strip("\n")
            if kind == "markdown":
                text = "\n".join(re.sub(r"^# ?", "", line) for line in text.splitlines())
            cells.append((kind, text))

    for line in open(path).read().splitlines():
        if line.startswith("# %%"):
            close()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line)
    close()
    return cells


def names(only=None):
    found = sorted(f[:-3] for f in os.listdir(SOURCES) if re.match(r"\d\d_.*\.py$", f))
    return [n for n in found if only is None or n.startswith(only)]


def build(name):
    """The notebook (nbformat node) of colab/source/<name>.py, without outputs."""
    import nbformat

    cells = read_cells(os.path.join(SOURCES, name + ".py"))
    first_code = next(i for i, (kind, _) in enumerate(cells) if kind == "code")
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(badge(name)))
    for i, (kind, text) in enumerate(cells):
        if i == first_code:
            text = setup_source() + "\n# Sizes and step counts of this notebook:\n" + text
        new = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        nb.cells.append(new(text))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["colab"] = {"provenance": [], "toc_visible": True}
    return nb


def execute(nb, mode, timeout=900):
    """Runs every cell in a fresh kernel started in colab/; raises on the first error cell."""
    import nbclient

    saved = {key: os.environ.get(key) for key in (MODE_ENV, "PYTHONPATH")}
    os.environ[MODE_ENV] = mode
    # The kernel imports this checkout's package, whatever else is installed.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, saved["PYTHONPATH"]]))
    try:
        start = time.time()
        nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": COLAB}}).execute()
        return time.time() - start
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def cell_seconds(nb):
    """"cell index: seconds" of the code cells, from nbclient's timing metadata."""
    from datetime import datetime

    parts = []
    for index, cell in enumerate(nb.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            start, end = (datetime.fromisoformat(timing[k].replace("Z", "+00:00"))
                          for k in ("iopub.execute_input", "shell.execute_reply"))
            parts.append(f"{index}: {(end - start).total_seconds():.0f}s")
    return ", ".join(parts)


def write(nb, path):
    import nbformat

    folder = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".ipynb")
    try:
        with os.fdopen(fd, "w") as f:
            nbformat.write(nb, f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("full", "small"), default="full")
    parser.add_argument("--check", action="store_true",
                        help="execute only; write nothing (what CI runs)")
    parser.add_argument("--only", help="notebook name prefix, e.g. 03")
    args = parser.parse_args(argv)
    selected = names(args.only)
    if not selected:
        raise SystemExit(f"no notebook source matches {args.only!r} in {SOURCES}")
    source_hash = package_source_sha256()
    total = time.time()
    for name in selected:
        nb = build(name)
        print(f"{name}: executing ({args.mode} mode)...", flush=True)
        seconds = execute(nb, args.mode)
        print(f"{name}: {seconds:.0f} s ({cell_seconds(nb)})", flush=True)
        if args.check:
            continue
        from importlib import metadata

        nb.metadata["deeplab_keras"] = {
            "package_source_sha256": source_hash, "mode": args.mode,
            "executed_seconds": round(seconds, 1), "regenerate": REGENERATE,
            "executed_with": {"python": sys.version.split()[0], "keras": metadata.version("keras"),
                              "machine": f"{os.cpu_count()} CPU cores, no GPU"}}
        write(nb, os.path.join(COLAB, name + ".ipynb"))
    print(f"all: {time.time() - total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
