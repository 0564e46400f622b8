"""Admin and offline tools: they speak only the Kafka protocol or only read the bucket.

client.py (a small Kafka admin client over kio's schemas, through `protocol/`),
txn_client.py (its transaction queries), topic_client.py (its topic requests),
topics.py (`tidelog topics`), groups.py (`tidelog groups`),
transactions.py (`tidelog transactions`), inspect.py (`tidelog inspect`, reads the bucket and a WAL:
report.py holds the facts, bucket_report.py and wal_report.py gather them,
report_text.py renders them).
Nothing here imports the broker's server, handlers or coordinator.
"""
