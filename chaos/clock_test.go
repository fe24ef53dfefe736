package chaos

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/kchaos/kchaos/broker/clock"
)

// createTopic creates topic name of one partition with configs on the disk node's broker.
func (d *diskNode) createTopic(name string, configs map[string]string) {
	d.t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), d.cl)
	if err != nil || kerr.ErrorForCode(resp.Topics[0].ErrorCode) != nil {
		d.t.Fatalf("create topic %s: %v %+v", name, err, resp)
	}
}

// appendTime produces one record to topic (LogAppendTime) and returns the timestamp the
// broker gave it, as read back.
func (d *diskNode) appendTime(topic string) time.Time {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := &kgo.Record{Topic: topic, Value: []byte("t")}
	if err := d.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		d.t.Fatalf("produce: %v", err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MaxBytes, req.ReplicaID = 0, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes = r.Offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, d.cl)
	if err != nil {
		d.t.Fatalf("fetch: %v", err)
	}
	p := resp.Topics[0].Partitions[0]
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: topic, Offset: r.Offset}, &p, kgo.DefaultDecompressor(), nil)
	if len(fp.Records) == 0 {
		d.t.Fatalf("fetch at %d: no record (%v)", r.Offset, fp.Err)
	}
	return fp.Records[0].Timestamp
}

// skewOf is how far the broker's LogAppendTime is from the harness's clock now.
func (d *diskNode) skewOf(topic string) time.Duration {
	before := time.Now()
	ts := d.appendTime(topic)
	return ts.Sub(before)
}

func near(got, want time.Duration) bool {
	return math.Abs(float64(got-want)) < float64(2*time.Second)
}

// TestClockFaultsMoveTheBrokersWallClock bumps, skews and strobes a real broker's clock and
// reads it back through LogAppendTime: each takes effect within the control file's check
// interval and heals as fast; a bump past retention.ms deletes segments by time.
func TestClockFaultsMoveTheBrokersWallClock(t *testing.T) {
	d := startDiskNode(t)
	d.cl.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(d.node.Addr()), kgo.RequestRetries(3), kgo.MaxVersions(kversion.V3_0_0()))
	if err != nil {
		t.Fatal(err)
	}
	d.cl = cl
	d.createTopic("lat", map[string]string{"message.timestamp.type": "LogAppendTime"})
	if s := d.skewOf("lat"); !near(s, 0) {
		t.Fatalf("LogAppendTime %v off before any fault", s)
	}
	ctx := context.Background()
	var id int64
	apply := func(f Fault, want time.Duration) {
		t.Helper()
		id++
		start := time.Now()
		if err := d.drv.Apply(ctx, d.reg, id, f, Resolved{Nodes: []int32{1}}); err != nil {
			t.Fatal(err)
		}
		applyTook := time.Since(start)
		effect := until(t, f.String(), 5*time.Second, func() bool { return near(d.skewOf("lat"), want) })
		healStart := time.Now()
		if err := d.reg.UndoFault(ctx, id); err != nil {
			t.Fatal(err)
		}
		undoTook := time.Since(healStart)
		heal := until(t, "true time again", 5*time.Second, func() bool { return near(d.skewOf("lat"), 0) })
		t.Logf("%s: takes effect %v after Apply began (Apply %v); heals %v after undo began (undo %v)",
			f, applyTook+effect, applyTook, undoTook+heal, undoTook)
	}
	apply(Fault{Kind: ClockBump, Params: map[string]string{"delta": "1h"}}, time.Hour)
	apply(Fault{Kind: ClockSkew, Params: map[string]string{"offset": "-90s"}}, -90*time.Second)

	// A strobe flips between true time and delta: both values show up.
	id++
	strobe := Fault{Kind: ClockStrobe, Params: map[string]string{"delta": "10m", "period": "50ms"}}
	if err := d.drv.Apply(ctx, d.reg, id, strobe, Resolved{Nodes: []int32{1}}); err != nil {
		t.Fatal(err)
	}
	var sawAhead, sawTrue bool
	took := until(t, "both sides of the strobe", 10*time.Second, func() bool {
		s := d.skewOf("lat")
		sawAhead = sawAhead || near(s, 10*time.Minute)
		sawTrue = sawTrue || near(s, 0)
		return sawAhead && sawTrue
	})
	t.Logf("clock-strobe 10m/50ms: both values seen within %v", took)
	if err := d.reg.UndoFault(ctx, id); err != nil {
		t.Fatal(err)
	}

	// Overlapping faults add up, and each end removes only its own.
	d1 := Fault{Kind: ClockSkew, Params: map[string]string{"offset": "1h"}}
	d2 := Fault{Kind: ClockBump, Params: map[string]string{"delta": "-20m"}}
	if err := d.drv.Apply(ctx, d.reg, 10, d1, Resolved{Nodes: []int32{1}}); err != nil {
		t.Fatal(err)
	}
	if err := d.drv.Apply(ctx, d.reg, 11, d2, Resolved{Nodes: []int32{1}}); err != nil {
		t.Fatal(err)
	}
	until(t, "40m ahead", 5*time.Second, func() bool { return near(d.skewOf("lat"), 40*time.Minute) })
	if err := d.reg.UndoFault(ctx, 10); err != nil {
		t.Fatal(err)
	}
	until(t, "20m behind", 5*time.Second, func() bool { return near(d.skewOf("lat"), -20*time.Minute) })
	if err := d.reg.UndoFault(ctx, 11); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.node.DataDir, clock.ControlFile)); !os.IsNotExist(err) {
		t.Fatalf("clock control file left after both faults ended: %v", err)
	}

	// Retention by time reads the same clock: records an hour old on a bumped clock are gone.
	d.createTopic("ret", map[string]string{"retention.ms": "1800000", "segment.bytes": "1024"})
	for range 20 {
		if err := d.cl.ProduceSync(ctx, &kgo.Record{Topic: "ret", Value: make([]byte, 200)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	start := func() int64 {
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "ret"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = -2
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, d.cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].Offset
	}
	if s := start(); s != 0 {
		t.Fatalf("log start offset %d before the bump", s)
	}
	bumped := time.Now()
	if err := d.drv.Apply(ctx, d.reg, 20, Fault{Kind: ClockBump, Params: map[string]string{"delta": "1h"}}, Resolved{Nodes: []int32{1}}); err != nil {
		t.Fatal(err)
	}
	until(t, "retention deleted the old segments", 10*time.Second, func() bool { return start() > 0 })
	t.Logf("clock-bump 1h: retention.ms=30m deleted segments up to offset %d within %v", start(), time.Since(bumped))
	if err := d.reg.UndoFault(ctx, 20); err != nil {
		t.Fatal(err)
	}
}

// TestHealDirClearsClockControlFile leaves a clock fault as a crashed harness would and heals
// it from the journal alone.
func TestHealDirClearsClockControlFile(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := clock.SetMode(data, clock.Mode{Offset: time.Hour}); err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry(dir)
	if err != nil {
		t.Fatal(err)
	}
	reg.Add(Record{Fault: 1, Action: "clock-fault", Node: 1, Path: filepath.Join(data, clock.ControlFile), Undo: "clear"}, nil)
	reg.Close()
	report, err := HealDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("heal: %q", report)
	if _, err := os.Stat(filepath.Join(data, clock.ControlFile)); !os.IsNotExist(err) {
		t.Fatalf("clock control file still there after HealDir: %v", err)
	}
}
