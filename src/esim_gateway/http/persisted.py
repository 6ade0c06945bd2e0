"""Persisted operations: Apollo's automatic persisted queries (APQ) and trusted documents.

* **APQ** (`extensions.persistedQuery {version: 1, sha256Hash}`): a client sends the hash
  alone; an unknown hash answers `PersistedQueryNotFound`, and the client sends the hash
  with the text, which registers it once the hash is checked against the text. The store
  is bounded: an LRU in the process, or Redis keys with a time to live (shared by every
  replica) when `ESIM_GATEWAY_APQ_REDIS_URL` is set.
* **Trusted documents**: manifests written by the apps' builds, loaded at start-up (GraphQL
  Codegen's client preset and Relay write `{id: text}`; Apollo's persisted-query manifest
  generator writes `{format: "apollo-persisted-query-manifest", operations: [...]}`). A
  request may name one by `documentId` (or by its APQ hash). With "trusted documents only"
  in live mode, nothing else runs (operators exempt if configured).

Every refusal is a `PersistedRefusal` with a stable code; nothing is stored on a refusal.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
from graphql import GraphQLError, parse

from esim_gateway.config import ConfigError
from esim_gateway.schema.errors import ErrorCode

__all__ = [
    "ApqStore",
    "MemoryApqStore",
    "PersistedDocuments",
    "PersistedRefusal",
    "RedisApqStore",
    "TrustedDocuments",
    "document_hash",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")
APOLLO_MANIFEST_FORMAT = "apollo-persisted-query-manifest"


def document_hash(text: str) -> str:
    """APQ's hash of a document: SHA-256 of its UTF-8 text, lower-case hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PersistedRefusal(Exception):
    """A persisted-operation request the gateway will not run; `code` tells clients why."""

    def __init__(self, message: str, code: ErrorCode) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _not_found() -> PersistedRefusal:
    # Apollo's links (web, iOS, Kotlin) look for this exact message or code to resend the text
    return PersistedRefusal("PersistedQueryNotFound", ErrorCode.PERSISTED_QUERY_NOT_FOUND)


def _trusted_only() -> PersistedRefusal:
    return PersistedRefusal(
        "Only trusted documents run here: send a `documentId` (or APQ hash) from the app's"
        " persisted-document manifest.",
        ErrorCode.TRUSTED_DOCUMENT_REQUIRED,
    )


@dataclass(frozen=True, slots=True)
class TrustedDocuments:
    """The documents of the apps' manifests, by id and by SHA-256 of their text."""

    by_id: Mapping[str, str]
    by_hash: Mapping[str, str]

    @classmethod
    def empty(cls) -> TrustedDocuments:
        return cls({}, {})

    @classmethod
    def load(cls, paths: Iterable[Path]) -> TrustedDocuments:
        """Read manifests (a directory: every `*.json` in it). A file or entry that is not
        a manifest, or a document that does not parse, raises `ConfigError` naming both."""
        by_id: dict[str, str] = {}
        for path in paths:
            files = sorted(path.glob("*.json")) if path.is_dir() else [path]
            for file in files:
                for entry, text in _manifest_entries(file):
                    try:
                        parse(text)
                    except GraphQLError as exc:
                        first_line = exc.message.splitlines()[0]
                        raise ConfigError(
                            f"trusted documents: {file}: entry {entry!r} does not parse:"
                            f" {first_line}"
                        ) from None
                    by_id[entry] = text
        return cls(by_id, {document_hash(text): text for text in by_id.values()})

    def __len__(self) -> int:
        return len(self.by_id)

    def find(self, key: str) -> str | None:
        return self.by_id.get(key) or self.by_hash.get(key)


def _manifest_entries(file: Path) -> list[tuple[str, str]]:
    try:
        data: Any = orjson.loads(file.read_bytes())
    except OSError as exc:
        raise ConfigError(f"trusted documents: {file}: cannot be read ({exc.strerror})") from None
    except orjson.JSONDecodeError:
        raise ConfigError(f"trusted documents: {file}: is not JSON") from None
    if isinstance(data, dict) and data.get("format") == APOLLO_MANIFEST_FORMAT:
        operations = data.get("operations")
        if not isinstance(operations, list):
            raise ConfigError(f"trusted documents: {file}: `operations` must be a list")
        entries: list[tuple[str, str]] = []
        for index, operation in enumerate(operations):
            if not (
                isinstance(operation, dict)
                and isinstance(operation.get("id"), str)
                and isinstance(operation.get("body"), str)
            ):
                raise ConfigError(
                    f"trusted documents: {file}: operations[{index}] needs string `id` and `body`"
                )
            if document_hash(operation["body"]) != operation["id"]:
                raise ConfigError(
                    f"trusted documents: {file}: operations[{index}] ({operation['id']!r}):"
                    " id is not the SHA-256 of its body"
                )
            entries.append((operation["id"], operation["body"]))
        return entries
    if isinstance(data, dict) and data:
        for key, value in data.items():
            if not isinstance(value, str):
                raise ConfigError(
                    f"trusted documents: {file}: entry {key!r} is not a document (a string)"
                )
        return list(data.items())
    raise ConfigError(
        f"trusted documents: {file}: expected {{id: document}} (GraphQL Codegen, Relay) or"
        f" an Apollo persisted-query manifest"
    )


class ApqStore(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, text: str) -> None: ...

    async def aclose(self) -> None: ...


class MemoryApqStore:
    """The most recently used documents of this process: at most `size` of them and
    `max_chars` characters in all (anyone may register, so both are bounded)."""

    def __init__(self, size: int, *, max_chars: int = 16 * 1024 * 1024) -> None:
        self.size = size
        self.max_chars = max_chars
        self._documents: OrderedDict[str, str] = OrderedDict()
        self._chars = 0

    async def get(self, key: str) -> str | None:
        text = self._documents.get(key)
        if text is not None:
            self._documents.move_to_end(key)
        return text

    async def put(self, key: str, text: str) -> None:
        previous = self._documents.pop(key, None)
        if previous is not None:
            self._chars -= len(previous)
        self._documents[key] = text
        self._chars += len(text)
        while len(self._documents) > self.size or self._chars > self.max_chars:
            _, evicted = self._documents.popitem(last=False)
            self._chars -= len(evicted)

    async def aclose(self) -> None:
        return None


class RedisApqStore:
    """Documents in Redis, shared by every replica; each expires `ttl` seconds after its
    last registration (Redis' own memory policy bounds the rest)."""

    def __init__(self, url: str, *, ttl: int = 86_400, prefix: str = "esim-gw:apq:") -> None:
        from redis.asyncio import Redis

        self._redis: Any = Redis.from_url(url)
        self.ttl = ttl
        self.prefix = prefix

    async def get(self, key: str) -> str | None:
        value = await self._redis.get(self.prefix + key)
        return value.decode("utf-8") if value is not None else None

    async def put(self, key: str, text: str) -> None:
        await self._redis.set(self.prefix + key, text.encode("utf-8"), ex=self.ttl)

    async def aclose(self) -> None:
        await self._redis.aclose()


class PersistedDocuments:
    """Turns a request's `query`, `documentId` and `extensions` into the text to run."""

    def __init__(
        self,
        store: ApqStore | None,
        trusted: TrustedDocuments,
        *,
        trusted_only: bool,
        max_tokens: int = 2000,
    ) -> None:
        self.store = store
        self.trusted = trusted
        self.trusted_only = trusted_only
        #: only a document that parses within the token limit is kept (it could not run)
        self.max_tokens = max_tokens

    async def resolve(
        self,
        query: str | None,
        document_id: object,
        extensions: Mapping[str, Any] | None,
        *,
        exempt: bool = False,
    ) -> str | None:
        """The document text, or None when the request names none (Strawberry then answers
        "No GraphQL query found"). `exempt`: this caller may run any document."""
        only_trusted = self.trusted_only and not exempt
        if document_id is not None:
            return self._trusted_by_id(document_id)
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            if (
                query is not None
                and only_trusted
                and document_hash(query) not in self.trusted.by_hash
            ):
                raise _trusted_only()
            return query
        key = _apq_hash(persisted)
        if query is None:  # the hash alone: a trusted document's text, else the store's
            text = self.trusted.find(key)
            if text is None:
                text = await self._stored(key, only_trusted=only_trusted)
            return text
        store = self._store_for(query, key, only_trusted=only_trusted)
        if store is not None:
            await store.put(key, query)
        return query

    def _trusted_by_id(self, document_id: object) -> str:
        """The text of a `documentId` request: trusted documents only."""
        if not isinstance(document_id, str) or not document_id:
            raise PersistedRefusal(
                "`documentId` must be a non-empty string.", ErrorCode.BAD_REQUEST
            )
        text = self.trusted.find(_strip_prefix(document_id))
        if text is None:
            raise PersistedRefusal(
                f"No trusted document has the id {document_id[:80]!r}.",
                ErrorCode.PERSISTED_DOCUMENT_NOT_FOUND,
            )
        return text

    def _store_for(self, query: str, key: str, *, only_trusted: bool) -> ApqStore | None:
        """An APQ request with its text: refused, or run; and the store to keep it in so
        that the next request may send the hash alone (None: nothing to keep)."""
        if document_hash(query) != key:
            raise PersistedRefusal(
                "provided sha does not match query", ErrorCode.PERSISTED_QUERY_HASH_MISMATCH
            )
        if self.trusted.by_hash.get(key) is not None:
            return None
        if only_trusted:
            raise _trusted_only()
        if self.store is None:
            raise PersistedRefusal(
                "PersistedQueryNotSupported", ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED
            )
        # a document that does not parse runs once, to its syntax error, and is not kept
        return self.store if self._parses(query) else None

    async def _stored(self, key: str, *, only_trusted: bool) -> str:
        """The text the store holds for a hash no trusted document has."""
        if only_trusted:
            raise _trusted_only()
        if self.store is None:
            raise PersistedRefusal(
                "PersistedQueryNotSupported", ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED
            )
        text = await self.store.get(key)
        if text is None:
            raise _not_found()
        return text

    def _parses(self, text: str) -> bool:
        try:
            parse(text, max_tokens=self.max_tokens)
        except GraphQLError:
            return False
        return True

    async def aclose(self) -> None:
        if self.store is not None:
            await self.store.aclose()


def _strip_prefix(document_id: str) -> str:
    # the GraphQL-over-HTTP persisted-documents proposal prefixes ids with their algorithm
    return document_id.removeprefix("sha256:")


def _apq_hash(persisted: object) -> str:
    if not isinstance(persisted, dict):
        raise PersistedRefusal(
            "`extensions.persistedQuery` must be an object.", ErrorCode.BAD_REQUEST
        )
    if persisted.get("version") != 1:
        raise PersistedRefusal(
            "Unsupported persisted query version: only version 1 is known.",
            ErrorCode.PERSISTED_QUERY_VERSION_NOT_SUPPORTED,
        )
    key = persisted.get("sha256Hash")
    if not isinstance(key, str) or _SHA256.fullmatch(key) is None:
        raise PersistedRefusal(
            "`extensions.persistedQuery.sha256Hash` must be 64 lower-case hex digits.",
            ErrorCode.BAD_REQUEST,
        )
    return key
