"""S3 Standard list prices (us-east-1, USD) and the month they are priced over.

Owns: the numbers both the broker's status page and `tidelog bench cost` price
object-store traffic with, so the two never disagree. Which request pays which price:
PUT, COPY, POST and LIST are one tier, GET and HEAD the other, DELETE is free.
"""

from __future__ import annotations

PUT_USD_PER_1000 = 0.005
GET_USD_PER_1000 = 0.0004
LIST_USD_PER_1000 = 0.005
DELETE_USD_PER_1000 = 0.0
STORAGE_USD_PER_GB_MONTH = 0.023
MONTH_S = 30 * 86400

# The object store's operations (broker/observability/measured_store.py) by price.
OP_USD_PER_1000 = {
    "put": PUT_USD_PER_1000,
    "put_if_absent": PUT_USD_PER_1000,
    "put_if_match": PUT_USD_PER_1000,
    "list": LIST_USD_PER_1000,
    "get": GET_USD_PER_1000,
    "head": GET_USD_PER_1000,
    "delete": DELETE_USD_PER_1000,
}


def month_usd(rates_per_s: dict[str, float], stored_bytes: int) -> dict[str, float]:
    """A month at these request rates (per second, by op) holding `stored_bytes`."""
    requests = {
        op: rate * MONTH_S * OP_USD_PER_1000.get(op, PUT_USD_PER_1000) / 1000
        for op, rate in rates_per_s.items()
    }
    storage = stored_bytes / 1e9 * STORAGE_USD_PER_GB_MONTH
    return {**requests, "storage": storage, "total": sum(requests.values()) + storage}
