package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/clustertest"
)

// The operators' APIs on a real cluster, through franz-go's kadm: partition reassignment,
// preferred and unclean elections, DeleteRecords with followers and dynamic unclean election,
// each checked by reading the data back.

func bg(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// createAssigned creates topic with one partition on replicas (the first leads) and configs,
// and waits for its leader.
func createAssigned(t *testing.T, c *clustertest.Cluster, topic string, replicas []int32, configs map[string]string) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Replicas = replicas
	rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	for k, v := range configs {
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name, cfg.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, cfg)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(bg(t), c.Client())
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	c.WaitLeader(topic, 0)
}

// hosts reports whether broker id's data directory holds partition 0 of topic.
func hosts(c *clustertest.Cluster, id int32, topic string) bool {
	_, err := os.Stat(filepath.Join(c.Node(id).DataDir, topic+"-0"))
	return err == nil
}

// adminRetry calls req until it succeeds or 15s have passed, 200ms apart, and returns its
// last error. Kafka's admin client retries a failed request like this: right after a
// controller is killed the client may still send to the dead one over its old connection
// and read a reset before it learns the new controller from metadata (CI failed on it for
// both callers), and a request a dead broker reset was not carried out.
func adminRetry(req func() error) error {
	for deadline := time.Now().Add(15 * time.Second); ; {
		err := req()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// reassigning returns the reassignment in flight of topic-0 as kadm lists it, or nil,
// retrying a failed request (adminRetry).
func reassigning(t *testing.T, adm *kadm.Client, topic string) *kadm.ListPartitionReassignmentsResponse {
	t.Helper()
	var res kadm.ListPartitionReassignmentsResponses
	err := adminRetry(func() (err error) {
		res, err = adm.ListPartitionReassignments(bg(t), kadm.TopicsSet{topic: {0: {}}})
		return err
	})
	if err != nil {
		t.Fatalf("ListPartitionReassignments: %v", err)
	}
	if r, ok := res[topic][0]; ok {
		return &r
	}
	return nil
}

// TestReassignPartition: kadm moves a partition's replicas while a producer writes with
// acks=all. The adding replica catches up as a follower (held back by a cut link, so the
// reassignment is seen in flight, and the active controller is killed meanwhile); once it is
// in sync the target becomes the replica set, the removed leader hands over and deletes its
// log, and every acknowledged record is read back from the new replicas. A second
// reassignment is cancelled with a null replica list; a third removes a dead broker's
// replica, which that broker deletes when it is back.
func TestReassignPartition(t *testing.T) {
	c := clustertest.Start(t, 4)
	cl := c.Client()
	adm := kadm.NewClient(cl)
	createAssigned(t, c, "moving", []int32{1, 2, 3}, map[string]string{"min.insync.replicas": "2"})
	p := startProducer(c, "moving", 0, kgo.AllISRAcks())
	c.CheckFor(20*time.Second, "acknowledged records", func() error {
		if n := p.count(); n < 300 {
			return errf("%d acks", n)
		}
		return nil
	})

	// 4 replaces leader 1; it cannot fetch from anyone yet.
	for _, id := range []int32{1, 2, 3} {
		c.Cut(4, id)
	}
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("moving", 0, []int32{4, 2, 3})
	res, err := adm.AlterPartitionAssignments(bg(t), req)
	if err != nil || res.Error() != nil {
		t.Fatalf("AlterPartitionAssignments: %v %v", err, res.Error())
	}
	r := reassigning(t, adm, "moving")
	if r == nil || !slices.Equal(r.Replicas, []int32{4, 2, 3, 1}) || !slices.Equal(r.AddingReplicas, []int32{4}) || !slices.Equal(r.RemovingReplicas, []int32{1}) {
		t.Fatalf("reassignment in flight: %+v; want replicas [4 2 3 1], adding [4], removing [1]", r)
	}
	// A broker that is not the active controller forwards the listing there.
	list, err := cl.Broker(int(notController(t, c))).Request(bg(t), kmsg.NewPtrListPartitionReassignmentsRequest())
	if lr, _ := list.(*kmsg.ListPartitionReassignmentsResponse); err != nil || len(lr.Topics) != 1 || !slices.Equal(lr.Topics[0].Partitions[0].AddingReplicas, []int32{4}) {
		t.Fatalf("ListPartitionReassignments through a broker that forwards it: %+v %v", list, err)
	}
	// The reassignment is in the replicated metadata: it outlives the active controller.
	ctl := c.Controller()
	c.Kill(ctl)
	c.CheckFor(20*time.Second, "a new active controller", func() error {
		if id := c.Controller(); id < 0 || id == ctl {
			return errf("controller %d", id)
		}
		return nil
	})
	if r := reassigning(t, adm, "moving"); r == nil || !slices.Equal(r.AddingReplicas, []int32{4}) {
		t.Fatalf("after controller %d was killed, the reassignment in flight is %+v", ctl, r)
	}
	for _, id := range []int32{1, 2, 3} {
		c.Heal(4, id)
	}
	c.Restart(ctl)
	c.CheckFor(30*time.Second, "the reassignment to complete", func() error {
		if r := reassigning(t, adm, "moving"); r != nil {
			return errf("in flight: %+v", *r)
		}
		st, err := c.Partition("moving", 0)
		if err != nil {
			return err
		}
		if !slices.Equal(st.Replicas, []int32{4, 2, 3}) || st.Leader == 1 || st.Leader < 0 {
			return errf("partition %+v", st)
		}
		return nil
	})
	c.CheckFor(20*time.Second, "broker 1 to delete its replica", func() error {
		if hosts(c, 1, "moving") {
			return errf("broker 1 still has moving-0")
		}
		return nil
	})
	before := p.count()
	c.CheckFor(20*time.Second, "acks after the move", func() error {
		if n := p.count(); n < before+200 {
			return errf("%d new acks", n-before)
		}
		return nil
	})
	acks := p.stop()
	t.Logf("%d acks; longest gap %s; errors %v", len(acks), maxGap(acks), p.errs)
	log := readAll(t, c, "moving", 0, acks[len(acks)-1].offset+1)
	for _, a := range acks {
		if log[a.offset] != a.value {
			t.Fatalf("acknowledged record %s at offset %d reads back as %q", a.value, a.offset, log[a.offset])
		}
	}
	dirs, err := adm.DescribeAllLogDirs(bg(t), kadm.TopicsSet{"moving": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	for id := int32(1); id <= 4; id++ {
		var size int64
		dirs[id].Each(func(d kadm.DescribedLogDir) { size += d.Size() })
		if (id != 1) != (size > 0) {
			t.Errorf("broker %d: moving-0 holds %d bytes", id, size)
		}
	}

	// A reassignment back onto 1, which cannot fetch, is cancelled: 1 leaves again.
	c.Cut(1, c.WaitLeader("moving", 0))
	req = nil
	req.Assign("moving", 0, []int32{4, 2, 1})
	if res, err := adm.AlterPartitionAssignments(bg(t), req); err != nil || res.Error() != nil {
		t.Fatalf("AlterPartitionAssignments back onto 1: %v %v", err, res.Error())
	}
	if r := reassigning(t, adm, "moving"); r == nil || !slices.Equal(r.AddingReplicas, []int32{1}) {
		t.Fatalf("second reassignment in flight: %+v", r)
	}
	c.CheckFor(20*time.Second, "broker 1 to host moving-0 again", func() error {
		if !hosts(c, 1, "moving") {
			return errf("no moving-0 on broker 1")
		}
		return nil
	})
	req = nil
	req.CancelAssign("moving", 0)
	if res, err := adm.AlterPartitionAssignments(bg(t), req); err != nil || res.Error() != nil {
		t.Fatalf("cancel: %v %v", err, res.Error())
	}
	if r := reassigning(t, adm, "moving"); r != nil {
		t.Fatalf("after cancelling, still in flight: %+v", *r)
	}
	c.CheckFor(10*time.Second, "the original replicas after cancelling", func() error {
		if st, err := c.Partition("moving", 0); err != nil || !slices.Equal(st.Replicas, []int32{4, 2, 3}) {
			return errf("%+v %v", st, err)
		}
		return nil
	})
	c.CheckFor(20*time.Second, "broker 1 to delete its replica again", func() error {
		if hosts(c, 1, "moving") {
			return errf("broker 1 still has moving-0")
		}
		return nil
	})
	if res, err := adm.AlterPartitionAssignments(bg(t), req); err != nil || !errors.Is(res.Error(), kerr.NoReassignmentInProgress) {
		t.Fatalf("cancelling again: %v %v, want NO_REASSIGNMENT_IN_PROGRESS", err, res.Error())
	}

	// KIP-860: a request that forbids changing the replication factor cannot shrink it.
	req = nil
	req.Assign("moving", 0, []int32{4, 2})
	if res, err := adm.AlterPartitionAssignments(kadm.ForbidAlterRf(bg(t)), req); err != nil || !errors.Is(res.Error(), kerr.InvalidReplicationFactor) {
		t.Fatalf("shrinking the replication factor while forbidden: %v %v, want INVALID_REPLICATION_FACTOR", err, res.Error())
	}

	// A replica removed while its broker is down goes when the broker is back (a stray log).
	c.Kill(3)
	c.CheckFor(20*time.Second, "3 out of the ISR", func() error {
		if st, err := c.Partition("moving", 0); err != nil || slices.Contains(st.ISR, 3) {
			return errf("%+v %v", st, err)
		}
		return nil
	})
	req = nil
	req.Assign("moving", 0, []int32{4, 2})
	if res, err := adm.AlterPartitionAssignments(bg(t), req); err != nil || res.Error() != nil {
		t.Fatalf("reassigning away from the dead broker 3: %v %v", err, res.Error())
	}
	if r := reassigning(t, adm, "moving"); r != nil {
		t.Fatalf("a reassignment whose targets are in sync is still in flight: %+v", *r)
	}
	if !hosts(c, 3, "moving") {
		t.Fatal("dead broker 3's moving-0 is already gone")
	}
	c.Restart(3)
	c.CheckFor(20*time.Second, "broker 3 to delete its stray replica", func() error {
		if hosts(c, 3, "moving") {
			return errf("broker 3 still has moving-0")
		}
		return nil
	})
}

// notController returns a live broker that is not the active controller.
func notController(t *testing.T, c *clustertest.Cluster) int32 {
	t.Helper()
	ctl := c.Controller()
	for _, id := range c.Others(ctl) {
		if c.Node(id).Running() {
			return id
		}
	}
	t.Fatalf("no live broker besides the controller %d", ctl)
	return -1
}

// electOne runs an election of topic-0 through kadm, retrying a failed request
// (adminRetry), and returns its result.
func electOne(t *testing.T, adm *kadm.Client, how kadm.ElectLeadersHow, topic string) error {
	t.Helper()
	var res kadm.ElectLeadersResults
	err := adminRetry(func() (err error) {
		res, err = adm.ElectLeaders(bg(t), how, kadm.TopicsSet{topic: {0: {}}})
		return err
	})
	if err != nil {
		t.Fatalf("ElectLeaders %s: %v", topic, err)
	}
	r, ok := res[topic][0]
	if !ok {
		t.Fatalf("ElectLeaders %s: no result for the partition: %+v", topic, res)
	}
	return r.Err
}

// TestElectLeaders: a preferred election returns leadership to the preferred replica once it
// is back in sync; an unclean election through the API makes an out-of-sync replica lead an
// offline partition (losing what only the dead leader had), and enabling the cluster-wide
// dynamic unclean.leader.election.enable does the same for another offline partition.
func TestElectLeaders(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Set("auto.leader.rebalance.enable", "false"),
		clustertest.Set("replica.lag.time.max.ms", "1500"))
	cl := c.Client()
	adm := kadm.NewClient(cl)

	createAssigned(t, c, "pref", []int32{2, 3, 1}, nil)
	all := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce := func(n int) {
		for i := range n {
			if err := all.ProduceSync(bg(t), &kgo.Record{Topic: "pref", Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
				t.Fatalf("produce to pref: %v", err)
			}
		}
	}
	produce(5)
	c.Kill(2)
	interim := c.WaitLeader("pref", 0)
	if interim == 2 {
		t.Fatal("killed broker 2 still leads")
	}
	if err := electOne(t, adm, kadm.ElectPreferredReplica, "pref"); !errors.Is(err, kerr.PreferredLeaderNotAvailable) {
		t.Fatalf("preferred election with the preferred replica down: %v", err)
	}
	c.Restart(2)
	// As the active controller's broker sees it, with another leader: once the check passed
	// 3ms after the restart, before broker 2 had registered, and the election failed with
	// PREFERRED_LEADER_NOT_AVAILABLE (CI); any live broker may answer Partition, broker 2
	// too, from the image it had before the kill (leader 2, ISR [2 3 1]).
	c.CheckFor(30*time.Second, "broker 2 back in the ISR", func() error {
		ctl := c.Controller()
		if ctl < 0 {
			return errf("no active controller")
		}
		if st, err := c.PartitionAt(ctl, "pref", 0); err != nil || st.Leader == 2 || !slices.Contains(st.ISR, 2) {
			return errf("%+v %v", st, err)
		}
		return nil
	})
	if err := electOne(t, adm, kadm.ElectPreferredReplica, "pref"); err != nil {
		t.Fatalf("preferred election: %v", err)
	}
	c.CheckFor(10*time.Second, "broker 2 leading", func() error {
		if st, err := c.Partition("pref", 0); err != nil || st.Leader != 2 {
			return errf("%+v %v", st, err)
		}
		return nil
	})
	if err := electOne(t, adm, kadm.ElectPreferredReplica, "pref"); !errors.Is(err, kerr.ElectionNotNeeded) {
		t.Fatalf("second preferred election: %v, want ELECTION_NOT_NEEDED", err)
	}
	// The interim leader took its epoch at its log end and appended nothing; it follows 2
	// again and must replicate what 2 takes now. (Its epoch without records, kept through a
	// truncation at its log end, once made every fetch report the same divergence, and it
	// never appended again.)
	produce(5)
	c.CheckFor(10*time.Second, fmt.Sprintf("interim leader %d to replicate the new records", interim), func() error {
		dirs, err := adm.DescribeAllLogDirs(bg(t), kadm.TopicsSet{"pref": {0: {}}})
		if err != nil {
			return err
		}
		size := func(id int32) (n int64) {
			dirs[id].Each(func(d kadm.DescribedLogDir) { n += d.Size() })
			return n
		}
		if a, b := size(interim), size(2); a != b || b == 0 {
			return errf("broker %d holds %d bytes of pref-0, leader 2 %d", interim, a, b)
		}
		return nil
	})
	// A broker that is not the active controller forwards the request there.
	el := kmsg.NewPtrElectLeadersRequest()
	et := kmsg.NewElectLeadersRequestTopic()
	et.Topic, et.Partitions = "pref", []int32{0}
	el.Topics = append(el.Topics, et)
	resp, err := cl.Broker(int(notController(t, c))).Request(bg(t), el)
	if err != nil || resp.(*kmsg.ElectLeadersResponse).Topics[0].Partitions[0].ErrorCode != kerr.ElectionNotNeeded.Code {
		t.Fatalf("preferred election through a broker that forwards it: %+v %v", resp, err)
	}

	// Two topics led by 1 with follower 3; 3 is cut off, 1 takes more writes, 3 leaves both
	// ISRs and 1 dies: both are offline.
	for _, topic := range []string{"api", "config"} {
		createAssigned(t, c, topic, []int32{1, 3}, nil)
	}
	prod := c.Client(kgo.RequiredAcks(kgo.LeaderAck()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	write := func(topic string, from, to int) {
		for i := from; i < to; i++ {
			if err := prod.ProduceSync(bg(t), &kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
				t.Fatalf("produce %s %d: %v", topic, i, err)
			}
		}
	}
	for _, topic := range []string{"api", "config"} {
		write(topic, 0, 50)
		// The high watermark (over ISR [1 3]) reaches 50 once 3 has all 50.
		c.CheckFor(20*time.Second, topic+" replicated to 3", func() error {
			if end := endOffset(t, cl, topic, 0); end != 50 {
				return errf("high watermark %d", end)
			}
			return nil
		})
	}
	c.Cut(3, 1)
	for _, topic := range []string{"api", "config"} {
		write(topic, 50, 60)
		c.CheckFor(20*time.Second, "3 out of "+topic+"'s ISR", func() error {
			if st, err := c.Partition(topic, 0); err != nil || slices.Contains(st.ISR, 3) {
				return errf("%+v %v", st, err)
			}
			return nil
		})
	}
	c.Kill(1)
	for _, topic := range []string{"api", "config"} {
		c.CheckFor(20*time.Second, topic+" offline", func() error {
			if st, err := c.Partition(topic, 0); err != nil || st.Leader != -1 {
				return errf("%+v %v", st, err)
			}
			return nil
		})
	}
	c.Heal(3, 1)
	if err := electOne(t, adm, kadm.ElectPreferredReplica, "api"); !errors.Is(err, kerr.PreferredLeaderNotAvailable) {
		t.Fatalf("preferred election of an offline partition: %v", err)
	}
	if err := electOne(t, adm, kadm.ElectLiveReplica, "api"); err != nil {
		t.Fatalf("unclean election: %v", err)
	}
	if l := c.WaitLeader("api", 0); l != 3 {
		t.Fatalf("api led by %d after the unclean election, want 3", l)
	}
	if err := electOne(t, adm, kadm.ElectLiveReplica, "api"); !errors.Is(err, kerr.ElectionNotNeeded) {
		t.Fatalf("second unclean election: %v, want ELECTION_NOT_NEEDED", err)
	}
	if st, _ := c.Partition("config", 0); st.Leader != -1 {
		t.Fatalf("config got leader %d without an election", st.Leader)
	}
	ac := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "unclean.leader.election.enable", Value: kmsg.StringPtr("true")}}
	if res, err := adm.AlterBrokerConfigs(bg(t), ac); err != nil || res[0].Err != nil {
		t.Fatalf("cluster-wide unclean.leader.election.enable=true: %v %+v", err, res)
	}
	if l := c.WaitLeader("config", 0); l != 3 {
		t.Fatalf("config led by %d after enabling unclean election, want 3", l)
	}
	// What only the dead leader had is gone: both partitions end at the 50 records 3 had.
	for _, topic := range []string{"api", "config"} {
		log := readAll(t, c, topic, 0, 50)
		if len(log) != 50 || log[49] != "49" {
			t.Fatalf("%s after the unclean election: %d records (last %q), want the 50 that 3 had", topic, len(log), log[49])
		}
	}
}

// TestDeleteRecordsReplicated: DeleteRecords on a leader answers once every live replica has
// taken the new log start offset from its fetches, so a new leader keeps it, as does a
// restarted broker.
func TestDeleteRecordsReplicated(t *testing.T) {
	c := clustertest.Start(t, 3)
	cl := c.Client()
	adm := kadm.NewClient(cl)
	createAssigned(t, c, "trim", []int32{1, 2, 3}, map[string]string{"segment.bytes": "4096", "min.insync.replicas": "3"})
	prod := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 500 {
		if err := prod.ProduceSync(bg(t), &kgo.Record{Topic: "trim", Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "trim", Partition: 0, At: 300})
	start := time.Now()
	res, err := adm.DeleteRecords(bg(t), os)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := res.On("trim", 0, nil); r.Err != nil || r.LowWatermark != 300 {
		t.Fatalf("DeleteRecords at 300: %+v", r)
	}
	t.Logf("DeleteRecords answered after %s (both followers reported the new log start offset)", time.Since(start).Round(time.Millisecond))
	c.Kill(1)
	if l := c.WaitLeader("trim", 0); l == 1 {
		t.Fatal("killed broker 1 still leads")
	}
	// The new leader answers ListOffsets earliest with the log start offset it took from
	// the old leader.
	startsAt300 := func() error {
		lo, err := adm.ListStartOffsets(bg(t), "trim")
		if err != nil {
			return err
		}
		if o, _ := lo.Lookup("trim", 0); o.Err != nil || o.Offset != 300 {
			return errf("earliest offset %d (%v), want 300", o.Offset, o.Err)
		}
		return nil
	}
	c.CheckFor(20*time.Second, "the log start offset from the new leader", startsAt300)
	log := readAll(t, c, "trim", 0, 500)
	if len(log) != 200 || log[300] != "300" || log[499] != "499" {
		t.Fatalf("after deleting below 300 and a leader change: %d records (300: %q, 499: %q)", len(log), log[300], log[499])
	}
	c.Restart(1)
	c.Kill(c.WaitLeader("trim", 0))
	c.CheckFor(20*time.Second, "the log start offset after another leader change", startsAt300)
}
