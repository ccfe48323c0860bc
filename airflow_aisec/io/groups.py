"""Fan-out by file: a dataset's files split into groups that separate tasks process, then one commit.

A listing (``plan_groups``) turns the files of a dataset into groups of whole files, contiguous in path order,
as plain dicts (URIs, sizes, versions; never data) that Airflow's dynamic task mapping hands one to each task.
Every group carries the digest of the whole listing (``listing``), so the step that combines them can tell
that all groups come from one version of the input, and a ``staging`` folder below the output, hidden from
the dataset (its name starts with ``_``), where the groups write their files. The combine step promotes the
staged files into place (``airflow_aisec.io.promote``) only once every group succeeded.

Grouping: a group is closed when it would pass ``max_files_per_task`` files or ``target_bytes_per_task``
bytes (a file larger than the target is a group of its own); when that makes more than ``max_groups``
groups, files are spread over exactly ``max_groups`` groups of about equal bytes. A dataset within the
limits is one group.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Container, Mapping, Sequence
from typing import Any, Final

from airflow_aisec.exceptions import ConcurrentModificationError, DatasetIOError, FanOutError
from airflow_aisec.io.dataset import FileInfo, is_hidden, stat_file
from airflow_aisec.io.formats import EXTENSIONS
from airflow_aisec.io.storage import Location, S3Options, same_etag

STAGING_FOLDER: Final = "_aisec-staging"
DEFAULT_TARGET_BYTES: Final = 256 << 20
DEFAULT_MAX_FILES: Final = 64
DEFAULT_MAX_GROUPS: Final = 32


def group_files(
    files: Sequence[FileInfo],
    *,
    max_files_per_task: int | None = DEFAULT_MAX_FILES,
    target_bytes_per_task: int | None = DEFAULT_TARGET_BYTES,
    max_groups: int | None = DEFAULT_MAX_GROUPS,
) -> list[list[FileInfo]]:
    """Split ``files`` (in the order given) into contiguous groups within the limits (None: no limit)."""
    for name, value in (
        ("max_files_per_task", max_files_per_task),
        ("target_bytes_per_task", target_bytes_per_task),
        ("max_groups", max_groups),
    ):
        if value is not None and value < 1:
            raise FanOutError(f"{name} must be at least 1, not {value}")
    groups: list[list[FileInfo]] = []
    size = 0
    for info in files:
        full = groups and (
            (max_files_per_task is not None and len(groups[-1]) >= max_files_per_task)
            or (target_bytes_per_task is not None and size + info.size > target_bytes_per_task)
        )
        if not groups or full:
            groups.append([])
            size = 0
        groups[-1].append(info)
        size += info.size
    if max_groups is not None and len(groups) > max_groups:
        return _spread(files, max_groups)
    return groups


def part_owns(uri: str, index: int, files: Container[str], others: Container[str]) -> bool:
    """Whether part ``index`` of a step that changes files in place owns ``uri``: its own ``files``; part 0
    also every file in no part (not in ``others``, the other parts' files: one the listing did not give out,
    since changed or new). So every file, and every open intent on it, has exactly one owner."""
    return uri in files or (index == 0 and uri not in others)


def _spread(files: Sequence[FileInfo], count: int) -> list[list[FileInfo]]:
    """``files`` over ``count`` contiguous groups of about equal bytes: each file goes to the group its
    middle byte falls in (an empty file weighs one byte, so many empty files still spread)."""
    weights = [max(info.size, 1) for info in files]
    total = sum(weights)
    groups: list[list[FileInfo]] = [[] for _ in range(count)]
    before = 0
    for info, weight in zip(files, weights, strict=True):
        index = min(count - 1, math.floor((before + weight / 2) * count / total))
        groups[index].append(info)
        before += weight
    return [group for group in groups if group]


def listing_digest(files: Sequence[FileInfo]) -> str:
    """The digest of a listing: every file's URI, size and version, in order."""
    listed = [[f.uri, f.size, f.etag] for f in files]
    return hashlib.sha256(json.dumps(listed, separators=(",", ":")).encode()).hexdigest()


def plan_groups(
    files: Sequence[FileInfo],
    root: Location,
    fmt: str,
    *,
    run: str,
    max_files_per_task: int | None = DEFAULT_MAX_FILES,
    target_bytes_per_task: int | None = DEFAULT_TARGET_BYTES,
    max_groups: int | None = DEFAULT_MAX_GROUPS,
) -> list[dict[str, Any]]:
    """The groups of ``files`` (below ``root``, of format ``fmt``) as dicts for ``.expand()``.

    ``run`` names the run (e.g. its run id): with the listing it makes the staging folder's name, so two runs
    never share staged files and a retried group of one run writes over its own.
    """
    if not files:
        raise FanOutError(f"{root.uri}: no {fmt} files to split into groups")
    digest = listing_digest(files)
    staging = hashlib.sha256(f"{run}\n{digest}".encode()).hexdigest()[:24]
    groups = group_files(
        files,
        max_files_per_task=max_files_per_task,
        target_bytes_per_task=target_bytes_per_task,
        max_groups=max_groups,
    )
    return [
        {
            "group": index,
            "groups": len(groups),
            "listing": digest,
            "staging": staging,
            "root": root.uri,
            "format": fmt,
            "bytes": sum(f.size for f in group),
            "files": [{"uri": f.uri, "size": f.size, "etag": f.etag} for f in group],
        }
        for index, group in enumerate(groups)
    ]


def member_location(listed: Mapping[str, Any], root: Location, fmt: str | None = None) -> Location:
    """Where a group's listed file is, once it is checked to be one the listing of ``root`` could give: below
    ``root`` (or ``root`` itself, a one-file dataset), not hidden (no staging, no key material), and with
    ``fmt``'s extension when ``fmt`` is a dataset format. A group is task input that travels through XCom:
    whatever it names, a task must not read, rewrite or delete a file outside its dataset."""
    location = Location.parse(str(listed["uri"]), root.s3)
    try:
        relative = location.relative_to(root)
    except DatasetIOError:
        relative = None
    ext = EXTENSIONS.get(fmt or "")
    if relative is None or is_hidden(relative) or (relative and ext and not relative.lower().endswith(ext)):
        raise FanOutError(
            f"{location.uri} is not a file of {root.uri} that its listing would give; the group is refused "
            "before any file is read or changed (list the files again)"
        )
    return location


def group_members(
    group: Mapping[str, Any],
    s3: S3Options | None = None,
    root: Location | None = None,
    fmt: str | None = None,
) -> list[FileInfo]:
    """The files of a group as they are now (each checked to be one of ``root``'s with ``member_location``
    when ``root`` is given); ``ConcurrentModificationError`` if one changed since listed."""
    found = []
    for listed in _files_of(group):
        if root is not None:
            location = member_location(listed, root, fmt)
        else:
            location = Location.parse(str(listed["uri"]), s3)
        info = stat_file(location)
        if info is None or not same_etag(info.etag, str(listed["etag"])):
            raise ConcurrentModificationError(
                f"{location.uri} changed since the files were listed; list them again (rerun the step)"
            )
        found.append(info)
    return found


def _files_of(group: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    files = group.get("files") if isinstance(group, Mapping) else None
    if not isinstance(files, list) or not all(isinstance(f, Mapping) and "uri" in f for f in files):
        raise FanOutError(
            "a file group is a dict with a list of files (uri, size, etag), as the listing gives"
        )
    return files


def staging_root(target: Location, group: Mapping[str, Any]) -> Location:
    """The hidden folder below ``target`` where the groups of one run write their files."""
    token = str(group.get("staging") or "")
    if not token.isalnum():
        raise FanOutError(f"file group for {target.uri} has no valid staging name")
    return target.join(STAGING_FOLDER, token)


def check_complete(results: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The groups' results in group order, once every group of one listing is there exactly once."""
    if not results:
        raise FanOutError("no group results to combine: the listing or every group failed")
    listings = {str(r.get("listing")) for r in results}
    if len(listings) != 1:
        raise FanOutError(f"group results come from {len(listings)} listings of the input; rerun the step")
    expected = {int(r.get("groups", -1)) for r in results}
    indexes = sorted(int(r.get("group", -1)) for r in results)
    if len(expected) != 1 or indexes != list(range(expected.pop())):
        raise FanOutError(f"group results {indexes} are not every group of the listing exactly once")
    # One run's groups: its staging folder, and each file written by one group only.
    if len({str(r.get("staging")) for r in results}) != 1:
        raise FanOutError("group results come from more than one run (their staging differs); rerun the step")
    written = [str(f.get("target")) for r in results for f in r.get("files") or [] if isinstance(f, Mapping)]
    if len(written) != len(set(written)):
        raise FanOutError("group results write a file more than once; rerun the step")
    return sorted(results, key=lambda r: int(r["group"]))
