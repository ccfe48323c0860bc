"""What the Privacy pages of the Airflow UI show, built from the audit log, the catalog and the DSR state.

Core library (no Airflow import): each module turns what the log and the catalog hold into plain view
models for one page: entries and their proofs (``entries``), the last verification and "verify now"
(``integrity``), the lineage graph and its layout (``lineage``, ``layout``), data-subject requests and their
certificates (``requests``), retention runs and holds (``retention``), and a dataset's classification
(``classification``). The plugin in ``airflow_aisec.plugins.ui`` renders them; nothing here renders HTML.
No view model holds a raw subject identifier: subjects appear only as their keyed pseudonyms.
"""

from __future__ import annotations

from airflow_aisec.review.entries import ReviewInputError

__all__ = ["ReviewInputError"]
