"""The verifier: recompute every read model from the write model and compare.

Owns: the expected content of each projection's compared tables, computed from the write
model (the source of truth: the `payments` table and, for per-event history, the outbox
written in the same transactions), and the comparison. Guarantees: a report counts every
row that is missing, extra or different, plus every outbox event the projection has not
applied (or applied that the outbox does not hold), and for the ledger every currency
whose debits differ from its credits. `ok` only when all of those are zero and lag is 0.

The receipts stage is checked the same way (`check_receipts`): exactly one committed
receipt per payment captured in full (the payments table says which), carrying the
event id of that capture (the outbox says which), and none for any other payment.

The last run's verdict is kept in the data dir (`save_result`, `verifier.json`: ok,
mismatches, lag, when), so that the API's `/metrics` can export it; `load_result`
reads it back, and takes a missing or unreadable file as "never ran".
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tidelog.payments import events as ev
from tidelog.payments.process_manager import Receipt, qualifies
from tidelog.payments.projection_runner import lag, stored_offsets
from tidelog.payments.projections import Projection, all_projections, utc_day
from tidelog.payments.sqlite_db import connect

Row = tuple[object, ...]


@dataclass
class ProjectionReport:
    name: str
    rows_checked: int = 0
    mismatches: int = 0
    lag: int = 0
    events_applied: int = 0
    dead_letters: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and self.lag == 0


def compare(
    table: str,
    key_len: int,
    expected: Iterable[Row],
    actual: Iterable[Row],
    report: ProjectionReport,
) -> None:
    want = {row[:key_len]: row for row in expected}
    got = {row[:key_len]: row for row in actual}
    for key in want.keys() | got.keys():
        report.rows_checked += 1
        if want.get(key) != got.get(key):
            report.mismatches += 1
            if len(report.examples) < 5:
                report.examples.append(
                    f"{table} key={key} expected={want.get(key)} actual={got.get(key)}"
                )


def _events(write: sqlite3.Connection) -> list[dict[str, object]]:
    return [json.loads(p) for (p,) in write.execute("SELECT payload FROM outbox ORDER BY seq")]


def expected_tables(write: sqlite3.Connection, name: str) -> dict[str, list[Row]]:
    if name == "payment_status":
        return {
            "payment_status": write.execute(
                "SELECT payment_id, merchant_id, customer_id, currency, status, on_hold,"
                " authorized, captured, refunded, charged_back, version FROM payments"
            ).fetchall(),
            "payment_history": [
                (e["payment_id"], e["version"], e["type"], e["amount"], e["status"])
                for e in _events(write)
            ],
        }
    if name == "merchant":
        settlement: dict[Row, list[int]] = defaultdict(lambda: [0, 0, 0])
        slot = {"PaymentCaptured": 0, "RefundInitiated": 1, "ChargebackOpened": 2}
        for e in _events(write):
            if e["type"] in slot:
                key = (e["merchant_id"], e["currency"], utc_day(int(str(e["occurred_at"]))))
                settlement[key][slot[str(e["type"])]] += int(str(e["amount"]))
        return {
            "merchant_balances": write.execute(
                "SELECT merchant_id, currency, COUNT(*), SUM(authorized), SUM(captured),"
                " SUM(refunded), SUM(charged_back), SUM(released) FROM payments"
                " GROUP BY merchant_id, currency"
            ).fetchall(),
            "settlement": [(*k, *v) for k, v in settlement.items()],
        }
    if name == "ledger":
        return {"ledger_balances": _expected_ledger(write)}
    if name == "risk":
        return {
            "risk_payments": write.execute(
                "SELECT payment_id, merchant_id, on_hold, holds, charged_back > 0, charged_back"
                " FROM payments WHERE holds > 0 OR charged_back > 0"
            ).fetchall(),
            "risk_merchants": write.execute(
                "SELECT merchant_id, currency, COUNT(*), SUM(holds), SUM(charged_back > 0),"
                " SUM(charged_back) FROM payments GROUP BY merchant_id, currency"
            ).fetchall(),
        }
    raise KeyError(name)


def _expected_ledger(write: sqlite3.Connection) -> list[Row]:
    """Account balances from payment totals (not from events): the independent check."""
    acc: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])

    def post(account: str, currency: str, debit: int, credit: int) -> None:
        acc[(account, currency)][0] += debit
        acc[(account, currency)][1] += credit

    for m, cur, auth, cap, ref, cb, rel in write.execute(
        "SELECT merchant_id, currency, authorized, captured, refunded, charged_back, released"
        " FROM payments"
    ):
        post("authorizations_open", cur, auth, cap + rel)
        post(f"merchant_auth_holds:{m}", cur, cap + rel, auth)
        post("scheme_receivable", cur, cap, ref)
        post(f"merchant_payable:{m}", cur, ref + cb, cap)
        post("chargebacks_payable", cur, 0, cb)
    return [(a, c, d, k) for (a, c), (d, k) in acc.items() if d or k]


def verify_projection(
    write: sqlite3.Connection,
    projection: Projection,
    read: sqlite3.Connection,
    high: dict[int, int],
) -> ProjectionReport:
    report = ProjectionReport(projection.name)
    read.execute("BEGIN")  # one consistent snapshot of the read model for all queries
    try:
        expected = expected_tables(write, projection.name)
        for compared in projection.compared:
            actual = read.execute(compared.query()).fetchall()
            compare(compared.table, len(compared.key), expected[compared.table], actual, report)
        outbox_ids = {i for (i,) in write.execute("SELECT event_id FROM outbox")}
        applied = {i for (i,) in read.execute("SELECT event_id FROM applied_events")}
        report.events_applied = len(applied)
        report.rows_checked += len(outbox_ids | applied)
        missing, extra = outbox_ids - applied, applied - outbox_ids
        report.mismatches += len(missing) + len(extra)
        if missing:
            report.examples.append(f"{len(missing)} events not applied e.g. {min(missing)}")
        if projection.name == "ledger":
            _check_balanced(read, report)
        report.dead_letters = read.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
        report.lag = lag(stored_offsets(read), high)
    finally:
        read.execute("COMMIT")
    return report


def _check_balanced(read: sqlite3.Connection, report: ProjectionReport) -> None:
    for table, d, c in (
        ("ledger_entries", "debit", "credit"),
        ("ledger_balances", "debits", "credits"),
    ):
        for currency, debits, credits in read.execute(
            f"SELECT currency, SUM({d}), SUM({c}) FROM {table} GROUP BY currency"
        ):
            report.rows_checked += 1
            if debits != credits:
                report.mismatches += 1
                report.examples.append(
                    f"{table} unbalanced currency={currency} debits={debits} credits={credits}"
                )


def verify_all(write_path: Path, read_dir: Path, high: dict[int, int]) -> list[ProjectionReport]:
    write = connect(write_path, readonly=True)
    reports = []
    try:
        for projection in all_projections():
            read = connect(read_dir / f"{projection.name}.db", readonly=True)
            try:
                reports.append(verify_projection(write, projection, read, high))
            finally:
                read.close()
    finally:
        write.close()
    return reports


def expected_receipts(write: sqlite3.Connection) -> dict[str, str]:
    """Payment id -> event id of the capture that completed it, for every payment captured
    in full: the set from the payments table, the event from the outbox."""
    full = write.execute(
        "SELECT payment_id FROM payments WHERE authorized > 0 AND captured = authorized"
    )
    completed = {
        e.payment_id: e.event_id
        for e in (ev.decode_event(p) for (p,) in write.execute("SELECT payload FROM outbox"))
        if qualifies(e)
    }
    return {pid: completed.get(pid, "(no such event in the outbox)") for (pid,) in full}


def check_receipts(
    expected: dict[str, str], receipts: Iterable[Receipt], lag: int
) -> ProjectionReport:
    """Every payment in `expected` has exactly one receipt, from its completing capture;
    no other payment has one. `lag`: input records the stage has not committed."""
    report = ProjectionReport("receipts", lag=lag)
    got: dict[str, list[Receipt]] = defaultdict(list)
    for r in receipts:
        got[r.payment_id].append(r)
        report.events_applied += 1
    for pid in sorted(expected.keys() | got.keys()):
        report.rows_checked += 1
        found, want = got.get(pid, []), expected.get(pid)
        if want is None:
            bad, why = len(found), f"receipt for a payment not captured in full count={len(found)}"
        elif not found:
            bad, why = 1, "no receipt for a payment captured in full"
        elif len(found) > 1:
            bad, why = len(found) - 1, f"duplicate receipts count={len(found)}"
        elif found[0].source_event_id != want:
            bad, why = 1, f"receipt from event={found[0].source_event_id} expected={want}"
        else:
            continue
        report.mismatches += bad
        if len(report.examples) < 5:
            report.examples.append(f"{why} payment_id={pid}")
    return report


def verify_receipts(write_path: Path, receipts: Iterable[Receipt], lag: int) -> ProjectionReport:
    write = connect(write_path, readonly=True)
    try:
        return check_receipts(expected_receipts(write), receipts, lag)
    finally:
        write.close()


@dataclass(frozen=True)
class VerifierResult:
    ok: bool
    mismatches: int
    lag: int
    at: float  # Unix time the run finished


def save_result(path: Path, reports: list[ProjectionReport], at: float | None = None) -> None:
    """Replace `path` with this run's verdict (atomically: a reader sees old or new)."""
    result = VerifierResult(
        ok=all(r.ok for r in reports),
        mismatches=sum(r.mismatches for r in reports),
        lag=sum(r.lag for r in reports),
        at=time.time() if at is None else at,
    )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(result)) + "\n")
    os.replace(tmp, path)


def load_result(path: Path) -> VerifierResult | None:
    try:
        data = json.loads(path.read_text())
        return VerifierResult(
            ok=bool(data["ok"]),
            mismatches=int(data["mismatches"]),
            lag=int(data["lag"]),
            at=float(data["at"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def render(reports: list[ProjectionReport]) -> str:
    head = ("projection", "rows checked", "mismatches", "lag", "events applied", "dead letters")
    rows = [head] + [
        (
            r.name,
            str(r.rows_checked),
            str(r.mismatches),
            str(r.lag),
            str(r.events_applied),
            str(r.dead_letters),
        )
        for r in reports
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    for r in reports:
        lines.extend(f"  ! {r.name}: {example}" for example in r.examples)
    stage = any(r.name == "receipts" for r in reports)
    lines.append(
        "PASS: every read model matches the write model"
        + (", one receipt per payment captured in full" if stage else "")
        if all(r.ok for r in reports)
        else "FAIL: a read model differs from the write model (or is behind)"
        + (", or the receipts are wrong" if stage else "")
    )
    return "\n".join(lines)
