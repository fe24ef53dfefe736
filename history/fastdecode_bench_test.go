package history

import (
	"strconv"
	"testing"
)

// BenchmarkDecodeBlock decodes a block of history in the shape of a run's (per 20 records: 20
// sends' invoke and ok, a poll and a process of 20 records, a commit every tenth poll) with
// aliased strings, as the checker's workers do.
func BenchmarkDecodeBlock(b *testing.B) {
	var data []byte
	events := 0
	add := func(e *Event) {
		data, _ = appendEvent(data, e)
		events++
	}
	index, t := int64(12_000_000), int64(9_876_543_210)
	offsets := make([]int64, 16)
	for poll := 0; len(data) < blockSize; poll++ {
		part := int32(poll % 16)
		recs := make([]Record, 20)
		for i := range recs {
			p := 3 + i%8
			value := strconv.Itoa(p) + "-" + strconv.Itoa(400_000+poll*20+i)
			key := "k" + strconv.Itoa((poll*37+i)%1000)
			add(&Event{Index: index, Time: t, Process: p, Type: Invoke, F: FSend, Topic: "t", Partition: -1, Key: key, Value: value, Offset: -1})
			add(&Event{Index: index + 1, Time: t + 4000, Process: p, Type: OK, F: FSend, Topic: "t", Partition: part, Key: key, Value: value, Offset: offsets[part]})
			recs[i] = Record{Partition: part, Offset: offsets[part], Value: value}
			offsets[part]++
			index, t = index+2, t+5000
		}
		add(&Event{Index: index, Time: t, Process: 1000 + int(part), Type: OK, F: FPoll, Topic: "t", Partition: -1, Offset: -1, Records: recs})
		add(&Event{Index: index + 1, Time: t, Process: 1000 + int(part), Type: OK, F: FProcess, Topic: "t", Partition: -1, Offset: -1, Records: recs})
		index, t = index+2, t+5000
		if poll%10 == 0 {
			add(&Event{Index: index, Time: t, Process: 1000 + int(part), Type: OK, F: FCommit, Topic: "t", Partition: -1, Offset: -1,
				Offsets: []PartitionOffset{{Partition: part, Offset: offsets[part]}}})
			index, t = index+1, t+5000
		}
	}
	d := decoder{alias: true}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		blk := block{data: data}
		blk.decode(&d, "bench")
		if blk.err != nil || len(blk.evs) != events {
			b.Fatalf("decoded %d of %d events: %v", len(blk.evs), events, blk.err)
		}
		eventPool.Put(blk.evs[:0])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
}
