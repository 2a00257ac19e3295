"""The package's layout stays as designed: no import circle, imports only point down the layer
order, small files, one name -> architecture table, one door to build by name, a cheap
`import deeplab_keras` that still lets `keras.saving` find every class."""

import ast
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.tf_free_host

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "deeplab_keras")
MAX_LINES = 450
# Bottom to top (issue 12). A module may import its own room and the rooms below it.
LAYERS = [
    ("files", "lazy", "version", "assets", "backend_choice"),
    ("ops",),
    ("crf",),
    ("layers",),
    ("backbones",),
    ("models",),
    ("data",),
    ("labels", "evaluation"),
    ("convert",),
    ("weights",),
    ("inference",),
    ("visualize",),
    ("deploy",),
    ("train",),
    ("cli",),
    ("demo",),
    ("keras_objects",),
]
RANK = {room: rank for rank, rooms in enumerate(LAYERS) for room in rooms}


def _modules():
    mods = {}
    for folder, _, names in os.walk(PACKAGE):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                module = os.path.relpath(path[:-3], ROOT).replace(os.sep, ".")
                mods[module.removesuffix(".__init__")] = path
    return mods


def _import_graph():
    """{module: {imported package modules}}, imports inside functions included, edges into a
    package `__init__` (a re-export face) left out, as ../shared/hooks/import_graph.py counts."""
    mods = _modules()
    graph = {}
    for module, path in mods.items():
        if module == "deeplab_keras":
            continue
        is_package = path.endswith("__init__.py")
        package = module if is_package else module.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            names = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                         for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            targets.update(n for n in names if n in mods and n != module
                           and n != "deeplab_keras" and not mods[n].endswith("__init__.py"))
        graph[module] = targets
    return graph


def _room(module):
    return module.split(".")[1]


def test_no_import_circle():
    graph = _import_graph()
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert circles == []


def test_imports_point_down_the_layer_order():
    graph = _import_graph()
    unknown = sorted({_room(m) for m in graph} - set(RANK))
    assert unknown == [], f"rooms missing from LAYERS: {unknown}"
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                    if RANK[_room(b)] > RANK[_room(a)])
    assert upward == []


def test_no_package_file_over_the_limit():
    long = {path: n for path in _modules().values()
            if (n := sum(1 for _ in open(path, encoding="utf-8"))) > MAX_LINES}
    assert long == {}


def test_one_name_to_architecture_table():
    """Only models/factory.py maps architecture names to model classes."""
    from deeplab_keras.models import factory

    names = set(factory.ARCHITECTURES) | set(factory.FAMILIES)
    classes = {cls.__name__ for cls in factory.FAMILIES.values()}
    tables = []
    for module, path in _modules().items():
        if module == "deeplab_keras.models.factory":
            continue
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if not isinstance(node, ast.Dict):
                continue
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
            values = {v.id for v in node.values if isinstance(v, ast.Name)}
            if keys & names or values & classes:
                tables.append(f"{module}:{node.lineno}")
    assert tables == []


def test_every_door_builds_through_the_factory(monkeypatch, tmp_path):
    import deeplab_keras as dk
    from deeplab_keras.cli import commands
    from deeplab_keras.cli import flags as cli_flags
    from deeplab_keras.models import factory
    from deeplab_keras.weights import imagenet_backbones
    from deeplab_keras.weights import loading

    seen = []
    resolve = factory.resolve

    def spy(name):
        seen.append(name)
        return resolve(name)

    monkeypatch.setattr(factory, "resolve", spy)
    tiny = dict(backbone_kwargs=dict(alpha=0.35), aspp_filters=8, decoder_filters=8,
                low_level_filters=4)
    dk.models.build("deeplabv3plus_mobilenetv2", 3, **tiny)
    assert seen == ["deeplabv3plus_mobilenetv2"]
    loading.load_model("deeplabv3plus_mobilenetv2_camvid", weights=False, **tiny)
    assert seen[-1] == "DeepLabV3Plus"
    imagenet_backbones.build_model("deeplabv3plus", 3, backbone="mobilenetv2", **tiny)
    assert seen[-1] == "DeepLabV3Plus"
    cli_flags.FLAGS.unparse_flags()
    cli_flags.FLAGS(["deeplab-keras", "--model", "deeplabv3_mobilenetv2"])
    model = commands.load_or_build_model(3)
    cli_flags.FLAGS.unparse_flags()
    assert seen[-1] == "deeplabv3_mobilenetv2" and model.output_shape[-1] == 3


def test_every_registered_class_is_imported_by_keras_objects():
    """`keras_objects.REGISTERING_MODULES` covers every module that registers a Keras class."""
    from deeplab_keras import keras_objects

    registering = set()
    for module, path in _modules().items():
        if "register_keras_serializable" in open(path, encoding="utf-8").read() and (
                module != "deeplab_keras.keras_objects"):
            registering.add(module)
    covered = {m for m in registering
               if any(m == r or m.startswith(r + ".") for r in keras_objects.REGISTERING_MODULES)}
    assert registering - covered == set()


def _run(code, **env):
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=str(ROOT),
                            env=dict(os.environ, PYTHONPATH=ROOT, **env), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_import_is_cheap_and_cli_help_needs_no_keras():
    out = _run("""
        import sys
        import deeplab_keras, deeplab_keras.cli, deeplab_keras.weights.download
        print(sorted(m for m in ("keras", "tensorflow", "jax") if m in sys.modules))
    """)
    assert out.strip() == "[]"
    out = _run("""
        import sys
        from deeplab_keras import cli
        assert cli.run(["deeplab-keras", "--help"]) == 0
        print("keras loaded:", "keras" in sys.modules)
    """)
    assert "deeplab-keras train" in out and "keras loaded: False" in out


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A compiled CRFRefined(MSC(DeepLabV1)) saved by another process: layers, a backbone,
    models, both wrappers, a loss and a metric of the package."""
    path = str(tmp_path_factory.mktemp("saved") / "model.keras")
    _run(f"""
        from deeplab_keras import models, train
        net = models.DeepLabV1(num_classes=3, hidden_filters=8,
                               backbone_kwargs=dict(widths=(4, 4, 4, 4, 4)))
        model = models.CRFRefined(models.MSC(net, scales=(1.0, 0.5)), "pydensecrf_readme")
        model.compile(optimizer="sgd", loss=train.SegmentationCrossEntropy(),
                      metrics=[train.MeanIoU(3)])
        model.save({path!r})
    """, KERAS_BACKEND="jax")
    return path


@pytest.mark.parametrize("first", ["import deeplab_keras\nimport keras",
                                   "import keras\nimport deeplab_keras"],
                         ids=["deeplab_keras_first", "keras_first"])
def test_keras_load_model_finds_every_class_after_import_deeplab_keras(saved_model, first):
    out = _run(first + f"""
model = keras.saving.load_model({saved_model!r})
print(type(model).__name__, type(model.model).__name__, type(model.loss).__name__)
""", KERAS_BACKEND="jax")
    assert out.split() == ["CRFRefined", "MSC", "SegmentationCrossEntropy"]
