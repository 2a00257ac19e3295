"""deeplab_keras.files: atomic writes, locks and hashes."""

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from deeplab_keras import files

pytestmark = pytest.mark.tf_free_host


def test_write_json_atomic_creates_the_folder_and_leaves_no_partial(tmp_path):
    path = tmp_path / "new" / "run.json"
    files.write_json_atomic(str(path), {"miou": np.float32(0.5), "steps": 3})
    assert json.loads(path.read_text()) == {"miou": 0.5, "steps": 3}
    files.write_json_atomic(str(path), {"steps": 4})  # replaces, never appends
    assert json.loads(path.read_text()) == {"steps": 4}
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.json"]


def test_atomic_path_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "model.weights.h5"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with files.atomic_path(path) as tmp:
            assert tmp.endswith(".weights.h5") and os.path.dirname(tmp) == str(tmp_path)
            with open(tmp, "wb") as f:
                f.write(b"half")
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.weights.h5"]
    with files.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"new")
    assert path.read_bytes() == b"new"
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.weights.h5"]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_dir_replaces_a_folder_whole_or_not_at_all(tmp_path):
    target = tmp_path / "export"
    with files.atomic_dir(target) as tmp:
        (tmp_path / "export").exists() and pytest.fail("the folder appeared before the end")
        open(os.path.join(tmp, "a.txt"), "w").write("one")
    assert os.listdir(target) == ["a.txt"]
    with pytest.raises(RuntimeError, match="writer failed"):
        with files.atomic_dir(target) as tmp:
            open(os.path.join(tmp, "b.txt"), "w").write("two")
            raise RuntimeError("writer failed")
    assert os.listdir(target) == ["a.txt"]
    with files.atomic_dir(target) as tmp:
        os.makedirs(os.path.join(tmp, "variables"))
        open(os.path.join(tmp, "variables", "data"), "w").write("three")
    assert sorted(os.listdir(target)) == ["variables"]
    assert os.listdir(tmp_path) == ["export"]  # no temporary or old folder left
    assert oct(os.stat(target).st_mode & 0o777) == oct(0o777 & ~_umask())


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def test_killed_writer_leaves_only_a_hidden_partial(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {os.getcwd()!r})
        from deeplab_keras import files
        with files.atomic_path({str(tmp_path / "out.bin")!r}) as tmp:
            open(tmp, "wb").write(b"partial")
            os._exit(9)
    """)
    assert subprocess.run([sys.executable, "-c", script]).returncode == 9
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "out.bin" not in names and len(names) == 1 and names[0].startswith(".out.bin.")


def test_hashes_match_hashlib(tmp_path):
    path = tmp_path / "blob"
    data = os.urandom(3 * files.CHUNK + 17)
    path.write_bytes(data)
    assert files.sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert files.md5_file(path) == hashlib.md5(data).hexdigest()
    digests, size = files.hash_file(path, ("sha256", "md5"))
    assert size == len(data) and digests["md5"] == hashlib.md5(data).hexdigest()


def test_file_lock_serialises_processes(tmp_path):
    lock, log = tmp_path / "x.lock", tmp_path / "log"
    worker = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {os.getcwd()!r})
        from deeplab_keras import files
        with files.file_lock({str(lock)!r}):
            with open({str(log)!r}, "a") as f:
                f.write("in "); f.flush(); time.sleep(0.3); f.write("out ")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", worker]) for _ in range(3)]
    assert all(p.wait(30) == 0 for p in procs)
    assert log.read_text().split() == ["in", "out"] * 3
