package controller

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics registers the controller's Prometheus metrics on reg, named after Kafka's
// JMX metrics:
//
//   - kafka_controller_kafkacontroller_activecontrollercount: 1 on the active controller, 0
//     elsewhere (summed over a healthy cluster: exactly 1);
//   - kafka_controller_kafkacontroller_offlinepartitionscount,
//     kafka_controller_kafkacontroller_fencedbrokercount and
//     kafka_controller_kafkacontroller_activebrokercount: reported by the active controller
//     only, 0 elsewhere, as in Kafka;
//   - kafka_controller_controllerstats_leaderelections_total,
//     kafka_controller_controllerstats_uncleanleaderelections_total,
//     kchaos_controller_isrshrinks_total and kchaos_controller_isrexpands_total: the
//     cluster-wide counters of the image, the same on every node (aggregate with max, not sum).
func (c *Controller) RegisterMetrics(reg prometheus.Registerer) error {
	onActive := func(f func(*Image) int) func() float64 {
		return func() float64 {
			if !c.ActiveController() {
				return 0
			}
			return float64(f(c.Image()))
		}
	}
	stat := func(f func(Stats) int64) func() float64 {
		return func() float64 { return float64(f(c.Stats())) }
	}
	fenced := func(img *Image) int { return len(img.Brokers) - len(img.LiveBrokers()) }
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kafka_controller_kafkacontroller_activecontrollercount",
			Help: "1 if this node is the active controller."}, func() float64 {
			if c.ActiveController() {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kafka_controller_kafkacontroller_offlinepartitionscount",
			Help: "Partitions without a leader (active controller only)."}, onActive((*Image).OfflinePartitions)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kafka_controller_kafkacontroller_fencedbrokercount",
			Help: "Registered brokers that are fenced (active controller only)."}, onActive(fenced)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kafka_controller_kafkacontroller_activebrokercount",
			Help: "Registered brokers that are unfenced (active controller only)."}, onActive(func(img *Image) int { return len(img.LiveBrokers()) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kafka_controller_controllerstats_leaderelections_total",
			Help: "Leader changes to a live broker, cluster-wide."}, stat(func(s Stats) int64 { return s.LeaderElections })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kafka_controller_controllerstats_uncleanleaderelections_total",
			Help: "Elections of an out-of-sync replica, cluster-wide."}, stat(func(s Stats) int64 { return s.UncleanLeaderElections })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kchaos_controller_brokerfencings_total",
			Help: "Live brokers fenced, cluster-wide."}, stat(func(s Stats) int64 { return s.BrokerFencings })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kchaos_controller_isrshrinks_total",
			Help: "Partition changes that removed ISR members, cluster-wide."}, stat(func(s Stats) int64 { return s.ISRShrinks })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kchaos_controller_isrexpands_total",
			Help: "Partition changes that added ISR members, cluster-wide."}, stat(func(s Stats) int64 { return s.ISRExpands })),
	}
	for _, col := range cs {
		if err := reg.Register(col); err != nil {
			return fmt.Errorf("controller: register metrics: %w", err)
		}
	}
	return nil
}
