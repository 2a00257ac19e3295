"""Where a file may come from: its URL, `DEEPLAB_KERAS_MIRROR`, and extra mirrors.

A local folder or path becomes a `file://` URL; a mirror is looked up by file name.
"""

import os
import pathlib
import urllib.parse

MIRROR_ENV = "DEEPLAB_KERAS_MIRROR"


def check_name(value, what):
    if (not value or value in (".", "..") or "/" in value or "\\" in value or "\x00" in value):
        raise ValueError(f"{what} must be a plain file name, got {value!r}.")
    return value


def filename_from_url(url):
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    return path.rsplit("/", 1)[-1]


def is_local(url):
    return urllib.parse.urlsplit(url).scheme == "file"


def as_url(location):
    """A URL for `location`: a URL stays as is, a local path becomes `file://`."""
    scheme = urllib.parse.urlsplit(location).scheme
    if scheme in ("http", "https", "file"):
        return location
    if len(scheme) > 1:
        raise ValueError(f"Unsupported URL scheme {scheme!r} in {location!r}; use http(s):// "
                         f"or file://, or a local folder.")
    return pathlib.Path(os.path.abspath(os.path.expanduser(location))).as_uri()


def _mirror_url(mirror, filename):
    url = as_url(mirror)
    quoted = urllib.parse.quote(filename)
    return url + quoted if url.endswith("/") else url + "/" + quoted


def sources(url, filename, mirrors, mirror_names=None):
    """`[(kind, url)]` to try in order: the env mirror, `url`, then `mirrors`.

    In the env mirror the file is looked up by `mirror_names` (relative paths) when given,
    else by the cache file name and then the URL's own file name.
    """
    found = []
    env_mirror = os.environ.get(MIRROR_ENV, "").strip()
    if env_mirror:
        names = list(mirror_names or [filename])
        original = filename_from_url(url)
        if not mirror_names and original and original != filename:
            names.append(original)  # the cache may rename; a mirror may keep the original
        found.extend(("mirror", _mirror_url(env_mirror, n)) for n in names)
    found.append(("url", as_url(url)))
    for mirror in mirrors or ():
        found.append(("mirror", as_url(mirror)))
    return found


__all__ = ["MIRROR_ENV", "as_url", "check_name", "filename_from_url", "is_local", "sources"]
