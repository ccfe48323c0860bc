"""Data-subject erasure request, triggered from the Airflow UI, the REST API or `aisec dsr submit`.

The trigger form validates the request against a JSON schema. After a human approval (unless
`[aisec] dsr_approval` is False), one mapped task per dataset carries the request out (a dataset holding
the subject in more files than `build_dsr_dag`'s limits is split into parts, one mapped task each), and
`complete` merges the parts, verifies by re-reading the data and issues a certificate signed with the audit
log's key.
"""

from __future__ import annotations

from airflow_aisec.operators.dsr_dag import build_dsr_dag

dag = build_dsr_dag("erasure")
