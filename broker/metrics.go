package broker

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metrics are the broker's Prometheus metrics, registered on a registry of its own so several
// brokers can live in one process (tests). Names follow Kafka's JMX metrics where one exists.
type metrics struct {
	reg            *prometheus.Registry
	bytesIn        *prometheus.CounterVec
	bytesOut       *prometheus.CounterVec
	messagesIn     *prometheus.CounterVec
	bytesOutTotal  prometheus.Counter
	requests       *prometheus.CounterVec
	requestSeconds *prometheus.HistogramVec
	badRequests    *prometheus.CounterVec
	partitions     prometheus.Gauge
	connections    prometheus.Gauge
	produceErrors  *prometheus.CounterVec
	rebalances     prometheus.Counter
	offsetCommits  prometheus.Counter
	isrShrinks     prometheus.Counter
	isrExpands     prometheus.Counter
	// truncations counts divergent log suffixes this broker truncated as a follower
	// (KIP-101/279): records a leader change discarded.
	truncations prometheus.Counter
	// corruptReads counts stored batches found corrupt when first read (corruption.go).
	corruptReads prometheus.Counter
	// produceDuplicates counts idempotent retries answered with the original offsets.
	produceDuplicates *prometheus.CounterVec
	// fetchSessions are the fetch session cache's series (fetch_session.go).
	fetchSessions sessionMetrics
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafka_server_brokertopicmetrics_bytesin_total", Help: "Record bytes appended, by topic.",
		}, []string{"topic"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafka_server_brokertopicmetrics_bytesout_total", Help: "Record bytes served to fetchers, by topic.",
		}, []string{"topic"}),
		messagesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafka_server_brokertopicmetrics_messagesin_total", Help: "Records appended, by topic.",
		}, []string{"topic"}),
		bytesOutTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kchaos_network_response_bytes_total", Help: "Response bytes written to clients, framing included.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafka_network_requestmetrics_requests_total", Help: "Requests handled, by API.",
		}, []string{"request"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kafka_network_requestmetrics_totaltime_seconds",
			Help:    "Time from reading a request to writing its response, by API.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 18),
		}, []string{"request"}),
		badRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kchaos_bad_requests_total", Help: "Requests refused before handling, by reason (frame_size, decode, panic).",
		}, []string{"reason"}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kafka_server_replicamanager_partitioncount", Help: "Partitions hosted by this broker.",
		}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kafka_server_socket_server_connection_count", Help: "Open client connections.",
		}),
		produceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kchaos_produce_errors_total", Help: "Partition-level produce errors, by Kafka error name.",
		}, []string{"error"}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafka_coordinator_group_completed_rebalances_total", Help: "Group rebalances completed (generations started) by this coordinator.",
		}),
		offsetCommits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafka_coordinator_group_offset_commits_total", Help: "Partition offsets committed to this coordinator.",
		}),
	}
	m.isrShrinks = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kafka_server_replicamanager_isrshrinks_total", Help: "ISR shrinks of partitions this broker leads.",
	})
	m.isrExpands = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kafka_server_replicamanager_isrexpands_total", Help: "ISR expansions of partitions this broker leads.",
	})
	m.produceDuplicates = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kchaos_produce_duplicates_total", Help: "Idempotent produce retries recognised as duplicates (not appended), by topic.",
	}, []string{"topic"})
	m.truncations = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kchaos_log_truncations_total", Help: "Divergent log suffixes truncated by this broker as a follower.",
	})
	m.corruptReads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kchaos_log_corrupt_reads_total", Help: "Stored record batches found corrupt (CRC32C) when first read; each starts a recovery by re-replication.",
	})
	m.fetchSessions = sessionMetrics{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kafka_server_fetchsessioncache_numincrementalfetchsessions", Help: "Incremental fetch sessions in the cache.",
		}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kafka_server_fetchsessioncache_numincrementalfetchpartitionscached", Help: "Partitions held by cached fetch sessions.",
		}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafka_server_fetchsessioncache_incrementalfetchsessionevictions_total", Help: "Fetch sessions evicted to make room for new ones.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kchaos_fetch_session_requests_total", Help: "Fetch requests by session mode (sessionless, full, incremental, error).",
		}, []string{"mode"}),
	}
	m.reg.MustRegister(m.fetchSessions.sessions, m.fetchSessions.partitions, m.fetchSessions.evictions, m.fetchSessions.requests)
	m.reg.MustRegister(m.isrShrinks, m.isrExpands, m.produceDuplicates, m.truncations, m.corruptReads)
	m.reg.MustRegister(m.bytesIn, m.bytesOut, m.messagesIn, m.bytesOutTotal, m.requests, m.requestSeconds,
		m.badRequests, m.partitions, m.connections, m.produceErrors, m.rebalances, m.offsetCommits)
	return m
}

// observeRequest records one handled request of the given API key.
func (m *metrics) observeRequest(key int16, d time.Duration) {
	name := kmsg.NameForKey(key)
	m.requests.WithLabelValues(name).Inc()
	m.requestSeconds.WithLabelValues(name).Observe(d.Seconds())
}

// logEndOffsets is a collector that reports every partition's log end offset and high
// watermark at scrape time.
type logEndOffsets struct{ b *Broker }

var (
	leoDesc = prometheus.NewDesc("kafka_log_log_logendoffset", "Log end offset, by partition.", []string{"topic", "partition"}, nil)
	hwDesc  = prometheus.NewDesc("kafka_cluster_partition_highwatermark", "High watermark, by partition.", []string{"topic", "partition"}, nil)
	lsoDesc = prometheus.NewDesc("kafka_log_log_logstartoffset", "Log start offset, by partition.", []string{"topic", "partition"}, nil)
)

func (c logEndOffsets) Describe(ch chan<- *prometheus.Desc) {
	ch <- leoDesc
	ch <- hwDesc
	ch <- lsoDesc
}

func (c logEndOffsets) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.b.allPartitions() {
		idx := strconv.Itoa(int(p.index))
		ch <- prometheus.MustNewConstMetric(leoDesc, prometheus.GaugeValue, float64(p.LogEndOffset()), p.topic.name, idx)
		ch <- prometheus.MustNewConstMetric(hwDesc, prometheus.GaugeValue, float64(p.HighWatermark()), p.topic.name, idx)
		ch <- prometheus.MustNewConstMetric(lsoDesc, prometheus.GaugeValue, float64(p.LogStartOffset()), p.topic.name, idx)
	}
}

// serveMetrics starts the Prometheus endpoint on MetricsAddr.
func (b *Broker) serveMetrics() error {
	if err := b.metrics.reg.Register(logEndOffsets{b}); err != nil {
		return fmt.Errorf("broker: metrics: %w", err)
	}
	if err := b.metrics.reg.Register(groupMetrics{b}); err != nil {
		return fmt.Errorf("broker: metrics: %w", err)
	}
	if err := b.metrics.reg.Register(txnMetrics{b}); err != nil {
		return fmt.Errorf("broker: metrics: %w", err)
	}
	ln, err := net.Listen("tcp", b.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("broker: metrics listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(b.metrics.reg, promhttp.HandlerOpts{}))
	b.metricsLn = ln
	b.metricsSv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	b.bgWG.Add(1)
	go func() {
		defer b.bgWG.Done()
		if err := b.metricsSv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("metrics server", "err", err)
		}
	}()
	return nil
}

// registerCluster adds the replication gauges, computed at scrape time from the partitions
// the broker hosts.
func (m *metrics) registerCluster(b *Broker) {
	count := func(f func(p *partition) bool) func() float64 {
		return func() float64 {
			n := 0
			for _, p := range b.allPartitions() {
				if f(p) {
					n++
				}
			}
			return float64(n)
		}
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kafka_server_replicamanager_underreplicatedpartitions",
			Help: "Partitions this broker leads whose ISR is smaller than their replica set."},
			count(func(p *partition) bool {
				p.mu.RLock()
				defer p.mu.RUnlock()
				return p.rs.UnderReplicated()
			})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kafka_server_replicamanager_underminisrpartitioncount",
			Help: "Partitions this broker leads whose ISR is smaller than min.insync.replicas."},
			count(func(p *partition) bool {
				p.mu.RLock()
				defer p.mu.RUnlock()
				return p.rs.UnderMinISR()
			})),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kafka_server_replicamanager_leadercount",
			Help: "Partitions this broker leads."},
			count(func(p *partition) bool { return p.isLeader(b.cfg.NodeID) })),
	)
}
