"""Data of the bias-check tests: random predictions per group, and a catalog with protected attributes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# Values of the personal-data attribute: distinctive, so a test can prove none of them is ever shown.
ETHNICITIES = ["zq-ethnic-alpha", "zq-ethnic-beta", "zq-ethnic-gamma"]

CATALOG = """\
version: 1
subjects: {identities: [customer_id]}
keys:
  aisec-pseudonyms: {provider: local}
  bias-columns: {provider: local}
datasets:
  scores:
    uri: "{lake}/scores"
    format: parquet
    identity: {customer_id: customer_id}
    columns:
      customer_id: {}
      gender: {protected: true}
      ethnicity: {pii: ETHNICITY, special_category: ethnicity, protected: true}
      approved: {}
      repaid: {}
    encryption: {key: bias-columns, columns: [ethnicity]}
  unprotected:
    uri: "{lake}/scores"
    format: parquet
    columns:
      customer_id: {}
      gender: {}
      approved: {}
"""


def random_scores(
    seed: int, rows: int, groups: list[str], rates: list[float], weights: list[float] | None = None
) -> dict[str, np.ndarray]:
    """Rows of ``groups`` (drawn with ``weights``), labels at random, predictions selected at the group's
    rate: ``group``, ``label``, ``prediction`` as arrays."""
    rng = np.random.default_rng(seed)
    index = rng.choice(len(groups), size=rows, p=weights)
    label = rng.integers(0, 2, size=rows)
    prediction = (rng.random(rows) < np.asarray(rates)[index]).astype(np.int64)
    return {"group": np.asarray(groups)[index], "label": label, "prediction": prediction}


def biased_table(rows: int = 600, seed: int = 7) -> pa.Table:
    """Scores where women are approved at about half the rate of men, and ethnicity does not matter."""
    data = random_scores(seed, rows, ["F", "M"], [0.3, 0.6])
    rng = np.random.default_rng(seed + 1)
    return pa.table(
        {
            "customer_id": [f"c{i}" for i in range(rows)],
            "gender": data["group"].tolist(),
            "ethnicity": [ETHNICITIES[i] for i in rng.integers(0, 3, size=rows)],
            "approved": data["prediction"],
            "repaid": data["label"],
        }
    )


def write_lake(root: Path, table: pa.Table, files: int = 3) -> Path:
    """``table`` split over ``files`` Parquet files under ``root/scores``; the catalog beside it."""
    folder = root / "scores"
    folder.mkdir(parents=True)
    step = -(-table.num_rows // files)
    for i in range(files):
        pq.write_table(table.slice(i * step, step), folder / f"part-{i}.parquet", row_group_size=64)
    catalog = root / "catalog.yaml"
    catalog.write_text(CATALOG)
    return catalog
