"""Data-subject requests: access, erasure and rectification across every dataset of the catalog.

Core library (no Airflow import): ``make_request`` checks a request against the catalog, ``run_request``
carries it out and returns a signed certificate, ``verify_certificate`` checks one against the audit log.
The DAGs ``aisec_dsr_access``, ``aisec_dsr_erasure`` and ``aisec_dsr_rectification`` run the same steps
(``begin``, ``carry_out`` per dataset or per part of a large one, ``complete``) as Airflow tasks.
"""

from airflow_aisec.dsr.certificate import CertificateReport, verify_certificate
from airflow_aisec.dsr.context import DatasetOutcome, DsrContext
from airflow_aisec.dsr.identifiers import Identifiers
from airflow_aisec.dsr.request import REQUEST_TYPES, DsrRequest, make_request, parse_identity
from airflow_aisec.dsr.resolve import Resolution, Resolver, resolve
from airflow_aisec.dsr.run import active_holds, begin, carry_out, complete, run_request
from airflow_aisec.dsr.state import StateStore

__all__ = [
    "REQUEST_TYPES",
    "CertificateReport",
    "DatasetOutcome",
    "DsrContext",
    "DsrRequest",
    "Identifiers",
    "Resolution",
    "Resolver",
    "StateStore",
    "active_holds",
    "begin",
    "carry_out",
    "complete",
    "make_request",
    "parse_identity",
    "resolve",
    "run_request",
    "verify_certificate",
]
