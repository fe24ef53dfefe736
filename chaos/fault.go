package chaos

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind names a fault.
type Kind string

// Process faults.
const (
	// Kill sends SIGKILL to each target broker; the end of the fault restarts it on the same
	// data directory and port.
	Kill Kind = "kill"
	// Stop stops each target gracefully (SIGTERM); the end of the fault restarts it.
	Stop Kind = "stop"
	// Pause freezes each target with SIGSTOP; the end of the fault resumes it with SIGCONT.
	Pause Kind = "pause"
	// Restart stops each target gracefully and starts it again at once; it has no duration.
	Restart Kind = "restart"
)

// Network faults. Each cuts links between brokers (and between clients and brokers); the end
// of the fault restores them. Param "mode" chooses how a cut link behaves: "blackhole"
// (default: bytes stop flowing and connections hang, like dropped packets) or "reset" (every
// connection is closed and new ones are refused).
const (
	// Isolate cuts each target off; param "from" is "peers" (other brokers), "clients" or
	// "both" (default).
	Isolate Kind = "isolate"
	// Partition cuts the links between the target brokers and the brokers of param "from"
	// (a target, e.g. followers(t,0); default every other broker), both directions; clients
	// keep reaching everyone.
	Partition Kind = "partition"
	// PartitionHalves splits the brokers into two random halves (the first one the smaller)
	// that cannot reach each other. It takes no target.
	PartitionHalves Kind = "partition-halves"
	// MajoritiesRing lets every broker reach a majority, but no two brokers the same majority
	// (Jepsen's majorities-ring). Links are cut symmetrically, as TCP needs both directions;
	// with 3 brokers that is the bridge. It takes no target.
	MajoritiesRing Kind = "majorities-ring"
	// Bridge splits the brokers into two halves joined by one broker that reaches both. It
	// takes no target.
	Bridge Kind = "bridge"
	// LeaderIsolateFromFollowers cuts the leader of a partition off from that partition's other
	// replicas (replication and controller links), while clients still reach it: the acks=1
	// loss scenario. Its target must be leader(topic,partition) or leader(topic).
	LeaderIsolateFromFollowers Kind = "leader-isolate-from-followers"
)

// Link degradation faults act on every link to and from each target; param "links" narrows
// them to "peers", "clients" or "both" (default).
const (
	// Latency delays bytes on the links by param "delay" (required) plus a uniform random
	// jitter in [-jitter, +jitter] (param "jitter", default 0), keeping byte order.
	Latency Kind = "latency"
	// Loss models packet loss on the links: param "rate" (0..1 or a percentage, required) is
	// the chance that a chunk of bytes is held back for one retransmission timeout (param "rto",
	// default 200ms), which is what a lost segment costs a TCP stream.
	Loss Kind = "loss"
	// Bandwidth limits each direction of the links to param "rate" bytes per second (a size:
	// 1MiB, 500KB).
	Bandwidth Kind = "bandwidth"
)

// Disk faults act through the broker's storage.FS seam.
const (
	// DiskFull makes writes of each target fail with ENOSPC until the fault ends.
	DiskFull Kind = "disk-full"
	// DiskSlow delays each write and fsync of the targets by param "delay" (required).
	DiskSlow Kind = "disk-slow"
	// LoseUnsynced kills each target and drops everything it wrote since its last fsync
	// (a power loss), then restarts it. It has no duration.
	LoseUnsynced Kind = "lose-unsynced"
)

// Consumer faults act on the load generator's consumers, not on brokers; their target is
// consumer(N), the run's N-th consumer (0-based). The harness delivers them (a driver that
// does not know consumers does not list these kinds).
const (
	// CrashConsumer crashes the consumer: its client is closed without committing or leaving
	// the group, as a killed process would, and a new client starts after param "delay"
	// (default 0) under the same process number. It has no duration.
	CrashConsumer Kind = "crash-consumer"
	// RestartConsumer is CrashConsumer with the new client starting when the fault ends.
	RestartConsumer Kind = "restart-consumer"
	// StallConsumer stops the consumer polling until the fault ends (a long GC pause or a
	// slow processing step): past max.poll.interval.ms the group expels it.
	StallConsumer Kind = "stall-consumer"
)

// DropResponses loses the brokers' answers to clients: on the client links of each target,
// a response is dropped and the connection reset after the broker has read (and acted on)
// the request, as when an acknowledgement is lost to a network fault. Param "rate" (0..1 or
// a percentage, default 1) is the chance per response. Producers retry, and without
// idempotence a retried batch is written twice.
const DropResponses Kind = "drop-responses"

// Clock faults move a broker's wall clock (package broker/clock: its control file, for the
// local and netns drivers) or, for target clients, the clock the clients stamp their records
// with. Overlapping clock faults on one broker add up; each end removes exactly its own.
const (
	// ClockSkew runs each target's clock param "offset" (a signed duration, default 30s) off
	// the true time while it lasts. Target clients skews the clients' clocks instead: the
	// client links rewrite the CreateTime of every produced record batch by the offset
	// (timestamps and CRC32C), which is all of a client's clock a broker ever sees.
	ClockSkew Kind = "clock-skew"
	// ClockBump jumps each target's clock by param "delta" (signed, default 1m) and jumps it
	// back when the fault ends (Jepsen's bump, then reset).
	ClockBump Kind = "clock-bump"
	// ClockStrobe flips each target's clock between true and param "delta" (signed, default
	// 10s) ahead every param "period" (default 100ms) while it lasts (Jepsen's strobe).
	ClockStrobe Kind = "clock-strobe"
)

// Packet faults act on the Kafka requests and responses on the links of each target, read
// frame by frame by the link proxies (plaintext links only: TLS is passed through untouched).
const (
	// Corrupt flips one bit in param "rate" (a probability, default 0.05) of the record
	// batches carried by produce requests and fetch responses, inside the part the batch's
	// CRC32C covers: what a corruption TCP's checksum missed looks like to Kafka, whose CRC
	// must catch it (brokers answer CORRUPT_MESSAGE, clients and followers refetch). Param
	// "where" anywhere instead flips a bit anywhere in a chunk of bytes, headers included,
	// which no Kafka checksum covers; "produce" only corrupts the batches of produce requests,
	// so that producers see CORRUPT_MESSAGE and retry while consumers read clean data. Param
	// "links" narrows the links as for latency.
	Corrupt Kind = "corrupt"
	// Duplicate sends param "rate" (default 0.5) of the produce requests on the client links
	// twice; the second answer is swallowed, so the client never learns of the copy. It is
	// what an idempotent producer must survive.
	Duplicate Kind = "duplicate"
	// Reorder swaps pipelined produce requests on the client links: with chance param "rate"
	// (default 0.5) a produce request is held up to param "window" (default 20ms) and sent
	// after the next request of its connection; answers reach the client in its own order.
	Reorder Kind = "reorder"
)

// File faults.
const (
	// CorruptFile stops each target broker (param "down" stop, default: a clean shutdown, so
	// its indexes are trusted on restart and the damage is found when a batch is first read;
	// or kill: found by recovery), damages one file of one partition in its data directory
	// and restarts it: param "file" log (default), index or timeindex; "segment" closed
	// (default; the active one when there is no other) or active; "mode" bitflip (default:
	// param "flips" random bits, default 8, in a log file inside the part of random batches
	// their CRC32C covers) or truncate (cut the file at a random point in its second half). The partition is the target's (leader(t,p), followers(t,p)),
	// else params "topic" and "partition", else a random partition of a non-internal topic
	// on that broker. It has no duration.
	CorruptFile Kind = "corrupt-file"
	// IOError makes the targets' file I/O fail through the storage seam: param "ops" (read,
	// write, fsync; comma-separated, default write,fsync), "errno" (EIO, default, or ENOSPC)
	// and "rate" (the chance per call, default 1).
	IOError Kind = "io-error"
)

// Membership faults change who holds what through the Kafka admin API.
const (
	// Reassign changes the replica set of the target's partition (leader(t,p) or leader(t))
	// with AlterPartitionReassignments, and restores it when the fault ends: param "mode"
	// move (default: one replica replaced by a broker outside the set, which grows the set
	// by one and shrinks it back), shrink (one follower dropped) or grow (one broker added).
	Reassign Kind = "reassign"
	// ElectLeader runs ElectLeaders for the target's partition (leader(t,p) or leader(t)):
	// param "type" preferred (default) or unclean. It has no duration.
	ElectLeader Kind = "elect-leader"
	// Decommission makes each target leave the cluster: its replicas are reassigned to the
	// other brokers, it is stopped and unregistered; the end of the fault starts it again and
	// moves its replicas back.
	Decommission Kind = "decommission"
	// AddBroker starts a new broker that joins the cluster (the local driver only) and moves
	// one replica of the target's partition (leader(t,p) or leader(t)) to it; the end of the
	// fault moves the replica back and decommissions the new broker.
	AddBroker Kind = "add-broker"
)

// Resource faults squeeze a broker process.
const (
	// CPUStress limits each target to param "cpus" (a fraction of one CPU, default 0.2) with a
	// cgroup CPU quota; param "mode" hog instead starts param "workers" (default 1) busy-loop
	// processes pinned to the CPUs the broker may run on. Without cgroups it is a hog.
	CPUStress Kind = "cpu-stress"
	// MemoryPressure caps each target's memory with a cgroup limit of param "limit" (a size;
	// default the broker's resident size when the fault starts plus 16MiB), so the kernel
	// reclaims its page cache and the broker works in what is left. A broker the kernel
	// kills for it is restarted when the fault ends.
	MemoryPressure Kind = "memory-pressure"
)

// Random is a seeded mix of fault kinds with fault-free gaps between them, in the manner of
// Jepsen's nemesis packages. Params: "kinds" (comma-separated; default every kind the driver
// supports that needs no special target), "gap" (the mean fault-free period; default the
// fault's For), "mode" (handed to network kinds), "scope" (all, the default; controller: faults
// on the active controller only; brokers: on brokers other than the controller, or any when
// every broker is a voter; clients: on the clients' links and clocks only), "pick" (random, the
// default, draws each kind at random; rotate takes the kinds in turn, in an order shuffled by
// the seed, so a long enough mix runs every one), and "KIND.NAME" params handed to the
// instances of KIND as their NAME (latency.delay: 50ms lets the mix pick latency). At is when the mix
// starts (default 0), For the mean duration of each fault (required), and the mix runs to the
// end of the run. Durations and gaps are drawn uniformly from [x/2, 3x/2).
const Random Kind = "random"

// kindInfo says what a kind accepts.
type kindInfo struct {
	// target: "required", "none" (the kind picks brokers itself) or "optional" (default random).
	target string
	// instant kinds have no duration; their end follows their start at once.
	instant bool
	// params are the accepted parameter names; required ones are prefixed with "!".
	params []string
	// network kinds are done with link proxies; process kinds with processes; disk kinds
	// through the storage seam.
	class string
}

var kinds = map[Kind]kindInfo{
	Kill:                       {target: "optional", class: "process"},
	Stop:                       {target: "optional", class: "process"},
	Pause:                      {target: "optional", class: "process"},
	Restart:                    {target: "optional", instant: true, class: "process"},
	Isolate:                    {target: "optional", params: []string{"from", "mode"}, class: "network"},
	Partition:                  {target: "required", params: []string{"from", "mode"}, class: "network"},
	PartitionHalves:            {target: "none", params: []string{"mode"}, class: "network"},
	MajoritiesRing:             {target: "none", params: []string{"mode"}, class: "network"},
	Bridge:                     {target: "none", params: []string{"mode"}, class: "network"},
	LeaderIsolateFromFollowers: {target: "required", params: []string{"mode"}, class: "network"},
	Latency:                    {target: "optional", params: []string{"!delay", "jitter", "links"}, class: "network"},
	Loss:                       {target: "optional", params: []string{"!rate", "rto", "links"}, class: "network"},
	Bandwidth:                  {target: "optional", params: []string{"!rate", "links"}, class: "network"},
	DiskFull:                   {target: "optional", class: "disk"},
	DiskSlow:                   {target: "optional", params: []string{"!delay"}, class: "disk"},
	LoseUnsynced:               {target: "optional", instant: true, class: "disk"},
	DropResponses:              {target: "optional", params: []string{"rate"}, class: "network"},
	CrashConsumer:              {target: "required", instant: true, params: []string{"delay"}, class: "consumer"},
	RestartConsumer:            {target: "required", class: "consumer"},
	StallConsumer:              {target: "required", class: "consumer"},
	ClockSkew:                  {target: "optional", params: []string{"offset"}, class: "clock"},
	ClockBump:                  {target: "optional", params: []string{"delta"}, class: "clock"},
	ClockStrobe:                {target: "optional", params: []string{"delta", "period"}, class: "clock"},
	Corrupt:                    {target: "optional", params: []string{"rate", "where", "links"}, class: "network"},
	Duplicate:                  {target: "optional", params: []string{"rate"}, class: "network"},
	Reorder:                    {target: "optional", params: []string{"rate", "window"}, class: "network"},
	CorruptFile:                {target: "optional", instant: true, params: []string{"file", "segment", "mode", "flips", "topic", "partition", "down"}, class: "disk"},
	IOError:                    {target: "optional", params: []string{"ops", "errno", "rate"}, class: "disk"},
	Reassign:                   {target: "required", params: []string{"mode"}, class: "membership"},
	ElectLeader:                {target: "required", instant: true, params: []string{"type"}, class: "membership"},
	Decommission:               {target: "optional", class: "membership"},
	AddBroker:                  {target: "required", class: "membership"},
	CPUStress:                  {target: "optional", params: []string{"cpus", "mode", "workers"}, class: "resource"},
	MemoryPressure:             {target: "optional", params: []string{"limit"}, class: "resource"},
	Random:                     {target: "optional", params: []string{"kinds", "gap", "mode", "scope", "pick"}, class: "mix"},
}

// kindAliases maps spellings used in shipped workload files to kinds.
var kindAliases = map[string]Kind{"lose-unfsynced-writes": LoseUnsynced}

// Kinds returns every fault kind, sorted.
func Kinds() []Kind {
	out := make([]Kind, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Instant reports whether k has no duration (restart, lose-unsynced).
func (k Kind) Instant() bool { return kinds[k].instant }

// Class returns "process", "network", "disk", "clock", "membership", "resource", "consumer"
// or "mix" ("" for an unknown kind).
func (k Kind) Class() string { return kinds[k].class }

// Fault is one entry of a workload's chaos section: a serialisable value.
type Fault struct {
	// Kind is what happens.
	Kind Kind `json:"kind"`
	// Target selects brokers, resolved when the fault starts; empty for kinds that pick
	// brokers themselves, and "random" when an optional target is omitted.
	Target Target `json:"target,omitzero"`
	// At is when the fault starts, from the start of the run; default 0.
	At Duration `json:"at,omitzero"`
	// For is how long it lasts; 0 means until the end of the run (ignored for instant kinds).
	For Duration `json:"for,omitzero"`
	// Every repeats the fault with this period from At; 0 means once.
	Every Duration `json:"every,omitzero"`
	// Params are kind-specific parameters, as strings.
	Params map[string]string `json:"params,omitempty"`
	// Pos is where the fault was written, "file:line"; empty for faults built in code.
	Pos string `json:"pos,omitempty"`
}

// Duration is a time.Duration written as Go duration text ("10s", "1m30s") in YAML and JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("chaos: duration: %w", err)
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// parseDuration parses Go duration text; a bare 0 is accepted.
func parseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("chaos: %q is not a duration; use 500ms, 10s, 1m30s", s)
	}
	return Duration(v), nil
}

// Selector names how a Target picks brokers.
type Selector string

// Target selectors.
const (
	// SelLeader is the leader of leader(topic,partition), or of a random partition of
	// leader(topic).
	SelLeader Selector = "leader"
	// SelFollowers are the replicas other than the leader of followers(topic,partition).
	SelFollowers Selector = "followers"
	// SelFollower is one random follower of follower(topic,partition) or follower(topic).
	SelFollower Selector = "follower"
	// SelController is the active controller (Metadata's ControllerID).
	SelController Selector = "controller"
	// SelRandom is one random broker.
	SelRandom Selector = "random"
	// SelMinority is a random set of (n-1)/2 brokers; SelMajority a random set of n/2+1.
	SelMinority Selector = "minority"
	SelMajority Selector = "majority"
	// SelAll is every broker.
	SelAll Selector = "all"
	// SelBroker is broker(N).
	SelBroker Selector = "broker"
	// SelConsumer is consumer(N), the load generator's N-th consumer (consumer faults only).
	SelConsumer Selector = "consumer"
	// SelData is one random broker other than the active controller (any broker when it is
	// the only one): a data broker, for a random mix scoped to brokers.
	SelData Selector = "data"
	// SelClients is the clients of the run (clock-skew, and the packet kinds, which act on
	// client links anyway).
	SelClients Selector = "clients"
)

// Target selects brokers. Its text form is what a workload file writes: leader(t,0),
// leader(t), followers(t,0), follower(t,0), controller, random, minority, majority, all, broker(2), data, clients.
type Target struct {
	Sel Selector
	// Topic is set for leader and followers.
	Topic string
	// Partition is set for leader and followers; -1 means a random partition of Topic.
	Partition int32
	// Broker is the id of broker(N), or the index of consumer(N).
	Broker int32
}

// IsZero reports whether t selects nothing (kinds that pick brokers themselves).
func (t Target) IsZero() bool { return t.Sel == "" }

// String returns the text form.
func (t Target) String() string {
	switch t.Sel {
	case SelLeader, SelFollowers, SelFollower:
		if t.Partition < 0 {
			return string(t.Sel) + "(" + t.Topic + ")"
		}
		return string(t.Sel) + "(" + t.Topic + "," + strconv.Itoa(int(t.Partition)) + ")"
	case SelBroker, SelConsumer:
		return string(t.Sel) + "(" + strconv.Itoa(int(t.Broker)) + ")"
	}
	return string(t.Sel)
}

// MarshalJSON writes the text form.
func (t Target) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// UnmarshalJSON reads the text form.
func (t *Target) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("chaos: target: %w", err)
	}
	v, err := ParseTarget(s)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// ParseTarget parses a target's text form; "" is the zero Target.
func ParseTarget(s string) (Target, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Target{}, nil
	}
	name, args, hasArgs := strings.Cut(s, "(")
	name = strings.TrimSpace(name)
	if hasArgs {
		if !strings.HasSuffix(args, ")") {
			return Target{}, fmt.Errorf("chaos: target %q: missing )", s)
		}
		args = strings.TrimSuffix(args, ")")
	}
	sel := Selector(name)
	switch sel {
	case SelController, SelRandom, SelMinority, SelMajority, SelAll, SelClients, SelData:
		if hasArgs {
			return Target{}, fmt.Errorf("chaos: target %q: %s takes no arguments", s, name)
		}
		return Target{Sel: sel}, nil
	case SelBroker, SelConsumer:
		id, err := strconv.ParseInt(strings.TrimSpace(args), 10, 32)
		if !hasArgs || err != nil || id < 0 {
			return Target{}, fmt.Errorf("chaos: target %q: want %s(N) with a %s number", s, name, name)
		}
		return Target{Sel: sel, Broker: int32(id)}, nil
	case SelLeader, SelFollowers, SelFollower:
		parts := strings.Split(args, ",")
		topic := strings.TrimSpace(parts[0])
		if !hasArgs || topic == "" || len(parts) > 2 {
			return Target{}, fmt.Errorf("chaos: target %q: want %s(topic,partition) or %s(topic)", s, name, name)
		}
		t := Target{Sel: sel, Topic: topic, Partition: -1}
		if len(parts) == 2 {
			p, err := strconv.ParseInt(strings.TrimSpace(parts[1]), 10, 32)
			if err != nil || p < 0 {
				return Target{}, fmt.Errorf("chaos: target %q: partition %q is not a partition number", s, parts[1])
			}
			t.Partition = int32(p)
		}
		return t, nil
	}
	return Target{}, fmt.Errorf("chaos: unknown target %q; want leader(topic,partition), leader(topic), followers(topic,partition), follower(topic,partition), controller, random, minority, majority, all, broker(N), consumer(N), data or clients", s)
}

// RenameTopics rewrites the topic of every fault's target, and of target-valued params
// ("from"), through rename; a workload names its topics "topic-N" and a run renames them.
// A param that does not parse as a target is left alone (validation reports it).
func RenameTopics(faults []Fault, rename func(string) string) {
	for i := range faults {
		f := &faults[i]
		if f.Target.Topic != "" {
			f.Target.Topic = rename(f.Target.Topic)
		}
		if s, ok := f.Params["from"]; ok {
			if t, err := ParseTarget(s); err == nil && t.Topic != "" {
				t.Topic = rename(t.Topic)
				f.Params["from"] = t.String()
			}
		}
	}
}

// String is a short description for logs and test names: "clock-bump broker(1) delta=1h".
func (f Fault) String() string {
	parts := []string{string(f.Kind)}
	if !f.Target.IsZero() {
		parts = append(parts, f.Target.String())
	}
	for _, k := range slices.Sorted(maps.Keys(f.Params)) {
		parts = append(parts, k+"="+f.Params[k])
	}
	return strings.Join(parts, " ")
}
