"""Turn a step's lineage into OpenLineage datasets with column-lineage facets (masking flagged) and tags
saying where personal data is: ``pii=true|false`` on the dataset, ``pii.entity``, ``pii.masked`` and
``pii.strategy`` on its columns (entity types and strategy names only, never a value).

Imported only when the OpenLineage provider asks for lineage, so the package works without it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from airflow_aisec.lineage import CATALOG_NAMESPACE, ColumnFlow, DatasetRef, StepLineage, openlineage_name


def _dataset(
    ref: DatasetRef, flows: list[ColumnFlow] | None = None, names: dict[str, tuple[str, str]] | None = None
) -> Any:
    from openlineage.client.event_v2 import Dataset
    from openlineage.client.generated.column_lineage_dataset import (
        ColumnLineageDatasetFacet,
        Fields,
        InputField,
        Transformation,
    )
    from openlineage.client.generated.schema_dataset import SchemaDatasetFacet, SchemaDatasetFacetFields
    from openlineage.client.generated.symlinks_dataset import Identifier, SymlinksDatasetFacet

    namespace, name = ref.namespace_and_name
    names = names or {}
    facets: dict[str, Any] = {}
    if ref.dataset:
        facets["symlinks"] = SymlinksDatasetFacet(
            identifiers=[Identifier(namespace=CATALOG_NAMESPACE, name=ref.dataset, type="DATASET")]
        )
    if ref.columns:
        facets["schema"] = SchemaDatasetFacet(fields=[SchemaDatasetFacetFields(name=c) for c in ref.columns])
    if flows:
        by_column: dict[str, list[ColumnFlow]] = defaultdict(list)
        for flow in flows:
            by_column[flow.column].append(flow)
        fields = {}
        for column, sources in by_column.items():
            inputs = []
            for flow in sources:
                source_ns, source_name = names.get(flow.source) or openlineage_name(flow.source)
                kind = Transformation(
                    type="DIRECT",
                    subtype="TRANSFORMATION" if flow.masking else "IDENTITY",
                    description=flow.description or None,
                    masking=flow.masking,
                )
                inputs.append(InputField(source_ns, source_name, flow.source_column, transformations=[kind]))
            masked = any(flow.masking for flow in sources)
            fields[column] = Fields(inputFields=inputs, transformationType="MASKED" if masked else "IDENTITY")
        facets["columnLineage"] = ColumnLineageDatasetFacet(fields=fields)
    if ref.classification is not None:
        facets["tags"] = _tags(ref)
    return Dataset(namespace=namespace, name=name, facets=facets)


TAG_SOURCE = "airflow-aisec"


def _tags(ref: DatasetRef) -> Any:
    """The tags facet of a classified dataset: one dataset tag, then the tags of each PII column."""
    from openlineage.client.generated.tags_dataset import TagsDatasetFacet, TagsDatasetFacetFields

    tags = [TagsDatasetFacetFields("pii", "true" if ref.holds_pii else "false", TAG_SOURCE)]
    for column in ref.classification or ():
        tags += [
            TagsDatasetFacetFields(key, value, TAG_SOURCE, field=column.column)
            for key, value in column.tags()
        ]
    return TagsDatasetFacet(tags=tags)


def _one_per_dataset(refs: list[DatasetRef]) -> dict[tuple[str, str], DatasetRef]:
    """The first ref of each dataset: the files of one dataset are one OpenLineage dataset, named as the
    audit log's export names it."""
    found: dict[tuple[str, str], DatasetRef] = {}
    for ref in refs:
        found.setdefault(ref.namespace_and_name, ref)
    return found


def operator_lineage(lineage: StepLineage) -> Any:
    """An ``OperatorLineage`` of the step's inputs and outputs, one dataset each however many files."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    names = {ref.uri: ref.namespace_and_name for ref in [*lineage.inputs, *lineage.outputs]}
    flows: dict[tuple[str, str], dict[tuple[str, str, str], ColumnFlow]] = defaultdict(dict)
    for flow in lineage.columns:
        output = names.get(flow.output) or openlineage_name(flow.output)
        source = names.get(flow.source) or openlineage_name(flow.source)
        flows[output].setdefault((flow.column, *source), flow)  # one input field per source dataset
    return OperatorLineage(
        inputs=[_dataset(ref, names=names) for ref in _one_per_dataset(lineage.inputs).values()],
        outputs=[
            _dataset(ref, list(flows.get(key, {}).values()), names)
            for key, ref in _one_per_dataset(lineage.outputs).items()
        ],
    )
