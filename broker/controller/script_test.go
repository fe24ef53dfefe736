package controller

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestScript runs the controller's scenarios in testdata/script: each command makes one
// decision over the image (register, fence or unfence a broker, create a topic, an
// AlterPartition from a leader, a config change, a preferred-leader run) and prints what the
// decision changed. Regenerate the expected output with -rewrite and review the diff.
//
//	brokers n=3                          register and unfence brokers 1..n
//	topic name=t [unclean=true]          create t; each input line is one partition's replicas
//	fence id=1 | unfence id=1 | register id=1
//	alter topic=t partition=0 isr=2,3    AlterPartition from the partition's leader
//	set-config topic=t key=... value=...
//	broker-config name=default|ID key=... value=...
//	                                     a dynamic broker config (cluster default, or broker ID's;
//	                                     the deciding controller is node 0)
//	unclean-default on=true              the brokers' static unclean.leader.election.enable
//	reassign topic=t partition=0 replicas=1,2,4|cancel
//	elect topic=t partition=0 type=preferred|unclean
//	preferred-leaders | reconcile
//	show                                 every partition and broker
func TestScript(t *testing.T) {
	datadriven.Walk(t, "testdata/script", func(t *testing.T, path string) {
		c := newCluster(t, 0)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			c.t = t
			before := c.img
			var err error
			switch d.Cmd {
			case "brokers":
				var n int
				d.ScanArgs(t, "n", &n)
				for _, id := range ids(n) {
					c.apply(c.must(registerRecords(c.img, c.pol, RegisterBrokerRecord{ID: id, Host: "127.0.0.1", Port: 9000 + id, Time: t0})))
					c.apply(c.must(unfenceRecords(c.img, c.pol, id, c.img.Brokers[id].Epoch, t0)))
				}
			case "topic":
				var name string
				d.ScanArgs(t, "name", &name)
				var configs map[string]string
				if d.HasArg("unclean") {
					var on bool
					d.ScanArgs(t, "unclean", &on)
					configs = map[string]string{UncleanLeaderElectionConfig: strconv.FormatBool(on)}
				}
				var assign [][]int32
				for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
					assign = append(assign, parseIDs(t, strings.Fields(line)))
				}
				c.topic(name, configs, assign...)
			case "fence", "unfence", "register":
				var id int
				d.ScanArgs(t, "id", &id)
				var recs []Record
				switch d.Cmd {
				case "fence":
					recs, err = fenceRecords(c.img, c.pol, int32(id))
				case "unfence":
					recs, err = unfenceRecords(c.img, c.pol, int32(id), c.img.Brokers[int32(id)].Epoch, t0)
				default:
					recs, err = registerRecords(c.img, c.pol, RegisterBrokerRecord{ID: int32(id), Host: "127.0.0.1", Port: 9000 + int32(id), Time: t0})
				}
				if err == nil {
					c.apply(recs)
				}
			case "alter":
				var topic, isr string
				var part int
				d.ScanArgs(t, "topic", &topic)
				d.ScanArgs(t, "partition", &part)
				d.ScanArgs(t, "isr", &isr)
				p := c.part(topic, int32(part))
				var r *Record
				r, _, err = alterPartitionRecord(c.img, AlterPartitionRequest{Topic: topic, Partition: int32(part), BrokerID: p.Leader,
					BrokerEpoch: -1, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: parseIDs(t, strings.Split(isr, ","))})
				if err == nil && r != nil {
					c.apply([]Record{*r})
				}
			case "set-config":
				var topic, key, value string
				d.ScanArgs(t, "topic", &topic)
				d.ScanArgs(t, "key", &key)
				d.ScanArgs(t, "value", &value)
				var r Record
				if r, err = alterConfigsRecord(c.img, topic, map[string]string{key: value}, nil, nil); err == nil {
					var recs []Record
					if recs, err = withRecords(c.img, c.pol, r); err == nil {
						c.apply(recs)
					}
				}
			case "broker-config":
				var name, key, value string
				d.ScanArgs(t, "name", &name)
				d.ScanArgs(t, "key", &key)
				d.ScanArgs(t, "value", &value)
				if name == "default" {
					name = ""
				}
				cfg := maps.Clone(c.img.BrokerConfigs[name])
				if cfg == nil {
					cfg = map[string]string{}
				}
				cfg[key] = value
				var recs []Record
				if recs, err = withRecords(c.img, c.pol, Record{Type: TypeBrokerConfigs, BrokerConfigs: &BrokerConfigsRecord{Name: name, Configs: cfg}}); err == nil {
					c.apply(recs)
				}
			case "reassign":
				var topic, replicas string
				var part int
				d.ScanArgs(t, "topic", &topic)
				d.ScanArgs(t, "partition", &part)
				d.ScanArgs(t, "replicas", &replicas)
				var target []int32
				if replicas != "cancel" {
					target = parseIDs(t, strings.Split(replicas, ","))
				}
				var r *Record
				if r, err = reassignRecord(c.img, c.pol, topic, int32(part), target, true); err == nil && r != nil {
					c.apply([]Record{*r})
				}
			case "elect":
				var topic, typ string
				var part int
				d.ScanArgs(t, "topic", &topic)
				d.ScanArgs(t, "partition", &part)
				d.ScanArgs(t, "type", &typ)
				var r *Record
				if r, err = electionRecord(c.img, topic, int32(part), typ == "unclean"); err == nil {
					c.apply([]Record{*r})
				}
			case "unclean-default":
				d.ScanArgs(t, "on", &c.pol.uncleanDefault)
			case "preferred-leaders":
				c.apply(preferredLeaderRecords(c.img))
			case "reconcile":
				c.apply(reconcile(c.img, c.pol))
			case "show":
				return describe(c.img)
			default:
				d.Fatalf(t, "unknown command %s", d.Cmd)
			}
			if err != nil {
				return "error: " + err.Error() + "\n"
			}
			if err := checkInvariants(before, c.img, c.pol); err != nil {
				d.Fatalf(t, "invariant broken: %v", err)
			}
			return changes(before, c.img)
		})
	})
}

func parseIDs(t *testing.T, fields []string) []int32 {
	t.Helper()
	var out []int32
	for _, f := range fields {
		id, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			t.Fatalf("broker id %q: %v", f, err)
		}
		out = append(out, int32(id))
	}
	return out
}

// partitionLine is one partition's state as the scripts print it.
func partitionLine(name string, i int, p *Partition) string {
	reassigning := ""
	if p.Reassigning() {
		reassigning = fmt.Sprintf(" adding=%v removing=%v", p.AddingReplicas, p.RemovingReplicas)
	}
	return fmt.Sprintf("%s-%d replicas=%v isr=%v leader=%d leaderEpoch=%d partitionEpoch=%d%s\n",
		name, i, p.Replicas, p.ISR, p.Leader, p.LeaderEpoch, p.PartitionEpoch, reassigning)
}

func brokerLine(id int32, b *Broker) string {
	state := "unfenced"
	if b.Fenced {
		state = "fenced"
	}
	return fmt.Sprintf("broker %d epoch=%d %s\n", id, b.Epoch, state)
}

// changes prints what differs between two images: partitions, brokers and counters.
func changes(before, after *Image) string {
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(after.Brokers)) {
		if old := before.Brokers[id]; old == nil || old.Fenced != after.Brokers[id].Fenced || old.Epoch != after.Brokers[id].Epoch {
			b.WriteString(brokerLine(id, after.Brokers[id]))
		}
	}
	for _, name := range after.sortedTopicNames() {
		t := after.Topics[name]
		for i, p := range t.Partitions {
			var old *Partition
			if bt := before.Topics[name]; bt != nil && i < len(bt.Partitions) {
				old = bt.Partitions[i]
			}
			if old == nil || old.PartitionEpoch != p.PartitionEpoch || old.LeaderEpoch != p.LeaderEpoch {
				b.WriteString(partitionLine(name, i, p))
			}
		}
	}
	if before.Stats != after.Stats {
		s := after.Stats
		fmt.Fprintf(&b, "stats elections=%d unclean=%d shrinks=%d expands=%d fencings=%d\n", s.LeaderElections, s.UncleanLeaderElections, s.ISRShrinks, s.ISRExpands, s.BrokerFencings)
	}
	if b.Len() == 0 {
		return "no change\n"
	}
	return b.String()
}

// describe prints every broker and partition of img.
func describe(img *Image) string {
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(img.Brokers)) {
		b.WriteString(brokerLine(id, img.Brokers[id]))
	}
	for _, name := range img.sortedTopicNames() {
		for i, p := range img.Topics[name].Partitions {
			b.WriteString(partitionLine(name, i, p))
		}
	}
	fmt.Fprintf(&b, "offline %d\n", img.OfflinePartitions())
	return b.String()
}
