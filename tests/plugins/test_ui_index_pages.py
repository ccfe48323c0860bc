"""The lineage and requests pages are served through the audit log's search terms, never a pass over every
entry, and show what reading every entry shows."""

from __future__ import annotations

import re
from typing import Any

import pytest
from ui_seed import REQUEST_ID, Users

from airflow_aisec.audit.store import SQLiteStore

HTML = {"accept": "text/html"}


@pytest.fixture
def no_whole_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading the entries from the first to the last (a pass over the log) fails the request."""
    original = SQLiteStore.entries

    def entries(self: SQLiteStore, start: int = 0, end: int | None = None) -> Any:
        if end is None or end - start > 1000:
            raise AssertionError("a page read the whole log")
        return original(self, start, end)

    monkeypatch.setattr(SQLiteStore, "entries", entries)


@pytest.mark.usefixtures("no_whole_log")
def test_the_lineage_and_requests_pages_read_no_pass_over_the_log(client: Any, users: Users) -> None:
    headers = {"authorization": f"Bearer {users.viewer}", **HTML}
    lineage = client.get("/aisec/lineage", headers=headers)
    assert lineage.status_code == 200 and 'class="edge masked"' in lineage.text
    assert re.search(r"\(\d+ entr(y|ies)", lineage.text)  # each flow says how many entries recorded it
    around = client.get("/aisec/lineage?dataset=support_tickets&depth=1", headers=headers)
    assert around.status_code == 200 and "support_tickets_masked" in around.text
    requests = client.get("/aisec/requests", headers=headers)
    assert requests.status_code == 200 and REQUEST_ID in requests.text
