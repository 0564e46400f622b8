"""`tidelog drill`: failure drills on throw-away brokers, one module per scenario.

records.py (payments, acks, the pure verdict), narration.py, processes.py (what a drill
asks of and reads from its broker subprocesses, started by tidelog.broker.processes),
load.py (the Kafka clients), stores.py (file or S3 bucket, and the means to cut it),
harness.py (what every scenario shares: the prelude that starts the brokers and the load,
the common report), cli.py (options and the scenario table), then one module per
scenario: replace.py, zombie.py, outage.py, scale.py.
"""
