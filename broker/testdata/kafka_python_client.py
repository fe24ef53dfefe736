"""kafka-python (Debian python3-kafka) as a test client of the kchaos broker.

usage: kafka_python_client.py offsets-for-times BOOTSTRAP TOPIC PARTITION TIMESTAMP...
           prints "TIMESTAMP OFFSET RECORD_TIMESTAMP" per timestamp (-1 -1 when none)
       kafka_python_client.py consume BOOTSTRAP TOPIC PARTITIONS COUNT
           reads partitions 0..PARTITIONS-1 from the start until COUNT records arrived and
           prints "PARTITION OFFSET VALUE" per record

Exits non-zero with a message on any failure, including a missing kafka module.
"""
import sys
import time

try:
    from kafka import KafkaConsumer, TopicPartition
except ImportError as e:
    sys.exit("kafka-python (Debian package python3-kafka) is not importable by %s: %s" % (sys.executable, e))

TIMEOUT_S = 30


def consumer(bootstrap):
    return KafkaConsumer(bootstrap_servers=[bootstrap], enable_auto_commit=False,
                         request_timeout_ms=20000, api_version_auto_timeout_ms=10000)


def offsets_for_times(bootstrap, topic, partition, timestamps):
    c = consumer(bootstrap)
    tp = TopicPartition(topic, int(partition))
    for ts in timestamps:
        got = c.offsets_for_times({tp: int(ts)})[tp]
        if got is None:
            print(ts, -1, -1)
        else:
            print(ts, got.offset, got.timestamp)
    c.close()


def consume(bootstrap, topic, partitions, count):
    c = consumer(bootstrap)
    tps = [TopicPartition(topic, p) for p in range(int(partitions))]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    want, got = int(count), 0
    deadline = time.time() + TIMEOUT_S
    while got < want:
        if time.time() > deadline:
            sys.exit("kafka-python: read %d of %d records in %ds" % (got, want, TIMEOUT_S))
        for tp, records in c.poll(timeout_ms=500).items():
            for r in records:
                print(tp.partition, r.offset, r.value.decode())
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
