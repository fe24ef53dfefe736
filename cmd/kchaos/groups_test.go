package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker"
)

// TestGroupsListDescribe: list names the group; describe shows committed offset, log end
// offset and lag per partition, with "-" for a partition the group never committed.
func TestGroupsListDescribe(t *testing.T) {
	b, err := broker.New(broker.Config{NodeID: 1, Listen: "127.0.0.1:0", DataDir: t.TempDir(), Props: map[string]string{"num.partitions": "2"}},
		broker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "lagged", Partition: int32(i % 2), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.Generation = "billing", -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "lagged"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 3
	rt.Partitions = append(rt.Partitions, rp)
	commit.Topics = append(commit.Topics, rt)
	resp, err := commit.RequestWith(ctx, cl)
	if err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit: %v %+v", err, resp)
	}

	run := func(args ...string) string {
		var out bytes.Buffer
		root := newRoot()
		root.SetOut(&out)
		root.SetArgs(append([]string{"groups", "--bootstrap", b.Addr()}, args...))
		if err := root.Execute(); err != nil {
			t.Fatalf("groups %v: %v", args, err)
		}
		return out.String()
	}
	if got := run("list"); strings.TrimSpace(got) != "billing" {
		t.Fatalf("list printed %q, want billing", got)
	}
	out := run("describe", "billing")
	t.Logf("\n%s", out)
	var fields [][]string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 9 {
			fields = append(fields, f)
		}
	}
	want := [][]string{
		{"GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"},
		{"billing", "lagged", "0", "3", "5", "2", "-", "-", "-"},
	}
	if len(fields) != len(want) {
		t.Fatalf("describe printed %d table lines, want %d", len(fields), len(want))
	}
	for i := range want {
		if strings.Join(fields[i], " ") != strings.Join(want[i], " ") {
			t.Errorf("line %d: %v, want %v", i, fields[i], want[i])
		}
	}
	if !strings.Contains(out, "has no active members") {
		t.Errorf("describe of a memberless group does not say so")
	}
}
