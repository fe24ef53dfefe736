package broker

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// producerIDs hands out producer ids unique across the cluster without asking the controller:
// an id is the broker's node id in the top 23 bits and a per-broker counter in the low 40
// (Kafka instead leases blocks from the controller, KIP-730). The counter is leased in blocks
// of producerIDBlock: the end of the current block is fsynced to DATA/kchaos-producer-ids
// before any id of the block is handed out, so a restarted broker never reissues an id (it
// skips the unused rest of the block, as Kafka does).
type producerIDs struct {
	path string
	node int64

	mu   sync.Mutex
	next int64 // next counter value to hand out
	end  int64 // first counter value not leased
}

// producerIDBlock is how many ids one lease covers.
const producerIDBlock = 1000

// maxProducerCounter bounds the per-broker counter to the low 40 bits of an id.
const maxProducerCounter = 1<<40 - 1

func newProducerIDs(dataDir string, node int32) (*producerIDs, error) {
	if node < 0 || node >= 1<<23 {
		return nil, fmt.Errorf("broker: node id %d cannot prefix producer ids (0..%d)", node, 1<<23-1)
	}
	p := &producerIDs{path: filepath.Join(dataDir, "kchaos-producer-ids"), node: int64(node)}
	data, err := os.ReadFile(p.path)
	switch {
	case os.IsNotExist(err):
	case err != nil:
		return nil, fmt.Errorf("broker: producer id lease: %w", err)
	case len(data) != 8:
		return nil, fmt.Errorf("broker: producer id lease %s: %d bytes, want 8", p.path, len(data))
	default:
		p.next = int64(binary.BigEndian.Uint64(data))
		p.end = p.next
	}
	return p, nil
}

// nextID returns a fresh producer id, leasing a new block first when the current one is used
// up. It fails only when the lease file cannot be written (a full or failed disk).
func (p *producerIDs) nextID() (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next >= p.end {
		end := p.next + producerIDBlock
		if end > maxProducerCounter {
			return 0, fmt.Errorf("broker: producer ids of node %d exhausted", p.node)
		}
		if err := writeLease(p.path, end); err != nil {
			return 0, err
		}
		p.end = end
	}
	id := p.node<<40 | p.next
	p.next++
	return id, nil
}

// writeLease replaces the lease file atomically (write, fsync, rename, fsync the directory).
func writeLease(path string, end int64) error {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(end))
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("broker: producer id lease: %w", err)
	}
	_, err = f.Write(buf[:])
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("broker: producer id lease: %w", err)
	}
	return nil
}

// syncDir fsyncs directory dir, making a rename in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
