package broker_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kchaos/kchaos/broker/brokertest"
)

// Real clients round-trip records through one broker process: every acknowledged (partition,
// offset, value) is read back exactly, in order, by an independent consumer.

const (
	roundTripPartitions = 4
	roundTripRecords    = 2000
)

func saramaConfig(version sarama.KafkaVersion, codec sarama.CompressionCodec) *sarama.Config {
	cfg := sarama.NewConfig()
	if version != (sarama.KafkaVersion{}) {
		cfg.Version = version
	}
	cfg.ClientID = "kchaos-test"
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForLocal
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Compression = codec
	cfg.Producer.Flush.Messages = 50
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	return cfg
}

var saramaCodecs = []struct {
	name  string
	codec sarama.CompressionCodec
}{
	{"none", sarama.CompressionNone},
	{"gzip", sarama.CompressionGZIP},
	{"snappy", sarama.CompressionSnappy},
	{"lz4", sarama.CompressionLZ4},
	{"zstd", sarama.CompressionZSTD},
}

var saramaVersions = []struct {
	name    string
	version sarama.KafkaVersion
}{
	{"default", sarama.KafkaVersion{}},
	{"4.0", sarama.V4_0_0_0},
}

func TestSaramaSyncProducer(t *testing.T) {
	p := brokertest.Start(t)
	admin := newClient(t, p.Addr())
	for _, v := range saramaVersions {
		for _, c := range saramaCodecs {
			if v.name == "default" && c.name != "none" && c.name != "zstd" {
				continue // the codecs are covered at 4.0; the default version checks its framing
			}
			t.Run("version="+v.name+",codec="+c.name, func(t *testing.T) {
				topic := "sarama-sync-" + v.name + "-" + c.name
				createTopic(t, admin, topic, roundTripPartitions, nil)
				cfg := saramaConfig(v.version, c.codec)
				prod, err := sarama.NewSyncProducer([]string{p.Addr()}, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer prod.Close()
				var acked []rec
				const perCall = 100
				for i := 0; i < roundTripRecords; i += perCall {
					var msgs []*sarama.ProducerMessage
					for j := i; j < i+perCall; j++ {
						msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: int32(j % roundTripPartitions), Value: sarama.StringEncoder(value(topic, j, 100))})
					}
					if err := prod.SendMessages(msgs); err != nil {
						t.Fatalf("SendMessages: %v", err)
					}
					for _, m := range msgs {
						v, _ := m.Value.Encode()
						acked = append(acked, rec{m.Partition, m.Offset, string(v)})
					}
				}
				checkRoundTrip(t, acked, saramaReadAll(t, p.Addr(), cfg, topic, roundTripPartitions))
			})
		}
	}
}

func TestSaramaAsyncProducer(t *testing.T) {
	p := brokertest.Start(t)
	admin := newClient(t, p.Addr())
	for _, v := range saramaVersions {
		for _, c := range []int{0, 3} { // none, lz4
			codec := saramaCodecs[c]
			t.Run("version="+v.name+",codec="+codec.name, func(t *testing.T) {
				topic := "sarama-async-" + v.name + "-" + codec.name
				createTopic(t, admin, topic, roundTripPartitions, nil)
				cfg := saramaConfig(v.version, codec.codec)
				prod, err := sarama.NewAsyncProducer([]string{p.Addr()}, cfg)
				if err != nil {
					t.Fatal(err)
				}
				var acked []rec
				var failed []error
				var wg sync.WaitGroup
				wg.Add(2)
				go func() {
					defer wg.Done()
					for m := range prod.Successes() {
						v, _ := m.Value.Encode()
						acked = append(acked, rec{m.Partition, m.Offset, string(v)})
					}
				}()
				go func() {
					defer wg.Done()
					for e := range prod.Errors() {
						failed = append(failed, e)
					}
				}()
				for i := 0; i < roundTripRecords; i++ {
					prod.Input() <- &sarama.ProducerMessage{Topic: topic, Partition: int32(i % roundTripPartitions), Value: sarama.StringEncoder(value(topic, i, 100))}
				}
				prod.AsyncClose()
				wg.Wait()
				if len(failed) > 0 {
					t.Fatalf("%d produce errors, first: %v", len(failed), failed[0])
				}
				if len(acked) != roundTripRecords {
					t.Fatalf("%d of %d records acknowledged", len(acked), roundTripRecords)
				}
				checkRoundTrip(t, acked, saramaReadAll(t, p.Addr(), cfg, topic, roundTripPartitions))
			})
		}
	}
}

// saramaReadAll reads partitions 0..n-1 of topic with Sarama partition consumers up to their
// high watermarks.
func saramaReadAll(t *testing.T, addr string, cfg *sarama.Config, topic string, n int32) map[int32][]rec {
	t.Helper()
	cons, err := sarama.NewConsumer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	admin := newClient(t, addr)
	out := map[int32][]rec{}
	for p := int32(0); p < n; p++ {
		end := listOffset(t, admin, topic, p, -1).Offset
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("ConsumePartition %d: %v", p, err)
		}
		timeout := time.After(30 * time.Second)
		for len(out[p]) == 0 || out[p][len(out[p])-1].Offset < end-1 {
			select {
			case m := <-pc.Messages():
				out[p] = append(out[p], rec{m.Partition, m.Offset, string(m.Value)})
			case err := <-pc.Errors():
				t.Fatalf("consume partition %d: %v", p, err)
			case <-timeout:
				t.Fatalf("consume partition %d: timed out after %d records (high watermark %d)", p, len(out[p]), end)
			}
		}
		pc.Close()
	}
	return out
}

func TestFranzGoRoundTrip(t *testing.T) {
	p := brokertest.Start(t)
	admin := newClient(t, p.Addr())
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()},
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()},
		{"zstd", kgo.ZstdCompression()},
	}
	for _, acks := range []struct {
		name string
		acks kgo.Acks
	}{{"1", kgo.LeaderAck()}, {"all", kgo.AllISRAcks()}} {
		for _, c := range codecs {
			t.Run("acks="+acks.name+",codec="+c.name, func(t *testing.T) {
				topic := "franz-" + acks.name + "-" + c.name
				createTopic(t, admin, topic, roundTripPartitions, nil)
				cl := newClient(t, p.Addr(), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(acks.acks),
					kgo.DisableIdempotentWrite(), kgo.ProducerBatchCompression(c.codec),
					kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(time.Millisecond))
				var mu sync.Mutex
				var acked []rec
				var firstErr error
				var wg sync.WaitGroup
				for i := 0; i < roundTripRecords; i++ {
					wg.Add(1)
					r := &kgo.Record{Partition: int32(i % roundTripPartitions), Value: []byte(value(topic, i, 100))}
					cl.Produce(ctx(t, 30*time.Second), r, func(r *kgo.Record, err error) {
						defer wg.Done()
						mu.Lock()
						defer mu.Unlock()
						if err != nil && firstErr == nil {
							firstErr = err
						}
						if err == nil {
							acked = append(acked, rec{r.Partition, r.Offset, string(r.Value)})
						}
					})
				}
				wg.Wait()
				if firstErr != nil {
					t.Fatalf("produce: %v", firstErr)
				}
				checkRoundTrip(t, acked, readAll(t, p.Addr(), topic, roundTripPartitions))
			})
		}
	}
}

func kcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("kcat", args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("kcat: %v", err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("kcat %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("kcat %s: no exit after 30s\n%s", strings.Join(args, " "), stderr.String())
	}
	return stdout.String()
}

func TestKcatRoundTrip(t *testing.T) {
	p := brokertest.Start(t)
	admin := newClient(t, p.Addr())
	const partitions, perPartition = 3, 500
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run("codec="+codec, func(t *testing.T) {
			topic := "kcat-" + codec
			createTopic(t, admin, topic, partitions, nil)
			// kcat -P reports no offsets; a clean exit acknowledges every line, and one
			// producer writing a fresh partition gets offsets 0..n-1 in line order.
			var acked []rec
			for part := int32(0); part < partitions; part++ {
				var in strings.Builder
				for i := 0; i < perPartition; i++ {
					v := value(fmt.Sprintf("%s-p%d", topic, part), i, 80)
					in.WriteString(v + "\n")
					acked = append(acked, rec{part, int64(i), v})
				}
				kcat(t, in.String(), "-P", "-b", p.Addr(), "-t", topic, "-p", strconv.Itoa(int(part)),
					"-X", "compression.codec="+codec, "-X", "acks=all", "-X", "enable.idempotence=false")
			}
			// kcat -C reads with librdkafka; the franz-go reader cross-checks it.
			out := kcat(t, "", "-C", "-b", p.Addr(), "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p %o %s\n")
			checkRoundTrip(t, acked, parseRecordLines(t, "kcat -C", out))
			checkRoundTrip(t, acked, readAll(t, p.Addr(), topic, partitions))
		})
	}
}

// parseRecordLines reads a client's "PARTITION OFFSET VALUE" output lines by partition.
func parseRecordLines(t *testing.T, client, out string) map[int32][]rec {
	t.Helper()
	read := map[int32][]rec{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 3)
		if len(f) != 3 {
			t.Fatalf("%s line %q", client, sc.Text())
		}
		part, err1 := strconv.Atoi(f[0])
		off, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s line %q", client, sc.Text())
		}
		read[int32(part)] = append(read[int32(part)], rec{int32(part), off, f[2]})
	}
	return read
}

func TestKcatMetadata(t *testing.T) {
	p := brokertest.Start(t)
	createTopic(t, newClient(t, p.Addr()), "kcat-meta", 3, nil)
	var md struct {
		Brokers []struct {
			ID   int32  `json:"id"`
			Name string `json:"name"`
		} `json:"brokers"`
		Topics []struct {
			Topic      string `json:"topic"`
			Partitions []struct {
				Partition int32 `json:"partition"`
				Leader    int32 `json:"leader"`
				Replicas  []struct {
					ID int32 `json:"id"`
				} `json:"replicas"`
				ISRs []struct {
					ID int32 `json:"id"`
				} `json:"isrs"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	out := kcat(t, "", "-L", "-J", "-b", p.Addr(), "-t", "kcat-meta")
	if err := json.Unmarshal([]byte(out), &md); err != nil {
		t.Fatalf("kcat -L -J: %v\n%s", err, out)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].ID != 1 || md.Brokers[0].Name != p.Addr() {
		t.Fatalf("brokers: %+v, want node 1 at %s", md.Brokers, p.Addr())
	}
	if len(md.Topics) != 1 || md.Topics[0].Topic != "kcat-meta" || len(md.Topics[0].Partitions) != 3 {
		t.Fatalf("topics: %+v", md.Topics)
	}
	for i, pt := range md.Topics[0].Partitions {
		if pt.Partition != int32(i) || pt.Leader != 1 || len(pt.Replicas) != 1 || len(pt.ISRs) != 1 {
			t.Fatalf("partition %d: %+v", i, pt)
		}
	}
}
