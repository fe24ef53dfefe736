package history

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// MarshalJSON encodes a Record as [partition, offset, value].
func (r Record) MarshalJSON() ([]byte, error) {
	return r.appendJSON(make([]byte, 0, 32+len(r.Value))), nil
}

// UnmarshalJSON decodes [partition, offset, value].
func (r *Record) UnmarshalJSON(b []byte) error {
	var a [3]json.RawMessage
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("history: record: %w", err)
	}
	if err := json.Unmarshal(a[0], &r.Partition); err != nil {
		return fmt.Errorf("history: record partition: %w", err)
	}
	if err := json.Unmarshal(a[1], &r.Offset); err != nil {
		return fmt.Errorf("history: record offset: %w", err)
	}
	if err := json.Unmarshal(a[2], &r.Value); err != nil {
		return fmt.Errorf("history: record value: %w", err)
	}
	return nil
}

// MarshalJSON encodes a PartitionOffset as [partition, offset].
func (p PartitionOffset) MarshalJSON() ([]byte, error) {
	return p.appendJSON(make([]byte, 0, 24)), nil
}

// UnmarshalJSON decodes [partition, offset].
func (p *PartitionOffset) UnmarshalJSON(b []byte) error {
	var a [2]int64
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("history: partition offset: %w", err)
	}
	p.Partition, p.Offset = int32(a[0]), a[1]
	return nil
}

// Reader reads a history one event at a time, without holding it in memory.
type Reader struct {
	src   io.Reader
	sc    *bufio.Scanner
	line  int
	name  string
	dec   decoder
	alias bool // see AliasStrings
}

// MaxLineBytes bounds one history line; default 64 MiB (a poll of many large batches).
const MaxLineBytes = 64 << 20

// NewReader returns a Reader over r; name is used in error messages (a file path).
func NewReader(r io.Reader, name string) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), MaxLineBytes)
	return &Reader{src: r, sc: sc, name: name}
}

// Next decodes the next event into e, which it resets first. It returns io.EOF after the last
// event. A malformed line, including a torn last line (a crash mid-write), is reported as an
// error naming file and line. Unknown fields are skipped; null leaves a field at its zero value.
func (r *Reader) Next(e *Event) error {
	for r.sc.Scan() {
		r.line++
		b := r.sc.Bytes()
		if len(b) == 0 {
			continue
		}
		*e = Event{}
		if err := r.dec.decode(b, e); err != nil {
			return fmt.Errorf("history: %s:%d: %w", r.name, r.line, err)
		}
		return nil
	}
	if err := r.sc.Err(); err != nil {
		return fmt.Errorf("history: %s:%d: %w", r.name, r.line+1, err)
	}
	return io.EOF
}

// Line returns the line number of the last event returned by Next.
func (r *Reader) Line() int { return r.line }
