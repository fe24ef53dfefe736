package controller

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

func TestEntryRoundTripAndVersion(t *testing.T) {
	c := newCluster(t, 2)
	r, err := createTopicRecord(c.img, "t", 3, 2, map[string]string{"a": "b"}, TopicID{1, 2, 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := encodeEntry([]Record{r})
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEntry(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []Record{r}) {
		t.Fatalf("round trip changed the record:\n%+v\n%+v", got[0].CreateTopic, r.CreateTopic)
	}
	newer := bytes.Replace(data, []byte(`"v":`+strconv.Itoa(entryVersion)), []byte(`"v":`+strconv.Itoa(entryVersion+1)), 1)
	if _, err := decodeEntry(newer); err == nil || !strings.Contains(err.Error(), "version "+strconv.Itoa(entryVersion+1)) {
		t.Fatalf("entry from a newer version: %v", err)
	}
}

func TestBatchIsAtomic(t *testing.T) {
	c := newCluster(t, 2)
	before := c.img
	good, _ := createTopicRecord(c.img, "t", 1, 1, nil, TopicID{1}, nil)
	bad := Record{Type: TypeDeleteTopic, DeleteTopic: &DeleteTopicRecord{Name: "missing"}}
	next, err := applyRecords(c.img, c.img.Index+1, []Record{good, bad})
	if err == nil {
		t.Fatal("batch with a bad record applied")
	}
	if next != before || len(before.Topics) != 0 {
		t.Fatal("a rejected batch changed the image")
	}
}

func TestCopyOnWriteKeepsOldImages(t *testing.T) {
	c := newCluster(t, 3)
	c.topic("t", nil, []int32{1, 2, 3}, []int32{2, 3, 1})
	old := c.img
	oldP0 := *old.Partition("t", 0)
	oldISR := append([]int32(nil), oldP0.ISR...)
	c.fence(1)
	if p := old.Partition("t", 0); p.Leader != oldP0.Leader || !reflect.DeepEqual(p.ISR, oldISR) || p.PartitionEpoch != oldP0.PartitionEpoch {
		t.Fatalf("fencing modified an older image: %+v", p)
	}
	if old.Brokers[1].Fenced {
		t.Fatal("fencing modified an older image's broker")
	}
}

// memSink is an in-memory raft.SnapshotSink.
type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

var _ raft.SnapshotSink = (*memSink)(nil)

func TestSnapshotRestore(t *testing.T) {
	c := newCluster(t, 4)
	c.topic("t", map[string]string{"x": "y"}, []int32{1, 2, 3}, []int32{3, 1, 2})
	c.fence(2)
	// A reassignment in flight and dynamic broker configs are part of the image too.
	r, err := reassignRecord(c.img, c.pol, "t", 1, []int32{1, 4}, true)
	if err != nil {
		t.Fatal(err)
	}
	c.apply([]Record{*r})
	c.apply([]Record{{Type: TypeBrokerConfigs, BrokerConfigs: &BrokerConfigsRecord{Name: "", Configs: map[string]string{"log.retention.ms": "5"}}}})
	if p := c.part("t", 1); !slices.Equal(p.AddingReplicas, []int32{4}) || !slices.Equal(p.RemovingReplicas, []int32{2, 3}) {
		t.Fatalf("reassignment not in flight: %+v", p)
	}
	f := newFSM()
	f.publish(c.img)
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	g := newFSM()
	_, changed := g.image()
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("restore did not signal watchers")
	}
	got, _ := g.image()
	want, _ := json.Marshal(c.img)
	have, _ := json.Marshal(got)
	if !bytes.Equal(want, have) {
		t.Fatalf("restored image differs:\n%s\n%s", want, have)
	}
	if p := got.Partition("t", 1); !slices.Equal(p.AddingReplicas, []int32{4}) || got.BrokerConfigs[""]["log.retention.ms"] != "5" {
		t.Fatalf("restored image lost the reassignment or the broker configs: %+v %v", p, got.BrokerConfigs)
	}
	if got.Stats.ISRShrinks != 2 || got.Index != c.img.Index {
		t.Fatalf("restored stats %+v index %d", got.Stats, got.Index)
	}
}

func TestFSMApplyRejectedEntryAdvancesIndex(t *testing.T) {
	f := newFSM()
	data, _ := encodeEntry([]Record{{Type: TypeDeleteTopic, DeleteTopic: &DeleteTopicRecord{Name: "x"}}})
	res := f.Apply(&raft.Log{Index: 7, Type: raft.LogCommand, Data: data}).(applyResult)
	if res.err == nil || res.img.Index != 7 {
		t.Fatalf("rejected entry: err %v index %d", res.err, res.img.Index)
	}
	res = f.Apply(&raft.Log{Index: 8, Type: raft.LogCommand, Data: []byte("{garbage")}).(applyResult)
	if res.err == nil || res.img.Index != 8 {
		t.Fatalf("garbage entry: err %v index %d", res.err, res.img.Index)
	}
}
