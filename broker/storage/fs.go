package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// FS is the file-I/O seam: every file operation of the log goes through it so the chaos
// controller can inject ENOSPC, slow I/O and lost un-fsynced writes without touching handlers.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Remove(name string) error
	Rename(oldpath, newpath string) error
	MkdirAll(path string, perm os.FileMode) error
	ReadDir(name string) ([]os.DirEntry, error)
	Stat(name string) (os.FileInfo, error)
	// SyncDir fsyncs the directory itself so that creates, renames and removes in it are durable.
	SyncDir(name string) error
}

// File is one open file of the log. Segment files are opened O_APPEND: Write always appends.
type File interface {
	io.ReaderAt
	io.Writer
	io.Closer
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	Name() string
}

// OSFile is implemented by Files backed by a real *os.File; the broker uses it for sendfile.
type OSFile interface{ OSFile() *os.File }

// OS is the real file system; its Files implement OSFile.
var OS FS = osFS{}

type osFS struct{}

var _ FS = osFS{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}
func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (osFS) MkdirAll(path string, perm os.FileMode) error { return os.MkdirAll(path, perm) }
func (osFS) ReadDir(name string) ([]os.DirEntry, error)   { return os.ReadDir(name) }
func (osFS) Stat(name string) (os.FileInfo, error)        { return os.Stat(name) }
func (osFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// osFile wraps *os.File so it satisfies File and OSFile.
type osFile struct{ *os.File }

var (
	_ File   = osFile{}
	_ OSFile = osFile{}
)

// OSFile returns the underlying *os.File.
func (f osFile) OSFile() *os.File { return f.File }

var (
	// ErrOffsetOutOfRange is returned by Read for an offset outside [LogStartOffset, LogEndOffset]
	// (Kafka's OFFSET_OUT_OF_RANGE).
	ErrOffsetOutOfRange = errors.New("storage: offset out of range")
	// ErrCorrupt is returned for malformed record batches handed to Append (Kafka's
	// CORRUPT_MESSAGE) and wraps corruption found in files.
	ErrCorrupt = errors.New("storage: corrupt record batch")
	// ErrStorage wraps every I/O failure (ENOSPC, EIO, ...); the broker answers
	// KAFKA_STORAGE_ERROR. The original error stays reachable with errors.Is/As.
	ErrStorage = errors.New("storage: I/O error")
	// ErrClosed is returned by methods called after Close or Delete.
	ErrClosed = errors.New("storage: log closed")
)

// ioErr wraps an I/O error as ErrStorage, keeping the cause.
func ioErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrStorage) {
		return err
	}
	return fmt.Errorf("storage: %s %s: %w: %w", op, name, ErrStorage, err)
}
