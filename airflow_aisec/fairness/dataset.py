"""A bias check of a catalog dataset: its protected attributes, how their groups may be shown, one pass.

Which columns are protected attributes is the catalog's (``protected: true``); how a group is named depends
on what the catalog says of the column: a column not declared as personal data (``gender: {protected:
true}``) shows its values as group labels, one declared with ``pii`` (a special category such as
ethnicity, say) shows each group as a keyed pseudonym (``group-3f9a0c1b2d4e``), the same one on every run,
which only the holder of the pseudonym key can link back to a value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from airflow_aisec.exceptions import FairnessError
from airflow_aisec.fairness.counts import DEFAULT_MAX_GROUPS, BiasCounter
from airflow_aisec.fairness.metrics import BiasThresholds, evaluate
from airflow_aisec.fairness.report import BiasReport

if TYPE_CHECKING:
    import pyarrow as pa

    from airflow_aisec.catalog import Catalog, Dataset
    from airflow_aisec.crypto.datasets import DatasetReader
    from airflow_aisec.crypto.keysource import KeySource
    from airflow_aisec.io import FileInfo, S3Options

log = logging.getLogger(__name__)

PSEUDONYM_CHARS = 12
"""Hex digits of a group's keyed pseudonym shown as its label: enough to tell a few groups apart."""


def protected_attributes(spec: Dataset, requested: str | Sequence[str] | None = None) -> list[str]:
    """The attributes to check: ``requested``, else every column the catalog declares ``protected``.

    A requested attribute must be a column the catalog declares (so it is known whether it is personal
    data); none requested and none declared is a ``FairnessError`` saying how to declare one.
    """
    if requested is None:
        if not spec.protected_attributes:
            raise FairnessError(
                f"dataset {spec.name}: the catalog declares no protected attribute (add protected: true to "
                "a column, or name the attribute to check)"
            )
        return list(spec.protected_attributes)
    names = [requested] if isinstance(requested, str) else list(requested)
    unknown = [name for name in names if name not in spec.columns]
    if unknown or not names:
        raise FairnessError(
            f"dataset {spec.name}: protected attribute {', '.join(unknown) or '(none)'} is not a column the "
            "catalog declares (declare it, with its pii if it holds personal data)"
        )
    return names


def shows_values(spec: Dataset, attribute: str) -> bool:
    """Whether groups of ``attribute`` may be shown by value: the catalog does not declare it personal."""
    column = spec.columns.get(attribute)
    return column is not None and column.pii is None


def group_labeller(
    spec: Dataset, attribute: str, pseudonym: Callable[[str], str] | None
) -> Callable[[str], str]:
    """How the groups of ``attribute`` are named in results: their values, or keyed pseudonyms."""
    if shows_values(spec, attribute):
        return str
    if pseudonym is None:
        raise FairnessError(
            f"dataset {spec.name}: protected attribute {attribute} is declared as personal data, so its "
            "groups are shown as keyed pseudonyms, and no pseudonym key was given"
        )

    def label(value: str) -> str:
        return "group-" + pseudonym(value).rpartition(":")[2][:PSEUDONYM_CHARS]

    return label


def check_dataset(
    catalog: Catalog,
    dataset: str,
    prediction: str,
    *,
    label: str | None = None,
    attributes: str | Sequence[str] | None = None,
    positive_label: object = 1,
    thresholds: BiasThresholds | None = None,
    pseudonym: Callable[[str], str] | None = None,
    keys: KeySource | None = None,
    input_uri: str | None = None,
    s3: S3Options | None = None,
    max_groups: int = DEFAULT_MAX_GROUPS,
) -> BiasReport:
    """Check ``dataset``'s predictions for bias across its protected attributes, in one pass over its files.

    :param label: column of the true outcome; without it only selection-rate metrics are measured.
    :param attributes: the attributes to compare groups of; default those the catalog declares.
    :param pseudonym: the keyed pseudonym of a value (the audit log's), to label groups of personal data.
    :param keys: the catalog's keys, to read encrypted files; default the local keyring and boto3's KMS chain.
    :param input_uri: where the data is, when not at the dataset's ``uri`` (it is read unencrypted).
    """
    spec = _spec(catalog, dataset)
    names = protected_attributes(spec, attributes)
    labels = {name: group_labeller(spec, name, pseudonym) for name in names}
    thresholds = thresholds or BiasThresholds()
    uri = input_uri or spec.uri
    counter = BiasCounter(
        prediction, names, label=label, positive_label=positive_label, max_groups=max_groups,
        where=f"dataset {spec.name}",
    )  # fmt: skip
    files = _files(spec, input_uri, s3)
    reader = _reader(catalog, spec, keys, input_uri, s3)
    counter.add_all(_batches(reader, files, spec, counter.columns))
    reports = [evaluate(counter.counts[name], thresholds, labels[name]) for name in names]
    return BiasReport(
        spec.name, uri, len(files), counter.rows, prediction, label, positive_label, thresholds, reports
    )


def _spec(catalog: Catalog, dataset: str) -> Dataset:
    try:
        return catalog.dataset(dataset)
    except KeyError as e:
        raise FairnessError(str(e.args[0])) from None


def _files(spec: Dataset, input_uri: str | None, s3: S3Options | None) -> list[FileInfo]:
    from airflow_aisec.catalog.lake import dataset_files
    from airflow_aisec.io import Location, list_dataset_files

    if input_uri is None:
        return dataset_files(spec, s3)
    return list_dataset_files(Location.parse(input_uri, s3), spec.format, dataset=spec.name)


def _reader(
    catalog: Catalog, spec: Dataset, keys: KeySource | None, input_uri: str | None, s3: S3Options | None
) -> DatasetReader:
    from airflow_aisec.crypto.datasets import DatasetReader, reader_for
    from airflow_aisec.crypto.keysource import KeySource

    if spec.encryption is None or input_uri is not None:
        return DatasetReader(None)
    return reader_for(keys if keys is not None else KeySource(catalog, s3=s3), spec)


def _batches(
    reader: DatasetReader, files: list[FileInfo], spec: Dataset, columns: list[str]
) -> Iterator[pa.RecordBatch]:
    for number, info in enumerate(files, 1):
        log.info("dataset %s: bias check reading file %d of %d", spec.name, number, len(files))
        yield from reader(info, spec.format, columns)
