"""The broker: asyncio server, one handler per Kafka API, configuration and CLI."""
