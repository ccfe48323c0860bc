"""Key material files: where the wrapped keys of an encrypted Parquet file live, and the file id naming them.

The key material of a committed file is ``_KEY_MATERIAL_FOR_<name>.<file id>.json`` beside it; the file id
is the hex of the footer's GCM tag, read from the last bytes of the file without any key.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Final

import pyarrow.fs as pafs

from airflow_aisec.exceptions import DatasetIOError, EncryptionError
from airflow_aisec.io.formats import display_path
from airflow_aisec.io.staging import fsync_path
from airflow_aisec.io.storage import Location

ENCRYPTED_MAGIC: Final = b"PARE"
KEY_MATERIAL_PREFIX: Final = "_KEY_MATERIAL_FOR_"  # pyarrow's (and parquet-mr's) naming
KEY_MATERIAL_SUFFIX: Final = ".json"
# End of an encrypted-footer file: ... | footer GCM tag (16) | footer length (4) | "PARE" (4).
_TAG_BYTES = 16
_TRAILER_BYTES = 8


def _split(path: str) -> tuple[str, str]:
    folder, _, name = path.rpartition("/")
    return folder, name


def key_material_path(anchor: str) -> str:
    """Where pyarrow keeps the key material of the file written with ``anchor`` as its path."""
    folder, name = _split(anchor)
    return f"{folder}/{KEY_MATERIAL_PREFIX}{name}{KEY_MATERIAL_SUFFIX}"


def file_anchor(path: str, file_id: str) -> str:
    """The anchor of the committed file ``path`` whose id is ``file_id``."""
    return f"{path}.{file_id}"


def _read_tail(source: Any, where: str) -> bytes:
    """The last 24 bytes of an open file: the footer's GCM tag and the trailer."""
    size = source.size()
    if size < _TAG_BYTES + _TRAILER_BYTES + len(ENCRYPTED_MAGIC):
        return b""
    try:
        return bytes(source.read_at(_TAG_BYTES + _TRAILER_BYTES, size - _TAG_BYTES - _TRAILER_BYTES))
    except OSError as exc:
        raise DatasetIOError(f"cannot read {where}: {exc}") from exc


def file_id_of(source: Any, where: str) -> str:
    """The file id of the open encrypted Parquet file ``source``; ``EncryptionError`` for any other file."""
    tail = _read_tail(source, where)
    if not tail.endswith(ENCRYPTED_MAGIC):
        raise EncryptionError(f"{where} is not an encrypted Parquet file (no encrypted footer)")
    return tail[:_TAG_BYTES].hex()


def open_parquet(fs: pafs.FileSystem, path: str, where: str) -> Any:
    """``fs.open_input_file(path)``, failing with a ``DatasetIOError`` that names ``where``."""
    try:
        return fs.open_input_file(path)
    except FileNotFoundError:
        raise DatasetIOError(f"{where} does not exist") from None
    except OSError as exc:
        raise DatasetIOError(f"cannot read {where}: {exc}") from exc


def stored_file_id(fs: pafs.FileSystem, path: str, where: str) -> str:
    """The file id of the encrypted Parquet file at ``path``."""
    with open_parquet(fs, path, where) as source:
        return file_id_of(source, where)


def is_encrypted_parquet(fs: pafs.FileSystem, path: str) -> bool:
    """Whether ``path`` is a Parquet file with an encrypted footer (what this package writes)."""
    where = display_path(fs, path)
    with open_parquet(fs, path, where) as source:
        return _read_tail(source, where).endswith(ENCRYPTED_MAGIC)


def _is_file(fs: pafs.FileSystem, path: str) -> bool:
    return bool(fs.get_file_info(path).type == pafs.FileType.File)


def locate_anchor(fs: pafs.FileSystem, path: str, file_id: str, where: str) -> str:
    """The anchor whose key material belongs to this version of the file.

    Files committed here use ``<path>.<file id>``; files written with ``encryption_properties`` directly
    (pyarrow's own convention) use ``<path>``.
    """
    for anchor in (file_anchor(path, file_id), path):
        if _is_file(fs, key_material_path(anchor)):
            return anchor
    expected = _split(key_material_path(file_anchor(path, file_id)))[1]
    raise EncryptionError(f"cannot decrypt {where}: its key material {expected} is missing")


def find_key_material(location: Location) -> Location:
    """The key material file of the encrypted Parquet file ``location`` (delete it with the file)."""
    fs = location.filesystem()
    where = display_path(fs, location.path)
    file_id = stored_file_id(fs, location.path, where)
    return with_path(location, key_material_path(locate_anchor(fs, location.path, file_id, where)))


def with_path(location: Location, path: str) -> Location:
    """``location`` with another path on the same filesystem."""
    return Location(location.scheme, path, location.s3)


def current_key_material(target: Location) -> Location | None:
    """The key material of the file now at ``target``, or None (no file, plaintext, or none found)."""
    try:
        return find_key_material(target)
    except (DatasetIOError, EncryptionError):
        return None


def delete_quietly(fs: pafs.FileSystem, path: str) -> None:
    """Delete ``path`` if it can be deleted (leftovers only: a failure leaves an orphan, nothing worse)."""
    with contextlib.suppress(OSError):
        fs.delete_file(path)


def store_key_material(staged: str, location: Location, final: str) -> None:
    """Put the local key material file ``staged`` at ``final``, beside the data file ``location``.

    Locally it is renamed (fsync'd before and after, so it is durable before the data depends on it); on S3
    it is uploaded in one PUT. Raises ``OSError``; the caller says which file's key material failed.
    """
    if location.is_s3:
        with open(staged, "rb") as handle, location.filesystem().open_output_stream(final) as out:
            out.write(handle.read())
    else:
        fsync_path(staged, os.O_RDONLY)
        os.replace(staged, final)
        fsync_path(os.path.dirname(final), os.O_RDONLY)
