package storage

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// lastSegmentPath returns the .log file of the active segment.
func lastSegmentPath(t *testing.T, l *Log) string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.active().path(logSuffix)
}

func TestRecoverTornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		harm func(t *testing.T, path string, size int64)
	}{
		{"truncated mid-batch", func(t *testing.T, path string, size int64) {
			if err := os.Truncate(path, size-7); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbage appended", func(t *testing.T, path string, size int64) {
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			f.Write([]byte("this is not a record batch at all, just junk bytes past the end"))
			f.Close()
		}},
		{"crc flipped in last batch", func(t *testing.T, path string, size int64) {
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			f.WriteAt([]byte{0xff}, size-3)
			f.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{SegmentBytes: 8 << 10, IndexIntervalBytes: 256}
			l := openTest(t, dir, cfg, newClock())
			bs := appendN(t, l, 40, 3, 300, 1)
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
			path := lastSegmentPath(t, l)
			st, _ := os.Stat(path)
			// Simulate kill -9: drop the handles without Close (no clean-shutdown marker).
			l.mu.Lock()
			for _, s := range l.segments {
				s.file.Close()
			}
			l.closed = true
			l.mu.Unlock()
			// Recovery point at 0 forces a full rescan.
			os.WriteFile(filepath.Join(dir, recoveryPointFile), []byte("0\n"), 0o644)
			os.Remove(filepath.Join(dir, filepath.Base(path[:len(path)-4])+indexSuffix))
			tc.harm(t, path, st.Size())
			l2 := openTest(t, dir, cfg, newClock())
			defer l2.Close()
			keep := len(bs)
			if tc.name != "garbage appended" {
				keep--
			}
			var want []byte
			for _, b := range bs[:keep] {
				want = append(want, b...)
			}
			mustEqual(t, "recovered", readAll(t, l2, 0), want)
			if l2.LogEndOffset() != int64(keep*3) {
				t.Fatalf("LEO %d want %d", l2.LogEndOffset(), keep*3)
			}
			// The log keeps working after recovery.
			appendN(t, l2, 2, 3, 300, 1)
			if got := len(batchesOf(t, readAll(t, l2, 0))); got != keep+2 {
				t.Fatalf("%d batches after append", got)
			}
		})
	}
}

func TestRecoverCorruptIndex(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 8 << 10, IndexIntervalBytes: 256}
	l := openTest(t, dir, cfg, newClock())
	bs := appendN(t, l, 40, 3, 300, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Corrupt the first segment's index: entries pointing past the file.
	os.WriteFile(filepath.Join(dir, segmentName(0)+indexSuffix), []byte{0, 0, 0, 9, 0xff, 0xff, 0, 0}, 0o644)
	l = openTest(t, dir, cfg, newClock())
	defer l.Close()
	var want []byte
	for _, b := range bs {
		want = append(want, b...)
	}
	mustEqual(t, "after index rebuild", readAll(t, l, 0), want)
	for off := int64(0); off < l.LogEndOffset(); off += 7 {
		r, err := l.Read(off, 1, l.LogEndOffset(), true)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := r.Bytes()
		r.Release()
		mustEqual(t, fmt.Sprintf("offset %d", off), b, bs[off/3])
	}
}

// The kill -9 test re-executes the test binary in child mode (env killChildEnv = log dir):
// the child appends batches in a loop and prints each acknowledged LastOffset.
const killChildEnv = "KCHAOS_STORAGE_KILL_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		killChild(dir)
		return
	}
	os.Exit(m.Run())
}

// killBatch is the deterministic content of the batch with base offset base.
func killBatch(t testing.TB, base int64) []byte {
	return valueBatch(t, base, 4, 2000, base)
}

func killChild(dir string) {
	l, err := Open(dir, Config{SegmentBytes: 1 << 20}, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	tb := &testing.B{}
	for {
		info, err := l.AppendAsLeader(killBatch(tb, l.LogEndOffset()), 1, -1)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Fprintln(w, info.LastOffset)
		w.Flush()
	}
}

func TestKill9Recovery(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var acked []int64
	deadline := time.Now().Add(300 * time.Millisecond)
	for sc.Scan() {
		v, err := strconv.ParseInt(sc.Text(), 10, 64)
		if err != nil {
			t.Fatalf("child output %q", sc.Text())
		}
		acked = append(acked, v)
		if time.Now().After(deadline) && len(acked) > 100 {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	t.Logf("child acknowledged %d batches up to offset %d before SIGKILL", len(acked), acked[len(acked)-1])

	l := openTest(t, dir, Config{SegmentBytes: 1 << 20}, newClock())
	defer l.Close()
	if l.LogEndOffset() <= acked[len(acked)-1] {
		t.Fatalf("LEO %d does not cover acknowledged offset %d", l.LogEndOffset(), acked[len(acked)-1])
	}
	all := readAll(t, l, 0)
	next := int64(0)
	pos := 0
	for _, h := range batchesOf(t, all) {
		if h.BaseOffset != next {
			t.Fatalf("batch at %d, want %d", h.BaseOffset, next)
		}
		want := killBatch(t, next)
		setLeaderEpoch(want, 1)
		setBaseOffset(want, next)
		mustEqual(t, fmt.Sprintf("batch %d", next), all[pos:pos+int(h.Size())], want)
		pos += int(h.Size())
		next = h.LastOffset() + 1
	}
	if next != l.LogEndOffset() {
		t.Fatalf("read up to %d, LEO %d", next, l.LogEndOffset())
	}
}

func FuzzRecover(f *testing.F) {
	var seedLog []byte
	for i := 0; i < 3; i++ {
		b := valueBatch(f, 10, 2, 50, int64(i))
		setBaseOffset(b, int64(i*2))
		seedLog = append(seedLog, b...)
	}
	f.Add(seedLog)
	f.Add(seedLog[:len(seedLog)-5])
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(0)+logSuffix), data, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, Config{IndexIntervalBytes: 64}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		all := readAll(t, l, l.LogStartOffset())
		for _, h := range batchesOf(t, all) {
			if h.Magic != 2 {
				t.Fatalf("served magic %d", h.Magic)
			}
		}
		if _, err := l.AppendAsLeader(valueBatch(t, 1, 1, 1, 0), 0, -1); err != nil {
			t.Fatal(err)
		}
	})
}
