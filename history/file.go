package history

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// CompressedSuffix is appended to a history file's name when it is stored compressed with
// zstd (Compress); OpenFile reads either form.
const CompressedSuffix = ".zst"

// OpenFile opens the history at path for reading: path itself, or path+".zst" compressed with
// zstd when path does not exist (or path may name the .zst file). The caller closes it.
func OpenFile(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && !strings.HasSuffix(path, CompressedSuffix) {
		path += CompressedSuffix
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	if !strings.HasSuffix(path, CompressedSuffix) {
		return f, nil
	}
	d, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("history: %s: %w", path, err)
	}
	return &zstdFile{Decoder: d, f: f}, nil
}

type zstdFile struct {
	*zstd.Decoder
	f *os.File
}

func (z *zstdFile) Close() error {
	z.Decoder.Close()
	return z.f.Close()
}

// Exists reports whether a history is stored at path, plain or compressed.
func Exists(path string) bool {
	if _, err := os.Stat(path); err == nil {
		return true
	}
	_, err := os.Stat(path + CompressedSuffix)
	return err == nil
}

// Compress replaces the plain history at path by path+".zst" (zstd, default level), written
// to a temporary file first so a crash leaves one complete copy. It returns the sizes before
// and after.
func Compress(path string) (before, after int64, err error) {
	in, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("history: compress: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("history: compress: %w", err)
	}
	tmp := path + CompressedSuffix + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return 0, 0, fmt.Errorf("history: compress: %w", err)
	}
	fail := func(err error) (int64, int64, error) {
		out.Close()
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("history: compress %s: %w", path, err)
	}
	enc, err := zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return fail(err)
	}
	if _, err := io.Copy(enc, in); err != nil {
		enc.Close()
		return fail(err)
	}
	if err := enc.Close(); err != nil {
		return fail(err)
	}
	if err := out.Sync(); err != nil {
		return fail(err)
	}
	n, err := out.Seek(0, io.SeekCurrent)
	if err != nil {
		return fail(err)
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("history: compress %s: %w", path, err)
	}
	if err := os.Rename(tmp, path+CompressedSuffix); err != nil {
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("history: compress %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return 0, 0, fmt.Errorf("history: compress %s: %w", path, err)
	}
	return st.Size(), n, nil
}
