"""`tidelog drill`: failure drills on throw-away brokers, one module per scenario.

records.py (payments, acks, the pure verdict), narration.py, processes.py (broker
subprocesses as black boxes), load.py (the Kafka clients), stores.py (file or S3 bucket,
and the means to cut it), harness.py (what every scenario shares), cli.py (options and
the scenario table), then one module per scenario: replace.py, zombie.py, outage.py.
"""
