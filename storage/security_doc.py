"""The security document: users' SCRAM credentials and ACLs, one JSON object in the bucket.

Owns: the object `security/state.json`, reading it, and changing it safely from any
number of writers at once (brokers answering AlterUserScramCredentials or CreateAcls,
and `tidelog users` run offline). What the users and ACLs inside mean belongs to
broker/security/ (credentials.py, acl.py); this module only keeps the document.

Format (docs/security.md): `{"v": 1, "version": N, "users": {...}, "acls": [...]}`.
`version` counts the changes; the document holds salted SCRAM credentials and never a
password.

Guarantees:
- a change is read-modify-write with a conditional put (if-absent for the first
  document, if-match on the etag read after): two writers never lose one another's
  change; the loser reads the winner's document and applies its change again;
- a reader that finds a document it cannot parse keeps what it had and logs it (a
  broker never drops every ACL because of one bad write);
- `refresh` costs one HEAD while nothing changed.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from typing import Any

from tidelog.storage.object_store import ObjectNotFound, ObjectStore, PreconditionFailed

log = logging.getLogger(__name__)

SECURITY_KEY = "security/state.json"
_VERSION = 1
_MAX_ATTEMPTS = 50


class SecurityDocError(Exception):
    """The document in the bucket is not one this version can read."""


def empty_document() -> dict[str, Any]:
    return {"v": _VERSION, "version": 0, "users": {}, "acls": []}


def parse_document(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SecurityDocError(f"security document is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("v") != _VERSION:
        raise SecurityDocError("security document has an unknown format version")
    if not isinstance(doc.get("users"), dict) or not isinstance(doc.get("acls"), list):
        raise SecurityDocError("security document lacks its users or acls")
    if not isinstance(doc.get("version"), int):
        raise SecurityDocError("security document lacks its version")
    return doc


def encode_document(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


# A change: given a private copy of the current document, edit it in place and return
# what the caller wants back; raise to change nothing.
Change = Callable[[dict[str, Any]], Any]


class SecurityDocStore:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.doc: dict[str, Any] = empty_document()
        self._etag: str | None = None

    async def refresh(self) -> bool:
        """Read the document if it changed since we last did; whether it did."""
        info = await self.store.head(SECURITY_KEY)
        if info is None or info.etag == self._etag:
            return False
        try:
            raw = await self.store.get(SECURITY_KEY)
        except ObjectNotFound:
            return False
        try:
            doc = parse_document(raw)
        except SecurityDocError as exc:
            log.error("security document not loaded; keeping the previous one: %s", exc)
            self._etag = info.etag
            return False
        self.doc, self._etag = doc, info.etag
        return True

    async def change(self, edit: Change) -> Any:
        """Apply `edit` to the newest document and store it; returns what `edit` did."""
        for _ in range(_MAX_ATTEMPTS):
            current, etag = await self._read()
            doc = copy.deepcopy(current)
            result = edit(doc)
            doc["version"] = int(current["version"]) + 1
            data = encode_document(doc)
            try:
                if etag is None:
                    new_etag = await self.store.put_if_absent(SECURITY_KEY, data)
                else:
                    new_etag = await self.store.put_if_match(SECURITY_KEY, data, etag)
            except PreconditionFailed:
                continue  # someone else changed it first: apply ours to theirs
            self.doc, self._etag = doc, new_etag
            return result
        raise SecurityDocError("security document kept changing; gave up after 50 tries")

    async def _read(self) -> tuple[dict[str, Any], str | None]:
        info = await self.store.head(SECURITY_KEY)
        if info is None:
            return empty_document(), None
        if info.etag == self._etag:
            return self.doc, info.etag
        raw = await self.store.get(SECURITY_KEY)
        return parse_document(raw), info.etag
