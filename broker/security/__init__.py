"""Who a client is and what it may do: listeners, TLS, SASL, credentials, ACLs, audit.

The pieces (docs/security.md):
- `listeners.py`: `--listeners` / `--advertised-listeners`, Kafka's listener syntax;
- `tls.py`: the `ssl.SSLContext` of SSL and SASL_SSL listeners (Python's `ssl`);
- `principal.py`: `User:<name>` as Kafka writes it;
- `credentials.py`: salted SCRAM credentials as the security document holds them;
- `state.py`: `BrokerSecurity`, the one object handlers reach through `node.security`.
The security document itself (users and ACLs, in the bucket) is storage/security_doc.py.
"""
