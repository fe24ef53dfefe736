package faultfs

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/storage"
	"github.com/kchaos/kchaos/internal/testkit"
)

// batch encodes one v2 record batch of n records with CRC32C set.
func batch(n int) []byte {
	var recs []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte("value")}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: int32(n - 1), ProducerID: -1, ProducerEpoch: -1,
		FirstSequence: -1, NumRecords: int32(n), Records: recs}
	raw := b.AppendTo(nil)
	b.Length = int32(len(raw) - 12)
	raw = b.AppendTo(nil)
	b.CRC = int32(crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}

func openLog(t *testing.T, dir string, fs storage.FS) *storage.Log {
	t.Helper()
	l, err := storage.Open(filepath.Join(dir, "t-0"), storage.Config{}, storage.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// setMode writes m to dir's control file and waits until fs has it in force.
func setMode(t *testing.T, fs *FS, dir string, m Mode) {
	t.Helper()
	if err := SetMode(dir, m); err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, 5*time.Second, CheckInterval/4, func() error {
		if got := fs.Mode(); got != m {
			return fmt.Errorf("mode in force %s, want %s", got, m)
		}
		return nil
	})
}

func TestDiskFullFailsWritesThenRecovers(t *testing.T) {
	dir := t.TempDir()
	fs, err := New(storage.OS, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	l := openLog(t, dir, fs)
	defer l.Close()
	if _, err := l.AppendAsLeader(batch(3), 0, -1); err != nil {
		t.Fatal(err)
	}
	setMode(t, fs, dir, Mode{Full: true})
	_, err = l.AppendAsLeader(batch(2), 0, -1)
	if !errors.Is(err, storage.ErrStorage) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append on a full disk: %v, want ErrStorage wrapping ENOSPC", err)
	}
	if err := l.Flush(); err == nil {
		t.Fatal("flush on a full disk succeeded")
	}
	if leo := l.LogEndOffset(); leo != 3 {
		t.Fatalf("LogEndOffset after failed append = %d, want 3", leo)
	}
	setMode(t, fs, dir, Mode{})
	info, err := l.AppendAsLeader(batch(2), 0, -1)
	if err != nil {
		t.Fatalf("append after space returned: %v", err)
	}
	if info.FirstOffset != 3 || l.LogEndOffset() != 5 {
		t.Fatalf("append after recovery at %d, LogEndOffset %d; want 3, 5", info.FirstOffset, l.LogEndOffset())
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestDiskSlowDelaysWritesAndFsyncs(t *testing.T) {
	dir := t.TempDir()
	fs, err := New(storage.OS, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	l := openLog(t, dir, fs)
	defer l.Close()
	const delay = 30 * time.Millisecond
	setMode(t, fs, dir, Mode{Slow: delay})
	start := time.Now()
	if _, err := l.AppendAsLeader(batch(1), 0, -1); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 2*delay {
		t.Fatalf("append+flush took %v on a disk slowed by %v per write and fsync", took, delay)
	}
}

func TestDiskDropUnsyncedKeepsOnlyFsyncedData(t *testing.T) {
	dir := t.TempDir()
	fs, err := New(storage.OS, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := openLog(t, dir, fs)
	if _, err := l.AppendAsLeader(batch(4), 0, -1); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendAsLeader(batch(6), 0, -1); err != nil {
		t.Fatal(err)
	}
	// A file created and never fsynced, in a directory never fsynced since: gone after the loss.
	stray, err := fs.OpenFile(filepath.Join(dir, "t-0", "stray"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	stray.Write([]byte("x"))
	// The "power loss": the log is abandoned without Close, as kill -9 leaves it.
	fs.Close()
	dropped, err := DropUnsynced(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dropped: %+v", dropped)
	if dropped.Truncated != 1 || dropped.Bytes != int64(len(batch(6))) || len(dropped.Removed) != 1 {
		t.Fatalf("dropped %+v; want one segment cut by %d bytes and the stray file removed", dropped, len(batch(6)))
	}
	l2 := openLog(t, dir, storage.OS)
	defer l2.Close()
	if leo := l2.LogEndOffset(); leo != 4 {
		t.Fatalf("LogEndOffset after power loss = %d, want the 4 fsynced records", leo)
	}
	if again, err := DropUnsynced(dir); err != nil || again.Truncated != 0 || len(again.Removed) != 0 {
		t.Fatalf("second DropUnsynced: %+v, %v; want nothing", again, err)
	}
}

func TestDiskParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mode
		bad  bool
	}{
		{"", Mode{}, false},
		{" full\n", Mode{Full: true}, false},
		{"slow=50ms", Mode{Slow: 50 * time.Millisecond}, false},
		{"slow=x", Mode{}, true},
		{"empty", Mode{}, true},
	} {
		got, err := ParseMode(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseMode(%q) = %+v, %v", tc.in, got, err)
		}
		if !tc.bad {
			if back, _ := ParseMode(got.String()); back != got {
				t.Errorf("%+v does not round-trip through %q", got, got.String())
			}
		}
	}
}

func TestErrorModeText(t *testing.T) {
	m, err := ParseMode("error=ENOSPC ops=read,fsync rate=0.25")
	if err != nil || m.Errno != syscall.ENOSPC || m.Ops != OpRead|OpFsync || m.Rate != 0.25 {
		t.Fatalf("ParseMode: %+v %v", m, err)
	}
	if back, err := ParseMode(m.String()); err != nil || back != m {
		t.Fatalf("round trip of %q: %+v %v", m.String(), back, err)
	}
	for _, bad := range []string{"error=EPERM ops=read", "error=EIO", "error=EIO ops=open", "error=EIO ops=read rate=2"} {
		if _, err := ParseMode(bad); err == nil {
			t.Errorf("ParseMode(%q) accepted", bad)
		}
	}
}

func TestReadErrorsFailReadsAndSendfile(t *testing.T) {
	dir := t.TempDir()
	fs, err := New(storage.OS, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	l := openLog(t, dir, fs)
	defer l.Close()
	if _, err := l.AppendAsLeader(batch(3), 0, -1); err != nil {
		t.Fatal(err)
	}
	setMode(t, fs, dir, Mode{Errno: syscall.EIO, Ops: OpRead, Rate: 1})
	if _, err := l.Read(0, 1<<20, 3, true); !errors.Is(err, syscall.EIO) {
		t.Fatalf("read with read errors injected: %v", err)
	}
	f, err := fs.OpenFile(filepath.Join(dir, "t-0", "00000000000000000000.log"), os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if osf := f.(storage.OSFile).OSFile(); osf != nil {
		t.Fatal("the file offers sendfile while reads fail")
	}
	setMode(t, fs, dir, Mode{})
	if _, err := l.Read(0, 1<<20, 3, true); err != nil {
		t.Fatalf("read after the fault: %v", err)
	}
	if f.(storage.OSFile).OSFile() == nil {
		t.Fatal("sendfile still off after the fault")
	}
}
