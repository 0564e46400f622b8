"""The broker's status page (`/` on --http-listen) in headless chromium: it shows the
test's topic with its end offset and the test's group with the right lag, and the
browser logs no console error and fetches nothing from off this machine."""

from __future__ import annotations

import re
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata
from playwright.sync_api import expect

from tests.integration.broker_process import BrokerProcess
from tests.integration.browser import BrowserPage
from tests.integration.topic_requests import create_topic
from tidelog.protocol.errors import ErrorCode

RECORDS = 10
COMMITTED = 4


def test_status_page_shows_topics_groups_and_lag_without_console_errors(
    tmp_path: Path, brokers: list[BrokerProcess], browser_page: BrowserPage
) -> None:
    broker = BrokerProcess(tmp_path / "a").start()
    brokers.append(broker)
    topic, group = "status-topic", "status-<b>group</b>"  # a name the page must not parse
    assert create_topic(broker.bootstrap, topic, 1)[0] == ErrorCode.none
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    try:
        for i in range(RECORDS):
            producer.send(topic, f"v{i}".encode(), partition=0)
        producer.flush()
    finally:
        producer.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group)
    try:
        consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(COMMITTED, None, -1)})
    finally:
        consumer.close()

    page = browser_page.page
    page.goto(broker.http_url + "/")
    expect(page.locator("#summary")).to_contain_text("ready")
    topic_row = page.locator("#topics tr", has_text=topic)
    expect(topic_row).to_have_count(1)
    # partition 0, led by node 1, log start 0, end offset RECORDS
    expect(topic_row.locator("td")).to_have_text(
        [topic, "0", "1", "0", str(RECORDS), re.compile(r"B$"), ""]
    )
    expect(page.locator("#groups tr", has_text=group)).to_contain_text(str(RECORDS - COMMITTED))
    partition_row = page.locator("#groups tr", has_text=f"{topic}-0")
    expect(partition_row.locator("td").last).to_have_text(str(RECORDS - COMMITTED))
    expect(page.locator("#members tr", has_text="(this)")).to_have_count(1)
    expect(page.locator("#store")).to_contain_text("put_if_absent")
    assert page.locator("#groups b").count() == 0  # the group's name stayed text
    assert browser_page.problems() == []
