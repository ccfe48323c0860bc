"""Where a dataset lives: a local path or an S3 prefix, and the clients that reach it.

boto3 is imported only inside functions, so the core library works without the ``aws`` extra for local data.
"""

from __future__ import annotations

import contextlib
import functools
import os
import posixpath
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pyarrow.fs as pafs

from airflow_aisec.exceptions import AisecError, ConcurrentModificationError, DatasetIOError

Scheme = Literal["file", "s3"]


@dataclass(frozen=True, repr=False)
class S3Options:
    """Credentials and endpoint of an S3-compatible store; ``repr`` never shows the keys."""

    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    region: str | None = None
    endpoint_url: str | None = None

    def __repr__(self) -> str:
        # Keys are replaced by a marker so options can be logged and end up in tracebacks safely.
        def shown(value: str | None) -> str:
            return "None" if value is None else "'***'"

        return (
            f"S3Options(access_key={shown(self.access_key)}, secret_key={shown(self.secret_key)}, "
            f"session_token={shown(self.session_token)}, region={self.region!r}, "
            f"endpoint_url={self.endpoint_url!r})"
        )

    __str__ = __repr__

    @classmethod
    def from_environment(cls) -> S3Options:
        """Options from the boto3 credential chain (env, config files, role) and ``AWS_ENDPOINT_URL[_S3]``."""
        boto3 = _import_boto3()
        session = boto3.session.Session()
        credentials = session.get_credentials()
        # Freeze once so the key, secret and token come from the same refresh of rotating credentials.
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
        endpoint = endpoint_from_environment()
        return cls(
            access_key=frozen.access_key if frozen else None,
            secret_key=frozen.secret_key if frozen else None,
            session_token=frozen.token if frozen else None,
            region=session.region_name,
            endpoint_url=endpoint,
        )


def _import_boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise DatasetIOError("S3 locations need boto3: install airflow-aisec[aws]") from None
    return boto3


def endpoint_from_environment() -> str | None:
    """The S3 endpoint override boto3 itself honours: ``AWS_ENDPOINT_URL_S3``, then ``AWS_ENDPOINT_URL``."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


@dataclass(frozen=True)
class Location:
    """A local file or folder (absolute ``path``) or an S3 object or prefix (``path`` is ``bucket/key``)."""

    scheme: Scheme
    path: str
    s3: S3Options | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, uri_or_path: str | os.PathLike[str], s3: S3Options | None = None) -> Location:
        """Parse ``s3://bucket/prefix``, ``file:///abs/path`` or a local path (relative to the cwd)."""
        text = os.fspath(uri_or_path)
        if not text:
            raise DatasetIOError("empty dataset location")
        if text.startswith("s3://"):
            return cls._parse_s3(text, s3)
        if text.startswith("file://"):
            parsed = urllib.parse.urlsplit(text)
            if parsed.netloc not in ("", "localhost"):
                raise DatasetIOError(f"file URI with a remote host is not supported: {text}")
            text = urllib.parse.unquote(parsed.path)
        elif "://" in text:
            raise DatasetIOError(f"unsupported dataset location {text}: use a local path, file:// or s3://")
        return cls("file", os.path.abspath(os.path.expanduser(text)))

    @classmethod
    def _parse_s3(cls, text: str, s3: S3Options | None) -> Location:
        bucket, _, key = text[len("s3://") :].partition("/")
        if not bucket:
            raise DatasetIOError(f"S3 location without a bucket: {text}")
        key = key.strip("/")
        options = s3 if s3 is not None else S3Options.from_environment()
        return cls("s3", f"{bucket}/{key}" if key else bucket, options)

    @property
    def is_s3(self) -> bool:
        """True for an S3 location."""
        return self.scheme == "s3"

    @functools.cached_property
    def uri(self) -> str:
        """Display form: ``s3://bucket/key`` or ``file:///abs/path``."""
        # As Path.as_uri() for an absolute POSIX path, without building a Path (it is called for every file).
        return (
            f"s3://{self.path}"
            if self.is_s3
            else "file://" + urllib.parse.quote_from_bytes(os.fsencode(self.path))
        )

    @property
    def bucket(self) -> str:
        """The S3 bucket (S3 only)."""
        self._require_s3()
        return self.path.partition("/")[0]

    @property
    def key(self) -> str:
        """The S3 object key or prefix, without leading or trailing ``/`` (S3 only)."""
        self._require_s3()
        return self.path.partition("/")[2]

    @property
    def name(self) -> str:
        """Last component of the path."""
        return posixpath.basename(self.path) if self.is_s3 else os.path.basename(self.path)

    @property
    def parent(self) -> Location:
        """The folder (or prefix) that contains this location."""
        parent = posixpath.dirname(self.path) if self.is_s3 else os.path.dirname(self.path)
        return replace(self, path=parent or self.path)

    def join(self, *parts: str) -> Location:
        """A location below this one; ``parts`` are ``/``-separated relative paths."""
        clean = [p.strip("/") for p in parts if p.strip("/")]
        if any(seg in ("..", ".") for p in clean for seg in p.split("/")):
            raise DatasetIOError(f"relative path escapes {self.uri}: {'/'.join(clean)}")
        path = posixpath.join(self.path, *clean) if self.is_s3 else os.path.join(self.path, *clean)
        return replace(self, path=path)

    def relative_to(self, root: Location) -> str:
        """The ``/``-separated path of this location below ``root``."""
        if self.path == root.path:
            return ""
        if root.scheme != self.scheme or not self.path.startswith(root.path.rstrip("/") + "/"):
            raise DatasetIOError(f"{self.uri} is not below {root.uri}")
        return self.path[len(root.path.rstrip("/")) + 1 :].replace(os.sep, "/")

    def filesystem(self) -> pafs.FileSystem:
        """The pyarrow filesystem in which ``path`` is valid."""
        if self.is_s3:
            return _s3_filesystem(self._options())
        return pafs.LocalFileSystem()

    def s3_client(self) -> Any:
        """A boto3 S3 client built from this location's options (S3 only)."""
        self._require_s3()
        return s3_client(self._options())

    def _options(self) -> S3Options:
        return self.s3 if self.s3 is not None else S3Options.from_environment()

    def _require_s3(self) -> None:
        if not self.is_s3:
            raise DatasetIOError(f"{self.uri} is not an S3 location")

    def __str__(self) -> str:
        return self.uri


@functools.lru_cache(maxsize=16)
def _s3_filesystem(options: S3Options) -> pafs.FileSystem:
    scheme = "https"
    endpoint = options.endpoint_url
    if endpoint:
        parsed = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        scheme, endpoint = parsed.scheme, parsed.netloc
    return pafs.S3FileSystem(
        access_key=options.access_key,
        secret_key=options.secret_key,
        session_token=options.session_token,
        region=options.region,
        endpoint_override=endpoint,
        scheme=scheme,
    )


@functools.lru_cache(maxsize=16)
def s3_client(options: S3Options) -> Any:
    """A boto3 S3 client for ``options`` (cached: clients are thread-safe and costly to build)."""
    boto3 = _import_boto3()
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=options.access_key,
        aws_secret_access_key=options.secret_key,
        aws_session_token=options.session_token,
        region_name=options.region,
    )
    # Custom endpoints (MinIO, moto, on-prem gateways) rarely resolve virtual-host bucket names.
    s3_config = {"addressing_style": "path"} if options.endpoint_url else None
    config = Config(retries={"max_attempts": 5, "mode": "standard"}, s3=s3_config)
    return session.client("s3", endpoint_url=options.endpoint_url, config=config)


def local_etag(path: str) -> str | None:
    """A version token of a local file (inode, mtime, size), or None when it does not exist."""
    try:
        return stat_etag(os.stat(path))
    except FileNotFoundError:
        return None


def stat_etag(st: os.stat_result) -> str:
    """The version token of a local file from its ``stat``: a rename or rewrite changes inode or mtime."""
    return f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"


def same_etag(a: str | None, b: str | None) -> bool:
    """Compare version tokens, ignoring the quotes S3 puts around ETags."""
    return a is not None and b is not None and a.strip('"') == b.strip('"')


def s3_error(exc: Exception, uri: str, action: str) -> DatasetIOError:
    """Translate a botocore error into our error type; a failed precondition is a concurrent change."""
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", type(exc).__name__))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
        return ConcurrentModificationError(f"{uri} changed since it was read; it was not {action}")
    return DatasetIOError(f"{uri} could not be {action}: S3 error {code}")


def s3_head(location: Location) -> dict[str, Any] | None:
    """The ``HeadObject`` answer for an S3 object, or None when it does not exist."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        head: dict[str, Any] = location.s3_client().head_object(Bucket=location.bucket, Key=location.key)
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return None
        raise s3_error(exc, location.uri, "inspected") from exc
    except BotoCoreError as exc:
        raise s3_error(exc, location.uri, "inspected") from exc
    return head


def current_etag(location: Location) -> str | None:
    """The version token of a file as it is now (S3 ETag or local token), or None when it does not exist."""
    if not location.is_s3:
        return local_etag(location.path)
    head = s3_head(location)
    return None if head is None else str(head["ETag"])


@dataclass(frozen=True)
class Input:
    """An open file: its byte stream, the version token of what is read, and its SSE-KMS key (S3)."""

    stream: _InputStream
    etag: str | None
    sse_kms_key_id: str | None


class _InputStream:
    """Reads of an open file; a failure becomes a ``DatasetIOError`` that names the file."""

    def __init__(self, raw: Any, uri: str) -> None:
        self._raw = raw
        self._uri = uri

    def read(self, size: int = -1, /) -> bytes:
        try:
            return bytes(self._raw.read(size))
        except AisecError:
            raise
        except Exception as exc:  # OSError locally; botocore and urllib3 errors on S3
            raise DatasetIOError(f"cannot read {self._uri}: {str(exc) or type(exc).__name__}") from exc

    def readinto(self, buffer: memoryview, /) -> int:
        if not hasattr(self._raw, "readinto"):
            data = self.read(len(buffer))
            buffer[: len(data)] = data
            return len(data)
        try:
            return int(self._raw.readinto(buffer) or 0)
        except AisecError:
            raise
        except Exception as exc:
            raise DatasetIOError(f"cannot read {self._uri}: {str(exc) or type(exc).__name__}") from exc


@contextlib.contextmanager
def open_input(location: Location) -> Iterator[Input]:
    """Open the file ``location`` for streaming its bytes, with the version token of exactly what is read.

    The token lets a later replace check that nobody changed the file since (``Publication.expected_etag``).
    A missing file is a ``DatasetIOError`` saying so; read errors name the file.
    """
    if location.is_s3:
        with _open_s3_input(location) as opened:
            yield opened
        return
    try:
        handle = open(location.path, "rb")  # noqa: SIM115 - closed by the with block below
    except FileNotFoundError:
        raise DatasetIOError(f"{location.uri} does not exist") from None
    except OSError as exc:
        raise DatasetIOError(f"cannot read {location.uri}: {exc.strerror}") from exc
    with handle:
        # The version token of the very file opened, not of whatever the name points to a moment later.
        yield Input(_InputStream(handle, location.uri), stat_etag(os.fstat(handle.fileno())), None)


@contextlib.contextmanager
def _open_s3_input(location: Location) -> Iterator[Input]:
    from botocore.exceptions import BotoCoreError, ClientError

    if not location.key:
        raise DatasetIOError(f"{location.uri} names a bucket, not a file")
    try:
        response = location.s3_client().get_object(Bucket=location.bucket, Key=location.key)
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            raise DatasetIOError(f"{location.uri} does not exist") from None
        raise s3_error(exc, location.uri, "read") from exc
    except BotoCoreError as exc:
        raise s3_error(exc, location.uri, "read") from exc
    body = response["Body"]
    kms = response.get("SSEKMSKeyId") if response.get("ServerSideEncryption") == "aws:kms" else None
    try:
        # The ETag of the object version being streamed, for a conditional replace of exactly that version.
        yield Input(_InputStream(body, location.uri), str(response["ETag"]), kms)
    finally:
        body.close()
