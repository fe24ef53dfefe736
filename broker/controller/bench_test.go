package controller

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkAlterPartition measures one committed metadata change (an ISR shrink or expand)
// through the Raft quorum: encode, replicate to a majority, fsync in bbolt, apply everywhere
// needed for the leader's answer.
func BenchmarkAlterPartition(b *testing.B) {
	for _, voters := range []int{1, 3} {
		b.Run(fmt.Sprintf("voters=%d", voters), func(b *testing.B) {
			q := newQuorum(b, voters, 0, func(c *Config) { c.BrokerSessionTimeout = time.Hour })
			act := q.waitActive()
			for id := int32(1); id <= 2; id++ {
				q.register(id)
			}
			q.waitImage(act.NodeID(), "2 live brokers", func(img *Image) bool { return len(img.LiveBrokers()) == 2 })
			top, err := act.CreateTopic("bench", 1, 2, nil, false)
			if err != nil {
				b.Fatal(err)
			}
			p := top.Partitions[0]
			leader, follower := p.Leader, p.Replicas[1]
			epoch := act.Image().Brokers[leader].Epoch
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				isr := []int32{leader}
				if i%2 == 1 {
					isr = append(isr, follower)
				}
				cur := act.Image().Partition("bench", 0)
				if _, err := act.AlterPartition(AlterPartitionRequest{Topic: "bench", Partition: 0, BrokerID: leader, BrokerEpoch: epoch,
					LeaderEpoch: cur.LeaderEpoch, PartitionEpoch: cur.PartitionEpoch, NewISR: isr}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
		})
	}
}
