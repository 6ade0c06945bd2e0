"""Trusted-document manifests and the APQ store, without a gateway."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from esim_gateway.config import ConfigError, Settings
from esim_gateway.http.persisted import (
    MemoryApqStore,
    PersistedDocuments,
    PersistedRefusal,
    TrustedDocuments,
    document_hash,
)

CATALOG = "query Catalog { catalogStatus { provider plans } }"
TYPENAME = "query Typename { __typename }"


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_the_three_manifest_formats_load_by_id_and_by_hash(tmp_path: Path) -> None:
    codegen = write(tmp_path / "codegen.json", {document_hash(CATALOG): CATALOG})
    apollo = write(
        tmp_path / "apollo.json",
        {
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": [
                {"id": document_hash(TYPENAME), "name": "Typename", "type": "query",
                 "body": TYPENAME},
            ],
        },
    )  # fmt: skip
    relay = write(tmp_path / "relay.json", {"5f1b0c7e": "{ __typename }"})
    trusted = TrustedDocuments.load([codegen, apollo, relay])
    assert len(trusted) == 3
    assert trusted.find(document_hash(CATALOG)) == CATALOG
    assert trusted.find(document_hash(TYPENAME)) == TYPENAME
    assert trusted.find("5f1b0c7e") == "{ __typename }"
    assert trusted.find(document_hash("{ __typename }")) == "{ __typename }"  # by its hash too


def test_a_directory_loads_every_manifest_in_it(tmp_path: Path) -> None:
    write(tmp_path / "a.json", {"a": CATALOG})
    write(tmp_path / "b.json", {"b": TYPENAME})
    (tmp_path / "notes.txt").write_text("not a manifest")
    assert set(TrustedDocuments.load([tmp_path]).by_id) == {"a", "b"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"broken": "query { packages("}, "entry 'broken' does not parse: Syntax Error"),
        ({"number": 42}, "entry 'number' is not a document"),
        (
            {"format": "apollo-persisted-query-manifest", "operations": [
                {"id": "0" * 64, "body": TYPENAME}]},
            "operations[0] ('" + "0" * 64 + "'): id is not the SHA-256 of its body",
        ),
        ({"format": "apollo-persisted-query-manifest", "operations": [{"id": 1}]},
         "operations[0] needs string `id` and `body`"),
        ([], "expected {id: document}"),
    ],
)  # fmt: skip
def test_a_bad_manifest_is_one_line_naming_the_file_and_the_entry(
    tmp_path: Path, content: object, expected: str
) -> None:
    manifest = write(tmp_path / "app.json", content)
    with pytest.raises(ConfigError) as raised:
        TrustedDocuments.load([manifest])
    message = str(raised.value)
    assert str(manifest) in message and expected in message
    assert "\n" not in message


def test_a_manifest_that_is_not_json_or_not_there_is_named(tmp_path: Path) -> None:
    (tmp_path / "app.json").write_text("{")
    with pytest.raises(ConfigError, match=r"app\.json: is not JSON"):
        TrustedDocuments.load([tmp_path / "app.json"])
    with pytest.raises(ConfigError, match=r"missing\.json: cannot be read"):
        TrustedDocuments.load([tmp_path / "missing.json"])


def test_the_settings_name_manifests_and_switches(tmp_path: Path) -> None:
    settings = Settings.from_mapping(
        {
            "ESIM_GATEWAY_TRUSTED_DOCUMENTS": f"{tmp_path}/a.json, {tmp_path}/b",
            "ESIM_GATEWAY_TRUSTED_DOCUMENTS_ONLY": "true",
            "ESIM_GATEWAY_TRUSTED_DOCUMENTS_EXEMPT_OPERATORS": "yes",
            "ESIM_GATEWAY_APQ_CACHE_SIZE": "50",
            "ESIM_GATEWAY_BATCHING": "on",
            "ESIM_GATEWAY_BATCH_MAX_OPERATIONS": "4",
        }
    )
    assert settings.trusted_documents == (f"{tmp_path}/a.json", f"{tmp_path}/b")
    assert settings.trusted_documents_only and settings.trusted_documents_exempt_operators
    assert not settings.only_trusted_documents  # the sandbox runs everything
    assert settings.apq_cache_size == 50 and settings.batching
    assert settings.batch_max_operations == 4
    with pytest.raises(ConfigError, match="ESIM_GATEWAY_BATCH_MAX_OPERATIONS"):
        Settings.from_mapping({"ESIM_GATEWAY_BATCH_MAX_OPERATIONS": "0"})


async def test_the_in_process_store_keeps_the_most_recently_used_documents() -> None:
    store = MemoryApqStore(2)
    await store.put("a", "A")
    await store.put("b", "B")
    assert await store.get("a") == "A"  # a is now the most recent
    await store.put("c", "C")
    assert await store.get("b") is None
    assert (await store.get("a"), await store.get("c")) == ("A", "C")


async def test_the_in_process_store_is_bounded_in_characters_too() -> None:
    store = MemoryApqStore(100, max_chars=10)
    await store.put("a", "x" * 6)
    await store.put("b", "y" * 6)  # 12 characters: the oldest goes
    assert await store.get("a") is None and await store.get("b") == "y" * 6
    await store.put("b", "z" * 4)  # replacing counts the new text only
    await store.put("c", "w" * 6)
    assert (await store.get("b"), await store.get("c")) == ("z" * 4, "w" * 6)


async def test_a_document_that_cannot_run_is_not_kept() -> None:
    store = MemoryApqStore(10)
    documents = PersistedDocuments(
        store, TrustedDocuments.empty(), trusted_only=False, max_tokens=10
    )
    for junk in ("{ not valid", "{ " + "a " * 20 + "}"):  # a syntax error; too many tokens
        persisted = {"persistedQuery": {"version": 1, "sha256Hash": document_hash(junk)}}
        assert await documents.resolve(junk, None, persisted) == junk  # runs to its error
        assert await store.get(document_hash(junk)) is None


@pytest.mark.parametrize(
    ("extensions", "code"),
    [
        ({"persistedQuery": "yes"}, "BAD_REQUEST"),
        ({"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}},
         "PERSISTED_QUERY_VERSION_NOT_SUPPORTED"),
        ({"persistedQuery": {"version": 1, "sha256Hash": "XYZ"}}, "BAD_REQUEST"),
    ],
)  # fmt: skip
async def test_a_malformed_persisted_query_is_refused(extensions: object, code: str) -> None:
    documents = PersistedDocuments(MemoryApqStore(10), TrustedDocuments.empty(), trusted_only=False)
    with pytest.raises(PersistedRefusal) as raised:
        await documents.resolve(None, None, extensions)  # type: ignore[arg-type]
    assert raised.value.code == code


async def test_without_a_store_apq_is_not_supported() -> None:
    documents = PersistedDocuments(None, TrustedDocuments.empty(), trusted_only=False)
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": document_hash(TYPENAME)}}
    with pytest.raises(PersistedRefusal) as raised:
        await documents.resolve(None, None, persisted)
    assert raised.value.code == "PERSISTED_QUERY_NOT_SUPPORTED"
