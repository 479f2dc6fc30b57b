"""The publisher's table of delivery errors (undeliverable.classify, docs/transports/kafka.md):
re-sent by a new producer, produced once more, or given up (a dead letter)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from forge_kafka.transport.too_large import BATCH_OF_ONE, size_alone
from forge_kafka.transport.undeliverable import KafkaUndeliverable, Record, classify

RESEND = [KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT, KafkaError._FATAL, KafkaError.UNKNOWN_PRODUCER_ID,
          KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, KafkaError.INVALID_PRODUCER_EPOCH]
GIVE_UP = [KafkaError._MSG_TIMED_OUT, KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.UNKNOWN_TOPIC_OR_PART,
           KafkaError._UNKNOWN_TOPIC, KafkaError.INVALID_RECORD, KafkaError.INVALID_MSG,
           KafkaError.RECORD_LIST_TOO_LARGE, KafkaError.NOT_ENOUGH_REPLICAS,
           KafkaError.CLUSTER_AUTHORIZATION_FAILED, KafkaError._FAIL]


@pytest.mark.parametrize("code", RESEND)
def test_what_a_new_producer_can_deliver_is_re_sent_unless_the_transport_closes(code: int) -> None:
    assert classify(KafkaError(code)) == "resend"
    assert classify(KafkaError(code), retried=True) == "resend"
    assert classify(KafkaError(code), giving_up=True) == "give_up"


def test_a_fatal_error_is_re_sent_whatever_its_code() -> None:
    assert classify(KafkaError(KafkaError._FAIL, fatal=True)) == "resend"


def test_a_batch_too_large_for_the_topic_is_produced_once_more_then_given_up() -> None:
    assert classify(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)) == "retry"
    assert classify(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), retried=True) == "give_up"
    assert classify(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), giving_up=True) == "give_up"


@pytest.mark.parametrize("code", GIVE_UP)
def test_every_other_final_report_is_given_up(code: int) -> None:
    assert classify(KafkaError(code)) == "give_up"


def test_the_error_names_code_topic_partition_size_and_broker() -> None:
    error = KafkaUndeliverable("kafka", KafkaError(KafkaError._MSG_TIMED_OUT), "plant.m1.reading", 2, 340,
                               "127.0.0.1:9092")
    text = str(error)
    for part in ("'kafka'", "_MSG_TIMED_OUT", "'plant.m1.reading'", "partition 2", "340 bytes", "127.0.0.1:9092"):
        assert part in text
    assert (error.code, error.topic, error.partition, error.size) == (KafkaError._MSG_TIMED_OUT, "plant.m1.reading",
                                                                       2, 340)
    assert "no partition" in str(KafkaUndeliverable("kafka", KafkaError(KafkaError._FAIL), "t", -1, 1, "b"))


def test_a_record_alone_is_measured_with_its_key_and_headers() -> None:
    assert size_alone(b"x" * 100, b"key", None) == BATCH_OF_ONE + 103
    assert size_alone(b"x" * 100, None, [("content-type", b"ab")]) == BATCH_OF_ONE + 100 + len("content-type") + 2 + 4
    record = Record("t", b"v", b"k", 3)
    assert (record.topic(), record.value(), record.key(), record.partition()) == ("t", b"v", b"k", 3)
