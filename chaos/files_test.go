package chaos

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchErr fetches topic d from offset 0 once and returns the partition's error.
func (d *diskNode) fetchErr() error {
	d.t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MaxBytes, req.ReplicaID = 0, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "d"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), d.cl)
	if err != nil {
		d.t.Fatalf("fetch: %v", err)
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return err
	}
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: "d"}, &p, kgo.DefaultDecompressor(), nil)
	return fp.Err
}

// TestIOErrorFailsCallsThenHeals injects EIO into a real broker's writes, then its reads, and
// ENOSPC into its fsyncs: produces and fetches get KAFKA_STORAGE_ERROR while it lasts, and
// every acknowledged record is read back after heal.
func TestIOErrorFailsCallsThenHeals(t *testing.T) {
	d := startDiskNode(t)
	d.mustProduce(10)
	ctx := context.Background()
	var id int64
	for _, c := range []struct {
		params map[string]string
		probe  func() error
	}{
		{map[string]string{"ops": "write"}, func() error { err, _, _ := d.produce(1); return err }},
		{map[string]string{"ops": "read"}, d.fetchErr},
		{map[string]string{"ops": "fsync", "errno": "ENOSPC"}, func() error { err, _, _ := d.produce(1); return err }},
	} {
		id++
		if c.params["ops"] == "fsync" {
			// Only a flush fsyncs: make every produce flush.
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			res := kmsg.NewIncrementalAlterConfigsRequestResource()
			res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, "d"
			cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			cfg.Name, cfg.Value = "flush.messages", kmsg.StringPtr("1")
			res.Configs = append(res.Configs, cfg)
			req.Resources = append(req.Resources, res)
			if _, err := req.RequestWith(ctx, d.cl); err != nil {
				t.Fatal(err)
			}
		}
		f := Fault{Kind: IOError, Params: c.params}
		start := time.Now()
		if err := d.drv.Apply(ctx, d.reg, id, f, Resolved{Nodes: []int32{1}}); err != nil {
			t.Fatal(err)
		}
		applyTook := time.Since(start)
		var got error
		effect := until(t, f.String()+" fails calls", 5*time.Second, func() bool {
			got = c.probe()
			return got != nil
		})
		if got != kerr.KafkaStorageError {
			t.Fatalf("%s: %v, want KAFKA_STORAGE_ERROR", f, got)
		}
		healStart := time.Now()
		if err := d.reg.UndoFault(ctx, id); err != nil {
			t.Fatal(err)
		}
		until(t, f.String()+" healed", 5*time.Second, func() bool { return c.probe() == nil })
		t.Logf("%s: takes effect %v after Apply began (Apply %v); heals %v after undo began", f, applyTook+effect, applyTook, time.Since(healStart))
	}
	got := d.readAll()
	if len(got) < 10 || !slices.Equal(got[:10], values(0, 10)) {
		t.Fatalf("after the faults the log holds %v", got)
	}
}
