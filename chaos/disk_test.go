package chaos

import (
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/kchaos/kchaos/broker/brokertest"
	"github.com/kchaos/kchaos/broker/local"
	"github.com/kchaos/kchaos/broker/storage/faultfs"
	"github.com/kchaos/kchaos/internal/testkit"
)

// diskNode is one single-node broker process for disk fault tests, with a raw Kafka client
// and a topic "d" of one partition.
type diskNode struct {
	t     *testing.T
	node  *local.Node
	drv   *Local
	reg   *Registry
	cl    *kgo.Client
	value int // next record value
}

func startDiskNode(t *testing.T) *diskNode {
	t.Helper()
	bin, err := brokertest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := local.StartNode(ctx, local.NodeConfig{ID: 1, DataDir: filepath.Join(dir, "data"),
		LogPath: filepath.Join(dir, "broker.log"), Binary: bin, Listen: "127.0.0.1:0", StopTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := &diskNode{t: t, node: n, reg: reg, drv: &Local{Nodes: map[int32]Process{1: n}}}
	t.Cleanup(func() {
		if err := reg.Heal(context.Background()); err != nil {
			t.Error(err)
		}
		reg.Close()
		if d.cl != nil {
			d.cl.Close()
		}
		n.Stop()
		if _, err := os.Stat(filepath.Join(n.DataDir, faultfs.ControlFile)); err == nil {
			t.Error("the disk fault control file is still there after heal")
		}
		if t.Failed() {
			t.Logf("broker log:\n%s", n.Log())
		}
	})
	d.connect()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "d", 1, 1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, d.cl)
	if err != nil || kerr.ErrorForCode(resp.Topics[0].ErrorCode) != nil {
		t.Fatalf("create topic: %v %v", err, resp)
	}
	return d
}

// connect (re)creates the client, e.g. after the broker restarted.
func (d *diskNode) connect() {
	if d.cl != nil {
		d.cl.Close()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(d.node.Addr()), kgo.RequestRetries(0), kgo.MaxVersions(kversion.V3_0_0()))
	if err != nil {
		d.t.Fatal(err)
	}
	d.cl = cl
}

// recordBatch encodes one v2 batch whose records carry the values given.
func recordBatch(values []string) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(v), TimestampDelta64: 0}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: int32(len(values) - 1), ProducerID: -1, ProducerEpoch: -1,
		FirstSequence: -1, NumRecords: int32(len(values)), Records: recs,
		FirstTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli()}
	b.Length = int32(len(b.AppendTo(nil)) - 12)
	raw := b.AppendTo(nil)
	b.CRC = int32(crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}

// produce sends n records with acks=1 in one Produce request and returns the partition's
// error (nil: acknowledged), the base offset and the request's latency.
func (d *diskNode) produce(n int) (error, int64, time.Duration) {
	d.t.Helper()
	vals := make([]string, n)
	for i := range vals {
		vals[i] = fmt.Sprintf("v%d", d.value)
		d.value++
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = 1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "d"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = recordBatch(vals)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := req.RequestWith(ctx, d.cl)
	took := time.Since(start)
	if err != nil {
		d.t.Fatalf("produce: %v", err)
	}
	p := resp.Topics[0].Partitions[0]
	return kerr.ErrorForCode(p.ErrorCode), p.BaseOffset, took
}

// mustProduce produces n records that must be acknowledged, returning their base offset.
func (d *diskNode) mustProduce(n int) int64 {
	d.t.Helper()
	err, off, _ := d.produce(n)
	if err != nil {
		d.t.Fatalf("produce: %v", err)
	}
	return off
}

// readAll fetches the partition from offset 0 to its end and returns the record values.
func (d *diskNode) readAll() []string {
	d.t.Helper()
	var out []string
	for off := int64(0); ; {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MaxBytes, req.ReplicaID = 0, 1<<20, -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "d"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes = off, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(context.Background(), d.cl)
		if err != nil {
			d.t.Fatalf("fetch: %v", err)
		}
		p := resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			d.t.Fatalf("fetch at %d: %v", off, err)
		}
		fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: "d", Offset: off}, &p, kgo.DefaultDecompressor(), nil)
		for _, r := range fp.Records {
			if r.Offset != int64(len(out)) {
				d.t.Fatalf("record at offset %d after %d records", r.Offset, len(out))
			}
			out = append(out, string(r.Value))
			off = r.Offset + 1
		}
		if off >= p.HighWatermark || len(fp.Records) == 0 {
			return out
		}
	}
}

func values(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("v%d", i))
	}
	return out
}

func TestDiskFullAnswersStorageErrorThenRecovers(t *testing.T) {
	d := startDiskNode(t)
	d.mustProduce(10)
	ctx := context.Background()
	applied := time.Now()
	if err := d.drv.Apply(ctx, d.reg, 1, Fault{Kind: DiskFull}, Resolved{Nodes: []int32{1}}); err != nil {
		t.Fatal(err)
	}
	applyTook := time.Since(applied)
	var refused int
	effect := until(t, "produce answered KAFKA_STORAGE_ERROR", 5*time.Second, func() bool {
		err, _, _ := d.produce(1)
		if err == nil {
			return false
		}
		if err != kerr.KafkaStorageError {
			t.Fatalf("produce on a full disk: %v, want KAFKA_STORAGE_ERROR", err)
		}
		refused++
		return true
	})
	for range 5 {
		if err, _, _ := d.produce(1); err != kerr.KafkaStorageError {
			t.Fatalf("produce while the disk is still full: %v", err)
		}
		refused++
	}
	// The records acknowledged before the disk filled up are still readable.
	before := d.readAll()
	healStart := time.Now()
	if err := d.reg.UndoFault(ctx, 1); err != nil {
		t.Fatal(err)
	}
	undoTook := time.Since(healStart)
	heal := until(t, "produce acknowledged after space returned", 5*time.Second, func() bool {
		err, _, _ := d.produce(1)
		return err == nil
	})
	t.Logf("disk-full: takes effect %v after Apply began (Apply %v + first refused produce %v); heals %v after undo began (undo %v + first acknowledged produce %v); %d produces refused",
		applyTook+effect, applyTook, effect, undoTook+heal, undoTook, heal, refused)
	off := d.mustProduce(3)
	got := d.readAll()
	if len(before) < 10 || !slices.Equal(got[:len(before)], before) {
		t.Fatalf("log before heal %v is not a prefix of the log after %v", before, got)
	}
	if int64(len(got)) != off+3 {
		t.Fatalf("log has %d records, last produce ended at %d", len(got), off+3)
	}
}

// medianProduce is the median latency of n single-record acks=1 produces.
func (d *diskNode) medianProduce(n int) time.Duration {
	var ls []time.Duration
	for range n {
		err, _, took := d.produce(1)
		if err != nil {
			d.t.Fatalf("produce: %v", err)
		}
		ls = append(ls, took)
	}
	slices.Sort(ls)
	return ls[n/2]
}

func TestDiskSlowRaisesProduceLatency(t *testing.T) {
	d := startDiskNode(t)
	base := d.medianProduce(10)
	const delay = 100 * time.Millisecond
	ctx := context.Background()
	f := Fault{Kind: DiskSlow, Params: map[string]string{"delay": delay.String()}}
	applied := time.Now()
	if err := d.drv.Apply(ctx, d.reg, 2, f, Resolved{Nodes: []int32{1}}); err != nil {
		t.Fatal(err)
	}
	applyTook := time.Since(applied)
	effect := until(t, "produce slowed down", 5*time.Second, func() bool {
		_, _, took := d.produce(1)
		return took >= delay
	})
	slow := d.medianProduce(5)
	if slow < base+delay*8/10 || slow > base+delay*3 {
		t.Fatalf("median produce latency %v on a disk slowed by %v (baseline %v)", slow, delay, base)
	}
	undone := time.Now()
	if err := d.reg.UndoFault(ctx, 2); err != nil {
		t.Fatal(err)
	}
	undoTook := time.Since(undone)
	heal := until(t, "produce fast again", 5*time.Second, func() bool {
		_, _, took := d.produce(1)
		return took < delay/2
	})
	after := d.medianProduce(10)
	t.Logf("disk-slow %v: produce p50 %v before, %v during, %v after; Apply %v then the first produce slowed (%v incl. that produce); undo %v then the first fast produce after %v",
		delay, base, slow, after, applyTook, effect, undoTook, heal)
	if after > base+delay/2 {
		t.Fatalf("median produce latency %v after heal, baseline %v", after, base)
	}
}

func TestDiskLoseUnsyncedLosesAcknowledgedRecords(t *testing.T) {
	rng := testkit.Rand(t)
	d := startDiskNode(t)
	durable := 5 + rng.IntN(20)
	d.mustProduce(durable)
	// A graceful restart flushes and closes the log: these records are fsynced.
	if err := d.node.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.node.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	d.connect()
	// acks=1 with the default flush settings: acknowledged, but in the page cache only.
	unsynced := 5 + rng.IntN(20)
	for range unsynced {
		d.mustProduce(1)
	}
	if got := len(d.readAll()); got != durable+unsynced {
		t.Fatalf("%d records before the fault, want %d", got, durable+unsynced)
	}
	start := time.Now()
	if err := d.drv.Apply(ctx, d.reg, 3, Fault{Kind: LoseUnsynced}, Resolved{Nodes: []int32{1}}); err != nil {
		t.Fatal(err)
	}
	restarted := time.Since(start)
	d.connect()
	var got []string
	serve := until(t, "restarted broker serves the partition", 10*time.Second, func() bool {
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "d"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, d.cl)
		return err == nil && resp.Topics[0].Partitions[0].ErrorCode == 0
	})
	got = d.readAll()
	t.Logf("lose-unsynced: %d fsynced + %d acknowledged un-fsynced records; %d survive; kill+drop+restart took %v, serving %v later",
		durable, unsynced, len(got), restarted, serve)
	if !slices.Equal(got, values(0, durable)) {
		t.Fatalf("after power loss the log holds %d records %v, want exactly the %d fsynced ones", len(got), got, durable)
	}
	if off := d.mustProduce(2); off != int64(durable) {
		t.Fatalf("produce after recovery at offset %d, want %d", off, durable)
	}
	if pending := d.reg.Pending(); len(pending) != 0 {
		t.Fatalf("changes left pending: %+v", pending)
	}
}

func TestDiskHealDirClearsControlFile(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := faultfs.SetMode(data, faultfs.Mode{Full: true}); err == nil {
		t.Fatal("SetMode wrote into a missing data directory")
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := faultfs.SetMode(data, faultfs.Mode{Full: true}); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(data, "precious")
	if err := os.WriteFile(other, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	reg.Add(Record{Fault: 1, Action: "disk-fault", Node: 1, Path: filepath.Join(data, faultfs.ControlFile), Undo: "clear"}, nil)
	reg.Add(Record{Fault: 2, Action: "disk-fault", Node: 1, Path: other, Undo: "clear"}, nil)
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	report, err := HealDir(context.Background(), dir)
	t.Logf("heal: %q, %v", report, err)
	if err == nil {
		t.Fatal("HealDir accepted a disk-fault record naming a file that is no control file")
	}
	if _, err := os.Stat(filepath.Join(data, faultfs.ControlFile)); !os.IsNotExist(err) {
		t.Fatalf("control file still there after HealDir: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("HealDir touched a file it did not create: %v", err)
	}
}
