"""The committed colab/ notebooks: badge, set-up cell, pictures, no errors, and outputs no older
than the package source they were executed with. (.ci/run executes them in the small mode.)"""

import importlib.util
import json
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLAB = os.path.join(ROOT, "colab")
NAMES = ("01_segment_your_photos", "02_finetune_on_your_data", "03_dense_crf",
         "04_train_at_scale")


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_notebooks", os.path.join(COLAB, "build_notebooks.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


builder = _builder()


def _load(name):
    path = os.path.join(COLAB, name + ".ipynb")
    assert os.path.isfile(path), f"{path} is missing: run `{builder.REGENERATE}`"
    with open(path) as f:
        return json.load(f)


def _text(cell):
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def test_every_source_has_its_notebook_and_no_other():
    assert tuple(builder.names()) == NAMES
    committed = sorted(f[:-6] for f in os.listdir(COLAB) if f.endswith(".ipynb"))
    assert tuple(committed) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_badge_setup_cell_and_mode_switch(name):
    nb = _load(name)
    cells = nb["cells"]
    assert cells[0]["cell_type"] == "markdown" and _text(cells[0]) == builder.badge(name)
    assert builder.repository_url() in _text(cells[0]).replace(
        "colab.research.google.com/github/", "github.com/")
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert _text(code[0]).startswith(builder.setup_source()), (
        f"{name}: the first code cell is not the set-up cell; run `{builder.REGENERATE}`")
    assert "pip" in _text(code[0]) and "find_spec(\"deeplab_keras\")" in _text(code[0])
    for cell in cells[1:]:
        if cell is not code[0]:
            assert not re.search(r"\bFULL\b|" + builder.MODE_ENV, _text(cell)), (
                f"{name}: only the first code cell may read the mode")


@pytest.mark.parametrize("name", NAMES)
def test_cells_are_the_generated_ones(name):
    """Never hand-edited: the committed cells are exactly what the source file generates."""
    committed = [(c["cell_type"], _text(c)) for c in _load(name)["cells"]]
    generated = [(c["cell_type"], c["source"]) for c in builder.build(name).cells]
    assert committed == generated, (
        f"{name}.ipynb differs from colab/source/{name}.py; run `{builder.REGENERATE}`")


@pytest.mark.parametrize("name", NAMES)
def test_outputs_have_pictures_and_no_errors(name):
    nb = _load(name)
    outputs = [out for cell in nb["cells"] if cell["cell_type"] == "code"
               for out in cell.get("outputs", [])]
    assert all(cell.get("execution_count") for cell in nb["cells"]
               if cell["cell_type"] == "code"), f"{name}: a cell was not executed"
    errors = [out for out in outputs if out["output_type"] == "error"]
    assert errors == [], f"{name}: error output {errors[0].get('ename')}"
    assert any({"image/png", "image/jpeg"} & set(out.get("data", {})) for out in outputs), (
        f"{name}: no picture")
    assert nb["metadata"]["deeplab_keras"]["mode"] == "full"


@pytest.mark.parametrize("name", NAMES)
def test_outputs_are_not_older_than_the_package(name):
    recorded = _load(name)["metadata"].get("deeplab_keras", {}).get("package_source_sha256")
    assert recorded == builder.package_source_sha256(), (
        f"colab/{name}.ipynb was executed with another version of the package source than "
        f"this one: regenerate its outputs with `{builder.REGENERATE}`")


def test_source_hash_sees_every_package_file(tmp_path):
    package = tmp_path / "deeplab_keras"
    package.mkdir()
    (package / "a.py").write_text("x = 1\n")
    first = builder.package_source_sha256(str(tmp_path))
    (package / "a.py").write_text("x = 2\n")
    second = builder.package_source_sha256(str(tmp_path))
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"junk")
    assert first != second == builder.package_source_sha256(str(tmp_path))


def test_percent_format_reader(tmp_path):
    source = tmp_path / "x.py"
    source.write_text("# %% [markdown]\n# # Title\n#\n# text\n\n# %%\nA = 1\n\n# %%\nprint(A)\n")
    assert builder.read_cells(str(source)) == [
        ("markdown", "# Title\n\ntext"), ("code", "A = 1"), ("code", "print(A)")]
