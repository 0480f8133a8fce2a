"""Outputs on disk: write-then-rename for every file and folder, the rule for output folders, and
reading our own files back with errors that name them.

- Files are written to a temporary name beside the target (so the rename stays on one file
  system), flushed to disk and renamed onto the target; a crash or Ctrl-C mid-write leaves the
  previous file (or none), never a half-written one. A symbolic link is written through (its
  target is replaced, the link stays); an existing file keeps its permissions. A pipe or a
  character device (`--output /dev/null`, `/dev/stdout`) is written in place: a rename would put a
  regular file where the device node was (as root, in /dev itself).
- Temporary names are `.<name>.ner-fast-<pid>.<random>.tmp` (folders too; `.old` for a folder being
  swapped out; a name too long for that is cut, plus a hash: `_temp_stem`). The marker makes a name
  ours (a user's `.photos.2023.summer.old` is never one): the next write to the same target removes
  those whose process is gone, so a killed run leaves nothing behind for long (an `.old` folder whose
  target is missing, a process killed mid-swap, is put back instead).
- Errors name the output path, never the temporary one (a full disk too).
- Files that belong together (a training checkpoint: parameters, optimizer state, state.json) are
  replaced together (`atomic_group`): all are written to temporary names first, then a journal
  (`GROUP_JOURNAL`) names them, then they are renamed. A process killed before the journal leaves
  the previous set whole; one killed after it is finished by the next one to touch the folder
  (`finish_group`, which `remove_stale_temps` calls first), never read half-renamed.
- Output folders (`claim_output_dir`): a command writes into a new or empty folder, or over an
  earlier output of its own; a non-empty folder holding anything else is refused unless `force`,
  and even then nothing but the command's own files is replaced. `--out .` (or any folder holding
  the current one) is refused.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ner_fast.errors import OptionError, json_error

# `.<name>.ner-fast-<pid>.<random>.tmp` / `.old`: what this module creates, and the pid that owns it. The
# marker is what makes it ours: without it, a user's `.photos.2023.summer.old` (pid 2023, no such process)
# was removed, and its data/ moved out, by any command that claimed the folder, even one that then refused.
TEMP_MARKER = "ner-fast-"
_TEMP = re.compile(rf"^\.(?P<name>.+)\.{TEMP_MARKER}(?P<pid>\d+)\.[^.]+\.(?:tmp|old)$")


def current_umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike[str], name: str | None = None) -> list[Path]:
    """Remove the temporary files and folders of this module in `folder` whose process is gone.

    With `name`, only those of that target. Returns what was removed. Another live process's
    temporaries (a run in progress) are left alone. A folder swapped out by `atomic_dir` (`.old`) whose
    target is missing (the process died between its two renames) is put back as the target, not removed:
    it is the previous output, and the only copy.
    """
    removed = []
    try:
        finish_group(folder)  # its temporaries are a set being renamed into place, not leftovers
    except OSError:
        return removed  # a group that cannot be finished here: its temporaries are not ours to remove
    try:
        entries = os.listdir(folder)
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP.match(entry)
        if not m or (name is not None and m["name"] != _temp_stem(name)) or _alive(int(m["pid"])):
            continue
        path = Path(folder) / entry
        try:
            target = Path(folder) / m["name"]
            if entry.endswith(".old") and (path / "data").is_dir() and not os.path.lexists(target) \
                    and _temp_stem(m["name"]) == m["name"]:  # a cut name does not say its target
                os.replace(path / "data", target)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue  # another process cleaned it first
        removed.append(path)
    return removed


#: Bytes of a file name (NAME_MAX of Linux's and macOS's file systems), and what
#: `.<stem>.ner-fast-<pid>.<random>.tmp` adds to the stem: two dots, the marker, a pid of up to 7 digits, a dot,
#: mkstemp's 8 characters, `.tmp` or `.old`.
_NAME_MAX = 255
_TEMP_EXTRA = 2 + len(TEMP_MARKER) + 7 + 1 + 8 + 4


def _temp_stem(name: str) -> str:
    """The `<name>` part of a target's temporary names: the name itself, or, where the temporary would be
    too long a file name for a target that is not, the name cut to fit plus `~` and a hash of the whole."""
    room = _NAME_MAX - _TEMP_EXTRA
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) <= room:
        return name
    digest = hashlib.sha256(encoded).hexdigest()[:8]
    return encoded[: room - 9].decode("utf-8", "ignore") + "~" + digest


def _temp_prefix(target: Path) -> str:
    return f".{_temp_stem(target.name)}.{TEMP_MARKER}{os.getpid()}."


def _named(err: OSError, path: Path) -> OSError:
    """`err` re-raised about the output `path` (not a temporary name), e.g. a full disk."""
    if err.errno:
        return type(err)(err.errno, err.strerror or str(err), str(path))
    return OSError(f"{path}: {err}")


def _about_output(err: OSError, path: Path) -> OSError:
    """`_named` for an error raised while the output `path` is written (`atomic_open`'s body), unless it is
    about another file, as reading the input it is written from can be: that one keeps its own name (a
    Dask part's vanished input was reported under the part's name)."""
    name = err.filename
    if isinstance(name, (str, bytes, os.PathLike)):
        named = Path(os.fsdecode(name))
        temp = _TEMP.match(named.name)
        if named != path and not (temp and temp.group("name") == path.name):
            return err
    return _named(err, path)


def open_descriptor(path: str | os.PathLike[str]) -> int | None:
    """The open descriptor of this process that `path` names as given (/dev/stdout, /dev/stderr, /dev/fd/N,
    /proc/self/fd/N), else None. Such a path is written through that descriptor: opened anew, it would
    truncate a file the shell redirected there (`>> log`) and a rename would replace it."""
    head, _, tail = os.path.normpath(os.fspath(path)).rpartition("/")
    if head == "/dev" and tail in ("stdout", "stderr"):
        fd = 1 if tail == "stdout" else 2
    elif head in ("/dev/fd", "/proc/self/fd") and tail.isdigit():
        fd = int(tail)
    else:
        return None
    try:
        os.fstat(fd)
    except OSError:
        return None  # not open: the path is opened as any other
    return fd


def is_stream(path: str | os.PathLike[str]) -> bool:
    """Whether `path` names an open descriptor of this process (`open_descriptor`: /dev/stdout even where
    the shell sent it to a file) or is (links followed) a pipe or a character device (/dev/null, a
    terminal): a stream, written in place, where a rename would replace the file, pipe or device node."""
    if open_descriptor(path) is not None:
        return True
    try:
        kind = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(kind) or stat.S_ISCHR(kind)


@contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "wb", encoding: str | None = None, replace: bool = True
) -> Iterator[IO[Any]]:
    """Open a temporary file beside `path` for writing; on a clean exit fsync it and rename it onto `path`.

    A symbolic link `path` is written through: the file it points to is replaced. A stream (`is_stream`:
    a pipe, /dev/null, /dev/stdout) is written in place, as there is nothing to rename (one of this
    process's descriptors by name through that descriptor, at its offset: `>> log` appends); any
    other existing path that is not a regular file (a socket, a block device) is an OSError. Errors name `path`.

    `replace=False` (a command told not to overwrite, which checked that `path` was free before its work):
    the file is published only if `path` still does not exist, in one step (a hard link, which fails on
    an existing name), so a file that appeared there while this one was written is kept and the write is
    an OSError (EEXIST) instead. Where the file system has no hard links, a last check before the rename.
    """
    path = Path(path)
    if is_stream(path):
        fd = open_descriptor(path)
        try:
            with (os.fdopen(os.dup(fd), mode, encoding=encoding) if fd is not None else open(path, mode, encoding=encoding)) as f:
                yield f
        except OSError as err:
            raise _about_output(err, path) from None
        return
    if path.is_symlink():  # the link's target is written (then renamed onto), the link kept
        path = Path(os.path.realpath(path))
    fd, tmp, mode_bits = _temp_beside(path)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode_bits)  # mkstemp makes the file private; give it the target's (or the usual) mode
        if replace:
            os.replace(tmp, path)
        else:
            _publish_new(tmp, path)
    except OSError as err:
        _unlink_quietly(tmp)
        raise _about_output(err, path) from None
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _temp_beside(path: Path) -> tuple[int, str, int]:
    """The start of every atomic write of the file `path`: refuse a target that exists and is no regular
    file, remove the temporaries of `path` that dead processes left (`remove_stale_temps`), and open a new
    temporary file beside it. Returns (its fd, its path, the mode the target will get: the target's own,
    or the usual one under the umask)."""
    if path.exists() and not path.is_file():
        raise OSError(errno.EEXIST, "exists and is not a regular file; not replaced", str(path))
    remove_stale_temps(path.parent, path.name)
    try:
        mode_bits = path.stat().st_mode & 0o7777
    except OSError:
        mode_bits = 0o666 & ~current_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise _named(err, path) from None
    return fd, tmp, mode_bits


def _publish_new(tmp: str, path: Path) -> None:
    """Give the finished temporary file `tmp` the name `path` only if nothing has it (then `tmp` is gone)."""
    appeared = OSError(errno.EEXIST, "appeared while this output was written; kept, not replaced (--force replaces it)", str(path))
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise appeared from None
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise
        if os.path.lexists(path):  # no hard links here: the narrowest check left
            raise appeared from None
        os.replace(tmp, path)
        return
    _unlink_quietly(tmp)  # `path` holds the file now: a leftover name is no failure of this write


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def atomic_write_bytes(path: str | os.PathLike[str], write: Callable[[Any], None]) -> None:
    """Write a file through `write(binary fileobj)`, atomically."""
    with atomic_open(path) as f:
        write(f)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` as UTF-8, atomically."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


def json_document(obj: Any) -> str:
    """How our JSON files are written: indented, keys sorted, a final newline."""
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write a JSON document (`json_document`), atomically."""
    atomic_write_text(path, json_document(obj))


# --------------------------------------------------------------------------- files replaced together

#: The journal of an `atomic_group` being renamed into place: `{"pid": ..., "files": {target: temporary}}`.
GROUP_JOURNAL = ".ner-fast-group.json"


class GroupWriter:
    """The files of one `atomic_group`: each written to a temporary name in the group's folder, renamed
    onto its target only when the whole group is written."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: dict[str, str] = {}  # target name -> temporary name, both in `folder`

    def write_bytes(self, path: str | os.PathLike[str], write: Callable[[Any], None]) -> None:
        """Write the group's file `path` (in the group's folder) through `write(binary fileobj)`."""
        path = Path(path)
        if path.parent.resolve() != self.folder.resolve():
            raise ValueError(f"{path} is not in the group's folder {self.folder}")
        fd, tmp, mode_bits = _temp_beside(path)
        self.files[path.name] = os.path.basename(tmp)  # known before it is written: a failure removes it
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode_bits)
        except OSError as err:
            raise _named(err, path) from None


@contextmanager
def atomic_group(folder: str | os.PathLike[str]) -> Iterator[GroupWriter]:
    """Replace several files of `folder` together: on a clean exit every file written through the
    `GroupWriter` is renamed onto its target, or (killed) none is, or the next `finish_group` renames
    the rest. On an exception the temporaries are removed and the previous files stay as they were."""
    folder = Path(folder)
    finish_group(folder)  # an earlier group cut short is completed before this one starts
    group = GroupWriter(folder)
    try:
        yield group
        atomic_write_json(folder / GROUP_JOURNAL, {"pid": os.getpid(), "files": group.files})
    except BaseException:
        for tmp in group.files.values():
            _unlink_quietly(str(folder / tmp))
        raise
    finish_group(folder)


def finish_group(folder: str | os.PathLike[str]) -> list[str]:
    """Complete the `atomic_group` whose journal is in `folder` (this process's, or a dead one's: a
    live process finishes its own): rename its temporaries onto their targets, then remove the journal.
    Returns the targets renamed. An unreadable journal is an OSError naming it."""
    folder = Path(folder)
    journal = folder / GROUP_JOURNAL
    try:
        text = journal.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as err:
        raise _named(err, journal) from None
    try:
        doc = json.loads(text)
        pid, files = int(doc["pid"]), dict(doc["files"])
    except (ValueError, KeyError, TypeError):
        raise OSError(f"{journal}: not a journal of ner-fast's; move it away to go on") from None
    if pid != os.getpid() and _alive(pid):
        return []  # another process is renaming its group: it finishes it itself
    renamed = []
    for target, tmp in files.items():
        if os.path.basename(target) != target or os.path.basename(tmp) != tmp:
            raise OSError(f"{journal}: names a file outside {folder}; move it away to go on")
        try:
            os.replace(folder / tmp, folder / target)
        except FileNotFoundError:
            continue  # renamed before the process stopped
        except OSError as err:
            raise _named(err, folder / target) from None
        renamed.append(target)
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the renames are on disk before the journal goes
        finally:
            os.close(dir_fd)
    except OSError:
        pass  # a file system that cannot sync a folder: the renames stand all the same
    journal.unlink(missing_ok=True)
    return renamed


# --------------------------------------------------------------------------- output folders


@dataclass(frozen=True)
class OutputDir:
    """A folder a command may write: `previous` are the entries of an earlier output of the same
    command there (replaced), `foreign` the other entries (kept; only ever non-empty with force)."""

    path: Path
    previous: frozenset[str] = frozenset()
    foreign: frozenset[str] = frozenset()
    option: str = "--out"

    def refuse_clashes(self, names: Collection[str]) -> None:
        """OptionError if writing `names` would overwrite entries this command did not write (even with force)."""
        clash = sorted(set(names) & self.foreign)
        if clash:
            one = len(clash) == 1
            raise OptionError(
                self.option, f"{self.path}: {', '.join(clash)} {'is' if one else 'are'} not an output of this command"
                             " that it can recognise (another's file, or its own damaged), so not overwritten, even with"
                             f" --force: choose a new or empty folder, or remove {'it' if one else 'them'} first"
            )


def nothing_owned(folder: Path) -> None:
    """For `claim_output_dir`: a command that recognises no earlier output of its own."""
    return None


def claim_output_dir(
    path: str | os.PathLike[str],
    owned: Callable[[Path], Collection[str] | None] = nothing_owned,
    *,
    force: bool | None = False,
    option: str = "--out",
    writes: Collection[str] = (),
) -> OutputDir:
    """Check that a command may write the folder `path`, before it does any work (`force` None: the
    command has no --force, and its refusal does not offer one). `writes`: names the command always
    writes; another's file under one of them is refused first, without offering --force, which would
    not replace it either (`OutputDir.refuse_clashes`).

    `owned(path)` gives the entry names of an earlier output of the same command found in `path`
    (None: there is none). A new or empty folder, or one holding only such an output, is fine. Any
    other entry makes it an OptionError naming `option` unless `force`; then those entries are kept.
    The current folder (or one holding it) is refused, and a folder that cannot be written is a
    PermissionError naming it. A symbolic link to a folder stands for that folder.
    """
    path = Path(path)
    if path.is_symlink():  # write where the link points; the link stays
        path = Path(os.path.realpath(path))
    resolved = path.resolve()
    here = Path.cwd().resolve()
    if resolved == here or resolved in here.parents:
        raise OptionError(option, f"{path} is the current folder or holds it; name a new folder for the output")
    if path.exists() and not path.is_dir():
        raise OptionError(option, f"{path} is a file, not a folder")
    above = _nearest_entry(path)  # [Errno 20] Not a directory, or 17 File exists for a dangling link, else
    if above != path and not above.is_dir():
        what = "a link to nothing" if above.is_symlink() and not above.exists() else "a file"
        raise OptionError(option, f"{path}: {above} is {what}, not a folder")
    _check_writable(path)
    if not path.exists():
        return OutputDir(path, option=option)
    remove_stale_temps(path)
    entries = {e for e in os.listdir(path) if not _TEMP.match(e)}  # a live run's temporaries are not content
    if not entries:
        return OutputDir(path, option=option)
    ours = set(owned(path) or ()) & entries
    foreign = entries - ours
    claim = OutputDir(path, frozenset(ours), frozenset(foreign), option)
    claim.refuse_clashes(writes)
    if foreign and not force:
        shown = ", ".join(sorted(foreign)[:3]) + (", ..." if len(foreign) > 3 else "")
        what = "besides an earlier output of this command" if ours else "and is not an output of this command"
        way_out = "" if force is None else ", or add --force (then only this command's own files there are replaced)"
        raise OptionError(option, f"{path} holds other files ({shown}) {what}; choose a new or empty folder{way_out}")
    return claim


def _nearest_entry(path: Path) -> Path:
    """`path` if it is there (a link counts, dangling or not), else its nearest parent that is."""
    probe = path
    while not os.path.lexists(probe) and probe.parent != probe:
        probe = probe.parent
    return probe


def _check_writable(path: Path) -> None:
    """PermissionError naming `path` where the folder (or the nearest existing parent, a folder:
    `claim_output_dir` has refused anything else) cannot be written."""
    probe = _nearest_entry(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=probe)
    except OSError as err:
        raise _named(err, path) from None
    os.close(fd)
    os.unlink(tmp)


@contextmanager
def atomic_dir(
    target: str | os.PathLike[str] | OutputDir,
    owned: Callable[[Path], Collection[str] | None] = nothing_owned,
    *,
    force: bool = False,
) -> Iterator[Path]:
    """Yield a new temporary folder beside `target` to fill; on a clean exit it becomes `target`.

    `target` is claimed first (`claim_output_dir` with `owned` and `force`; or pass the `OutputDir`
    it returned). Into a new folder, an empty one or one holding only an earlier output of the same
    command, the filled folder is swapped in by renames (an earlier output is replaced only once the
    new one is complete). Into a folder with other entries (`force`), the new files are moved in one
    by one and the earlier output's files that the new one lacks are removed; nothing else is
    touched (a new file that would overwrite another's is an OptionError before anything moves). On an error the temporary folder is removed and `target` is left as it was.
    """
    claim = target if isinstance(target, OutputDir) else claim_output_dir(target, owned, force=force)
    path = claim.path
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, path.name)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    except OSError as err:
        raise _named(err, path) from None
    try:
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes the folder private; give it the usual mode
        yield tmp
        if claim.foreign:
            written = set(os.listdir(tmp))
            claim.refuse_clashes(written)
            for name in sorted(written):
                os.replace(tmp / name, path / name)
            for name in claim.previous - written:
                (path / name).unlink(missing_ok=True)
            tmp.rmdir()
        elif path.exists():
            old = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".old", dir=path.parent))
            os.replace(path, old / "data")
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _named(err, path) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --------------------------------------------------------------------------- reading our files


def read_json(path: str | os.PathLike[str], what: str = "JSON document") -> Any:
    """A JSON file's document; ValueError naming the file when it is missing, unreadable or not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file (expected a {what})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot read the {what}: {err}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({json_error(err)})") from None


@contextmanager
def folder_lock(path: str | os.PathLike[str], busy: str) -> Iterator[bool]:
    """Hold the folder `path` for this process: an advisory `flock` on the folder itself, released when
    the process ends however it ends (SIGKILL too); ValueError(`busy`) while another process holds it.
    Yields whether the lock is held (False: no such folder yet, or a file system without flock). A
    training run's folder (`training.run_dir.run_lock`) and a `tag --output-dir` folder are held so."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        yield False  # not a folder (yet): what comes next says what is wrong, or makes it
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(busy) from None
        except OSError:
            yield False  # no flock on this file system
            return
        yield True
    finally:
        os.close(fd)
