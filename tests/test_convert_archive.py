"""Safe archive extraction (deeplab_keras.convert.archive) on archives the tests build.

Every malicious archive is refused with an error naming the archive and the member, and a
sentinel walk checks that nothing was written outside the destination, nor left behind.
"""

import io
import os
import stat
import tarfile
import zipfile

import pytest

from deeplab_keras.convert import archive

pytestmark = pytest.mark.tf_free_host

FILES = {
    "model/weights.bin": bytes(range(256)) * 40,
    "model/sub/notes.txt": b"hello\n",
    "README": b"readme",
}


@pytest.fixture(autouse=True)
def _seed():
    """Overrides conftest's per-test Keras reset: these tests hold no Keras state, and
    `keras.backend.clear_session()` costs about 0.5 s per test."""
    yield


def _zip(path, entries):
    """entries: (name or ZipInfo, data); names are stored exactly as given."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name_or_info, data in entries:
            zf.writestr(name_or_info, data)
    return str(path)


def _tar(path, entries, mode="w:gz"):
    """entries: (name, data) for files, or a TarInfo (data None) for special members."""
    with tarfile.open(path, mode) as tf:
        for info, data in entries:
            if isinstance(info, str):
                ti = tarfile.TarInfo(info)
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return str(path)


def _tarinfo(name, kind, linkname=""):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = linkname
    return ti


def _all_paths(root):
    found = set()
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(folder, name), root))
    return found


@pytest.fixture
def work(tmp_path):
    (tmp_path / "archives").mkdir()
    (tmp_path / "out").mkdir()
    return tmp_path


def _assert_nothing_written(work, dest):
    assert not os.path.exists(dest)
    leftovers = _all_paths(str(work / "out"))
    assert leftovers == set(), leftovers  # no temp folder, no partial file
    outside = {p for p in _all_paths(str(work)) if "evil" in os.path.basename(p)
               and not p.startswith("archives")}
    assert outside == set(), outside
    assert not os.path.exists("/tmp/evil_deeplab_keras_test")


@pytest.mark.parametrize("kind", ["zip", "tar.gz", "tar"])
def test_normal_extraction_and_members(work, kind):
    path = work / "archives" / f"good.{kind}"
    if kind == "zip":
        _zip(path, list(FILES.items()))
    else:
        _tar(path, list(FILES.items()), mode="w:gz" if kind == "tar.gz" else "w")
    dest = work / "out" / "good"
    assert archive.safe_extract(str(path), str(dest)) == str(dest)
    for name, data in FILES.items():
        assert (dest / name).read_bytes() == data
    assert _all_paths(str(work / "out")) == {"good", "good/model", "good/model/sub", "good/README",
                                             "good/model/weights.bin",
                                             "good/model/sub/notes.txt"}
    assert sorted(archive.list_members(str(path))) == sorted(FILES)
    assert archive.extract_member(str(path), "model/weights.bin") == FILES["model/weights.bin"]
    assert archive.extract_member(str(path), "./model/sub/notes.txt") == b"hello\n"
    with pytest.raises(KeyError, match="model/weights.bin"):
        archive.extract_member(str(path), "model/weight.bin")


def test_members_subset_existing_destination_and_overwrite(work):
    path = _zip(work / "archives" / "good.zip", list(FILES.items()))
    dest = work / "out" / "subset"
    archive.safe_extract(path, str(dest), members=["README"])
    assert _all_paths(str(dest)) == {"README"}
    with pytest.raises(FileExistsError, match="overwrite=True"):
        archive.safe_extract(path, str(dest))
    archive.safe_extract(path, str(dest), overwrite=True)
    assert (dest / "model" / "weights.bin").read_bytes() == FILES["model/weights.bin"]
    assert _all_paths(str(work / "out")) == {"subset"} | {
        os.path.join("subset", p) for p in _all_paths(str(dest))}
    with pytest.raises(KeyError, match="nope"):
        archive.safe_extract(path, str(work / "out" / "x"), members=["nope"])


MALICIOUS = {
    "dotdot": ("../evil_dotdot", "'..' component"),
    "nested_dotdot": ("model/../../evil_nested", "'..' component"),
    "absolute": ("/tmp/evil_deeplab_keras_test", "absolute path"),
    "windows_drive": ("C:/evil_drive", "absolute path"),
    "backslash_dotdot": ("..\\evil_backslash", "'..' component"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_path_escapes_are_refused(work, kind, case):
    name, reason = MALICIOUS[case]
    path = work / "archives" / f"{case}.{kind}"
    entries = [("ok.txt", b"fine"), (name, b"pwned")]
    if kind == "zip":
        _zip(path, entries)
        with zipfile.ZipFile(path) as zf:
            assert zf.namelist()[1] == name  # the hostile name really is in the archive
    else:
        _tar(path, entries)
    dest = str(work / "out" / "d")
    for call in (lambda: archive.safe_extract(str(path), dest),
                 lambda: archive.extract_member(str(path), "ok.txt")):
        with pytest.raises(archive.UnsafeArchiveError) as e:
            call()
        assert str(path) in str(e.value) and repr(name) in str(e.value) and reason in str(e.value)
    _assert_nothing_written(work, dest)


@pytest.mark.parametrize("member,reason", [
    (_tarinfo("link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
    (_tarinfo("hard", tarfile.LNKTYPE, "../../evil_hard"), "hard link"),
    (_tarinfo("dev", tarfile.CHRTYPE), "device"),
    (_tarinfo("blk", tarfile.BLKTYPE), "device"),
    (_tarinfo("fifo", tarfile.FIFOTYPE), "device or FIFO"),
])
def test_tar_links_and_devices_are_refused(work, member, reason):
    path = _tar(work / "archives" / f"{member.name}.tar.gz",
                [("ok.txt", b"fine"), (member, None)])
    dest = str(work / "out" / "d")
    with pytest.raises(archive.UnsafeArchiveError) as e:
        archive.safe_extract(path, dest)
    assert path in str(e.value) and repr(member.name) in str(e.value) and reason in str(e.value)
    _assert_nothing_written(work, dest)


def test_tar_symlink_then_write_through_it_is_refused(work):
    """The classic two-step escape: a link to outside, then a file 'through' the link."""
    path = _tar(work / "archives" / "chain.tar", [
        (_tarinfo("escape", tarfile.SYMTYPE, str(work)), None),
        ("escape/evil_chain", b"pwned")], mode="w")
    dest = str(work / "out" / "d")
    with pytest.raises(archive.UnsafeArchiveError, match="symbolic link"):
        archive.safe_extract(path, dest)
    _assert_nothing_written(work, dest)


@pytest.mark.parametrize("mode,reason", [(stat.S_IFLNK | 0o777, "symbolic link"),
                                         (stat.S_IFCHR | 0o644, "device")])
def test_zip_symlink_and_device_are_refused(work, mode, reason):
    info = zipfile.ZipInfo("evil_link")
    info.external_attr = mode << 16
    path = _zip(work / "archives" / "link.zip", [("ok.txt", b"fine"), (info, "/etc/passwd")])
    dest = str(work / "out" / "d")
    with pytest.raises(archive.UnsafeArchiveError) as e:
        archive.safe_extract(path, dest)
    assert "'evil_link'" in str(e.value) and reason in str(e.value)
    _assert_nothing_written(work, dest)


def test_duplicate_member_is_refused(work):
    path = _tar(work / "archives" / "dup.tar", [("a.bin", b"one"), ("a.bin", b"two")], mode="w")
    with pytest.raises(archive.UnsafeArchiveError, match="appears twice"):
        archive.safe_extract(path, str(work / "out" / "d"))
    _assert_nothing_written(work, str(work / "out" / "d"))


class _Zeros(io.RawIOBase):
    def __init__(self, n):
        self.left = n

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


BOMB_BYTES = 50 << 20


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bombs")
    zpath = str(folder / "bomb.zip")
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("zeros.bin", "w", force_zip64=True) as f:
            block = bytes(1 << 20)
            for _ in range(BOMB_BYTES >> 20):
                f.write(block)
    tpath = str(folder / "bomb.tar.gz")
    with tarfile.open(tpath, "w:gz") as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size = BOMB_BYTES
        tf.addfile(info, io.BufferedReader(_Zeros(BOMB_BYTES)))
    return {"zip": zpath, "tar.gz": tpath}


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_decompression_bomb_is_refused(work, bombs, kind):
    path = bombs[kind]
    assert os.path.getsize(path) < BOMB_BYTES / 200
    dest = str(work / "out" / "d")
    with pytest.raises(archive.UnsafeArchiveError) as e:
        archive.safe_extract(path, dest, max_total_bytes=10 << 20, max_ratio=1e9)
    assert "max_total_bytes" in str(e.value) and "'zeros.bin'" in str(e.value)
    with pytest.raises(archive.UnsafeArchiveError) as e:
        archive.safe_extract(path, dest)  # default caps: the ratio catches it
    assert "max_ratio" in str(e.value) and path in str(e.value)
    with pytest.raises(archive.UnsafeArchiveError, match="max_bytes"):
        archive.extract_member(path, "zeros.bin", max_bytes=1 << 20)
    _assert_nothing_written(work, dest)


def test_corrupt_archive_is_a_clear_error(work):
    good = _tar(work / "archives" / "good.tar.gz", list(FILES.items()))
    data = open(good, "rb").read()
    bad = work / "archives" / "cut.tar.gz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(archive.UnsafeArchiveError, match="corrupt or truncated"):
        archive.safe_extract(str(bad), str(work / "out" / "d"))
    _assert_nothing_written(work, str(work / "out" / "d"))
    other = work / "archives" / "not_an_archive.bin"
    other.write_bytes(b"just bytes")
    with pytest.raises(archive.UnsafeArchiveError, match="neither a zip nor a tar"):
        archive.safe_extract(str(other), str(work / "out" / "d"))
