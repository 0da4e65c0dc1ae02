"""Files: reading what a user names, writing atomically, and finding the kit's own data.

Every file a user names (a SIGSTRUCT, an SGXS stream, a key, a trace, a run
config) is read through :func:`read_user_bytes` or :func:`read_user_text`,
and every file the kit writes goes through :func:`write_atomic`. Both turn
every way a file can be wrong (missing, a directory, a FIFO or device, too
large, not UTF-8, unreadable) into a :class:`~sgxlab.errors.ConfigError` that
names the option and the path; nothing else escapes.

Decisions
---------
* Only regular files are read. The kind is checked with ``os.stat`` before
  the file is opened, so a FIFO without a writer or ``/dev/zero`` is refused
  instead of blocking or reading forever, and the size is checked against a
  cap before any byte is read (a cap per kind of file: :data:`MAX_READ`).
* Writes go to a temporary file in the target's folder, which is flushed,
  fsynced and given the mode ``open()`` would have given it (``0o666`` less
  the umask), then renamed over the target. A failure leaves the old file
  untouched and removes the temporary one.
* The kit's data (``keys/``, ``costs/``, ``traces/`` in the repository's
  top-level ``data/`` folder) is the package ``sgxlab.data`` in every install:
  ``pyproject.toml`` maps that folder into the package, so
  :func:`data_path` works from a checkout, an editable install and a wheel.
"""

from __future__ import annotations

import os
import stat
import tempfile
from importlib import resources
from pathlib import Path

from sgxlab.errors import ConfigError

__all__ = [
    "MAX_READ",
    "data_path",
    "read_user_bytes",
    "read_user_text",
    "write_atomic",
    "check_writable",
]

MAX_READ = 64 << 20
"""Default cap on a file a user names: 64 MiB (a SIGSTRUCT is 1,808 bytes; the
largest SGXS stream in the vectors is a few MiB). Callers pass their own."""

PathArg = str | os.PathLike[str]


def data_path(*parts: str) -> Path:
    """The path of ``parts`` inside the kit's data folder (``data_path("costs")``)."""
    root = resources.files("sgxlab.data")
    return Path(str(root.joinpath(*parts)))


def _path(path: object, option: str) -> Path:
    if isinstance(path, (str, os.PathLike)) and not isinstance(path, bytes):
        try:
            return Path(path)
        except TypeError:
            pass
    raise ConfigError(option, path, "expected a file path")


def _why(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def read_user_bytes(path: PathArg, option: str, *, max_bytes: int = MAX_READ, what: str = "file") -> bytes:
    """The bytes of the regular file ``path``, or a ConfigError naming ``option`` and the path.

    ``what`` names the kind of file in messages ("an SGXS file"). Files over
    ``max_bytes`` are refused before they are read.
    """
    p = _path(path, option)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise ConfigError(option, str(p), "no such file") from None
    except (OSError, ValueError) as e:  # ValueError: an embedded NUL
        raise ConfigError(option, str(p), f"cannot be read: {_why(e)}") from None
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise ConfigError(option, str(p), f"is a directory, not {what}")
    if not stat.S_ISREG(mode):
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket or special file"
        )
        raise ConfigError(option, str(p), f"is {kind}, not a regular file")
    if st.st_size > max_bytes:
        raise ConfigError(option, str(p), f"is {st.st_size:,} bytes; at most {max_bytes:,} are read for {what}")
    try:
        with open(p, "rb") as f:
            # Ask for what stat promised, not for the cap: read(n) reserves n bytes up front.
            want = min(st.st_size, max_bytes) + 1
            data = f.read(want)
            if len(data) == want and want <= max_bytes:  # it grew while we looked: read on, up to the cap
                parts, total = [data], len(data)
                while total <= max_bytes:
                    chunk = f.read(min(1 << 20, max_bytes + 1 - total))
                    if not chunk:
                        break
                    parts.append(chunk)
                    total += len(chunk)
                data = b"".join(parts)
    except OSError as e:
        raise ConfigError(option, str(p), f"cannot be read: {_why(e)}") from None
    if len(data) > max_bytes:  # it grew while we looked
        raise ConfigError(option, str(p), f"is over {max_bytes:,} bytes, the most read for {what}")
    return data


def read_user_text(path: PathArg, option: str, *, max_bytes: int = MAX_READ, what: str = "file") -> str:
    """:func:`read_user_bytes`, decoded as UTF-8 (a leading BOM is dropped)."""
    data = read_user_bytes(path, option, max_bytes=max_bytes, what=what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(option, str(path), f"is not UTF-8 text (byte {e.start}: {e.reason})") from None
    return text[1:] if text.startswith("\ufeff") else text


def check_writable(path: PathArg, option: str, *, suffixes: tuple[str, ...] | None = None) -> Path:
    """``path`` as a :class:`Path` if a file can be written there, else a ConfigError naming it.

    Checks, without writing the file: the suffix (if ``suffixes`` is given),
    an existing folder, that ``path`` is not a directory, and that the folder
    takes a new file (a temporary file is created there and removed again,
    which also works where :func:`os.access` would lie, e.g. as root on a
    read-only mount).
    """
    p = _path(path, option)
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise ConfigError(option, str(p), f"expected a {' or '.join(suffixes)} file name")
    d = p.parent if str(p.parent) else Path(".")
    try:
        is_dir, folder_ok = p.is_dir(), d.is_dir()
    except (OSError, ValueError) as e:
        raise ConfigError(option, str(p), _why(e)) from None
    if is_dir:
        raise ConfigError(option, str(p), "is a directory; give a file name")
    if not folder_ok:
        raise ConfigError(option, str(p), f"no such folder {str(d)!r}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=d)
    except (OSError, ValueError) as e:
        raise ConfigError(option, str(p), f"cannot write in {str(d)!r}: {_why(e)}") from None
    os.close(fd)
    try:
        os.unlink(tmp)
    except OSError:
        pass
    return p


def _umask() -> int:
    mask = os.umask(0o022)  # there is no way to read it without setting it
    os.umask(mask)
    return mask


def write_atomic(path: PathArg, data: str | bytes, option: str = "output") -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; return the path.

    Any failure leaves the previous file untouched and raises ConfigError.
    """
    p = _path(path, option)
    try:
        if p.is_dir():
            raise ConfigError(option, str(p), "is a directory; give a file name")
    except (OSError, ValueError) as e:
        raise ConfigError(option, str(p), _why(e)) from None
    if isinstance(data, str):
        try:
            blob = data.encode("utf-8")
        except UnicodeError as e:  # a lone surrogate
            raise ConfigError(option, str(p), f"cannot be written as UTF-8: {e}") from None
    else:
        blob = bytes(data)
    d = p.parent if str(p.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=d)
    except (OSError, ValueError) as e:
        raise ConfigError(option, str(p), f"cannot be written: {_why(e)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise ConfigError(option, str(p), f"cannot be written: {_why(e)}") from None
        raise
    try:  # make the rename itself durable (best effort: not every system can fsync a folder)
        dfd = os.open(d, os.O_RDONLY)
    except OSError:
        return p
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
    return p
