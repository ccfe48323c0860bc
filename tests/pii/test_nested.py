"""Nested fields: paths into struct and list columns, parsed, resolved, read flat and rebuilt, and masked by
every strategy with everything around them untouched (Parquet and JSONL end to end)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_aisec.crypto.keyring import LocalKeyring
from airflow_aisec.exceptions import FieldPathError, PIIError
from airflow_aisec.io import Location, read_dataset
from airflow_aisec.io.nested import FieldPath, leaves, parse_path, resolve, with_leaves, without_field
from airflow_aisec.pii.mask import ColumnPlan, Masker
from airflow_aisec.pii.pipeline import mask_dataset
from airflow_aisec.pii.scan import scan_batches, undeclared
from airflow_aisec.pii.strategies import decrypt_values, pseudonym
from airflow_aisec.pii.types import Span

CONTACT = pa.struct([("phone", pa.string()), ("city", pa.string())])
LINE = pa.struct([("sku", pa.string()), ("contact", CONTACT)])
ORDER = pa.struct([("id", pa.int64()), ("lines", pa.list_(LINE))])
PAYLOAD = pa.struct([("ip", pa.string()), ("born", pa.date32()), ("ok", pa.bool_())])
ITEM = pa.struct([("email", pa.string()), ("qty", pa.int64())])


@pytest.fixture
def keyring(tmp_path: Path) -> LocalKeyring:
    return LocalKeyring(tmp_path / "keyring.json")


def events() -> pa.Table:
    """Nulls at every level: a null struct, a null leaf, a null list, a null element, an empty list."""
    return pa.table(
        {
            "event_id": pa.array([1, 2, 3, 4], pa.int64()),
            "payload": pa.array(
                [
                    {"ip": "10.0.0.1", "born": dt.date(1987, 6, 15), "ok": True},
                    None,
                    {"ip": None, "born": None, "ok": False},
                    {"ip": "192.168.1.20", "born": dt.date(1990, 2, 3), "ok": None},
                ],
                PAYLOAD,
            ),
            "items": pa.array(
                [
                    [{"email": "ann@example.com", "qty": 1}, None, {"email": "bo@example.org", "qty": 2}],
                    None,
                    [],
                    [{"email": None, "qty": 5}],
                ],
                pa.list_(ITEM),
            ),
            "tags": pa.array([["ann", "vip"], None, [], ["x", None]], pa.list_(pa.string())),
            "order": pa.array(
                [
                    {
                        "id": 7,
                        "lines": [{"sku": "A", "contact": {"phone": "+33 6 12 34 56 78", "city": "Lyon"}}],
                    },
                    {"id": 8, "lines": None},
                    {"id": 9, "lines": [{"sku": "B", "contact": None}, None]},
                    None,
                ],
                ORDER,
            ),
        }
    )


# -- paths ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "column", "steps"),
    [
        ("payload.ip", "payload", ("ip",)),
        ("items[].email", "items", ("[]", "email")),
        ("tags[]", "tags", ("[]",)),
        ("order.lines[].contact.phone", "order", ("lines", "[]", "contact", "phone")),
        ("matrix[][]", "matrix", ("[]", "[]")),
        ("email", "email", ()),
    ],
)
def test_a_path_parses_into_its_column_and_steps_and_prints_back(
    text: str, column: str, steps: tuple[str, ...]
) -> None:
    path = parse_path(text)
    assert path == FieldPath(column, steps)
    assert str(path) == text
    assert path.is_nested == bool(steps)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("payload..ip", "part 2 is empty"),
        (".ip", "the column name is empty"),
        ("payload.", "part 2 is empty"),
        ("items.[].email", "starts with '['"),
        ("items[0].email", "only '[]' is allowed"),
        ("tags]", "only '[]' is allowed"),
    ],
)
def test_a_malformed_path_is_refused_with_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(FieldPathError, match=re.escape(reason)) as raised:
        parse_path(text)
    assert repr(text) in str(raised.value)


def test_resolve_gives_the_leaf_type_at_any_depth() -> None:
    schema = events().schema
    assert resolve(schema, "payload.ip") == pa.string()
    assert resolve(schema, "payload.born") == pa.date32()
    assert resolve(schema, "items[].email") == pa.string()
    assert resolve(schema, "items[]") == ITEM
    assert resolve(schema, "tags[]") == pa.string()
    assert resolve(schema, "order.lines[].contact.phone") == pa.string()
    assert resolve(schema, parse_path("event_id")) == pa.int64()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("payload.email", "payload has no field email; fields: ip, born, ok"),
        ("items.email", "items is a list: write items[].email"),
        ("payload[]", "payload is struct<"),
        ("tags[].x", "tags[] is string, not a struct: it has no field x"),
        ("order.lines[].contact.zip", "order.lines[].contact has no field zip; fields: phone, city"),
        ("nope.x", "no column nope; columns: event_id, payload, items, tags, order"),
    ],
)
def test_resolve_says_why_a_path_does_not_exist(path: str, message: str) -> None:
    with pytest.raises(FieldPathError, match=re.escape(message)):
        resolve(events().schema, path)


# -- reading and rebuilding -----------------------------------------------------------------------------


def test_leaves_are_flat_with_the_row_each_comes_from() -> None:
    table = events()
    found = leaves(table.column("items"), "items[].email")
    assert found.values.to_pylist() == ["ann@example.com", None, "bo@example.org", None]
    assert found.rows.to_pylist() == [0, 0, 0, 3]
    assert found.present.to_pylist() == [True, False, True, True]  # the null element holds no value
    phones = leaves(table.column("order"), "order.lines[].contact.phone")
    assert phones.values.to_pylist() == ["+33 6 12 34 56 78", None, None]
    assert phones.rows.to_pylist() == [0, 2, 2]
    tags = leaves(table.column("tags"), "tags[]")
    assert (tags.values.to_pylist(), tags.rows.to_pylist()) == (["ann", "vip", "x", None], [0, 0, 3, 3])


@pytest.mark.parametrize(
    "path", ["payload.ip", "items[].email", "tags[]", "order.lines[].contact.phone", "order.lines[].sku"]
)
def test_rebuilding_with_new_leaves_keeps_type_nulls_and_offsets(path: str) -> None:
    table = events()
    column = table.column(parse_path(path).column)
    found = leaves(column, path)
    upper = pa.array([None if v is None else v.upper() + "!" for v in found.values.to_pylist()], pa.string())
    rebuilt = with_leaves(column, path, upper)
    assert rebuilt.type == column.type
    assert rebuilt.combine_chunks().is_null().to_pylist() == column.combine_chunks().is_null().to_pylist()
    assert leaves(rebuilt, path).values.to_pylist() == upper.to_pylist()
    # Putting the original leaves back gives the original column.
    assert with_leaves(rebuilt, path, found.values).equals(column)


def test_rebuilding_works_on_slices_and_several_chunks() -> None:
    table = events()
    items = table.column("items").combine_chunks()
    chunked = pa.chunked_array([items.slice(0, 1), items.slice(1, 3)])
    found = leaves(chunked, "items[].email")
    assert found.rows.to_pylist() == [0, 0, 0, 3]
    masked = with_leaves(chunked, "items[].email", pa.nulls(len(found.values), pa.string()))
    assert masked.num_chunks == 2
    assert masked.to_pylist() == [
        [{"email": None, "qty": 1}, None, {"email": None, "qty": 2}],
        None,
        [],
        [{"email": None, "qty": 5}],
    ]


def test_without_field_removes_the_field_from_its_struct_only() -> None:
    table = events()
    assert without_field(table.column("payload"), "payload.ip").to_pylist() == [
        {"born": dt.date(1987, 6, 15), "ok": True},
        None,
        {"born": None, "ok": False},
        {"born": dt.date(1990, 2, 3), "ok": None},
    ]
    dropped = without_field(table.column("order"), "order.lines[].contact.phone")
    assert dropped.to_pylist()[0] == {"id": 7, "lines": [{"sku": "A", "contact": {"city": "Lyon"}}]}
    assert dropped.to_pylist()[1:] == [
        {"id": 8, "lines": None},
        {"id": 9, "lines": [{"sku": "B", "contact": None}, None]},
        None,
    ]
    with pytest.raises(FieldPathError, match="only a struct field can be dropped"):
        without_field(table.column("tags"), "tags[]")


# -- masking --------------------------------------------------------------------------------------------


def mask(table: pa.Table, keyring: LocalKeyring, *plans: ColumnPlan) -> tuple[pa.Table, Masker]:
    masker = Masker(plans, keyring)
    out = masker.mask_table(table)
    assert out.schema == masker.output_schema(table.schema)
    return out, masker


def _unchanged_except(before: pa.Table, after: pa.Table, path: str) -> None:
    """Every column but the one ``path`` goes into is equal, and in that one every other leaf is."""
    top = parse_path(path).column
    for name in before.schema.names:
        if name != top:
            assert after.column(name).equals(before.column(name)), name


def _masked_leaf(before: pa.Table, after: pa.Table, path: str) -> tuple[list[Any], list[Any]]:
    top = parse_path(path).column
    return (
        leaves(before.column(top), path).values.to_pylist(),
        leaves(after.column(top), path).values.to_pylist(),
    )


@pytest.mark.parametrize("path", ["payload.ip", "items[].email", "tags[]"])
def test_redact_nulls_the_leaf_and_nothing_else(path: str, keyring: LocalKeyring) -> None:
    table = events()
    out, masker = mask(table, keyring, ColumnPlan(path, "PII", "redact"))
    _unchanged_except(table, out, path)
    before, after = _masked_leaf(table, out, path)
    assert after == [None] * len(before)
    assert masker.counts == {path: {"PII": sum(v is not None for v in before)}}
    top = parse_path(path).column
    assert out.column(top).is_null().to_pylist() == table.column(top).is_null().to_pylist()


def test_redact_keeps_the_neighbours_of_a_nested_leaf(keyring: LocalKeyring) -> None:
    table = events()
    out, _ = mask(table, keyring, ColumnPlan("items[].email", "EMAIL_ADDRESS", "redact"))
    assert leaves(out.column("items"), "items[].qty").values.equals(
        leaves(table.column("items"), "items[].qty").values
    )
    assert out.column("items").to_pylist()[0] == [{"email": None, "qty": 1}, None, {"email": None, "qty": 2}]


@pytest.mark.parametrize(
    ("strategy", "options", "expected"),
    [
        ("replace", {}, ["<IP_ADDRESS>", None, None, "<IP_ADDRESS>"]),
        ("replace", {"value": "0.0.0.0"}, ["0.0.0.0", None, None, "0.0.0.0"]),
        ("partial", {"keep_last": 2}, ["******.1", None, None, "**********20"]),
        ("generalize", {"prefix": 3}, ["10.*****", None, None, "192*********"]),
    ],
)
def test_value_strategies_mask_a_struct_field(
    strategy: str, options: dict[str, Any], expected: list[Any], keyring: LocalKeyring
) -> None:
    table = events()
    out, masker = mask(table, keyring, ColumnPlan("payload.ip", "IP_ADDRESS", strategy, options))
    _unchanged_except(table, out, "payload.ip")
    assert [None if p is None else p["ip"] for p in out.column("payload").to_pylist()] == expected
    assert out.column("payload").to_pylist()[1] is None  # the null struct stays null
    assert masker.counts == {"payload.ip": {"IP_ADDRESS": 2}}
    assert _masked_leaf(table, out, "payload.born")[0] == _masked_leaf(table, out, "payload.born")[1]


def test_generalize_a_date_inside_a_struct(keyring: LocalKeyring) -> None:
    table = events()
    out, _ = mask(table, keyring, ColumnPlan("payload.born", "DATE_TIME", "generalize", {"to": "year"}))
    assert _masked_leaf(table, out, "payload.born")[1] == [
        dt.date(1987, 1, 1),
        None,
        None,
        dt.date(1990, 1, 1),
    ]
    assert out.schema.field("payload").type == PAYLOAD


def test_pseudonymize_a_list_of_structs_gives_the_tokens_of_a_column(keyring: LocalKeyring) -> None:
    table = events()
    out, masker = mask(table, keyring, ColumnPlan("items[].email", "EMAIL_ADDRESS", "pseudonymize"))
    _unchanged_except(table, out, "items[].email")
    key = keyring.ensure("aisec-pseudonyms", "symmetric")
    before, after = _masked_leaf(table, out, "items[].email")
    assert after == [None if v is None else pseudonym(v, key) for v in before]
    assert masker.counts == {"items[].email": {"EMAIL_ADDRESS": 2}}


def test_encrypt_a_list_of_strings_is_reversible_with_the_path(keyring: LocalKeyring) -> None:
    table = events()
    out, _ = mask(table, keyring, ColumnPlan("tags[]", "PERSON", "encrypt"))
    before, after = _masked_leaf(table, out, "tags[]")
    assert all(v.startswith("enc:v") for v in after if v is not None)
    assert [v is None for v in after] == [v is None for v in before]
    found = leaves(out.column("tags"), "tags[]").values
    assert decrypt_values(found, keyring, "aisec-mask-encryption", "tags[]").to_pylist() == before


def test_drop_removes_the_field_from_the_struct_and_the_schema(keyring: LocalKeyring) -> None:
    table = events()
    out, masker = mask(
        table,
        keyring,
        ColumnPlan("payload.ip", "IP_ADDRESS", "drop"),
        ColumnPlan("order.lines[].contact.phone", "PHONE_NUMBER", "drop"),
    )
    assert out.schema.field("payload").type == pa.struct([("born", pa.date32()), ("ok", pa.bool_())])
    assert "phone" not in str(out.schema.field("order").type)
    assert out.column("payload").to_pylist()[1] is None
    assert out.column("order").to_pylist()[0]["lines"][0]["contact"] == {"city": "Lyon"}
    assert out.column("items").equals(table.column("items"))
    assert masker.counts == {
        "payload.ip": {"IP_ADDRESS": 2},
        "order.lines[].contact.phone": {"PHONE_NUMBER": 1},
    }


def test_several_paths_into_one_column_are_all_masked(keyring: LocalKeyring) -> None:
    table = events()
    out, _ = mask(
        table,
        keyring,
        ColumnPlan("payload.ip", "IP_ADDRESS", "drop"),
        ColumnPlan("payload.born", "DATE_TIME", "generalize", {"to": "year"}),
    )
    assert out.column("payload").to_pylist()[0] == {"born": dt.date(1987, 1, 1), "ok": True}


def test_free_text_inside_a_list_of_structs(keyring: LocalKeyring) -> None:
    notes = pa.struct([("at", pa.int64()), ("body", pa.string())])
    table = pa.table(
        {
            "id": [1, 2],
            "notes": pa.array(
                [[{"at": 1, "body": "Mail alice@example.com today"}, {"at": 2, "body": None}], None],
                pa.list_(notes),
            ),
        }
    )

    def emails(texts: Sequence[str]) -> list[list[Span]]:
        return [
            [Span("EMAIL_ADDRESS", m.start(), m.end(), 0.9) for m in re.finditer(r"\S+@\S+", t)]
            for t in texts
        ]

    masker = Masker([ColumnPlan("notes[].body", "free_text", "free_text")], keyring, emails)
    out = masker.mask_table(table)
    assert out.column("notes").to_pylist() == [
        [{"at": 1, "body": "Mail <EMAIL_ADDRESS> today"}, {"at": 2, "body": None}],
        None,
    ]
    assert masker.counts == {"notes[].body": {"EMAIL_ADDRESS": 1}}


def test_a_path_the_data_lacks_is_refused_with_the_reason(keyring: LocalKeyring) -> None:
    masker = Masker([ColumnPlan("payload.email", "EMAIL_ADDRESS", "redact")], keyring)
    with pytest.raises(
        PIIError, match=re.escape("not in the data: payload.email (payload has no field email")
    ):
        masker.output_schema(events().schema)


@pytest.mark.parametrize(
    ("plans", "message"),
    [
        (
            [ColumnPlan("payload", "PII", "redact"), ColumnPlan("payload.ip", "IP_ADDRESS", "redact")],
            "one inside the other",
        ),
        (
            [ColumnPlan("items[]", "PII", "redact"), ColumnPlan("items[].email", "EMAIL_ADDRESS", "redact")],
            "one inside the other",
        ),
    ],
)
def test_plans_one_inside_another_are_refused(
    plans: list[ColumnPlan], message: str, keyring: LocalKeyring
) -> None:
    with pytest.raises(PIIError, match=message):
        Masker(plans, keyring)


def test_dropping_list_elements_is_refused(keyring: LocalKeyring) -> None:
    masker = Masker([ColumnPlan("tags[]", "PERSON", "drop")], keyring)
    with pytest.raises(PIIError, match="only a struct field can be dropped"):
        masker.output_schema(events().schema)


def test_a_top_level_column_named_like_a_path_is_still_a_column(keyring: LocalKeyring) -> None:
    table = pa.table({"a.b": ["secret"], "a": pa.array([{"b": "kept"}])})
    out, _ = mask(table, keyring, ColumnPlan("a.b", "PII", "redact"))
    assert out.column("a.b").to_pylist() == [None]
    assert out.column("a").to_pylist() == [{"b": "kept"}]


# -- end to end -----------------------------------------------------------------------------------------


def _write(fmt: str, folder: Path, table: pa.Table) -> None:
    folder.mkdir()
    if fmt == "parquet":
        pq.write_table(table, folder / "part-0.parquet")
    else:
        rows = table.to_pylist()
        text = "".join(json.dumps(r, default=str) + "\n" for r in rows)
        (folder / "part-0.jsonl").write_text(text)


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_mask_dataset_masks_nested_pii_end_to_end(fmt: str, tmp_path: Path, keyring: LocalKeyring) -> None:
    table = events().drop_columns(["payload"])  # JSON has no date type: leave the date out
    source, target = tmp_path / "in", tmp_path / "out"
    _write(fmt, source, table)
    plans = [
        ColumnPlan("items[].email", "EMAIL_ADDRESS", "pseudonymize"),
        # Not redact: Arrow's JSON reader cannot read back a list whose elements are all null.
        ColumnPlan("tags[]", "PERSON", "replace"),
        ColumnPlan("order.lines[].contact.phone", "PHONE_NUMBER", "drop"),
    ]
    result = mask_dataset(
        Location.parse(str(source)), Location.parse(str(target)), Masker(plans, keyring), fmt=fmt
    )
    out = pa.Table.from_batches(list(read_dataset(Location.parse(str(target)), fmt)))
    assert out.num_rows == table.num_rows
    written = " ".join(json.dumps(r, default=str) for r in out.to_pylist())
    for secret in ("ann@example.com", "bo@example.org", '"ann"', "vip", "+33 6 12 34 56 78"):
        assert secret not in written, secret
    assert out.column("event_id").to_pylist() == [1, 2, 3, 4]
    assert "Lyon" in written and '"qty": 5' in written  # the rest is kept
    assert out.column("tags").to_pylist() == [["<PERSON>", "<PERSON>"], None, [], ["<PERSON>", None]]
    assert result.counts["items[].email"] == {"EMAIL_ADDRESS": 2}
    assert result.counts["tags[]"] == {"PERSON": 3}


def test_a_parquet_scan_reports_nested_leaves_and_a_declared_path_counts_as_declared(
    tmp_path: Path, pattern_engine: Any
) -> None:
    from airflow_aisec.catalog.models import Dataset

    batch = pa.RecordBatch.from_pylist(
        [{"id": i, "items": [{"email": f"user{i}@example.com", "qty": i}]} for i in range(50)]
    )
    pq.write_table(pa.Table.from_batches([batch]), tmp_path / "t.parquet")
    findings = scan_batches(pq.ParquetFile(tmp_path / "t.parquet").iter_batches(), pattern_engine)
    assert findings["items[].email"].entity == "EMAIL_ADDRESS"
    bare = Dataset(uri=str(tmp_path), format="parquet", columns={"id": {}})
    assert [f.column for f in undeclared(findings, bare)] == ["items[].email"]
    declared = Dataset(
        uri=str(tmp_path), format="parquet", columns={"id": {}, "items[].email": {"pii": "EMAIL_ADDRESS"}}
    )
    assert undeclared(findings, declared) == []
    whole = Dataset(uri=str(tmp_path), format="parquet", columns={"id": {}, "items[]": {"pii": "PII"}})
    assert undeclared(findings, whole) == []


def test_unmask_dataset_decrypts_an_encrypted_path(tmp_path: Path, keyring: LocalKeyring) -> None:
    from airflow_aisec.pii.pipeline import unmask_dataset

    table = events()
    source, masked, clear = tmp_path / "in", tmp_path / "masked", tmp_path / "clear"
    _write("parquet", source, table)
    masker = Masker([ColumnPlan("items[].email", "EMAIL_ADDRESS", "encrypt")], keyring)
    mask_dataset(Location.parse(str(source)), Location.parse(str(masked)), masker, fmt="parquet")
    sealed = pq.read_table(masked)
    assert "ann@example.com" not in str(sealed.column("items").to_pylist())
    unmask_dataset(
        Location.parse(str(masked)), Location.parse(str(clear)), keyring, "aisec-mask-encryption",
        ["items[].email"], fmt="parquet",
    )  # fmt: skip
    assert pq.read_table(clear).equals(table)
    with pytest.raises(PIIError, match=r"no column\(s\) items\[\]\.mail to unmask"):
        unmask_dataset(
            Location.parse(str(masked)), Location.parse(str(tmp_path / "x")), keyring,
            "aisec-mask-encryption", ["items[].mail"], fmt="parquet",
        )  # fmt: skip


@pytest.mark.parametrize("strategy", ["replace", "pseudonymize", "redact"])
def test_a_field_that_may_not_be_null_under_a_null_struct_still_writes(
    strategy: str, tmp_path: Path, keyring: LocalKeyring
) -> None:
    inner = pa.struct([pa.field("ip", pa.string(), nullable=False)])
    kind = pa.struct(
        [
            pa.field("ip", pa.string(), nullable=False),
            pa.field("seen", pa.list_(pa.field("x", inner, nullable=False))),
        ]
    )
    table = pa.table({"p": pa.array([{"ip": "10.0.0.1", "seen": [{"ip": "10.0.0.9"}]}, None], kind)})
    masker = Masker(
        [ColumnPlan("p.ip", "IP_ADDRESS", strategy), ColumnPlan("p.seen[].ip", "IP_ADDRESS", strategy)],
        keyring,
    )
    out = masker.mask_table(table)
    pq.write_table(out, tmp_path / "out.parquet")
    back = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert back[1] == {"p": None}
    assert "10.0.0" not in str(back)
    assert out.schema.field("p").type.field("ip").nullable == (strategy == "redact")
