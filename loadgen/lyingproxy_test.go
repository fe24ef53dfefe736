package loadgen

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/clustertest"
	"github.com/kchaos/kchaos/broker/local"
	"github.com/kchaos/kchaos/checker"
	"github.com/kchaos/kchaos/workloads"
)

// lyingProxy stands between the clients and one broker, passing every request and response
// through unchanged except Produce requests with acks ≠ 0: for one partition (the first a
// Produce request names) it takes every every-th batch, up to max, out of the request and
// answers it itself with a success at the offset the broker would give next, so the client
// counts records acknowledged that the broker never saw. The rest of the request goes on to
// the broker, whose answer gets the fabricated partition added. Responses reach the client in
// request order, as Kafka clients require.
type lyingProxy struct {
	ln         net.Listener
	every, max int

	mu      sync.Mutex // guards the fields below
	target  string
	lieOn   *tpKey // the partition lied about
	batches int    // batches of lieOn seen
	lies    int
	dropped int64           // records in the batches lied about
	next    map[tpKey]int64 // next offset of each partition, from the broker's answers
	conns   []net.Conn      // connections, to close at the end
}

// tpKey names a partition by topic name or, from Produce v13, topic ID.
type tpKey struct {
	topic string
	id    [16]byte
	part  int32
}

func newLyingProxy(t *testing.T, every, max int) *lyingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &lyingProxy{ln: ln, every: every, max: max, next: map[tpKey]int64{}}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *lyingProxy) addr() string { return p.ln.Addr().String() }

// setTarget points the proxy at the broker's address (the cluster may retry on new ports).
func (p *lyingProxy) setTarget(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = addr
}

func (p *lyingProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func (p *lyingProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		b, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, b)
		p.mu.Unlock()
		pending := make(chan pendingResponse, 128)
		go p.requests(c, b, pending)
		go p.responses(c, b, pending)
	}
}

// pendingResponse is what the client awaits for one request, in order: a response frame the
// proxy made (fabricated), or the broker's, adjusted when it answers a Produce (produce).
type pendingResponse struct {
	fabricated []byte
	produce    *forwardedProduce
}

// forwardedProduce is a Produce request passed to the broker: its version, the records it
// carries per partition, and the partitions the proxy answers itself.
type forwardedProduce struct {
	version int16
	records map[tpKey]int64
	lies    []kmsg.ProduceResponseTopic
}

// requests reads the client's requests and passes them on, lying about Produce batches.
func (p *lyingProxy) requests(c, b net.Conn, pending chan<- pendingResponse) {
	defer close(pending)
	defer b.Close()
	for {
		frame, err := readFrame(c)
		if err != nil {
			return
		}
		if len(frame) < 8 || int16(binary.BigEndian.Uint16(frame)) != kmsg.Produce.Int16() {
			pending <- pendingResponse{}
			if writeFrame(b, frame) != nil {
				return
			}
			continue
		}
		version := int16(binary.BigEndian.Uint16(frame[2:]))
		req := kmsg.NewPtrProduceRequest()
		req.Version = version
		hdr, err := requestHeaderLen(frame, req.IsFlexible())
		if err == nil {
			err = req.ReadFrom(frame[hdr:])
		}
		if err != nil || req.Acks == 0 { // acks=0: the broker answers nothing
			if err == nil && writeFrame(b, frame) == nil {
				continue
			}
			return
		}
		fwd := p.plan(req)
		if len(fwd.lies) > 0 {
			empty := true
			for _, t := range req.Topics {
				empty = empty && len(t.Partitions) == 0
			}
			if empty {
				resp := kmsg.NewPtrProduceResponse()
				resp.Version, resp.Topics = version, fwd.lies
				pending <- pendingResponse{fabricated: responseFrame(frame[4:8], resp)}
				continue
			}
			frame = req.AppendTo(append([]byte(nil), frame[:hdr]...))
		}
		pending <- pendingResponse{produce: fwd}
		if writeFrame(b, frame) != nil {
			return
		}
	}
}

// plan decides which batches of req to lie about, takes them out of req and returns what the
// broker's answer needs.
func (p *lyingProxy) plan(req *kmsg.ProduceRequest) *forwardedProduce {
	p.mu.Lock()
	defer p.mu.Unlock()
	fwd := &forwardedProduce{version: req.Version, records: map[tpKey]int64{}}
	for ti := range req.Topics {
		t := &req.Topics[ti]
		kept := t.Partitions[:0]
		var lied []kmsg.ProduceResponseTopicPartition
		for _, rp := range t.Partitions {
			k := tpKey{t.Topic, t.TopicID, rp.Partition}
			n := countRecords(rp.Records)
			if p.lieOn == nil {
				p.lieOn = &k
			}
			if k == *p.lieOn {
				p.batches++
				if p.batches%p.every == 0 && p.lies < p.max {
					p.lies++
					p.dropped += n
					pr := kmsg.NewProduceResponseTopicPartition()
					pr.Partition, pr.BaseOffset = rp.Partition, p.next[k]
					lied = append(lied, pr)
					continue
				}
			}
			fwd.records[k] = n
			kept = append(kept, rp)
		}
		t.Partitions = kept
		if len(lied) > 0 {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID, rt.Partitions = t.Topic, t.TopicID, lied
			fwd.lies = append(fwd.lies, rt)
		}
	}
	return fwd
}

// responses passes the broker's responses to the client in request order, with the
// proxy's own answers in their places.
func (p *lyingProxy) responses(c, b net.Conn, pending <-chan pendingResponse) {
	defer c.Close()
	for pr := range pending {
		frame := pr.fabricated
		if frame == nil {
			var err error
			if frame, err = readFrame(b); err != nil {
				return
			}
			if pr.produce != nil {
				frame = p.adjust(frame, pr.produce)
			}
		}
		if writeFrame(c, frame) != nil {
			return
		}
	}
}

// adjust learns each partition's next offset from the broker's Produce answer and adds the
// partitions the proxy answered itself.
func (p *lyingProxy) adjust(frame []byte, fwd *forwardedProduce) []byte {
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = fwd.version
	hdr := 4
	if resp.IsFlexible() {
		hdr++ // no tags in the response header
	}
	if len(frame) < hdr || resp.ReadFrom(frame[hdr:]) != nil {
		return frame
	}
	p.mu.Lock()
	for _, t := range resp.Topics {
		for _, rp := range t.Partitions {
			k := tpKey{t.Topic, t.TopicID, rp.Partition}
			if rp.ErrorCode == 0 && rp.BaseOffset >= 0 {
				p.next[k] = max(p.next[k], rp.BaseOffset+fwd.records[k])
			}
		}
	}
	p.mu.Unlock()
	if len(fwd.lies) == 0 {
		return frame
	}
	resp.Topics = append(resp.Topics, fwd.lies...)
	return responseFrame(frame[:4], resp)
}

// stats returns the partition lied about, the lies told and the records they dropped.
func (p *lyingProxy) stats() (tpKey, int, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lieOn == nil {
		return tpKey{}, 0, 0
	}
	return *p.lieOn, p.lies, p.dropped
}

// requestHeaderLen returns the length of a request header: api key, version, correlation id,
// client id and, in flexible versions, tagged fields.
func requestHeaderLen(frame []byte, flexible bool) (int, error) {
	if len(frame) < 10 {
		return 0, errors.New("short request header")
	}
	n := 10
	if l := int16(binary.BigEndian.Uint16(frame[8:])); l > 0 {
		n += int(l)
	}
	if !flexible {
		return n, nil
	}
	tags, k := binary.Uvarint(frame[min(n, len(frame)):])
	if k <= 0 {
		return 0, errors.New("bad tag count")
	}
	n += k
	for range tags {
		_, k1 := binary.Uvarint(frame[min(n, len(frame)):])
		if k1 <= 0 {
			return 0, errors.New("bad tag")
		}
		size, k2 := binary.Uvarint(frame[min(n+k1, len(frame)):])
		if k2 <= 0 {
			return 0, errors.New("bad tag size")
		}
		n += k1 + k2 + int(size)
	}
	return n, nil
}

// countRecords counts the records of the record batches in b.
func countRecords(b []byte) int64 {
	var n int64
	for len(b) >= 12 {
		var rb kmsg.RecordBatch
		size := 12 + int(int32(binary.BigEndian.Uint32(b[8:])))
		if size > len(b) || rb.ReadFrom(b[:size]) != nil {
			break
		}
		n += int64(rb.NumRecords)
		b = b[size:]
	}
	return n
}

// responseFrame encodes resp as a response frame with correlation id corr.
func responseFrame(corr []byte, resp *kmsg.ProduceResponse) []byte {
	out := append([]byte(nil), corr...)
	if resp.IsFlexible() {
		out = append(out, 0)
	}
	return resp.AppendTo(out)
}

func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 64<<20 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	frame := make([]byte, n)
	_, err := io.ReadFull(r, frame)
	return frame, err
}

func writeFrame(w io.Writer, frame []byte) error {
	out := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(frame)), uint32(len(frame)))
	_, err := w.Write(append(out, frame...))
	return err
}

// TestLyingProxyIsIllegalWhereItLied runs a real workload (three broker processes, RF=3,
// acks=all, idempotence off) through a proxy in front of broker 1 that acknowledges Produce
// batches of one partition without forwarding them. porcupine must find exactly that
// partition illegal and every other partition (broker 1's others included) ok, with a
// visualisation of the illegal one, in the verdict.json `kchaos check` would write; the
// per-record analyses must count every record the proxy dropped as lost.
func TestLyingProxyIsIllegalWhereItLied(t *testing.T) {
	const liar = 1
	proxy := newLyingProxy(t, 3, 5)
	c := clustertest.Start(t, 3, func(cfg *local.Config) {
		route := cfg.Route
		cfg.Route = func(from, to int32, raft bool, addr string) string {
			if from == local.ClientLinks && to == liar {
				proxy.setTarget(addr)
				return proxy.addr()
			}
			return route(from, to, raft, addr)
		}
	})
	plan, err := workloads.Parse("lying-proxy.yaml", []byte(`name: lying-proxy
topics: 1
partitionsPerTopic: 6
messageSize: 128
producersPerTopic: 2
producerRate: 600
subscriptionsPerTopic: 1
consumerPerSubscription: 1
duration: 3s
replicationFactor: 3
driver: franz-go
topicConfig:
  min.insync.replicas: 2
producer:
  acks: all
  idempotence: false
  linger: 5ms
consumer:
  mode: group
  commit: manual-after-processing
`))
	if err != nil {
		t.Fatal(err)
	}
	res, path, _ := runWithHistory(t, plan.Configs[0], c.Bootstrap())
	lied, lies, dropped := proxy.stats()
	t.Logf("sent %d acked %d drained %d; the proxy lied %d times about %s/%d, dropping %d records", res.Sent, res.Acked, res.Drained,
		lies, lied.topic, lied.part, dropped)
	if lies != 5 || dropped == 0 {
		t.Fatalf("the proxy lied %d times (%d records), want 5", lies, dropped)
	}

	cres, err := checker.CheckFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	lr, err := checker.CheckLinearizableFile(path, checker.LinearOptions{Timeout: 30 * time.Second, OutDir: filepath.Join(dir, "linearizability")})
	if err != nil {
		t.Fatal(err)
	}
	cres.Linearizable = lr
	checker.Judge(cres)
	if got := cres.Count(checker.Lost); got != dropped {
		t.Errorf("lost %d, the proxy dropped %d acknowledged records; examples %+v", got, dropped, cres.Anomalies[checker.Lost].Examples)
	}
	for _, ex := range cres.Anomalies[checker.Lost].Examples {
		if ex.Partition != lied.part {
			t.Errorf("lost on partition %d, the proxy lied about %d: %+v", ex.Partition, lied.part, ex)
		}
	}
	if g := guarantee(cres, "acked-writes-durable"); g.Status != checker.StatusFail {
		t.Errorf("acked-writes-durable %s, want fail", g.Status)
	}

	// What verdict.json says, partition by partition.
	b, err := json.Marshal(cres)
	if err != nil {
		t.Fatal(err)
	}
	var verdict struct {
		Linearizable struct {
			Result     string `json:"result"`
			Partitions []struct {
				Partition     int32  `json:"partition"`
				Result        string `json:"result"`
				Reason        string `json:"reason"`
				Visualization string `json:"visualization"`
			} `json:"partitions"`
		} `json:"linearizable"`
	}
	if err := json.Unmarshal(b, &verdict); err != nil {
		t.Fatal(err)
	}
	if len(verdict.Linearizable.Partitions) != 6 || verdict.Linearizable.Result != checker.LinearIllegal {
		t.Fatalf("linearizable %+v, want illegal over 6 partitions", verdict.Linearizable)
	}
	for _, p := range verdict.Linearizable.Partitions {
		want := checker.LinearOK
		if p.Partition == lied.part {
			want = checker.LinearIllegal
			if _, err := os.Stat(p.Visualization); err != nil {
				t.Errorf("partition %d: no visualisation: %v", p.Partition, err)
			}
		}
		if p.Result != want {
			t.Errorf("partition %d: %s (%s), want %s", p.Partition, p.Result, p.Reason, want)
		}
	}
}
