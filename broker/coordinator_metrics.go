package broker

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kchaos/kchaos/broker/group"
)

// groupMetrics reports, at scrape time, the number of groups in each state and every
// committed offset with its lag (high watermark minus committed offset, never negative), the
// consumer lag Kafka users watch. Names follow Kafka's GroupMetadataManager gauges and the
// common kafka_exporter consumer-group series.
type groupMetrics struct{ b *Broker }

var (
	groupsDesc = prometheus.NewDesc("kafka_coordinator_group_groupmetadatamanager_numgroups",
		"Consumer groups coordinated by this broker, by state.", []string{"state"}, nil)
	committedDesc = prometheus.NewDesc("kafka_consumergroup_current_offset",
		"Committed offset, by group and partition.", []string{"consumergroup", "topic", "partition"}, nil)
	lagDesc = prometheus.NewDesc("kafka_consumergroup_lag",
		"High watermark minus committed offset, by group and partition.", []string{"consumergroup", "topic", "partition"}, nil)
)

func (m groupMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- groupsDesc
	ch <- committedDesc
	ch <- lagDesc
}

func (m groupMetrics) Collect(ch chan<- prometheus.Metric) {
	type row struct {
		group string
		tp    group.TopicPartition
		off   int64
	}
	var rows []row
	counts := map[group.State]int{}
	co := m.b.groups
	co.mu.Lock()
	for id, g := range co.groups {
		counts[g.State]++
		for tp, o := range g.Offsets {
			rows = append(rows, row{id, tp, o.Offset})
		}
	}
	co.mu.Unlock()
	for _, s := range group.States {
		ch <- prometheus.MustNewConstMetric(groupsDesc, prometheus.GaugeValue, float64(counts[s]), s.String())
	}
	for _, r := range rows {
		idx := strconv.Itoa(int(r.tp.Partition))
		ch <- prometheus.MustNewConstMetric(committedDesc, prometheus.GaugeValue, float64(r.off), r.group, r.tp.Topic, idx)
		p, kerrv := m.b.partitionFor(r.tp.Topic, r.tp.Partition)
		if kerrv != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(max(0, p.HighWatermark()-r.off)), r.group, r.tp.Topic, idx)
	}
}
