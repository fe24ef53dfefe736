// Package controller is the reference cluster's controller quorum: the replicated
// cluster-metadata log, KRaft-style (KIP-500, KIP-631), on hashicorp/raft.
//
// # What it holds
//
// Every node (broker) runs one Controller. Nodes 1..3 of a cluster of three or more are Raft
// voters ("combined mode"); the rest are observers (Raft non-voters) that only replicate. The
// replicated state is the metadata Image: registered brokers with their epochs and fencing,
// topics with ids, config overrides and partitions (replicas, ISR, leader, leader epoch,
// partition epoch, and the adding and removing replicas of a reassignment in flight), the
// dynamic broker configs (KIP-226: cluster-wide defaults and per broker), and cluster-wide
// election and ISR counters. Readers get immutable images
// (Image, Watch, WaitFor); each applied entry publishes a new one by copy-on-write.
//
// # Who decides
//
// The Raft leader is the active controller. It alone decides changes, serialised by one lock
// the way KRaft's controller runs one event thread, over an image that includes every earlier
// decision (it waits on a Raft barrier when it takes over). A decision is a batch of Records
// (RegisterBroker, FenceBroker, UnfenceBroker, CreateTopic, DeleteTopic, CreatePartitions,
// AlterConfigs, ChangePartition, BrokerConfigs) proposed as one versioned JSON log entry;
// every node applies it atomically and deterministically (applyRecords). Other nodes answer
// mutations with *NotControllerError naming the active controller, so the broker can forward.
//
// The decisions are pure functions over an image (and a clock), tested without Raft:
// placement (placeReplicas), leader election from the ISR with optional unclean election
// (electLeader, reconcile), fencing and unfencing (fenceRecords, unfenceRecords),
// re-registration (registerRecords), preferred-leader rebalancing (preferredLeaderRecords),
// session expiry (expiredBrokers), AlterPartition's fencing rules (alterPartitionRecord),
// ElectLeaders (electionRecord, KIP-460) and partition reassignment (reassignRecord, KIP-455).
// Every partition change goes through buildChange, KRaft's PartitionChangeBuilder: it
// completes a reassignment as soon as every target replica is in the ISR and elects a leader
// when the current one is gone.
//
// # Broker lifecycle, as in KRaft
//
// A broker registers (RegisterBroker → broker epoch = the registration's log index) fenced,
// and its first Heartbeat unfences it. The active controller keeps heartbeat times in memory;
// a broker silent for BrokerSessionTimeout (broker.session.timeout.ms) is fenced: it leaves
// every ISR it is not the last member of, and partitions it led elect the first live in-sync
// replica in replica order, bumping leader and partition epochs. With no live in-sync replica
// the partition goes offline (leader -1, ISR kept as the last known set), unless
// unclean.leader.election.enable lets a live out-of-sync replica lead with ISR [it]. A broker
// that heartbeats again is unfenced and leads offline partitions whose ISR holds it; a
// periodic check moves leadership back to the preferred replica. Leaders change ISRs through
// AlterPartition (KIP-497), fenced by leader epoch and partition epoch.
//
// # Why hashicorp/raft
//
// hashicorp/raft is a maintained production Raft (Consul, Nomad, Vault) that brings what
// etcd-io/raft deliberately leaves to the user: a TCP transport, snapshotting with a file
// snapshot store, log compaction, non-voters (which are exactly KRaft observers) and
// leadership notifications. With etcd-io/raft we would have to write and test the network
// layer, the Ready loop's persistence and snapshot shipping ourselves; here the Raft plumbing
// stays a thin layer (controller.go) and the interesting logic is in the pure decisions. The
// durable log and stable store are raft-boltdb/v2 (bbolt) in DataDir/raft.db; snapshots of
// the JSON-encoded image go to DataDir/snapshots.
//
// # Wiring it into a broker
//
// Each broker process calls New with its node id, Raft address, the voters' map, the
// observers' map (or registers with Registration.RaftAddr) and DataDir/controller, then:
//
//   - registers through the active controller (RegisterBroker) and heartbeats every
//     BrokerHeartbeatInterval (Heartbeat), re-registering on STALE_BROKER_EPOCH;
//   - sends CreateTopics, DeleteTopics, CreatePartitions, IncrementalAlterConfigs,
//     ElectLeaders, AlterPartitionReassignments and its leaders' AlterPartition to the active
//     controller, passing ValidateTopicConfigs and ValidateBrokerConfigs so INVALID_CONFIG and
//     INVALID_REQUEST match the broker's own config checks;
//   - follows the local image (Watch/WaitFor) to become leader or follower of partitions, and
//     answers Metadata from it, with LeaderID as the controller id.
//
// Every mutating method returns *NotControllerError on a node that is not active; the
// broker forwards to LeaderID (via that broker's Kafka listener in the image, or a voter
// address from configuration before registration), retrying while LeaderID is -1 (no quorum
// yet). Errors carry Kafka codes: ErrorCode(err) is the code for a response.
//
// # Where it deliberately differs from Kafka
//
//   - The broker epoch is the Raft log index of the registration, not a Kafka log offset.
//   - Rack-aware placement is not implemented; Rack is recorded only.
//   - Brokers do not report "want fence" or controlled shutdown in heartbeats: any heartbeat
//     with the current epoch unfences, and FenceBroker serves controlled shutdown.
//   - ELR (KIP-966's eligible leader replicas) is not modelled: the last known ISR is kept.
//   - Replacing a reassignment in flight keeps as adding the earlier adding replicas that stay
//     in the target (KRaft keeps the earlier adding list only when the new one is empty).
//   - A reassignment of an offline partition of a topic that allows unclean election elects
//     its leader at once, as the next reconcile would; KRaft leaves that to its periodic
//     unclean-election check.
package controller
