package history

import (
	"strconv"
	"testing"
)

// BenchmarkDecodeFast decodes the line shapes of a run's history (a send's invoke and ok, a
// poll of 20 records) with aliased strings, as the checker reads them.
func BenchmarkDecodeFast(b *testing.B) {
	recs := make([]Record, 20)
	for i := range recs {
		recs[i] = Record{Partition: int32(i % 16), Offset: 612345 + int64(i), Value: "7-" + strconv.Itoa(400000+i)}
	}
	events := []Event{
		{Index: 12345678, Time: 9876543210, Process: 7, Type: Invoke, F: FSend, Topic: "t", Partition: -1, Key: "k123", Value: "7-400001", Offset: -1},
		{Index: 12345679, Time: 9876549999, Process: 7, Type: OK, F: FSend, Topic: "t", Partition: 5, Key: "k123", Value: "7-400001", Offset: 612345},
		{Index: 12345680, Time: 9876559999, Process: 17, Type: OK, F: FPoll, Topic: "t", Partition: -1, Offset: -1, Records: recs},
	}
	var lines [][]byte
	size := 0
	for i := range events {
		line, _ := appendEvent(nil, &events[i])
		line = line[:len(line)-1]
		lines = append(lines, line)
		size += len(line)
	}
	d := decoder{alias: true}
	var e Event
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		for _, line := range lines {
			e = Event{}
			if !d.decodeFast(line, &e) {
				b.Fatalf("fast path refused %s", line)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/event")
}
