package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func BenchmarkAppend(b *testing.B) {
	for _, tc := range []struct{ rec, batch int }{{1 << 10, 16 << 10}, {100, 16 << 10}, {1 << 10, 1 << 20}} {
		b.Run(fmt.Sprintf("size=%dB,batch=%dKiB", tc.rec, tc.batch>>10), func(b *testing.B) {
			l, err := Open(b.TempDir(), Config{}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			n := tc.batch / tc.rec
			tmpl := valueBatch(b, 1, n, tc.batch, 1)
			buf := make([]byte, len(tmpl))
			b.SetBytes(int64(len(tmpl)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				copy(buf, tmpl)
				if _, err := l.AppendAsLeader(buf, 1, -1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func BenchmarkRead(b *testing.B) {
	for _, maxBytes := range []int{64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("max=%dKiB,batch=16KiB", maxBytes>>10), func(b *testing.B) {
			l, err := Open(b.TempDir(), Config{SegmentBytes: 64 << 20}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			for i := 0; i < 4096; i++ { // 64 MiB
				if _, err := l.AppendAsLeader(valueBatch(b, 1, 16, 16<<10, int64(i)), 1, -1); err != nil {
					b.Fatal(err)
				}
			}
			leo := l.LogEndOffset()
			sink := &countWriter{}
			b.ResetTimer()
			var total int64
			for i := 0; i < b.N; i++ {
				off := int64(i*997) % leo
				r, err := l.Read(off, maxBytes, leo, true)
				if err != nil {
					b.Fatal(err)
				}
				n, err := r.WriteTo(sink)
				r.Release()
				if err != nil {
					b.Fatal(err)
				}
				total += n
			}
			b.SetBytes(total / int64(b.N))
		})
	}
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// BenchmarkRecover builds a 1 GiB log once (16 KiB batches, 1 GiB segments as by default),
// then times Open after a simulated kill -9: no clean-shutdown marker and a recovery point of
// 0, so every batch is read and CRC-checked and the indexes rebuilt.
func BenchmarkRecover(b *testing.B) {
	b.Run("log=1GiB", func(b *testing.B) {
		dir := b.TempDir()
		l, err := Open(dir, Config{}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		tmpl := valueBatch(b, 1, 16, 16<<10, 1)
		buf := make([]byte, len(tmpl))
		for l.Size() < 1<<30 {
			copy(buf, tmpl)
			if _, err := l.AppendAsLeader(buf, 1, -1); err != nil {
				b.Fatal(err)
			}
		}
		size := l.Size()
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(size)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			os.Remove(filepath.Join(dir, cleanShutdownFile))
			os.WriteFile(filepath.Join(dir, recoveryPointFile), []byte("0\n"), 0o644)
			b.StartTimer()
			start := time.Now()
			l, err := Open(dir, Config{}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(time.Since(start).Seconds(), "s/recover")
			b.StopTimer()
			l.Close()
			b.StartTimer()
		}
	})
}
