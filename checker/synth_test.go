package checker

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/kchaos/kchaos/history"
)

// synthOptions shape a synthetic history.
type synthOptions struct {
	Ops        int // operations: a send (invoke+ok), poll, process or commit counts one
	Producers  int
	Partitions int
	Keys       int
	PollSize   int // records per poll
	Seed       uint64
	// MetaEvery and FaultEvery are the periods, in events, of ISR samples and fault windows.
	MetaEvery, FaultEvery int64
	// TxnSize, when positive, makes every producer transactional: each runs transactions of
	// this many sends, open concurrently with the others', so they interleave on partitions.
	TxnSize int
}

// writeSynthHistory writes a clean, realistic history to path: producers sending keyed values
// with a few in flight, one consumer per partition group polling, processing and committing,
// periodic ISR samples and fault windows. A correct checker finds no anomaly in it. It returns
// the number of operations and events written.
func writeSynthHistory(path string, o synthOptions) (ops, events int64, err error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w := history.NewWriter(bw)
	rng := rand.New(rand.NewPCG(o.Seed, 1))
	var t int64
	emit := func(e *history.Event) {
		t += 1000
		e.Time = t
		w.Write(e)
		events++
	}
	emit(&history.Event{Process: history.ProcessObserver, Type: history.Info, F: history.FRun, Partition: -1, Offset: -1,
		Run: &history.Run{Version: history.Version, RunID: "synthetic", Config: "acks=all,synthetic", Seed: int64(o.Seed), Acks: "all",
			Idempotent: true, Transactional: o.TxnSize > 0, MaxInFlight: 5, IsolationLevel: "read_committed", CommitMode: "after-process",
			ReplicationFactor: 3, MinInsyncReplicas: 2, Topics: []string{"t"}}})
	keys := make([]string, o.Keys)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	next := make([]int64, o.Partitions)              // next offset per partition
	unread := make([][]history.Record, o.Partitions) // acked, not yet polled
	seq := make([]int64, o.Producers)
	txn := make([]int64, o.Producers) // current transaction of each producer, 0: none
	inTxn := make([]int, o.Producers)
	// unreadTxn holds the transaction of each unread record; a consumer reads up to the first
	// record of an open transaction (the last stable offset), as read_committed does.
	unreadTxn := make([][]int64, o.Partitions)
	committed := map[int64]bool{}
	var txnSeq int64
	polls := 0
	var faultID int64
	nextMeta, nextFault := o.MetaEvery, o.FaultEvery
	buf := make([]byte, 0, 32)
	type inflight struct {
		proc  int
		value string
		key   string
		txn   int64
	}
	pending := make([]inflight, 0, o.Producers)
	for ops < int64(o.Ops) {
		// Every producer invokes one send, then they complete in order.
		pending = pending[:0]
		for p := 0; p < o.Producers && ops+int64(len(pending)) < int64(o.Ops); p++ {
			seq[p]++
			buf = buf[:0]
			buf = strconv.AppendInt(buf, int64(p), 10)
			buf = append(buf, '-')
			buf = strconv.AppendInt(buf, seq[p], 10)
			in := inflight{proc: p, value: string(buf), key: keys[rng.IntN(len(keys))]}
			if o.TxnSize > 0 && txn[p] == 0 {
				txnSeq++
				txn[p] = txnSeq
				emit(&history.Event{Process: p, Type: history.OK, F: history.FTxn, Partition: -1, Offset: -1, TxnID: txn[p], Txn: &history.Txn{Op: "begin"}})
			}
			in.txn = txn[p]
			pending = append(pending, in)
			emit(&history.Event{Process: p, Type: history.Invoke, F: history.FSend, Topic: "t", Partition: -1, Key: in.key, Value: in.value, Offset: -1, TxnID: in.txn})
		}
		for _, in := range pending {
			k, _ := strconv.Atoi(in.key[1:])
			part := int32(k % o.Partitions)
			off := next[part]
			next[part]++
			emit(&history.Event{Process: in.proc, Type: history.OK, F: history.FSend, Topic: "t", Partition: part, Key: in.key, Value: in.value, Offset: off, TxnID: in.txn})
			ops++
			if in.txn != 0 {
				if inTxn[in.proc]++; inTxn[in.proc] == o.TxnSize {
					c := &history.Txn{Op: "commit"}
					emit(&history.Event{Process: in.proc, Type: history.Invoke, F: history.FTxn, Partition: -1, Offset: -1, TxnID: in.txn, Txn: c})
					emit(&history.Event{Process: in.proc, Type: history.OK, F: history.FTxn, Partition: -1, Offset: -1, TxnID: in.txn, Txn: c})
					committed[in.txn] = true
					txn[in.proc], inTxn[in.proc] = 0, 0
				}
			}
			unread[part] = append(unread[part], history.Record{Partition: part, Offset: off, Value: in.value})
			unreadTxn[part] = append(unreadTxn[part], in.txn)
			stable := 0
			for stable < len(unread[part]) && (unreadTxn[part][stable] == 0 || committed[unreadTxn[part][stable]]) {
				stable++
			}
			if stable < o.PollSize || ops >= int64(o.Ops) {
				continue
			}
			consumer := 1000 + int(part)
			recs := slices.Clone(unread[part][:stable])
			unread[part] = append(unread[part][:0], unread[part][stable:]...)
			unreadTxn[part] = append(unreadTxn[part][:0], unreadTxn[part][stable:]...)
			emit(&history.Event{Process: consumer, Type: history.OK, F: history.FPoll, Topic: "t", Partition: -1, Offset: -1, Records: recs})
			emit(&history.Event{Process: consumer, Type: history.OK, F: history.FProcess, Topic: "t", Partition: -1, Offset: -1, Records: recs})
			ops += 2
			polls++
			if polls%10 == 0 {
				emit(&history.Event{Process: consumer, Type: history.OK, F: history.FCommit, Topic: "t", Partition: -1, Offset: -1,
					Offsets: []history.PartitionOffset{{Partition: part, Offset: recs[len(recs)-1].Offset + 1}}})
				ops++
			}
		}
		if events >= nextMeta {
			nextMeta += o.MetaEvery
			for p := range o.Partitions {
				emit(&history.Event{Process: history.ProcessObserver, Type: history.Info, F: history.FMeta, Topic: "t", Partition: int32(p), Offset: -1,
					ISR: &history.PartitionState{Leader: 1, LeaderEpoch: 1, ISR: []int32{1, 2, 3}, MinInsyncReplicas: 2}})
			}
		}
		if events >= nextFault {
			nextFault += o.FaultEvery
			faultID++
			fault := &history.Fault{ID: faultID, Phase: "start", Kind: "pause", Target: "follower(t,0)", Nodes: []int32{2}}
			emit(&history.Event{Process: history.ProcessNemesis, Type: history.Info, F: history.FFault, Partition: -1, Offset: -1, Fault: fault})
			end := *fault
			end.Phase = "end"
			emit(&history.Event{Process: history.ProcessNemesis, Type: history.Info, F: history.FFault, Partition: -1, Offset: -1, Fault: &end})
		}
	}
	if err := w.Close(); err != nil {
		return 0, 0, err
	}
	return ops, events, bw.Flush()
}

// peakRSS returns the process's peak resident set size in bytes (VmHWM), or 0 when unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}
