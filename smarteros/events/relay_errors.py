"""Which producer errors are a message's own fault, and which are the broker's or the network's.

A message's own fault (too large, an invalid topic name, a record the broker rejects) fails the
same way on every attempt: retrying it would block everything behind it, so the relay sets it
aside. Anything else (broker down, timeouts, leadership changes, a fatal producer state) is
retried with the whole batch.
"""

from __future__ import annotations

from confluent_kafka import KafkaError

MESSAGE_FAULTS = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,  # the broker's answer, and the client's own check
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_MSG,  # corrupt message
        KafkaError.TOPIC_EXCEPTION,  # an invalid topic name
        KafkaError.INVALID_TIMESTAMP,
        KafkaError._INVALID_ARG,
    }
)


# A topic the broker does not have: the message's fault when the catalog does not know the topic
# either (nothing will create it); a catalog topic is created by the relay, so that is transient.
MISSING_TOPIC = frozenset({KafkaError._UNKNOWN_TOPIC, KafkaError.UNKNOWN_TOPIC_OR_PART})


def is_message_fault(error: KafkaError, *, catalog_topic: bool) -> bool:
    """True when `error` is the message's own fault: the broker will refuse it every time."""
    if error.fatal():
        return False
    return error.code() in MESSAGE_FAULTS or (error.code() in MISSING_TOPIC and not catalog_topic)
