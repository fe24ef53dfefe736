package broker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kchaos/kchaos/broker/txn"
)

// txnMetrics reports, at scrape time, the transaction coordinator's transactional ids by
// state and its counts of completed and timed-out transactions.
type txnMetrics struct{ b *Broker }

var (
	txnStateDesc = prometheus.NewDesc("kchaos_transactions",
		"Transactional ids coordinated by this broker, by the state of their latest transaction.", []string{"state"}, nil)
	txnCompletedDesc = prometheus.NewDesc("kchaos_transactions_completed_total",
		"Transactions this coordinator completed (markers written everywhere), by result.", []string{"result"}, nil)
	txnTimedOutDesc = prometheus.NewDesc("kchaos_transactions_timed_out_total",
		"Ongoing transactions this coordinator aborted because transaction.timeout.ms passed.", nil, nil)
)

func (m txnMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- txnStateDesc
	ch <- txnCompletedDesc
	ch <- txnTimedOutDesc
}

func (m txnMetrics) Collect(ch chan<- prometheus.Metric) {
	tc := m.b.txns
	counts := map[txn.State]int{}
	tc.mu.Lock()
	for _, t := range tc.txns {
		counts[t.State]++
	}
	tc.mu.Unlock()
	for s := txn.Empty; s <= txn.CompleteAbort; s++ {
		ch <- prometheus.MustNewConstMetric(txnStateDesc, prometheus.GaugeValue, float64(counts[s]), s.String())
	}
	ch <- prometheus.MustNewConstMetric(txnCompletedDesc, prometheus.CounterValue, float64(tc.committed.Load()), "commit")
	ch <- prometheus.MustNewConstMetric(txnCompletedDesc, prometheus.CounterValue, float64(tc.aborted.Load()), "abort")
	ch <- prometheus.MustNewConstMetric(txnTimedOutDesc, prometheus.CounterValue, float64(tc.timedOut.Load()))
}
