"""kafka-python (Debian python3-kafka) or librdkafka through confluent-kafka (Debian
python3-confluent-kafka) as a test client of the kchaos broker.

usage: python_client.py CLIENT offsets-for-times BOOTSTRAP TOPIC PARTITION TIMESTAMP...
           prints "TIMESTAMP OFFSET" per timestamp (-1 when none), then the record's
           timestamp when the client reports it
       python_client.py CLIENT consume BOOTSTRAP TOPIC PARTITIONS COUNT
           reads partitions 0..PARTITIONS-1 from the start until COUNT records arrived and
           prints "PARTITION OFFSET VALUE" per record
CLIENT is kafka-python or confluent-kafka. Exits non-zero with a message on any failure,
including a client module that cannot be imported.
"""
import sys
import time

TIMEOUT_S = 30


class KafkaPython:
    """kafka-python's KafkaConsumer."""

    def __init__(self, bootstrap):
        try:
            import kafka
        except ImportError as e:
            sys.exit("kafka-python (Debian package python3-kafka) is not importable by %s: %s" % (sys.executable, e))
        self.kafka = kafka
        self.c = kafka.KafkaConsumer(bootstrap_servers=[bootstrap], enable_auto_commit=False,
                                     request_timeout_ms=20000, api_version_auto_timeout_ms=10000)

    def offset_for_time(self, topic, partition, ts):
        tp = self.kafka.TopicPartition(topic, partition)
        got = self.c.offsets_for_times({tp: ts})[tp]
        return (-1,) if got is None else (got.offset, got.timestamp)

    def assign_from_start(self, topic, partitions):
        tps = [self.kafka.TopicPartition(topic, p) for p in range(partitions)]
        self.c.assign(tps)
        self.c.seek_to_beginning(*tps)

    def poll(self):
        for tp, records in self.c.poll(timeout_ms=500).items():
            for r in records:
                yield tp.partition, r.offset, r.value

    def close(self):
        self.c.close()


class ConfluentKafka:
    """confluent-kafka's Consumer (librdkafka)."""

    def __init__(self, bootstrap):
        try:
            import confluent_kafka
        except ImportError as e:
            sys.exit("confluent-kafka (Debian package python3-confluent-kafka) is not importable by %s: %s"
                     % (sys.executable, e))
        self.ck = confluent_kafka
        self.c = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "kchaos-test",
                                           "enable.auto.commit": False, "auto.offset.reset": "earliest"})

    def offset_for_time(self, topic, partition, ts):
        got = self.c.offsets_for_times([self.ck.TopicPartition(topic, partition, ts)], timeout=TIMEOUT_S)[0]
        if got.error is not None:
            sys.exit("confluent-kafka offsets_for_times(%d): %s" % (ts, got.error))
        return (got.offset,)

    def assign_from_start(self, topic, partitions):
        self.c.assign([self.ck.TopicPartition(topic, p, self.ck.OFFSET_BEGINNING) for p in range(partitions)])

    def poll(self):
        m = self.c.poll(0.5)
        if m is None:
            return
        if m.error() is not None:
            raise self.ck.KafkaException(m.error())
        yield m.partition(), m.offset(), m.value()

    def close(self):
        self.c.close()


CLIENTS = {"kafka-python": KafkaPython, "confluent-kafka": ConfluentKafka}


def offsets_for_times(client, topic, partition, timestamps):
    for ts in timestamps:
        print(ts, *client.offset_for_time(topic, int(partition), int(ts)))


def consume(client, name, topic, partitions, count):
    client.assign_from_start(topic, int(partitions))
    want, got = int(count), 0
    deadline = time.time() + TIMEOUT_S
    while got < want:
        if time.time() > deadline:
            sys.exit("%s: read %d of %d records in %ds" % (name, got, want, TIMEOUT_S))
        for partition, offset, value in client.poll():
            print(partition, offset, value.decode())
            got += 1


def main(argv):
    if len(argv) < 4 or argv[1] not in CLIENTS:
        sys.exit(__doc__)
    name, command, bootstrap, args = argv[1], argv[2], argv[3], argv[4:]
    if command == "offsets-for-times" and len(args) >= 3:
        client = CLIENTS[name](bootstrap)
        offsets_for_times(client, args[0], args[1], args[2:])
    elif command == "consume" and len(args) == 3:
        client = CLIENTS[name](bootstrap)
        consume(client, name, *args)
    else:
        sys.exit(__doc__)
    client.close()


if __name__ == "__main__":
    main(sys.argv)
