package chaos

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"

	"github.com/kchaos/kchaos/chaos/proxy"
)

// Plane is the kind of traffic a link carries.
type Plane string

// Link planes.
const (
	// PlaneClient is client→broker traffic (brokers advertise the proxy's address).
	PlaneClient Plane = "client"
	// PlaneKafka is broker→broker Kafka traffic: replica fetches and controller RPCs (the
	// launcher's per-node peer map points at the proxies).
	PlaneKafka Plane = "kafka"
	// PlaneRaft is broker→broker Raft traffic between controller voters.
	PlaneRaft Plane = "raft"
)

// Clients is the From of client links.
const Clients int32 = -1

// LinkID names one directed link: connections From opens To, on a plane.
type LinkID struct {
	From, To int32
	Plane    Plane
}

// String is "client->2" or "1->3/kafka".
func (l LinkID) String() string {
	if l.From == Clients {
		return "client->" + strconv.Itoa(int(l.To))
	}
	return strconv.Itoa(int(l.From)) + "->" + strconv.Itoa(int(l.To)) + "/" + string(l.Plane)
}

// Net is the set of link proxies of a local cluster: one per directed link, so every
// partition is exact per link. Its methods are safe for concurrent use.
type Net struct {
	seed  int64
	mu    sync.Mutex // guards links
	links map[LinkID]*proxy.Proxy
}

// NewNet returns an empty Net; seed seeds the proxies' jitter and loss.
func NewNet(seed int64) *Net { return &Net{seed: seed, links: map[LinkID]*proxy.Proxy{}} }

// Add starts a proxy for id on a free loopback port, forwarding to upstream ("" until the
// broker's address is known; see SetUpstream).
func (n *Net) Add(id LinkID, upstream string) (*proxy.Proxy, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.links[id]; ok {
		return nil, fmt.Errorf("chaos: link %s exists", id)
	}
	h := fnv.New64a()
	h.Write([]byte(id.String()))
	p, err := proxy.New(id.String(), "127.0.0.1:0", upstream, n.seed^int64(h.Sum64()>>1))
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	n.links[id] = p
	return p, nil
}

// Mesh adds, for brokers ids, a client link to each (when planes has PlaneClient) and a link
// between every ordered pair on each broker plane.
func (n *Net) Mesh(ids []int32, planes ...Plane) error {
	for _, pl := range planes {
		for _, to := range ids {
			if pl == PlaneClient {
				if _, err := n.Add(LinkID{Clients, to, pl}, ""); err != nil {
					return err
				}
				continue
			}
			for _, from := range ids {
				if from != to {
					if _, err := n.Add(LinkID{from, to, pl}, ""); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// Addr returns the address to dial for link id, or "".
func (n *Net) Addr(id LinkID) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.links[id]; p != nil {
		return p.Addr()
	}
	return ""
}

// Peers returns broker from's view of plane: for each other broker, the proxy address to
// dial (what the launcher passes as --peer or --raft-peer).
func (n *Net) Peers(from int32, plane Plane) map[int32]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[int32]string{}
	for id, p := range n.links {
		if id.From == from && id.Plane == plane {
			out[id.To] = p.Addr()
		}
	}
	return out
}

// SetUpstream points every link to broker `to` on plane at addr.
func (n *Net) SetUpstream(to int32, plane Plane, addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, p := range n.links {
		if id.To == to && id.Plane == plane {
			p.SetUpstream(addr)
		}
	}
}

// Impair sets im under key on every link match accepts, and returns those links, sorted.
func (n *Net) Impair(key string, match func(LinkID) bool, im proxy.Impairment) []LinkID {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []LinkID
	for id, p := range n.links {
		if match(id) {
			p.Set(key, im)
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b LinkID) int {
		if a.Plane != b.Plane {
			return compareStrings(string(a.Plane), string(b.Plane))
		}
		if a.From != b.From {
			return int(a.From - b.From)
		}
		return int(a.To - b.To)
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Clear removes what key set on links.
func (n *Net) Clear(key string, links []LinkID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, id := range links {
		if p := n.links[id]; p != nil {
			p.Clear(key)
		}
	}
}

// Impaired returns the links with any impairment set.
func (n *Net) Impaired() []LinkID {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []LinkID
	for id, p := range n.links {
		if p.Impaired() {
			out = append(out, id)
		}
	}
	return out
}

// Stats returns what the Kafka-level impairments did on each link so far.
func (n *Net) Stats() map[LinkID]proxy.Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[LinkID]proxy.Stats, len(n.links))
	for id, p := range n.links {
		out[id] = p.Stats()
	}
	return out
}

// Close closes every proxy: after it no proxy port listens.
func (n *Net) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	for id, p := range n.links {
		errs = append(errs, p.Close())
		delete(n.links, id)
	}
	return errors.Join(errs...)
}
