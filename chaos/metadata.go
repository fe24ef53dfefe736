package chaos

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Resolver tells the runner what the cluster looks like when a fault starts.
type Resolver interface {
	View(ctx context.Context) (ClusterView, error)
}

// ResolverFunc adapts a function to Resolver (a fixed view in tests, a federation of
// clusters).
type ResolverFunc func(ctx context.Context) (ClusterView, error)

// View calls f.
func (f ResolverFunc) View(ctx context.Context) (ClusterView, error) { return f(ctx) }

// KafkaResolver reads the cluster through the Kafka protocol (a Metadata request for every
// topic), so targets resolve the same way on the reference broker and on any Kafka cluster.
type KafkaResolver struct {
	cl *kgo.Client
}

var _ Resolver = (*KafkaResolver)(nil)

// NewKafkaResolver connects to the seed brokers; opts are added to the client's options
// (TLS, SASL). Close it when done.
func NewKafkaResolver(seeds []string, opts ...kgo.Opt) (*KafkaResolver, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("chaos: resolver client: %w", err)
	}
	return &KafkaResolver{cl: cl}, nil
}

// Close closes the client.
func (r *KafkaResolver) Close() { r.cl.Close() }

// View sends Metadata for all topics and returns brokers, controller and partition leaders.
func (r *KafkaResolver) View(ctx context.Context) (ClusterView, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = nil // all topics
	resp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		return ClusterView{}, fmt.Errorf("chaos: metadata: %w", err)
	}
	return viewFromMetadata(resp), nil
}

// viewFromMetadata turns a Metadata response into a ClusterView; topics with an error are
// left out.
func viewFromMetadata(resp *kmsg.MetadataResponse) ClusterView {
	v := ClusterView{Controller: resp.ControllerID, Topics: map[string][]PartitionView{}}
	for _, b := range resp.Brokers {
		v.Brokers = append(v.Brokers, b.NodeID)
	}
	slices.Sort(v.Brokers)
	for _, t := range resp.Topics {
		if t.Topic == nil || kerr.ErrorForCode(t.ErrorCode) != nil {
			continue
		}
		ps := make([]PartitionView, len(t.Partitions))
		for _, p := range t.Partitions {
			if int(p.Partition) >= len(ps) || p.Partition < 0 {
				continue
			}
			ps[p.Partition] = PartitionView{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
				Replicas: slices.Clone(p.Replicas), ISR: slices.Clone(p.ISR)}
		}
		v.Topics[*t.Topic] = ps
	}
	return v
}
