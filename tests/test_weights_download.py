"""Verified downloads and the cache (deeplab_keras.weights.download).

Everything runs against a local HTTP server on 127.0.0.1 (a handler the tests control:
request counts, truncation, stalls) and file:// URLs, with files the tests make themselves.
"""

import collections
import glob
import hashlib
import logging
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import pytest

from deeplab_keras import files
from deeplab_keras.weights import cache_folder
from deeplab_keras.weights import download
from deeplab_keras.weights import integrity

pytestmark = pytest.mark.tf_free_host

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "scripts", "download_worker.py")

PAYLOAD = bytes(range(256)) * 400  # 102400 bytes
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def _seed():
    """Overrides conftest's per-test Keras reset: these tests hold no Keras state, and
    `keras.backend.clear_session()` costs about 0.5 s per test."""
    yield


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # broken pipes from killed clients are expected


class FileServer:
    """Serves `files[path]`; `rules[path]` changes how (truncate, stall, delay, no length)."""

    def __init__(self):
        self.files = {}
        self.rules = {}
        self.requests = collections.Counter()
        self.count_lock = threading.Lock()
        self.stop = threading.Event()
        self.partial_sent = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                with owner.count_lock:
                    owner.requests[self.path] += 1
                    number = owner.requests[self.path]
                data = owner.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                rule = owner.rules.get(self.path, {})
                self.send_response(200)
                if not rule.get("no_length"):
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                time.sleep(rule.get("delay", 0.0))
                cut = rule.get("truncate_at")
                if cut is not None and number <= rule.get("truncate_times", 10 ** 9):
                    self.wfile.write(data[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                stall = rule.get("stall_after")
                if stall is not None:
                    self.wfile.write(data[:stall])
                    self.wfile.flush()
                    owner.partial_sent.set()
                    owner.stop.wait(20)
                    return
                self.wfile.write(data)

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FileServer()
    yield s
    s.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("DEEPLAB_KERAS_CACHE", str(folder))
    monkeypatch.delenv("DEEPLAB_KERAS_OFFLINE", raising=False)
    monkeypatch.delenv("DEEPLAB_KERAS_MIRROR", raising=False)
    monkeypatch.setattr(download, "_RETRY_BACKOFF_S", 0.0)
    return folder


def _partials(folder):
    return glob.glob(os.path.join(str(folder), "**", "*.partial"), recursive=True)


def _flip_byte(path, offset=1000):
    with open(path, "r+b") as f:
        f.seek(offset)
        value = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([value ^ 0x01]))


def test_download_then_cache_hit_reverifies_without_a_request(server, cache):
    server.files["/w/model.bin"] = PAYLOAD
    url = server.url("/w/model.bin")
    info = download.fetch_info(url, sha256=PAYLOAD_SHA, size=len(PAYLOAD), name="tiny",
                               progress=False)
    assert info.path == str(cache / "downloads" / "model.bin")
    assert info.downloaded and info.source == url and not info.trust_on_first_use
    assert pathlib.Path(info.path).read_bytes() == PAYLOAD
    again = download.fetch_info(url, sha256=PAYLOAD_SHA, size=len(PAYLOAD), name="tiny")
    assert again.path == info.path and again.source == "cache" and not again.downloaded
    assert server.requests["/w/model.bin"] == 1
    assert _partials(cache) == []


def test_progress_bar_shows_total_from_content_length(server, cache, capsys):
    server.files["/w/model.bin"] = PAYLOAD
    download.fetch(server.url("/w/model.bin"), sha256=PAYLOAD_SHA, name="tiny", progress=True)
    err = capsys.readouterr().err
    assert "tiny (model.bin)" in err and "100.0%" in err and "100.0 KiB" in err


@pytest.mark.parametrize("cut", [0, 1, len(PAYLOAD) // 2, len(PAYLOAD) - 1])
def test_truncated_download_retries_then_fails_cleanly(server, cache, cut):
    server.files["/w/model.bin"] = PAYLOAD
    server.rules["/w/model.bin"] = {"truncate_at": cut}
    with pytest.raises(download.DownloadError) as e:
        download.fetch(server.url("/w/model.bin"), sha256=PAYLOAD_SHA, name="tiny",
                       progress=False, retries=3)
    message = str(e.value)
    assert f"after {cut} of {len(PAYLOAD)} bytes" in message
    assert "attempt 3/3" in message and "'tiny'" in message
    assert server.requests["/w/model.bin"] == 3
    assert not (cache / "downloads" / "model.bin").exists()
    assert _partials(cache) == []


def test_truncated_once_then_complete_succeeds(server, cache):
    server.files["/w/model.bin"] = PAYLOAD
    server.rules["/w/model.bin"] = {"truncate_at": 5000, "truncate_times": 1}
    path = download.fetch(server.url("/w/model.bin"), sha256=PAYLOAD_SHA, name="tiny",
                          progress=False)
    assert pathlib.Path(path).read_bytes() == PAYLOAD
    assert server.requests["/w/model.bin"] == 2


def test_short_body_without_content_length_is_caught_by_size(server, cache):
    server.files["/w/model.bin"] = PAYLOAD[:-10]
    server.rules["/w/model.bin"] = {"no_length": True}
    with pytest.raises(download.DownloadError, match=f"of {len(PAYLOAD)} bytes"):
        download.fetch(server.url("/w/model.bin"), size=len(PAYLOAD), name="tiny",
                       progress=False, retries=2)
    assert not (cache / "downloads" / "model.bin").exists()
    assert not (cache / "downloads" / "model.bin.sha256").exists()


def test_sha256_mismatch_names_expected_and_actual(server, cache):
    bad = bytearray(PAYLOAD)
    bad[77] ^= 0xFF
    server.files["/w/model.bin"] = bytes(bad)
    with pytest.raises(download.IntegrityError) as e:
        download.fetch(server.url("/w/model.bin"), sha256=PAYLOAD_SHA, name="tiny",
                       progress=False)
    assert PAYLOAD_SHA in str(e.value)
    assert hashlib.sha256(bytes(bad)).hexdigest() in str(e.value)
    assert server.requests["/w/model.bin"] == 1  # a complete wrong file is not retried
    assert not (cache / "downloads" / "model.bin").exists() and _partials(cache) == []


def test_flipped_byte_in_cache_is_quarantined_and_redownloaded(server, cache):
    server.files["/w/model.bin"] = PAYLOAD
    url = server.url("/w/model.bin")
    path = download.fetch(url, sha256=PAYLOAD_SHA, name="tiny", progress=False)
    _flip_byte(path)
    again = download.fetch(url, sha256=PAYLOAD_SHA, name="tiny", progress=False)
    assert again == path and pathlib.Path(path).read_bytes() == PAYLOAD
    assert server.requests["/w/model.bin"] == 2
    corrupt = glob.glob(path + ".corrupt-*")
    assert len(corrupt) == 1 and pathlib.Path(corrupt[0]).read_bytes() != PAYLOAD


def test_flipped_byte_offline_is_an_error_not_a_corrupt_file(server, cache, monkeypatch):
    server.files["/w/model.bin"] = PAYLOAD
    url = server.url("/w/model.bin")
    path = download.fetch(url, sha256=PAYLOAD_SHA, name="tiny", progress=False)
    _flip_byte(path)
    monkeypatch.setenv("DEEPLAB_KERAS_OFFLINE", "1")
    with pytest.raises(download.OfflineError) as e:
        download.fetch(url, sha256=PAYLOAD_SHA, name="tiny", progress=False)
    assert "failed verification" in str(e.value) and ".corrupt-" in str(e.value)
    assert not os.path.exists(path)
    assert server.requests["/w/model.bin"] == 1


def test_offline_cold_cache_error_names_entry_url_and_path(cache, monkeypatch):
    monkeypatch.setenv("DEEPLAB_KERAS_OFFLINE", "1")
    url = "https://example.invalid/weights/deeplab_v2.caffemodel"
    with pytest.raises(download.OfflineError) as e:
        download.fetch(url, sha256=PAYLOAD_SHA, name="deeplab_resnet101_voc",
                       subdir="caffe", progress=False)
    message = str(e.value)
    assert "'deeplab_resnet101_voc'" in message and url in message
    assert str(cache / "caffe" / "deeplab_v2.caffemodel") in message
    assert PAYLOAD_SHA in message and "DEEPLAB_KERAS_MIRROR" in message


def test_offline_warm_cache_works_without_network(server, cache, monkeypatch):
    server.files["/w/model.bin"] = PAYLOAD
    url = server.url("/w/model.bin")
    path = download.fetch(url, sha256=PAYLOAD_SHA, name="tiny", progress=False)
    monkeypatch.setenv("DEEPLAB_KERAS_OFFLINE", "1")
    assert download.fetch(url, sha256=PAYLOAD_SHA, name="tiny") == path
    assert server.requests["/w/model.bin"] == 1


def test_file_url_source(tmp_path, cache):
    src = tmp_path / "src" / "model.bin"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    path = download.fetch(src.as_uri(), sha256=PAYLOAD_SHA, name="tiny", progress=False)
    assert pathlib.Path(path).read_bytes() == PAYLOAD and path.startswith(str(cache))


def test_mirror_directory_is_used_first(tmp_path, server, cache, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "model.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("DEEPLAB_KERAS_MIRROR", str(mirror))
    monkeypatch.setenv("DEEPLAB_KERAS_OFFLINE", "1")  # a local mirror needs no network
    info = download.fetch_info(server.url("/w/model.bin"), sha256=PAYLOAD_SHA, name="tiny",
                               progress=False)
    assert info.source == (mirror / "model.bin").as_uri()
    assert pathlib.Path(info.path).read_bytes() == PAYLOAD
    assert sum(server.requests.values()) == 0


def test_mirror_directory_with_a_bad_copy_falls_back_to_the_url(tmp_path, server, cache,
                                                                monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "model.bin").write_bytes(PAYLOAD[::-1])
    (mirror / "other.bin").write_bytes(b"x")
    server.files["/w/model.bin"] = PAYLOAD
    monkeypatch.setenv("DEEPLAB_KERAS_MIRROR", str(mirror))
    info = download.fetch_info(server.url("/w/model.bin"), sha256=PAYLOAD_SHA, name="tiny",
                               progress=False)
    assert info.source == server.url("/w/model.bin")
    assert pathlib.Path(info.path).read_bytes() == PAYLOAD
    # A file missing from the mirror also falls through to the URL.
    server.files["/w/absent.bin"] = PAYLOAD
    download.fetch(server.url("/w/absent.bin"), sha256=PAYLOAD_SHA, name="tiny2",
                   progress=False)
    assert server.requests["/w/absent.bin"] == 1


def test_mirror_url_prefix(server, cache, monkeypatch):
    server.files["/mirror/v1/model.bin"] = PAYLOAD
    monkeypatch.setenv("DEEPLAB_KERAS_MIRROR", server.url("/mirror/v1"))
    info = download.fetch_info("https://example.invalid/original/model.bin", sha256=PAYLOAD_SHA,
                               name="tiny", progress=False)
    assert info.source == server.url("/mirror/v1/model.bin")
    assert server.requests == {"/mirror/v1/model.bin": 1}


def test_trust_on_first_use_records_and_enforces_sidecar(server, cache, caplog):
    server.files["/w/model.bin"] = PAYLOAD
    url = server.url("/w/model.bin")
    with caplog.at_level(logging.WARNING, logger="deeplab_keras.weights"):
        info = download.fetch_info(url, name="nohash", progress=False)
    assert info.trust_on_first_use and info.sidecar == info.path + ".sha256"
    assert pathlib.Path(info.sidecar).read_text().split()[0] == PAYLOAD_SHA
    assert "trust on first use" in caplog.text and PAYLOAD_SHA in caplog.text
    assert download.fetch(url, name="nohash") == info.path
    assert server.requests["/w/model.bin"] == 1
    # The cached copy is damaged and the server now has another file: both are refused.
    _flip_byte(info.path)
    server.files["/w/model.bin"] = PAYLOAD[::-1]
    with pytest.raises(download.IntegrityError) as e:
        download.fetch(url, name="nohash", progress=False)
    assert PAYLOAD_SHA in str(e.value) and info.sidecar in str(e.value)
    assert not os.path.exists(info.path)
    server.files["/w/model.bin"] = PAYLOAD
    assert pathlib.Path(download.fetch(url, name="nohash", progress=False)).read_bytes() == PAYLOAD


def test_md5_verified_and_sha256_recorded(server, cache):
    server.files["/w/resnet.h5"] = PAYLOAD
    url = server.url("/w/resnet.h5")
    with pytest.raises(download.IntegrityError) as e:
        download.fetch(url, md5="0" * 32, name="resnet", progress=False)
    assert "md5 mismatch: expected " + "0" * 32 in str(e.value) and PAYLOAD_MD5 in str(e.value)
    assert not os.path.exists(str(cache / "downloads" / "resnet.h5.sha256"))
    info = download.fetch_info(url, md5=PAYLOAD_MD5, name="resnet", progress=False)
    assert pathlib.Path(info.sidecar).read_text().split()[0] == PAYLOAD_SHA
    assert files.md5_file(info.path) == PAYLOAD_MD5
    assert files.sha256_file(info.path) == PAYLOAD_SHA
    assert download.fetch(url, md5=PAYLOAD_MD5, name="resnet") == info.path
    assert server.requests["/w/resnet.h5"] == 2


def test_verify_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(PAYLOAD)
    assert integrity.verify_file(str(path), sha256=PAYLOAD_SHA, size=len(PAYLOAD),
                                md5=PAYLOAD_MD5) == PAYLOAD_SHA
    with pytest.raises(download.IntegrityError, match="size is 102400 bytes, expected 7"):
        integrity.verify_file(str(path), size=7)
    with pytest.raises(ValueError, match="64 hex digits"):
        integrity.verify_file(str(path), sha256="abc")


def test_cache_dir_follows_keras_home_and_override(tmp_path, monkeypatch):
    monkeypatch.delenv("DEEPLAB_KERAS_CACHE", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert download.cache_dir() == str(tmp_path / "kh" / "deeplab_keras")
    monkeypatch.setenv("DEEPLAB_KERAS_CACHE", str(tmp_path / "mine"))
    assert download.cache_dir() == str(tmp_path / "mine")


def test_cache_dir_falls_back_to_private_tmp_when_home_is_not_writable(tmp_path, monkeypatch,
                                                                       caplog):
    blocker = tmp_path / "home_is_a_file"
    blocker.write_text("")
    monkeypatch.delenv("DEEPLAB_KERAS_CACHE", raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(blocker))
    monkeypatch.setattr(cache_folder, "_FALLBACK_ROOT", str(tmp_path / "tmp" / ".keras"))
    with caplog.at_level(logging.WARNING, logger="deeplab_keras.weights"):
        folder = cache_folder.cache_dir()
    assert folder == str(tmp_path / "tmp" / ".keras" / "deeplab_keras")
    assert "not writable" in caplog.text
    assert os.stat(folder).st_mode & 0o077 == 0


def test_cache_dir_under_a_file_is_a_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("DEEPLAB_KERAS_CACHE", str(blocker / "cache"))
    monkeypatch.delenv("DEEPLAB_KERAS_OFFLINE", raising=False)
    monkeypatch.delenv("DEEPLAB_KERAS_MIRROR", raising=False)
    with pytest.raises(download.CacheNotWritableError) as e:
        download.fetch("https://example.invalid/model.bin", sha256=PAYLOAD_SHA, name="tiny")
    assert str(blocker / "cache" / "downloads") in str(e.value)
    assert "DEEPLAB_KERAS_CACHE" in str(e.value)


def test_read_only_cache_dir(server, cache, monkeypatch):
    server.files["/w/model.bin"] = PAYLOAD
    server.files["/w/other.bin"] = PAYLOAD
    warm = download.fetch(server.url("/w/model.bin"), sha256=PAYLOAD_SHA, name="tiny",
                          progress=False)
    folder = str(cache / "downloads")
    os.chmod(folder, 0o555)
    try:
        if os.geteuid() == 0:
            # root ignores permission bits: simulate the read-only folder at os.access, the
            # check fetch makes before writing.
            real_access = os.access

            def access(path, mode, *args, **kwargs):
                if os.fspath(path).startswith(str(cache)) and mode & os.W_OK:
                    return False
                return real_access(path, mode, *args, **kwargs)

            monkeypatch.setattr(os, "access", access)
        # A verified cached file is still served (no write is needed) ...
        assert download.fetch(server.url("/w/model.bin"), sha256=PAYLOAD_SHA, name="tiny") == warm
        # ... a missing one is a clear error naming the folder and the fix.
        with pytest.raises(download.CacheNotWritableError) as e:
            download.fetch(server.url("/w/other.bin"), sha256=PAYLOAD_SHA, name="other",
                           progress=False)
        assert folder in str(e.value) and "DEEPLAB_KERAS_CACHE" in str(e.value)
        assert server.requests["/w/other.bin"] == 0
        assert not os.path.exists(os.path.join(folder, "other.bin"))
    finally:
        os.chmod(folder, 0o755)


def test_unique_temp_files_keep_it_safe_when_flock_is_a_no_op(server, cache, monkeypatch):
    """NFS/Lustre may ignore flock: each process still verifies its own temp file."""
    monkeypatch.setattr(files, "fcntl", None)
    server.files["/w/model.bin"] = PAYLOAD
    server.rules["/w/model.bin"] = {"delay": 0.2}
    results, errors = [], []

    def worker():
        try:
            results.append(download.fetch(server.url("/w/model.bin"), sha256=PAYLOAD_SHA,
                                          name="tiny", progress=False))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == [] and len(set(results)) == 1 and len(results) == 4
    assert files.sha256_file(results[0]) == PAYLOAD_SHA
    assert _partials(cache) == []


def _worker_env(cache):
    env = dict(os.environ, DEEPLAB_KERAS_CACHE=str(cache))
    env.pop("DEEPLAB_KERAS_OFFLINE", None)
    env.pop("DEEPLAB_KERAS_MIRROR", None)
    return env


def test_eight_processes_cold_start_download_once(server, cache):
    server.files["/w/model.bin"] = PAYLOAD
    server.rules["/w/model.bin"] = {"delay": 0.5}
    url = server.url("/w/model.bin")
    procs = [subprocess.Popen([sys.executable, WORKER, url, "tiny", "--sha256", PAYLOAD_SHA],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_worker_env(cache)) for _ in range(8)]
    outputs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            outputs.append(out.split())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert server.requests["/w/model.bin"] == 1
    expected = ["OK", str(cache / "downloads" / "model.bin"), PAYLOAD_SHA]
    assert all(o == expected for o in outputs), outputs
    assert _partials(cache) == []


def test_process_killed_mid_write_leaves_no_final_file(server, cache, monkeypatch):
    server.files["/slow/model.bin"] = PAYLOAD
    server.rules["/slow/model.bin"] = {"stall_after": 40000}
    server.files["/w/model.bin"] = PAYLOAD
    proc = subprocess.Popen([sys.executable, WORKER, server.url("/slow/model.bin"), "tiny",
                             "--sha256", PAYLOAD_SHA], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_worker_env(cache))
    final = cache / "downloads" / "model.bin"
    try:
        assert server.partial_sent.wait(20), "the worker never started downloading"
        deadline = time.monotonic() + 10
        while not _partials(cache) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        partials = _partials(cache)
        assert partials, "no temporary file while downloading"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not final.exists()
    # A fresh fetch (the killed worker's lock died with it) gets the verified file, and
    # cleans up the dead worker's temp file once it is stale.
    old = time.time() - 2 * download._STALE_PARTIAL_S
    for p in partials:
        os.utime(p, (old, old))
    path = download.fetch(server.url("/w/model.bin"), sha256=PAYLOAD_SHA, name="tiny",
                          progress=False)
    assert path == str(final) and final.read_bytes() == PAYLOAD
    assert _partials(cache) == []


def test_bad_arguments_are_clear(cache):
    with pytest.raises(ValueError, match="plain file name"):
        download.fetch("https://example.invalid/x/", name="tiny")
    with pytest.raises(ValueError, match="plain file name"):
        download.fetch("https://example.invalid/x.bin", name="tiny", subdir="../escape")
    with pytest.raises(ValueError, match="Unsupported URL scheme"):
        download.fetch("ftp://example.invalid/x.bin", name="tiny", sha256=PAYLOAD_SHA)


def test_http_404_is_a_clear_error(server, cache):
    with pytest.raises(download.DownloadError) as e:
        download.fetch(server.url("/missing.bin"), sha256=PAYLOAD_SHA, name="tiny",
                       progress=False)
    assert "404" in str(e.value) and str(cache / "downloads" / "missing.bin") in str(e.value)
    assert server.requests["/missing.bin"] == 1


def test_mirror_file_url_prefix_finds_the_original_file_name(tmp_path, server, cache,
                                                             monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "orig.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("DEEPLAB_KERAS_MIRROR", mirror.as_uri())
    info = download.fetch_info(server.url("/w/orig.bin"), filename="renamed.bin",
                               sha256=PAYLOAD_SHA, name="tiny", progress=False)
    assert info.source == (mirror / "orig.bin").as_uri()
    assert info.path == str(cache / "downloads" / "renamed.bin")
    assert sum(server.requests.values()) == 0
