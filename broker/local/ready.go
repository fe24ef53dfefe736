package local

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// WaitReady waits until a replicated cluster has an active controller and every running broker
// is registered and unfenced, as seen in Metadata through each running broker. A cluster of
// one is ready once StartNode returned.
func (c *Cluster) WaitReady(ctx context.Context) error {
	if !c.cfg.replicated() {
		return nil
	}
	var want []int32
	for _, n := range c.Nodes {
		if n.Running() {
			want = append(want, n.ID)
		}
	}
	var last string
	for {
		ok := true
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			controller, brokers, err := metadataView(ctx, n.Addr())
			if err != nil {
				ok, last = false, err.Error()
				break
			}
			if controller < 0 {
				ok, last = false, fmt.Sprintf("broker %d knows no active controller", n.ID)
				break
			}
			for _, id := range want {
				if !brokers[id] {
					ok, last = false, fmt.Sprintf("broker %d does not list broker %d as live", n.ID, id)
					break
				}
			}
			if !ok {
				break
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("local: cluster not ready: %s: %w", last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// metadataView asks one broker for the active controller and its live brokers.
func metadataView(ctx context.Context, addr string) (int32, map[int32]bool, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		return -1, nil, err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	resp, err := req.RequestWith(rctx, cl)
	if err != nil {
		return -1, nil, err
	}
	live := map[int32]bool{}
	for _, b := range resp.Brokers {
		live[b.NodeID] = true
	}
	return resp.ControllerID, live, nil
}
