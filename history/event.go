// Package history defines the event schema of a kchaos run history and its streaming reader
// and writer. A history is JSON Lines: one Event per line, appended as things happen. It is the
// contract between the load generator and chaos controller (writers) and the checker and
// reports (readers); it contains no analysis.
//
// The model follows Jepsen's operation records. Every client operation is a pair of events
// from one process: an "invoke" when it starts and a completion ("ok", "fail" or "info") when
// it ends. "info" means indeterminate: the operation may or may not have taken effect (a
// timeout, a lost connection); readers must never treat it as either. Faults, broker metadata
// samples and run headers are single "info" events.
//
// Schema version 1. Lines:
//
//	{"i":0,"t":0,"p":-1,"type":"info","f":"run","run":{...}}                         header
//	{"i":1,"t":1200,"p":3,"type":"invoke","f":"send","topic":"t","key":"k7","value":"3-17"}
//	{"i":2,"t":5400,"p":3,"type":"ok","f":"send","topic":"t","partition":2,"key":"k7","value":"3-17","offset":41}
//	{"i":3,"t":9000,"p":10,"type":"ok","f":"poll","topic":"t","records":[[2,41,"3-17"]]}
//	{"i":4,"t":9100,"p":10,"type":"ok","f":"commit","topic":"t","offsets":[[2,42]]}
//	{"i":5,"t":9500,"p":-1,"type":"info","f":"fault","fault":{"id":1,"phase":"start","kind":"kill",...}}
//	{"i":6,"t":9600,"p":-1,"type":"info","f":"meta","topic":"t","partition":2,"isr":{...}}
//
// Index ("i") is dense and increasing; time ("t") is nanoseconds since the run started, taken
// from one monotonic clock. Process ("p") is a non-negative client process number, or
// ProcessNemesis / ProcessObserver for chaos and metadata events.
package history

// Version is the schema version written in every run header.
const Version = 1

// Type is the kind of an event in Jepsen's sense.
type Type string

// Event types.
const (
	// Invoke starts an operation.
	Invoke Type = "invoke"
	// OK completes an operation that definitely took effect.
	OK Type = "ok"
	// Fail completes an operation that definitely did not take effect.
	Fail Type = "fail"
	// Info completes an operation whose outcome is unknown, or records a fact (fault, metadata).
	Info Type = "info"
)

// F is the function of an event: what operation it is.
type F string

// Event functions.
const (
	// FRun is the run header, the first line of every history.
	FRun F = "run"
	// FSend produces one record. Invoke carries topic, key and value (and partition when the
	// client chose it); ok adds partition and offset; fail and info add the error.
	FSend F = "send"
	// FPoll is one consumer poll; ok carries Records (possibly none).
	FPoll F = "poll"
	// FCommit commits consumer offsets (Offsets: next offset to read, as Kafka commits). A
	// commit made inside a transaction (consume-transform-produce) carries the TxnID and
	// completes when the transaction ends: ok when it committed, fail when it aborted.
	FCommit F = "commit"
	// FAssign records the partitions a consumer now owns (after a rebalance, or a manual
	// assignment); Offsets gives the position it will read from when known.
	FAssign F = "assign"
	// FSubscribe records a consumer joining a group for the topic.
	FSubscribe F = "subscribe"
	// FSeek records a consumer moving its position on purpose (Offsets), so a jump in polled
	// offsets is not reported as a skip.
	FSeek F = "seek"
	// FProcess records records a consumer finished processing (Records), for consumer-side
	// delivery checks: processed twice, or committed but never processed. A transactional
	// consume-transform-produce consumer reports its inputs processed only once the
	// transaction holding their outputs committed.
	FProcess F = "process"
	// FCrash records a client process dying on purpose (the harness killed it); a later event
	// with the same process number is a restart with fresh state.
	FCrash F = "crash"
	// FTxn is a transaction boundary: Txn.Op is begin, commit or abort. Begin is a single
	// ok (or fail) event; commit and abort are an invoke, written before the client ends the
	// transaction (readers may see a commit before the client hears of it), and a completion:
	// ok, or info when the outcome is unknown. A commit the client had to abort instead
	// completes as ok with op abort.
	FTxn F = "txn"
	// FFault is a fault starting or ending (Fault.Phase).
	FFault F = "fault"
	// FMeta is a sample of broker metadata for one partition (ISR, leader, epoch).
	FMeta F = "meta"
)

// Special process numbers.
const (
	// ProcessNemesis is the chaos controller.
	ProcessNemesis = -1
	// ProcessObserver is the metadata sampler.
	ProcessObserver = -2
)

// Event is one line of a history. Fields that do not apply to an event's function are omitted
// from its JSON.
type Event struct {
	Index   int64  `json:"i"`
	Time    int64  `json:"t"`
	Process int    `json:"p"`
	Type    Type   `json:"type"`
	F       F      `json:"f"`
	Topic   string `json:"topic,omitempty"`
	// Partition is -1 when unknown (a send whose partition the client had not chosen yet).
	Partition int32  `json:"partition"`
	Key       string `json:"key,omitempty"`
	// Value identifies a sent record uniquely within the run: "<producer>-<sequence>". A
	// record a consume-transform-produce consumer wrote to its output topic for an input
	// record has the value "<input value>/<transformer process>-<output sequence>", so a
	// reader of the output maps it back to its input; the part after the slash is unique
	// per output send, so a re-processed input shows up as a second output value.
	Value string `json:"value,omitempty"`
	// Offset is the acknowledged offset of a send (ok), or -1.
	Offset int64 `json:"offset"`
	// Error is the Kafka error name (NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT, ...) or a short
	// client error text, on fail and info.
	Error string `json:"error,omitempty"`
	// Records are the records a poll returned or a process event handled, in order.
	Records []Record `json:"records,omitempty"`
	// Offsets are per-partition positions for commit, assign and seek.
	Offsets []PartitionOffset `json:"offsets,omitempty"`
	// TxnID numbers the transaction a send or commit belongs to (0: none).
	TxnID int64 `json:"txn_id,omitempty"`
	// Txn describes a transaction boundary (FTxn).
	Txn *Txn `json:"txn,omitempty"`
	// Group is the consumer group membership a subscribe or assign event belongs to (FAssign:
	// the generation the assignment came with), when the consumer is in a group.
	Group *Membership `json:"group,omitempty"`
	// Fault describes a fault phase (FFault).
	Fault *Fault `json:"fault,omitempty"`
	// ISR is a metadata sample (FMeta).
	ISR *PartitionState `json:"isr,omitempty"`
	// Run is the header (FRun).
	Run *Run `json:"run,omitempty"`
}

// Record is one record seen by a consumer: [partition, offset, value]. It encodes as a JSON
// array to keep poll lines short.
type Record struct {
	Partition int32
	Offset    int64
	Value     string
}

// PartitionOffset is one [partition, offset] pair, encoded as a JSON array.
type PartitionOffset struct {
	Partition int32
	Offset    int64
}

// Txn is a transaction boundary.
type Txn struct {
	// Op is "begin", "commit" or "abort".
	Op string `json:"op"`
	// TransactionalID is the producer's transactional.id.
	TransactionalID string `json:"transactional_id,omitempty"`
}

// Membership is a consumer's place in its group: the group, the generation of the group's
// current assignment (Kafka's generation id, -1 when not known) and the member id the
// coordinator gave it, and its group.instance.id when it is a static member.
type Membership struct {
	ID         string `json:"id"`
	Generation int32  `json:"generation"`
	Member     string `json:"member,omitempty"`
	Instance   string `json:"instance,omitempty"`
}

// Fault is one phase of a fault, as the chaos controller records it.
type Fault struct {
	// ID is the same for the start and end of one fault.
	ID int64 `json:"id"`
	// Phase is "start" or "end".
	Phase string `json:"phase"`
	// Kind is the fault kind (kill, pause, partition, fill-disk, ...).
	Kind string `json:"kind"`
	// Target is the target as specified (leader(topic,0), controller, random, ...).
	Target string `json:"target,omitempty"`
	// Nodes are the broker ids the target resolved to.
	Nodes []int32 `json:"nodes,omitempty"`
	// Params are kind-specific parameters.
	Params map[string]string `json:"params,omitempty"`
	// Error is set when applying or healing the fault failed.
	Error string `json:"error,omitempty"`
}

// PartitionState is a sample of one partition's replication state.
type PartitionState struct {
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas,omitempty"`
	ISR         []int32 `json:"isr"`
	// MinInsyncReplicas is the topic's min.insync.replicas when known, else 0.
	MinInsyncReplicas int `json:"min_insync,omitempty"`
}

// Run is the header of a history: what ran, so the checker can judge it alone.
type Run struct {
	Version int    `json:"version"`
	RunID   string `json:"run_id"`
	// Config is the run's configuration name (the matrix combination, e.g. "acks=all,batch=16KiB").
	Config string `json:"config,omitempty"`
	Seed   int64  `json:"seed"`
	// Start is the wall-clock start time, RFC 3339 with nanoseconds.
	Start string `json:"start"`
	// Producer and Consumer settings that decide which guarantees apply.
	Acks              string `json:"acks"`
	Idempotent        bool   `json:"idempotent"`
	Transactional     bool   `json:"transactional"`
	MaxInFlight       int    `json:"max_in_flight,omitempty"`
	Retries           int    `json:"retries,omitempty"`
	IsolationLevel    string `json:"isolation_level,omitempty"`
	CommitMode        string `json:"commit_mode,omitempty"`
	ReplicationFactor int    `json:"replication_factor,omitempty"`
	MinInsyncReplicas int    `json:"min_insync,omitempty"`
	UncleanElection   bool   `json:"unclean_election,omitempty"`
	// FlushMessages is the topic's flush.messages (0: default, leave it to the page cache).
	FlushMessages int64    `json:"flush_messages,omitempty"`
	Topics        []string `json:"topics,omitempty"`
	Driver        string   `json:"driver,omitempty"`
	// Params holds any other configuration, as strings.
	Params map[string]string `json:"params,omitempty"`
}
