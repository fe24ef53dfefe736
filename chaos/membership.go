package chaos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Membership faults change who holds which replica through the Kafka admin API —
// AlterPartitionReassignments (KIP-455) and ElectLeaders (KIP-460) — so they work the same on
// the reference cluster and on any Kafka cluster. A reassignment is undone by reassigning the
// partition back to the replicas it had when the fault started.

// AddNodeFunc starts a new broker that joins the cluster and returns its id and process (the
// local driver's add-broker); Local.AddNode.
type AddNodeFunc func(ctx context.Context) (int32, Process, error)

// WithMembership returns a driver that does what inner does (nil: nothing else) plus the
// membership kinds, through the admin API of res, which must be a *KafkaResolver (otherwise
// inner is returned as it is). Decommission stops the broker through inner's stop.
func WithMembership(inner Driver, res Resolver) Driver {
	kr, ok := res.(*KafkaResolver)
	if !ok {
		return inner
	}
	return &membershipDriver{inner: inner, res: kr, adm: kadm.NewClient(kr.cl)}
}

type membershipDriver struct {
	inner Driver
	res   *KafkaResolver
	adm   *kadm.Client
}

func (d *membershipDriver) Kinds() []Kind {
	var out []Kind
	if d.inner != nil {
		out = append(out, d.inner.Kinds()...)
	}
	out = append(out, Reassign, ElectLeader)
	if d.inner != nil && slices.Contains(d.inner.Kinds(), Stop) {
		out = append(out, Decommission)
	}
	if l := localOf(d.inner); l != nil && l.AddNode != nil {
		out = append(out, AddBroker)
	}
	return out
}

// localOf finds the Local driver inside d, if any.
func localOf(d Driver) *Local {
	switch v := d.(type) {
	case *Local:
		return v
	case *Netns:
		return v.Local
	}
	return nil
}

func (d *membershipDriver) Apply(ctx context.Context, reg *Registry, id int64, f Fault, r Resolved) error {
	if f.Kind.Class() != "membership" {
		if d.inner == nil {
			return fmt.Errorf("chaos: %s: no driver for it", f.Kind)
		}
		return d.inner.Apply(ctx, reg, id, f, r)
	}
	view, err := d.res.View(ctx)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(id), 0x6d656d62))
	switch f.Kind {
	case Reassign:
		p, err := targetPartition(f, r, view)
		if err != nil {
			return err
		}
		if p, err = d.settled(ctx, f.Target.Topic, p.Partition, moveLimit(f)); err != nil {
			return err
		}
		to, err := reassignment(f.param("mode", "move"), p, view.Brokers, rng)
		if err != nil {
			return err
		}
		if err := d.reassign(ctx, reg, id, f.Target.Topic, p, to); err != nil {
			return err
		}
		return d.waitReplicas(ctx, map[string]map[int32][]int32{f.Target.Topic: {p.Partition: to}}, moveLimit(f))
	case ElectLeader:
		p, err := targetPartition(f, r, view)
		if err != nil {
			return err
		}
		how := kadm.ElectPreferredReplica
		if f.param("type", "preferred") == "unclean" {
			how = kadm.ElectLiveReplica
		}
		res, err := d.adm.ElectLeaders(ctx, how, kadm.TopicsSet{f.Target.Topic: {p.Partition: {}}})
		if err != nil {
			return fmt.Errorf("chaos: elect-leader %s-%d: %w", f.Target.Topic, p.Partition, err)
		}
		reg.Add(Record{Fault: id, Action: "elect-leader", Object: f.Target.Topic + "-" + strconv.Itoa(int(p.Partition))}, nil)
		for _, ps := range res {
			for _, e := range ps {
				// Kafka answers ELECTION_NOT_NEEDED when the preferred replica already leads.
				if e.Err != nil && !errors.Is(e.Err, kerr.ElectionNotNeeded) {
					return fmt.Errorf("chaos: elect-leader %s-%d: %w: %s", e.Topic, e.Partition, e.Err, e.ErrMessage)
				}
			}
		}
		return nil
	case Decommission:
		for _, n := range r.Nodes {
			if err := d.decommission(ctx, reg, id, n, view, rng, moveLimit(f)); err != nil {
				return err
			}
		}
		return nil
	case AddBroker:
		return d.addBroker(ctx, reg, id, f, r, view)
	}
	return fmt.Errorf("chaos: the membership driver cannot do %s", f.Kind)
}

// targetPartition is the partition of f's leader(topic,partition) target; for leader(topic),
// the first partition led by the broker r resolved to.
func targetPartition(f Fault, r Resolved, view ClusterView) (PartitionView, error) {
	ps := view.Topics[f.Target.Topic]
	if f.Target.Partition >= 0 {
		if int(f.Target.Partition) >= len(ps) {
			return PartitionView{}, fmt.Errorf("chaos: %s: no such partition", f.Target)
		}
		return ps[f.Target.Partition], nil
	}
	for _, p := range ps {
		if len(r.Nodes) > 0 && p.Leader == r.Nodes[0] {
			return p, nil
		}
	}
	return PartitionView{}, fmt.Errorf("chaos: %s: no partition led by %v", f.Target, r.Nodes)
}

// settled waits up to limit until no reassignment of topic-p is in flight (as the active
// controller lists them) and returns the partition as the controller's broker reports it.
// Metadata from another broker may lag: right after a reassignment finished it can still show
// the union of the old and new replicas, and a move computed from that would keep a replica
// the fault meant to drop.
func (d *membershipDriver) settled(ctx context.Context, topic string, p int32, limit time.Duration) (PartitionView, error) {
	var pv PartitionView
	err := poll(ctx, limit, func() (string, error) {
		inFlight, err := d.adm.ListPartitionReassignments(ctx, kadm.TopicsSet{topic: {p: {}}})
		if err != nil {
			return "", err
		}
		if r, ok := inFlight[topic][p]; ok {
			return fmt.Sprintf("a reassignment to %v is in flight", r.Replicas), nil
		}
		// Any broker names the controller; the controller's broker then reports the partition.
		resp, err := topicMetadata(ctx, d.res.cl, topic)
		if err == nil && resp.ControllerID >= 0 {
			resp, err = topicMetadata(ctx, d.res.cl.Broker(int(resp.ControllerID)), topic)
		}
		if err != nil {
			return "", err
		}
		ps := viewFromMetadata(resp).Topics[topic]
		if int(p) >= len(ps) || len(ps[p].Replicas) == 0 {
			return fmt.Sprintf("broker %d does not report %s-%d", resp.ControllerID, topic, p), nil
		}
		pv = ps[p]
		return "", nil
	})
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("chaos: reassign %s-%d: not settled after %s: %w", topic, p, limit, err)
	}
	return pv, err
}

// topicMetadata sends a Metadata request for topic alone through via.
func topicMetadata(ctx context.Context, via kmsg.Requestor, topic string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(topic)}}
	return req.RequestWith(ctx, via)
}

// poll calls check every 100ms until it reports nothing pending and no error, for up to
// limit; past it, it returns what was last pending or failing.
func poll(ctx context.Context, limit time.Duration, check func() (pending string, err error)) error {
	deadline := time.Now().Add(limit)
	for {
		pending, err := check()
		if err == nil && pending == "" {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				return errors.New(pending)
			}
			if pending != "" {
				return fmt.Errorf("%s: %w", pending, err)
			}
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// reassignment is the new replica list of p for mode, drawn with rng: move replaces a
// follower by a broker outside the set (shrink when there is none), shrink drops a follower,
// grow adds a broker. The leader stays first.
func reassignment(mode string, p PartitionView, brokers []int32, rng *rand.Rand) ([]int32, error) {
	var outside, followers []int32
	for _, b := range brokers {
		if !slices.Contains(p.Replicas, b) {
			outside = append(outside, b)
		}
	}
	for _, b := range p.Replicas {
		if b != p.Leader {
			followers = append(followers, b)
		}
	}
	if mode == "move" && len(outside) == 0 {
		mode = "shrink"
	}
	to := slices.Clone(p.Replicas)
	switch mode {
	case "grow":
		if len(outside) == 0 {
			return nil, fmt.Errorf("chaos: reassign grow: every broker already holds partition %d (replicas %v)", p.Partition, p.Replicas)
		}
		to = append(to, outside[rng.IntN(len(outside))])
	case "shrink", "move":
		if len(followers) == 0 {
			return nil, fmt.Errorf("chaos: reassign %s: partition %d has no follower to drop (replicas %v)", mode, p.Partition, p.Replicas)
		}
		drop := followers[rng.IntN(len(followers))]
		i := slices.Index(to, drop)
		if mode == "move" {
			to[i] = outside[rng.IntN(len(outside))]
		} else {
			to = slices.Delete(to, i, i+1)
		}
	}
	return to, nil
}

// reassign moves topic-p to replicas to and journals the move back to its replicas now; the
// undo waits (up to 30s) until the move back is done.
func (d *membershipDriver) reassign(ctx context.Context, reg *Registry, id int64, topic string, p PartitionView, to []int32) error {
	from := slices.Clone(p.Replicas)
	if err := d.alter(ctx, topic, p.Partition, to); err != nil {
		return err
	}
	rec := Record{Fault: id, Action: "reassign", Object: fmt.Sprintf("%s-%d %v -> %v", topic, p.Partition, from, to), Undo: fmt.Sprint(from)}
	reg.Add(rec, func(ctx context.Context) error {
		if err := d.alter(ctx, topic, p.Partition, from); err != nil {
			return err
		}
		return d.waitReplicas(ctx, map[string]map[int32][]int32{topic: {p.Partition: from}}, 30*time.Second)
	})
	return nil
}

// alter requests one reassignment and fails on a refused one.
func (d *membershipDriver) alter(ctx context.Context, topic string, p int32, to []int32) error {
	req := kadm.AlterPartitionAssignmentsReq{}
	req.Assign(topic, p, to)
	res, err := d.adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return fmt.Errorf("chaos: reassign %s-%d to %v: %w", topic, p, to, err)
	}
	for _, ps := range res {
		for _, r := range ps {
			if r.Err != nil {
				return fmt.Errorf("chaos: reassign %s-%d to %v: %w: %s", topic, p, to, r.Err, r.ErrMessage)
			}
		}
	}
	return nil
}

// waitReplicas waits up to limit until each partition's replicas are the wanted ones (as a
// set) and all in sync: the reassignments finished.
func (d *membershipDriver) waitReplicas(ctx context.Context, want map[string]map[int32][]int32, limit time.Duration) error {
	err := poll(ctx, limit, func() (string, error) {
		v, err := d.res.View(ctx)
		pending := ""
		for topic, ps := range want {
			for p, to := range ps {
				var got PartitionView
				if int(p) < len(v.Topics[topic]) {
					got = v.Topics[topic][p]
				}
				a, b := slices.Sorted(slices.Values(got.Replicas)), slices.Sorted(slices.Values(to))
				if !slices.Equal(a, b) || len(got.ISR) != len(to) {
					pending = fmt.Sprintf("%s-%d has replicas %v ISR %v, want %v", topic, p, got.Replicas, got.ISR, to)
				}
			}
		}
		return pending, err
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("chaos: reassignment not done after %s: %w", limit, err)
	}
	return err
}

// moveLimit is how long decommission waits for its moves: the fault's duration, at least 5s
// and at most 30s, so a move that cannot finish does not hold the schedule up.
func moveLimit(f Fault) time.Duration { return min(max(f.For.D(), 5*time.Second), 30*time.Second) }

// decommission moves every replica of broker node to other brokers (shrinking partitions that
// have no broker left to take it), waits up to limit for the moves, and stops it through the
// inner driver.
// Undone newest first: the broker starts again, then its replicas move back.
func (d *membershipDriver) decommission(ctx context.Context, reg *Registry, id int64, node int32, view ClusterView, rng *rand.Rand, limit time.Duration) error {
	if d.inner == nil {
		return errors.New("chaos: decommission needs a driver that can stop brokers")
	}
	want := map[string]map[int32][]int32{}
	for _, topic := range slices.Sorted(maps.Keys(view.Topics)) {
		for _, p := range view.Topics[topic] {
			i := slices.Index(p.Replicas, node)
			if i < 0 {
				continue
			}
			to := slices.Clone(p.Replicas)
			var outside []int32
			for _, b := range view.Brokers {
				if b != node && !slices.Contains(p.Replicas, b) {
					outside = append(outside, b)
				}
			}
			if len(outside) > 0 {
				to[i] = outside[rng.IntN(len(outside))]
			} else if len(to) > 1 {
				to = slices.Delete(to, i, i+1)
			} else {
				return fmt.Errorf("chaos: decommission broker %d: %s-%d has no other broker to hold its only replica", node, topic, p.Partition)
			}
			if err := d.reassign(ctx, reg, id, topic, p, to); err != nil {
				return err
			}
			if want[topic] == nil {
				want[topic] = map[int32][]int32{}
			}
			want[topic][p.Partition] = to
		}
	}
	if err := d.waitReplicas(ctx, want, limit); err != nil {
		return err
	}
	return d.inner.Apply(ctx, reg, id, Fault{Kind: Stop, Target: Target{Sel: SelBroker, Broker: node}}, Resolved{Nodes: []int32{node}})
}

// addBroker starts a new broker through the local driver and moves one replica of the
// target's partition onto it; undone newest first, the replica moves back and the broker
// stops.
func (d *membershipDriver) addBroker(ctx context.Context, reg *Registry, id int64, f Fault, r Resolved, view ClusterView) error {
	l := localOf(d.inner)
	if l == nil || l.AddNode == nil {
		return errors.New("chaos: add-broker needs a local cluster that can start brokers")
	}
	p, err := targetPartition(f, r, view)
	if err != nil {
		return err
	}
	if p, err = d.settled(ctx, f.Target.Topic, p.Partition, moveLimit(f)); err != nil {
		return err
	}
	node, proc, err := l.AddNode(ctx)
	if err != nil {
		return fmt.Errorf("chaos: add-broker: %w", err)
	}
	rec := processRecord(id, "add-broker", node, proc)
	rec.Undo = "stop"
	reg.Add(rec, func(context.Context) error { return proc.Stop() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := d.res.View(ctx)
		if err == nil && slices.Contains(v.Brokers, node) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: add-broker: broker %d did not join within 30s: %v", node, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	to := slices.Clone(p.Replicas)
	var followers []int
	for i, b := range to {
		if b != p.Leader {
			followers = append(followers, i)
		}
	}
	if len(followers) == 0 {
		to = append(to, node)
	} else {
		to[followers[rand.New(rand.NewPCG(uint64(id), 1)).IntN(len(followers))]] = node
	}
	if err := d.reassign(ctx, reg, id, f.Target.Topic, p, to); err != nil {
		return err
	}
	return d.waitReplicas(ctx, map[string]map[int32][]int32{f.Target.Topic: {p.Partition: to}}, moveLimit(f))
}
