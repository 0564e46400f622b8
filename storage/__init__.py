"""Storage: object stores, the write-ahead log, the commit log in the bucket and partition logs."""
