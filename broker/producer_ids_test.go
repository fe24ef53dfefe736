package broker

import (
	"os"
	"path/filepath"
	"testing"
)

// TestProducerIDsNeverReissued: ids carry the node id, and a restarted allocator (a broker
// restart) continues after the leased block instead of reissuing ids a producer may still use.
func TestProducerIDsNeverReissued(t *testing.T) {
	dir := t.TempDir()
	seen := map[int64]bool{}
	for restart := range 3 {
		p, err := newProducerIDs(dir, 7)
		if err != nil {
			t.Fatal(err)
		}
		for range producerIDBlock + 3 {
			id, err := p.nextID()
			if err != nil {
				t.Fatal(err)
			}
			if id>>40 != 7 {
				t.Fatalf("id %d does not carry node 7", id)
			}
			if seen[id] {
				t.Fatalf("restart %d: id %d issued twice", restart, id)
			}
			seen[id] = true
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "kchaos-producer-ids"), []byte("bad"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := newProducerIDs(dir, 7); err == nil {
		t.Fatal("a corrupt lease file was accepted")
	}
}
