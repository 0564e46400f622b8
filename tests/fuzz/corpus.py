"""The fuzz corpus: request frames captured from real clients, plus synthesized ones.

Owns: where the corpus lives, how a frame file is named and which (API, version) it
holds. Each file is one request frame without its 4-byte size prefix, named
`<source>-<api>-v<version>[-<variant>].bin`. tests/fixtures/clients/ holds the first
captures (against a fake broker), tests/fixtures/requests/ the later ones (real clients
against the real broker through a recording proxy, and frames built with kio for the
versions no client sends); each directory's README says how they were made.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CORPUS_DIRS = (FIXTURES / "clients", FIXTURES / "requests")

# File names spell each API without separators, as tests/fixtures/clients/ began.
API_NAMES: dict[int, str] = {
    0: "produce",
    1: "fetch",
    2: "listoffsets",
    3: "metadata",
    8: "offsetcommit",
    9: "offsetfetch",
    10: "findcoordinator",
    11: "joingroup",
    12: "heartbeat",
    13: "leavegroup",
    14: "syncgroup",
    15: "describegroups",
    16: "listgroups",
    17: "saslhandshake",
    18: "apiversions",
    19: "createtopics",
    20: "deletetopics",
    21: "deleterecords",
    22: "initproducerid",
    23: "offsetforleaderepoch",
    24: "addpartitionstotxn",
    25: "addoffsetstotxn",
    26: "endtxn",
    27: "writetxnmarkers",
    28: "txnoffsetcommit",
    29: "describeacls",
    30: "createacls",
    31: "deleteacls",
    32: "describeconfigs",
    33: "alterconfigs",
    35: "describelogdirs",
    36: "saslauthenticate",
    37: "createpartitions",
    42: "deletegroups",
    44: "incrementalalterconfigs",
    47: "offsetdelete",
    50: "describeuserscramcredentials",
    51: "alteruserscramcredentials",
    60: "describecluster",
    61: "describeproducers",
    65: "describetransactions",
    66: "listtransactions",
}
API_KEYS = {name: key for key, name in API_NAMES.items()}


@dataclass(frozen=True, slots=True)
class CorpusFrame:
    name: str  # the file's stem
    api_key: int
    api_version: int
    payload: bytes  # the frame without its size prefix


def frame_file_name(source: str, api_key: int, api_version: int, variant: str = "") -> str:
    suffix = f"-{variant}" if variant else ""
    return f"{source}-{API_NAMES[api_key]}-v{api_version}{suffix}.bin"


def header_key_version(payload: bytes) -> tuple[int, int]:
    api_key, api_version = struct.unpack_from(">hh", payload, 0)
    return api_key, api_version


def load_corpus(dirs: tuple[Path, ...] = CORPUS_DIRS) -> list[CorpusFrame]:
    """Every frame file of the corpus, sorted by name (a stable order for a seed)."""
    frames = []
    for path in sorted(p for d in dirs for p in d.glob("*.bin")):
        payload = path.read_bytes()
        api_key, api_version = header_key_version(payload)
        frames.append(CorpusFrame(path.stem, api_key, api_version, payload))
    return frames
