package controller

import (
	"encoding/json"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// published is an image and the channel closed when a newer image replaces it.
type published struct {
	img  *Image
	next chan struct{}
}

// fsm is the Raft state machine: it applies entries to the current image and publishes each
// new image atomically. Raft calls Apply, Snapshot and Restore from one goroutine at a time
// (Snapshot concurrently with Apply, which is safe because images are immutable).
type fsm struct {
	cur atomic.Pointer[published]
}

var _ raft.FSM = (*fsm)(nil)

func newFSM() *fsm {
	f := &fsm{}
	f.cur.Store(&published{img: emptyImage(), next: make(chan struct{})})
	return f
}

// image returns the current image and a channel closed when it is replaced.
func (f *fsm) image() (*Image, <-chan struct{}) {
	p := f.cur.Load()
	return p.img, p.next
}

func (f *fsm) publish(img *Image) {
	old := f.cur.Swap(&published{img: img, next: make(chan struct{})})
	close(old.next)
}

// applyResult is what Apply returns to the proposer through raft.ApplyFuture.Response.
type applyResult struct {
	img *Image
	err error
}

// Apply applies one log entry. A rejected batch still advances the image's Index, so
// readers waiting for an index make progress.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	cur, _ := f.image()
	recs, err := decodeEntry(l.Data)
	if err != nil {
		next := cur.shallowClone()
		next.Index = l.Index
		f.publish(next)
		return applyResult{img: next, err: err}
	}
	next, err := applyRecords(cur, l.Index, recs)
	if err != nil {
		next = cur.shallowClone()
		next.Index = l.Index
	}
	f.publish(next)
	return applyResult{img: next, err: err}
}

// Snapshot captures the current image; Persist writes it as JSON.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	img, _ := f.image()
	return imageSnapshot{img: img}, nil
}

// Restore replaces the image with one written by imageSnapshot.Persist.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var snap snapshotFile
	if err := json.NewDecoder(rc).Decode(&snap); err != nil {
		return fmt.Errorf("controller: restore snapshot: %w", err)
	}
	if snap.V < 1 || snap.V > entryVersion {
		return fmt.Errorf("controller: snapshot version %d not understood (max %d)", snap.V, entryVersion)
	}
	img := snap.Image
	if img.Brokers == nil {
		img.Brokers = map[int32]*Broker{}
	}
	if img.Topics == nil {
		img.Topics = map[string]*Topic{}
	}
	f.publish(&img)
	return nil
}

// snapshotFile is the snapshot encoding: a version and the whole image.
type snapshotFile struct {
	V     int   `json:"v"`
	Image Image `json:"image"`
}

type imageSnapshot struct{ img *Image }

// Persist writes the image to the snapshot sink.
func (s imageSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(snapshotFile{V: entryVersion, Image: *s.img}); err != nil {
		sink.Cancel()
		return fmt.Errorf("controller: persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release does nothing: the image is garbage collected.
func (imageSnapshot) Release() {}
