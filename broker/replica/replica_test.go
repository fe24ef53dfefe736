package replica

import (
	"flag"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

var seedFlag = flag.Uint64("seed", 0, "seed for TestRandomInvariants (0: a new one)")

var t0 = time.Unix(1_700_000_000, 0)

func TestCheckAcks(t *testing.T) {
	// A leader of replicas 1,2,3 with the followers' log end offsets given; the high watermark
	// follows them.
	mk := func(isr []int32, minISR int, leos map[int32]int64) *Partition {
		p := New(1, 0)
		p.Apply(Assignment{Leader: 1, LeaderEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: isr}, minISR, 10, t0)
		for id, leo := range leos {
			p.FollowerFetch(id, leo, 10, t0)
		}
		return p
	}
	for _, tc := range []struct {
		name       string
		p          *Partition
		lastOffset int64
		done       bool
		err        *kerr.Error
	}{
		{"replicated", mk([]int32{1, 2, 3}, 2, map[int32]int64{2: 10, 3: 10}), 9, true, nil},
		{"one follower behind", mk([]int32{1, 2, 3}, 2, map[int32]int64{2: 10, 3: 5}), 9, false, nil},
		{"below the high watermark", mk([]int32{1, 2, 3}, 2, map[int32]int64{2: 10, 3: 5}), 4, true, nil},
		{"ISR below min", mk([]int32{1}, 2, nil), 9, true, kerr.NotEnoughReplicasAfterAppend},
		{"ISR below min, already committed", mk([]int32{1}, 2, nil), -1, true, kerr.NotEnoughReplicasAfterAppend},
		{"ISR of one, min 1", mk([]int32{1}, 1, nil), 9, true, nil},
		{"follower", func() *Partition {
			p := New(1, 0)
			p.Apply(Assignment{Leader: 2, LeaderEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}, 1, 10, t0)
			return p
		}(), 0, true, kerr.NotLeaderForPartition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done, err := tc.p.CheckAcks(tc.lastOffset)
			if done != tc.done || err != tc.err {
				t.Fatalf("CheckAcks(%d) = %t, %v; want %t, %v (hw %d)", tc.lastOffset, done, err, tc.done, tc.err, tc.p.HighWatermark())
			}
		})
	}
}

// TestLowWatermark: DeleteRecords on a leader of replicas 1,2,3 is done when every live
// replica's log start offset reached the requested offset; a live follower that has not
// reported one holds it at -1, a dead one does not count, and a new leader epoch forgets
// what the followers reported.
func TestLowWatermark(t *testing.T) {
	p := New(1, 0)
	p.Apply(Assignment{Leader: 1, LeaderEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}}, 1, 10, t0)
	all := func(int32) bool { return true }
	not3 := func(id int32) bool { return id != 3 }
	if low := p.LowWatermark(5, all); low != -1 {
		t.Fatalf("before any follower reported: low watermark %d, want -1", low)
	}
	if !p.FollowerLogStartOffset(2, 5) || p.FollowerLogStartOffset(2, 5) {
		t.Fatal("FollowerLogStartOffset must report a change once")
	}
	if low := p.LowWatermark(5, not3); low != 5 {
		t.Fatalf("with 3 dead: low watermark %d, want 5", low)
	}
	p.FollowerLogStartOffset(3, 2)
	if low := p.LowWatermark(5, all); low != 2 {
		t.Fatalf("3 at 2: low watermark %d, want 2", low)
	}
	if p.FollowerLogStartOffset(4, 9) {
		t.Fatal("a broker that is not a replica changed the state")
	}
	p.Apply(Assignment{Leader: 1, LeaderEpoch: 2, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}}, 1, 10, t0)
	if low := p.LowWatermark(5, all); low != -1 {
		t.Fatalf("new leader epoch: low watermark %d, want -1", low)
	}
	p.Apply(Assignment{Leader: 2, LeaderEpoch: 3, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}}, 1, 10, t0)
	if low := p.LowWatermark(5, all); low != -1 || p.FollowerLogStartOffset(2, 7) {
		t.Fatal("a follower answered for the low watermark")
	}
}

func TestOnDivergingEpoch(t *testing.T) {
	for _, tc := range []struct {
		name       string
		div, local EpochEndOffset
		leo        int64
		want       Truncation
	}{
		{"same epoch, leader shorter", EpochEndOffset{3, 120}, EpochEndOffset{3, 150}, 160, Truncation{To: 120, Complete: true}},
		{"same epoch, follower shorter", EpochEndOffset{3, 150}, EpochEndOffset{3, 120}, 160, Truncation{To: 120, Complete: true}},
		{"same epoch, log end shorter", EpochEndOffset{3, 150}, EpochEndOffset{3, 150}, 140, Truncation{To: 140, Complete: true}},
		{"older local epoch", EpochEndOffset{3, 120}, EpochEndOffset{2, 100}, 160, Truncation{To: 100}},
		{"no local epoch", EpochEndOffset{3, 120}, EpochEndOffset{-1, -1}, 160, Truncation{To: 120, Complete: true}},
		{"no leader epoch", EpochEndOffset{-1, 200}, EpochEndOffset{2, 100}, 160, Truncation{To: 160, Complete: true}},
	} {
		if got := OnDivergingEpoch(tc.div, tc.local, tc.leo); got != tc.want {
			t.Errorf("%s: OnDivergingEpoch(%v, %v, %d) = %+v, want %+v", tc.name, tc.div, tc.local, tc.leo, got, tc.want)
		}
	}
}

func TestOnOffsetOutOfRange(t *testing.T) {
	for _, tc := range []struct {
		fetch, logStart, hw int64
		want                Truncation
	}{
		{10, 50, 80, Truncation{To: 50, Full: true, Complete: true}},
		{90, 0, 80, Truncation{To: 80, Complete: true}},
		{90, 0, 95, Truncation{To: 90, Complete: true}},
		{90, 0, -1, Truncation{To: 0, Complete: true}},
	} {
		if got := OnOffsetOutOfRange(tc.fetch, tc.logStart, tc.hw); got != tc.want {
			t.Errorf("OnOffsetOutOfRange(%d, %d, %d) = %+v, want %+v", tc.fetch, tc.logStart, tc.hw, got, tc.want)
		}
	}
}

// TestRandomInvariants drives a leader with random appends, follower fetches, ticks, ISR
// answers and reassignments, and checks after every step: the high watermark never moves back
// within a leader epoch, never exceeds the log end offset of any maximal-ISR member that has
// fetched, never moves while the committed ISR is below min.insync.replicas, the leader stays
// in the ISR, and a success from CheckAcks means the high watermark passed the offset.
// -seed replays a run.
func TestRandomInvariants(t *testing.T) {
	seed := *seedFlag
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed: %d (replay with -seed %d)", seed, seed)
	r := rand.New(rand.NewPCG(seed, 0))
	for run := 0; run < 200; run++ {
		p := New(1, 0)
		now := t0
		leo := int64(r.IntN(20))
		fleo := map[int32]int64{2: 0, 3: 0}
		minISR := 1 + r.IntN(3)
		epoch, pepoch := int32(1), int32(0)
		isr := []int32{1, 2, 3}
		p.Apply(Assignment{Leader: 1, LeaderEpoch: epoch, PartitionEpoch: pepoch, Replicas: []int32{1, 2, 3}, ISR: isr}, minISR, leo, now)
		var inflight *Proposal
		for step := 0; step < 200; step++ {
			before := p.HighWatermark()
			now = now.Add(time.Duration(r.IntN(5000)) * time.Millisecond)
			switch r.IntN(6) {
			case 0:
				leo += int64(r.IntN(5))
				p.Appended(leo)
			case 1, 2:
				id := int32(2 + r.IntN(2))
				fleo[id] = min(leo, fleo[id]+int64(r.IntN(8)))
				if _, pr := p.FollowerFetch(id, fleo[id], leo, now); pr != nil {
					inflight = pr
				}
			case 3:
				if pr := p.Tick(leo, now, 10*time.Second); pr != nil {
					inflight = pr
				}
			case 4:
				if inflight != nil {
					var res *Assignment
					if r.IntN(4) > 0 {
						pepoch++
						res = &Assignment{Leader: 1, LeaderEpoch: epoch, PartitionEpoch: pepoch, ISR: inflight.ISR}
					}
					p.AlterPartitionDone(*inflight, res, leo)
					inflight = nil
				}
			case 5:
				if r.IntN(10) == 0 {
					epoch, pepoch = epoch+1, pepoch+1
					p.Apply(Assignment{Leader: 1, LeaderEpoch: epoch, PartitionEpoch: pepoch, Replicas: []int32{1, 2, 3}, ISR: p.Assignment().ISR}, minISR, leo, now)
					inflight = nil
					before = p.HighWatermark()
				}
			}
			hw := p.HighWatermark()
			underMin := len(p.Assignment().ISR) < p.MinISR()
			switch {
			case hw < before:
				t.Fatalf("seed %d run %d step %d: high watermark moved back %d -> %d", seed, run, step, before, hw)
			case hw > before && underMin:
				t.Fatalf("seed %d run %d step %d: high watermark moved %d -> %d with the ISR below min.insync.replicas", seed, run, step, before, hw)
			case hw > leo:
				t.Fatalf("seed %d run %d step %d: high watermark %d past the log end %d", seed, run, step, hw, leo)
			case !slices.Contains(p.Assignment().ISR, 1):
				t.Fatalf("seed %d run %d step %d: the leader left the ISR %v", seed, run, step, p.Assignment().ISR)
			}
			if hw > before {
				for _, id := range p.MaximalISR() {
					if f := p.Follower(id); f != nil && f.LogEndOffset < hw {
						t.Fatalf("seed %d run %d step %d: high watermark %d past ISR member %d at %d", seed, run, step, hw, id, f.LogEndOffset)
					}
				}
			}
			off := int64(r.IntN(int(leo) + 1))
			if done, err := p.CheckAcks(off); done && err == nil && hw <= off {
				t.Fatalf("seed %d run %d step %d: acks=all for offset %d done at high watermark %d", seed, run, step, off, hw)
			}
		}
	}
}
