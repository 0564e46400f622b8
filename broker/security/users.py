"""The users of the security document: listing, setting and deleting SCRAM credentials.

Owns: edits of the document's `users` part (format in credentials.py), shared by the
AlterUserScramCredentials handler and `tidelog users`. Pure functions over a document
(a dict): storage/security_doc.py's `change` hands them a private copy and stores the
result. A user with no credential left is removed from the document.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tidelog.broker.security.credentials import SCRAM_MECHANISMS, ScramCredential, credential


def user_credentials(doc: Mapping[str, Any]) -> dict[str, dict[str, ScramCredential]]:
    """{user: {mechanism: credential}} of every user with a readable credential, by name."""
    out: dict[str, dict[str, ScramCredential]] = {}
    for name in sorted(doc.get("users", {})):
        found = {m: c for m in SCRAM_MECHANISMS if (c := credential(doc, name, m)) is not None}
        if found:
            out[name] = found
    return out


def set_credential(doc: dict[str, Any], user: str, mechanism: str, cred: ScramCredential) -> None:
    doc.setdefault("users", {}).setdefault(user, {})[mechanism] = cred.to_json()


def delete_credential(doc: dict[str, Any], user: str, mechanism: str) -> bool:
    """Remove the user's credential for `mechanism`; whether there was one."""
    users = doc.setdefault("users", {})
    mechanisms = users.get(user)
    if not isinstance(mechanisms, dict) or mechanism not in mechanisms:
        return False
    del mechanisms[mechanism]
    if not mechanisms:
        del users[user]
    return True
