"""librdkafka through confluent-kafka (Debian python3-confluent-kafka) as a test client of the
kchaos broker.

usage: confluent_kafka_client.py offsets-for-times BOOTSTRAP TOPIC PARTITION TIMESTAMP...
           prints "TIMESTAMP OFFSET" per timestamp (-1 when none)
       confluent_kafka_client.py consume BOOTSTRAP TOPIC PARTITIONS COUNT
           reads partitions 0..PARTITIONS-1 from the start until COUNT records arrived and
           prints "PARTITION OFFSET VALUE" per record

Exits non-zero with a message on any failure, including a missing confluent_kafka module.
"""
import sys
import time

try:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
except ImportError as e:
    sys.exit("confluent-kafka (Debian package python3-confluent-kafka) is not importable by %s: %s"
             % (sys.executable, e))

TIMEOUT_S = 30


def consumer(bootstrap):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": "kchaos-test",
                     "enable.auto.commit": False, "auto.offset.reset": "earliest"})


def offsets_for_times(bootstrap, topic, partition, timestamps):
    c = consumer(bootstrap)
    for ts in timestamps:
        got = c.offsets_for_times([TopicPartition(topic, int(partition), int(ts))], timeout=TIMEOUT_S)[0]
        if got.error is not None:
            sys.exit("confluent-kafka offsets_for_times(%s): %s" % (ts, got.error))
        print(ts, got.offset)
    c.close()


def consume(bootstrap, topic, partitions, count):
    c = consumer(bootstrap)
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(int(partitions))])
    want, got = int(count), 0
    deadline = time.time() + TIMEOUT_S
    while got < want:
        if time.time() > deadline:
            sys.exit("confluent-kafka: read %d of %d records in %ds" % (got, want, TIMEOUT_S))
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error() is not None:
            raise KafkaException(m.error())
        print(m.partition(), m.offset(), m.value().decode())
        got += 1
    c.close()


def main(argv):
    if len(argv) >= 6 and argv[1] == "offsets-for-times":
        offsets_for_times(argv[2], argv[3], argv[4], argv[5:])
    elif len(argv) == 6 and argv[1] == "consume":
        consume(*argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
