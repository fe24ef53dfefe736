package checker

import (
	"strings"
	"testing"
)

func TestValueTable(t *testing.T) {
	vt := newValueTable()
	in := []string{"3-17", "0-0", "3-18", "x-1", "03-1", "3-017", "3-", "-3", "", "65536-1", "3-99999999999", "12-4"}
	ids := make([]int32, len(in))
	for i, s := range in {
		ids[i] = vt.id(s)
		if ids[i] != int32(i) {
			t.Fatalf("%q: id %d, want %d (dense, in order of first sight)", s, ids[i], i)
		}
	}
	for i, s := range in {
		if got := vt.id(s); got != ids[i] {
			t.Errorf("%q: second lookup gave %d, want %d", s, got, ids[i])
		}
		if got := vt.name(ids[i]); got != s {
			t.Errorf("name(%d) = %q, want %q", ids[i], got, s)
		}
	}
	// A sequence far past the producer's dense range still round-trips.
	far := vt.id("3-5000000")
	if vt.name(far) != "3-5000000" || vt.id("3-5000000") != far {
		t.Errorf("far sequence did not round-trip")
	}
	for i := range 200000 {
		vt.id("7-" + itoa(i))
	}
	if vt.len() != len(in)+1+200000 || vt.name(vt.id("7-199999")) != "7-199999" {
		t.Errorf("table of %d values lost track", vt.len())
	}
}

func itoa(i int) string {
	b := make([]byte, 0, 12)
	if i == 0 {
		return "0"
	}
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// TestValueTableOutputs: transform outputs "<input>/<output>" round-trip, are told apart
// from the plain value of the same numbers, and know their input (interned on first sight).
func TestValueTableOutputs(t *testing.T) {
	vt := newValueTable()
	out := vt.id("3-17/10-0")
	in := vt.id("3-17")
	plain := vt.id("10-0")
	if out != 0 || in != 1 || plain != 2 {
		t.Fatalf("ids out %d in %d plain %d, want 0, 1, 2 (the input interned with its output)", out, in, plain)
	}
	for _, s := range []string{"3-17/10-0", "3-17/10-1", "a/b", "3-17/10-99999999999", "x/3-1"} {
		id := vt.id(s)
		v := vt.at(id)
		if vt.name(id) != s || vt.id(s) != id || v.flags&flOutput == 0 {
			t.Errorf("%q: name %q, second id %d (first %d), output %v", s, vt.name(id), vt.id(s), id, v.flags&flOutput != 0)
		}
		inName, _, _ := strings.Cut(s, "/")
		if vt.name(v.in) != inName {
			t.Errorf("%q: input %q, want %q", s, vt.name(v.in), inName)
		}
	}
	for _, s := range []string{"/3-1", "3-1"} {
		if v := vt.at(vt.id(s)); v.flags&flOutput != 0 {
			t.Errorf("%q taken for an output", s)
		}
	}
}
