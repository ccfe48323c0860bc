"""Turn a step's lineage into OpenLineage datasets with column-lineage facets (masking flagged) and tags
saying where personal data is: ``pii=true|false`` on the dataset, ``pii.entity``, ``pii.masked`` and
``pii.strategy`` on its columns (entity types and strategy names only, never a value).

Imported only when the OpenLineage provider asks for lineage, so the package works without it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from airflow_aisec.lineage import ColumnFlow, DatasetRef, StepLineage


def _dataset(ref: DatasetRef, flows: list[ColumnFlow] | None = None) -> Any:
    from openlineage.client.event_v2 import Dataset
    from openlineage.client.generated.column_lineage_dataset import (
        ColumnLineageDatasetFacet,
        Fields,
        InputField,
        Transformation,
    )
    from openlineage.client.generated.schema_dataset import SchemaDatasetFacet, SchemaDatasetFacetFields

    namespace, name = ref.namespace_and_name
    facets: dict[str, Any] = {}
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
                source_ns, source_name = DatasetRef(flow.source).namespace_and_name
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


def operator_lineage(lineage: StepLineage) -> Any:
    """An ``OperatorLineage`` of the step's inputs and outputs."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    flows: dict[str, list[ColumnFlow]] = defaultdict(list)
    for flow in lineage.columns:
        flows[flow.output].append(flow)
    return OperatorLineage(
        inputs=[_dataset(ref) for ref in lineage.inputs],
        outputs=[_dataset(ref, flows.get(ref.uri)) for ref in lineage.outputs],
    )
