package broker

import (
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fill sets every field of v (a pointer to a kmsg struct) to a non-zero value, every slice to
// two elements and every struct's UnknownTags to one tag, so that an encoding exercises every
// field and tag section of the schema.
func fill(v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem(), depth)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(kmsg.Tags{}) {
			var tags kmsg.Tags
			tags.Set(99, []byte("unknown tag"))
			v.Set(reflect.ValueOf(tags))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth+1)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte("bytes"))
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := 0; i < 2; i++ {
			fill(s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			v.Index(i).Set(reflect.ValueOf(uint8(i + 1)).Convert(v.Type().Elem()))
		}
	case reflect.String:
		v.SetString("s")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	}
}

// TestFlexibleSchemasMatchKmsg encodes a fully populated request of every served API at every
// advertised flexible version and checks that the guard walks exactly its bytes, so it never
// refuses a valid request.
func TestFlexibleSchemasMatchKmsg(t *testing.T) {
	for _, a := range apis {
		for v := a.min; v <= a.max; v++ {
			req := kmsg.RequestForKey(a.key.Int16())
			req.SetVersion(v)
			if !req.IsFlexible() {
				continue
			}
			fill(reflect.ValueOf(req), 0)
			req.SetVersion(v)
			body := req.AppendTo(nil)
			if rest, err := walkFlexible(a.key.Int16(), v, body); err != nil || rest != 0 {
				t.Errorf("%s v%d: guard walked to %d bytes before the end (err %v)", kmsg.NameForKey(a.key.Int16()), v, rest, err)
			}
			for _, cut := range []int{0, 1} {
				err := checkFlexible(a.key.Int16(), v, body[:len(body)-cut])
				if cut == 0 && err != nil {
					t.Errorf("%s v%d: guard refuses a valid %d-byte request: %v", kmsg.NameForKey(a.key.Int16()), v, len(body), err)
				}
				if cut == 1 && err == nil {
					t.Errorf("%s v%d: guard accepts the request cut by one byte", kmsg.NameForKey(a.key.Int16()), v)
				}
			}
		}
	}
}

// TestFlexibleTagCountOverrun is the input FuzzRequest found: tag counts of 2^32-1 in a few
// bytes, in the header and at the end of a body, each refused at once.
func TestFlexibleTagCountOverrun(t *testing.T) {
	for _, tc := range []struct {
		key     kmsg.Key
		version int16
		body    []byte
	}{
		{kmsg.ApiVersions, 3, []byte{2, 'a', 2, 'b', 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{kmsg.Metadata, 12, []byte{0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{kmsg.Produce, 11, []byte{0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	} {
		start := time.Now()
		if err := checkFlexible(tc.key.Int16(), tc.version, tc.body); err == nil {
			t.Errorf("%s v%d: guard accepted %x", kmsg.NameForKey(tc.key.Int16()), tc.version, tc.body)
		}
		if took := time.Since(start); took > 100*time.Millisecond {
			t.Errorf("%s v%d: guard took %v", kmsg.NameForKey(tc.key.Int16()), tc.version, took)
		}
	}
}
