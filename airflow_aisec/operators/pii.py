"""``PIIScanOperator`` and ``PIIMaskOperator``: find personal data in a dataset, and mask it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec import config
from airflow_aisec.exceptions import PIIError
from airflow_aisec.operators.base import AisecCatalogOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_aisec.catalog import Catalog, Dataset


class _CatalogDatasetOperator(AisecCatalogOperator):
    """Shared arguments: a catalog dataset, where its data is, and the detection engine."""

    def __init__(
        self,
        *,
        dataset: str,
        input_uri: str | None = None,
        catalog: str | None = None,
        variables: dict[str, str] | None = None,
        mode: str = "ner",
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(catalog=catalog, variables=variables, aws_conn_id=aws_conn_id, **kwargs)
        self.dataset = dataset
        self.input_uri = input_uri
        self.mode = mode

    def _catalog_dataset(self) -> tuple[Catalog, Dataset]:
        catalog = self._load_catalog()
        try:
            return catalog, catalog.dataset(self.dataset)
        except KeyError as e:
            raise PIIError(str(e.args[0])) from None

    def _reader(self, catalog: Catalog, spec: Dataset) -> Any:
        """Decrypts the dataset's files when the catalog says they are encrypted (not a landing copy)."""
        if spec.encryption is None or self.input_uri:
            return None
        from airflow_aisec.crypto.datasets import reader_for

        return reader_for(self._catalog_keys(catalog), spec)

    def _engine(self, catalog: Catalog | None) -> Any:
        from airflow_aisec.pii.engine import get_engine
        from airflow_aisec.pii.pipeline import recognizer_specs

        if self.mode not in ("ner", "patterns"):
            raise PIIError(f"unknown mode {self.mode!r}: use ner or patterns")
        return get_engine(self.mode, recognizers=recognizer_specs(catalog))  # type: ignore[arg-type]


class PIIScanOperator(_CatalogDatasetOperator):
    """
    Classify every column of a dataset from its name and a sample of its values drawn across all files,
    and compare with what the catalog declares: new PII (schema drift) fails the task when asked to.

    Returns ``{"columns": {...}, "undeclared": [...]}`` (column names and entity types only, no values).

    :param dataset: Catalog dataset to scan. (templated)
    :param input_uri: Where the data to scan is, when not at the dataset's ``uri`` (e.g. a landing
        folder). (templated)
    :param catalog: Catalog file; default ``[aisec] catalog``. (templated)
    :param variables: Catalog placeholder values. (templated)
    :param sample: Values sampled per column.
    :param fail_on_undeclared: Fail when PII is found that the catalog does not declare.
    :param mode: ``ner`` (spaCy model ``[aisec] spacy_model`` + patterns) or ``patterns``.
    :param aws_conn_id: Airflow AWS connection for ``s3://`` data.
    """

    template_fields: Sequence[str] = ("dataset", "input_uri", "catalog", "variables")
    ui_color = "#fde9ef"
    filters_by_consent = True

    def __init__(self, *, sample: int = 500, fail_on_undeclared: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sample = sample
        self.fail_on_undeclared = fail_on_undeclared

    def execute(self, context: Context) -> dict[str, Any]:
        """Scan; raise ``PIIError`` naming undeclared PII columns when ``fail_on_undeclared``."""
        from airflow_aisec.io import guess_format
        from airflow_aisec.lineage import DatasetRef, classify
        from airflow_aisec.pii.pipeline import scan_entry
        from airflow_aisec.pii.scan import as_json, scan_dataset, undeclared

        catalog, spec = self._catalog_dataset()
        self._check_purpose(context, catalog, spec.name)
        location = self._location(self.input_uri or spec.uri)
        findings = scan_dataset(
            location,
            guess_format(location, spec.format),
            self._engine(catalog),
            sample=self.sample,
            reader=self._consent_reader(context, self._reader(catalog, spec)),
        )
        drift = undeclared(findings, spec)
        # A column reviewed as not personal (pii: none) is not tagged as PII, whatever the scan matched.
        reviewed = set(spec.reviewed_columns)
        entities = {name: f.entity for name, f in findings.items() if f.entity and name not in reviewed}
        name = self._dataset_at(catalog, location.uri) or spec.name
        self.lineage.inputs = [
            DatasetRef(
                location.uri, name, columns=tuple(findings), classification=classify(entities),
                location=location.uri,
            )
        ]  # fmt: skip
        fields = scan_entry(spec.name, location.uri, findings, drift)
        self.record(context, "pii.scan", **{**fields, **self.lineage.entry_fields()})
        for finding in findings.values():
            self.log.info("%s: %s (confidence %.2f)", finding.column, finding.entity, finding.confidence)
        result = {**as_json(findings), "undeclared": [f.column for f in drift]}
        if drift and self.fail_on_undeclared:
            raise PIIError(
                f"dataset {spec.name}: PII not declared in the catalog in column(s) "
                f"{', '.join(f'{f.column} ({f.entity})' for f in drift)}"
            )
        return result


class PIIMaskOperator(_CatalogDatasetOperator):
    """
    Mask a dataset's PII columns with the catalog's ``mask:`` strategies (or each entity's default) and
    write the result to ``output_uri``, file by file, atomically. Free-text columns keep their text with the
    entities found replaced by tags. The audit entry records columns, counts per entity and file digests;
    lineage flags the masked columns.

    Data no catalog describes yet is masked too: leave out ``dataset``, give ``input_uri`` and either column
    rules (``columns={"email": "pseudonymize"}``) or nothing, to mask every column a scan finds. Pseudonyms
    are keyed with ``aisec-pseudonyms`` (the catalog's default ``subjects.pseudonym_key``).

    :param dataset: Catalog dataset to mask; None for data without a catalog dataset. (templated)
    :param output_uri: Folder (or ``s3://`` prefix) to write the masked files to. (templated)
    :param input_uri: Where the data is, when not at the dataset's ``uri`` (required without ``dataset``).
        (templated)
    :param columns: Without ``dataset``: column → strategy name, or a mapping of ``strategy`` and its
        options; default: what a scan finds. (templated)
    :param output_name: Name of the masked dataset in lineage; default ``<dataset>_masked`` (none without a
        dataset: lineage names the files).
    :param keyring: Local keyring for pseudonymize/encrypt keys; default ``[aisec] keyring``.
    :param files: One group of the dataset's files from ``ListFileGroupsOperator`` (fan-out): only those
        files are masked, into the run's staging folder below ``output_uri``, and the task returns what it
        staged for ``MaskCombineOperator``, which commits and records the step. (templated)
    """

    template_fields: Sequence[str] = (
        "dataset", "input_uri", "output_uri", "catalog", "variables", "columns", "files",
    )  # fmt: skip
    ui_color = "#fde9ef"

    def __init__(
        self,
        *,
        output_uri: str,
        dataset: str | None = None,
        columns: dict[str, Any] | None = None,
        output_name: str | None = None,
        keyring: str | None = None,
        files: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset=dataset or "", **kwargs)
        self.output_uri = output_uri
        self.columns = columns
        self.output_name = output_name
        self.keyring = keyring
        self.files = files

    def execute(self, context: Context) -> dict[str, Any]:
        """Mask; return files, rows and counts per column (no values)."""
        from airflow_aisec.crypto.keyring import LocalKeyring

        keyring = LocalKeyring(config.get_setting("keyring", self.keyring))
        if not self.dataset:
            return self._mask_without_catalog(context, keyring)
        if self.columns is not None:
            raise PIIError(
                f"dataset {self.dataset}: the catalog's mask rules apply; columns= is for data without one"
            )
        from airflow_aisec.pii.mask import Masker, plan_from_catalog
        from airflow_aisec.pii.pipeline import mask_dataset

        catalog, spec = self._catalog_dataset()
        plans = plan_from_catalog(spec, catalog.subjects.pseudonym_key)
        if not plans:
            raise PIIError(f"dataset {spec.name} declares no PII column to mask")
        self._check_purpose(context, catalog, spec.name)
        engine = self._engine(catalog)
        masker = Masker(plans, keyring, find_spans=engine.find_spans)
        source, target = self._location(self.input_uri or spec.uri), self._location(self.output_uri)
        if self.files is not None:
            return self._mask_group(source, target, masker, spec.format)
        result = mask_dataset(source, target, masker, fmt=spec.format)
        names = (self._dataset_at(catalog, source.uri), self._dataset_at(catalog, target.uri))
        output = self.output_name or names[1] or f"{spec.name}_masked"
        return self._report(context, spec.name, output, result, plans, (names[0], source.uri, target.uri))

    def _mask_without_catalog(self, context: Context, keyring: Any) -> dict[str, Any]:
        """Mask ``input_uri`` by the column rules, or by what a scan of it finds."""
        from airflow_aisec.io import guess_format
        from airflow_aisec.pii.mask import Masker, plan_from_findings, plan_from_rules
        from airflow_aisec.pii.pipeline import mask_dataset
        from airflow_aisec.pii.scan import scan_dataset
        from airflow_aisec.pii.types import FREE_TEXT

        if not self.input_uri:
            raise PIIError(
                f"task {self.task_id}: without a catalog dataset, input_uri names the data to mask"
            )
        if self.catalog is not None:
            raise PIIError(f"task {self.task_id}: catalog= needs dataset=, the dataset whose rules apply")
        if self.files is not None and self.columns is None:
            raise PIIError(
                f"task {self.task_id}: a group of files is masked by the catalog's rules or columns=, not by "
                "a scan of the group (each group would find other columns)"
            )
        source, target = self._location(self.input_uri), self._location(self.output_uri)
        fmt = guess_format(source)
        engine = None
        if self.columns is not None:
            plans = plan_from_rules(self.columns)
        else:
            engine = self._engine(None)
            plans = plan_from_findings(scan_dataset(source, fmt, engine))
        if not plans:
            raise PIIError(f"{source.uri}: no PII column to mask (name them in columns=, or check the scan)")
        if engine is None and any(p.strategy == FREE_TEXT for p in plans):
            engine = self._engine(None)
        masker = Masker(plans, keyring, find_spans=engine.find_spans if engine is not None else None)
        if self.files is not None:
            return self._mask_group(source, target, masker, fmt)
        result = mask_dataset(source, target, masker, fmt=fmt)
        return self._report(context, None, self.output_name, result, plans, (None, source.uri, target.uri))

    def _mask_group(self, source: Any, target: Any, masker: Any, fmt: str) -> dict[str, Any]:
        """Mask one group of files into the staging folder; nothing is recorded until the step commits."""
        from airflow_aisec.io.groups import group_members, staging_root
        from airflow_aisec.pii.pipeline import mask_dataset

        group = dict(self.files or {})
        members = group_members(group, source.s3, root=source, fmt=fmt)
        result = mask_dataset(source, target, masker, fmt=fmt, part=(members, staging_root(target, group)))
        self.log.info(
            "group %s: masked %d rows in %d files (staged)", group.get("group"), result.rows, len(members)
        )
        return result.as_group(group)

    def _report(
        self,
        context: Context,
        name: str | None,
        output_name: str | None,
        result: Any,
        plans: list[Any],
        where: tuple[str | None, str, str],
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record the masking; ``where``: the input's catalog dataset (None: ``name``), input and output
        locations, so lineage names each side as one dataset; ``details`` added to the entry's."""
        from airflow_aisec.pii.pipeline import mask_entry

        self.lineage, fields = mask_entry(name, output_name, result, plans)
        fields["details"].update(details or {})
        source_name, source, target = where
        self.lineage.locate(inputs=(source_name, source), outputs=(output_name, target))
        fields.update(self.lineage.entry_fields())
        self.record(context, "pii.mask", **fields)
        self.log.info("masked %d rows in %d files: %s", result.rows, len(result.files), fields["details"])
        return {"rows": result.rows, "files": [f.target for f in result.files], "masked": result.counts}
