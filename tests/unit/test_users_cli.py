"""`tidelog users add|delete|list` on a file:// bucket, through `tidelog`'s own parser."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tidelog.broker import cli
from tidelog.broker.security.credentials import make_credential
from tidelog.broker.security.users import user_credentials
from tidelog.storage.security_doc import SECURITY_KEY, parse_document

PASSWORD = "correct horse battery staple"


def users(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
    *argv: str,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    action, *rest = argv
    try:
        code = cli.main(["users", action, "--data-dir", str(data_dir), *rest])
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def document(data_dir: Path) -> bytes:
    return (data_dir / "objects" / SECURITY_KEY).read_bytes()


def test_add_list_delete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = users(capsys, monkeypatch, tmp_path, "add", "alice", stdin=PASSWORD + "\n")
    assert (code, err) == (0, "")
    assert PASSWORD not in out
    raw = document(tmp_path)
    assert PASSWORD.encode() not in raw
    creds = user_credentials(parse_document(raw))["alice"]
    for mechanism, cred in creds.items():  # the keys scramp would make for this password
        assert cred == make_credential(PASSWORD, mechanism, cred.iterations, cred.salt)
    assert sorted(creds) == ["SCRAM-SHA-256", "SCRAM-SHA-512"]

    code, *_ = users(
        capsys, monkeypatch, tmp_path, "add", "bob", "--mechanism", "scram-sha-512",
        "--iterations", "8192", stdin="pw\n",
    )  # fmt: skip
    assert code == 0
    code, out, _ = users(capsys, monkeypatch, tmp_path, "list", "--json")
    assert (code, json.loads(out)) == (
        0,
        [
            {"name": "alice", "mechanisms": {"SCRAM-SHA-256": 4096, "SCRAM-SHA-512": 4096}},
            {"name": "bob", "mechanisms": {"SCRAM-SHA-512": 8192}},
        ],
    )
    code, out, _ = users(capsys, monkeypatch, tmp_path, "list")
    assert out.splitlines()[2].split() == ["bob", "SCRAM-SHA-512", "8192"]

    code, out, _ = users(capsys, monkeypatch, tmp_path, "delete", "alice")
    assert (code, out) == (0, "user alice: deleted SCRAM-SHA-256, SCRAM-SHA-512\n")
    assert list(user_credentials(parse_document(document(tmp_path)))) == ["bob"]


@pytest.mark.parametrize(
    ("argv", "stdin", "code", "message"),
    [
        (("add", "alice"), "\n", 2, "empty password"),
        (("add", "alice"), "", 2, "empty password"),
        (("add", "alice", "--iterations", "100"), "pw\n", 2, "--iterations: must be in"),
        (("add", "alice", "--mechanism", "MD5"), "pw\n", 2, "expected one of"),
        (("add", ""), "pw\n", 1, "empty user name"),
        (("delete", "nobody"), "", 1, "no such user name=nobody"),
    ],
)
def test_user_mistakes_are_one_line_and_a_non_zero_exit(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: tuple[str, ...],
    stdin: str,
    code: int,
    message: str,
) -> None:
    (tmp_path / "objects").mkdir()
    got, out, err = users(capsys, monkeypatch, tmp_path, *argv, stdin=stdin)
    assert (got, out) == (code, "")
    assert message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and "pw" not in err.replace("password", "")


def test_list_of_a_missing_bucket_is_an_error_not_a_new_bucket(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = users(capsys, monkeypatch, tmp_path / "nope", "list")
    assert code == 1 and "no object store directory" in err
    assert not (tmp_path / "nope").exists()
