package broker_test

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/brokertest"
)

// Bad input over raw TCP: each malformed request gets a clear Kafka error or a closed
// connection, and afterwards the broker still serves other clients with the data it had
// acknowledged intact.

const smallRequestMax = 100000

func sizePrefix(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

// withSize frames body with its length.
func withSize(body []byte) []byte { return append(sizePrefix(uint32(len(body))), body...) }

// header is a request header v1: key, version, correlation id, client id "raw".
func header(key, version int16) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, 1)
	return append(b, 0, 3, 'r', 'a', 'w')
}

func TestBadFramesCloseTheConnection(t *testing.T) {
	p := brokertest.Start(t, brokertest.Set("socket.request.max.bytes", "100000"))
	good := seedGoodData(t, p.Addr())

	metadataFrame := (&rawConn{}).frame(kmsg.NewPtrMetadataRequest())
	cases := []struct {
		name  string
		frame []byte
	}{
		{"garbage", withSize(bytes.Repeat([]byte{0xff}, 16))},
		{"negative size", sizePrefix(0xfffffff0)},
		{"size over socket.request.max.bytes", sizePrefix(smallRequestMax + 1)},
		{"size too small for a header", append(sizePrefix(3), 0, 3, 0)},
		{"unknown api key", withSize(append(header(1000, 0), 0, 0, 0, 0))},
		{"api key kmsg knows but the broker does not serve", withSize(append(header(kmsg.DescribeQuorum.Int16(), 0), 0, 0, 0, 0))},
		{"negative api key", withSize(append(header(-5, 0), 0, 0, 0, 0))},
		{"produce below the advertised versions", withSize(append(header(0, 2), 0, 0, 0, 0))},
		{"metadata above the advertised versions", withSize(append(header(3, 13), 0, 0, 0, 0))},
		{"truncated header", withSize([]byte{0, 3, 0, 9, 0, 0, 0, 1, 0, 200, 'x', 'y'})},
		{"truncated body", withSize(metadataFrame[4 : len(metadataFrame)-3])},
		{"body with an array length past the frame", withSize(append(header(3, 1), 0x7f, 0xff, 0xff, 0xff))},
		// A flexible header claiming 2^32-1 tagged fields in a few bytes must fail at once,
		// not loop over the claimed count.
		{"header tag count past the frame", withSize(append(header(3, 12), 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0))},
		{"body tag count past the frame", withSize(append(header(3, 12), 0, 1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, p.Addr())
			start := time.Now()
			c.write(tc.frame)
			c.expectClosed(tc.name)
			if took := time.Since(start); took > 3*time.Second {
				t.Fatalf("closing the connection took %v", took)
			}
			good.check(t)
		})
	}

	t.Run("frame cut short by the client", func(t *testing.T) {
		c := dialRaw(t, p.Addr())
		c.write(sizePrefix(500))
		c.write(bytes.Repeat([]byte{1}, 20))
		good.check(t) // a half-sent frame on one connection blocks no one else
		c.nc.(interface{ CloseWrite() error }).CloseWrite()
		c.expectClosed("half-sent frame")
		good.check(t)
	})
}

func TestApiVersionsTooNew(t *testing.T) {
	p := brokertest.Start(t)
	c := dialRaw(t, p.Addr())
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(99)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "raw", "1"
	c.write(c.frame(req))
	b, err := c.readFrame(10e9)
	if err != nil {
		t.Fatalf("ApiVersions v99: %v", err)
	}
	// The answer is a v0 body whatever was asked, so any client can read it.
	v0 := kmsg.NewPtrApiVersionsRequest()
	v0.SetVersion(0)
	resp := c.decode(v0, b).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("ApiVersions v99: error %v, want UNSUPPORTED_VERSION", kerr.ErrorForCode(resp.ErrorCode))
	}
	var apiVersions *kmsg.ApiVersionsResponseApiKey
	for i, k := range resp.ApiKeys {
		if k.ApiKey == kmsg.ApiVersions.Int16() {
			apiVersions = &resp.ApiKeys[i]
		}
	}
	if len(resp.ApiKeys) < 10 || apiVersions == nil || apiVersions.MaxVersion < 3 {
		t.Fatalf("ApiVersions v99: version table %+v", resp.ApiKeys)
	}
	// The client retries at a version we speak, on the same connection.
	req.SetVersion(apiVersions.MaxVersion)
	if r := c.roundTrip(req).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 || len(r.ApiKeys) != len(resp.ApiKeys) {
		t.Fatalf("ApiVersions v%d after the downgrade: %+v", apiVersions.MaxVersion, r)
	}
}

func TestBadBatches(t *testing.T) {
	p := brokertest.Start(t)
	good := seedGoodData(t, p.Addr())
	createTopic(t, newClient(t, p.Addr()), "target", 1, nil)

	edit := func(f func(b []byte) []byte) []byte {
		return f(batch(testStart, []byte("one"), []byte("two")))
	}
	cases := []struct {
		name  string
		batch []byte
		want  *kerr.Error
	}{
		{"corrupted CRC", edit(func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }), kerr.CorruptMessage},
		{"bad magic", edit(func(b []byte) []byte { b[16] = 1; fixCRC(b); return b }), kerr.InvalidRecord},
		{"record count over the records sent", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[57:], 3)
			binary.BigEndian.PutUint32(b[23:], 2)
			fixCRC(b)
			return b
		}), kerr.CorruptMessage},
		{"record count not matching the last offset delta", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[57:], 3)
			fixCRC(b)
			return b
		}), kerr.InvalidRecord},
		{"control batch", edit(func(b []byte) []byte { b[22] |= 0x20; fixCRC(b); return b }), kerr.InvalidRecord},
		{"batch length past the data", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 5000); return b }), kerr.CorruptMessage},
		{"shorter than a batch header", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 1, 2, 3}, kerr.CorruptMessage},
		{"two batches", append(batch(testStart, []byte("a")), batch(testStart, []byte("b"))...), kerr.InvalidRecord},
		{"no records", nil, kerr.InvalidRecord},
	}
	c := dialRaw(t, p.Addr())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sp := c.roundTrip(produceReq(1, "target", 0, tc.batch)).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
			if sp.ErrorCode != tc.want.Code {
				t.Fatalf("error %v (%s), want %v", kerr.ErrorForCode(sp.ErrorCode), deref(sp.ErrorMessage), tc.want)
			}
			if sp.BaseOffset != -1 {
				t.Fatalf("rejected batch got base offset %d", sp.BaseOffset)
			}
			good.check(t)
		})
	}
	// The same connection still works and the target took nothing.
	if sp := produceOK(t, c, "target", 0, batch(testStart, []byte("fine"))); sp.BaseOffset != 0 {
		t.Fatalf("first good batch after the bad ones at offset %d, want 0", sp.BaseOffset)
	}

	t.Run("acks=0 with a bad CRC closes the connection", func(t *testing.T) {
		c := dialRaw(t, p.Addr())
		b := batch(testStart, []byte("x"))
		b[len(b)-1] ^= 1
		c.write(c.frame(produceReq(0, "target", 0, b)))
		c.expectClosed("acks=0 corrupt produce")
		good.check(t)
	})
}

// goodData is data acknowledged before the bad input, read back after each case.
type goodData struct {
	addr    string
	records []byte
}

func seedGoodData(t *testing.T, addr string) *goodData {
	t.Helper()
	createTopic(t, newClient(t, addr), "good", 1, nil)
	c := dialRaw(t, addr)
	for i := 0; i < 5; i++ {
		produceOK(t, c, "good", 0, batch(testStart+int64(i), []byte("acknowledged"), []byte{byte(i)}))
	}
	sp, _ := fetch(t, c, fetchReq("good", 0, 0, 0, 0, 1<<20))
	if bs, err := decodeBatches(sp.RecordBatches); err != nil || len(bs) != 5 {
		t.Fatalf("seed data: %d batches, err %v", len(bs), err)
	}
	return &goodData{addr: addr, records: sp.RecordBatches}
}

// check reads the good data on a new connection and compares it byte for byte.
func (g *goodData) check(t *testing.T) {
	t.Helper()
	c := dialRaw(t, g.addr)
	sp, _ := fetch(t, c, fetchReq("good", 0, 0, 0, 0, 1<<20))
	if sp.ErrorCode != 0 || !bytes.Equal(sp.RecordBatches, g.records) || sp.HighWatermark != 10 { // 5 batches of 2 records
		t.Fatalf("acknowledged data changed: error %v, high watermark %d, %d bytes (had %d)", kerr.ErrorForCode(sp.ErrorCode), sp.HighWatermark, len(sp.RecordBatches), len(g.records))
	}
	c.nc.Close()
}
