// Package metrics defines regscribe's Prometheus metrics and nothing else:
// the worker and notifier record into a *Metrics, cmd/regscribe serves them
// on /metrics. A nil *Metrics records nothing, so tests and one-off runs
// need none.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Stages of a job whose latency is recorded.
const (
	StageFetch   = "fetch"
	StagePrepare = "prepare"
	StageModel   = "model"
	StageWrite   = "write"
)

// Metrics are regscribe's metrics.
type Metrics struct {
	jobs         *prometheus.CounterVec
	stage        *prometheus.HistogramVec
	tokens       *prometheus.CounterVec
	redeliveries prometheus.Counter
	events       *prometheus.CounterVec
	reconcile    reconcileMetrics
}

// reconcileMetrics are the reconcile sweeps' (see [Metrics.Swept]).
type reconcileMetrics struct {
	tags, unchanged, queued, failed *prometheus.CounterVec
	duration                        *prometheus.HistogramVec
	last                            *prometheus.GaugeVec
}

// New registers regscribe's metrics with reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regscribe_jobs_total", Help: "Jobs by outcome: described, skipped, refused (not an image), removed (a deleted manifest), failed (dead letter), retried, handed_back.",
		}, []string{"outcome"}),
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "regscribe_stage_seconds", Help: "Latency of each stage of a job: fetch, prepare, model, write.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"stage"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regscribe_model_tokens_total", Help: "Tokens the model read (prompt) and wrote (output).",
		}, []string{"kind"}),
		redeliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "regscribe_redeliveries_total", Help: "Jobs delivered more than once (retries, crashed workers).",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regscribe_notifier_events_total", Help: "Notifications by result: queued and ignored events; refused and unavailable requests.",
		}, []string{"result"}),
	}
	m.reconcile = reconcileMetrics{
		tags: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regscribe_reconcile_tags_total", Help: "Tags the reconcile sweeps saw, by registry.",
		}, []string{"registry"}),
		unchanged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regscribe_reconcile_tags_unchanged_total", Help: "Tags a sweep found settled and unchanged (one HEAD, no manifest fetched), by registry.",
		}, []string{"registry"}),
		queued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regscribe_reconcile_photos_queued_total", Help: "Photos a sweep queued a job for (no description by the configured model, no job queued, none given up), by registry.",
		}, []string{"registry"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "regscribe_reconcile_sweeps_failed_total", Help: "Reconcile sweeps that failed (registry unreachable, catalog error, queue unavailable), by registry.",
		}, []string{"registry"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "regscribe_reconcile_duration_seconds", Help: "How long a reconcile sweep of a registry took.",
			Buckets: []float64{.1, .5, 1, 5, 15, 60, 300, 900, 3600},
		}, []string{"registry"}),
		last: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "regscribe_reconcile_last_sweep_timestamp_seconds", Help: "When the last reconcile sweep of a registry ended (Unix time), as seen by this process.",
		}, []string{"registry"}),
	}
	reg.MustRegister(m.jobs, m.stage, m.tokens, m.redeliveries, m.events,
		m.reconcile.tags, m.reconcile.unchanged, m.reconcile.queued, m.reconcile.failed, m.reconcile.duration, m.reconcile.last)
	return m
}

// Swept records one reconcile sweep of registry that ended at end after
// took: tags seen, of which unchanged, and photos queued.
func (m *Metrics) Swept(registry string, tags, unchanged, queued int, took time.Duration, end time.Time) {
	if m == nil {
		return
	}
	m.reconcile.tags.WithLabelValues(registry).Add(float64(tags))
	m.reconcile.unchanged.WithLabelValues(registry).Add(float64(unchanged))
	m.reconcile.queued.WithLabelValues(registry).Add(float64(queued))
	m.reconcile.duration.WithLabelValues(registry).Observe(took.Seconds())
	m.reconcile.last.WithLabelValues(registry).Set(float64(end.Unix()))
}

// SweepFailed counts one failed reconcile sweep of registry.
func (m *Metrics) SweepFailed(registry string) {
	if m != nil {
		m.reconcile.failed.WithLabelValues(registry).Inc()
	}
}

// Outcome counts one job ending (or being retried) with outcome.
func (m *Metrics) Outcome(outcome string) {
	if m != nil {
		m.jobs.WithLabelValues(outcome).Inc()
	}
}

// Stage records how long a stage took since start.
func (m *Metrics) Stage(stage string, start time.Time) {
	if m != nil {
		m.stage.WithLabelValues(stage).Observe(time.Since(start).Seconds())
	}
}

// Tokens counts a model call's tokens.
func (m *Metrics) Tokens(prompt, output int) {
	if m != nil {
		m.tokens.WithLabelValues("prompt").Add(float64(prompt))
		m.tokens.WithLabelValues("output").Add(float64(output))
	}
}

// Redelivered counts a job delivered again.
func (m *Metrics) Redelivered() {
	if m != nil {
		m.redeliveries.Inc()
	}
}

// Events counts notification events by result.
func (m *Metrics) Events(result string, n int) {
	if m != nil && n > 0 {
		m.events.WithLabelValues(result).Add(float64(n))
	}
}

// QueueStatus are the queue's numbers as regscribe status shows them (see
// queue.Status for what each counts).
type QueueStatus struct {
	Queued, InFlight, WaitingRetry, Dead, Stranded uint64
}

// Queue registers the queue's gauges, read once per scrape with read:
// regscribe_queue_pending (queued, not yet delivered),
// regscribe_queue_in_flight (delivered, not settled, not waiting for a
// retry), regscribe_queue_waiting_retry (put back with a delay that has
// not run out), regscribe_dead_letters and regscribe_queue_stranded (in
// the job stream, never to be delivered again; the workers' sweep makes
// them dead letters). A failed read reports no queue gauges.
func Queue(reg prometheus.Registerer, read func() (QueueStatus, error)) {
	reg.MustRegister(queueCollector{read: read})
}

var queueGauges = []struct {
	desc  *prometheus.Desc
	value func(QueueStatus) uint64
}{
	{prometheus.NewDesc("regscribe_queue_pending", "Jobs queued and not yet delivered to a worker.", nil, nil),
		func(s QueueStatus) uint64 { return s.Queued }},
	{prometheus.NewDesc("regscribe_queue_in_flight", "Jobs delivered and not yet settled, other than those waiting for a retry.", nil, nil),
		func(s QueueStatus) uint64 { return s.InFlight }},
	{prometheus.NewDesc("regscribe_queue_waiting_retry", "Jobs put back after a retryable failure whose retry delay has not run out.", nil, nil),
		func(s QueueStatus) uint64 { return s.WaitingRetry }},
	{prometheus.NewDesc("regscribe_dead_letters", "Jobs given up, kept on the dead-letter stream (regscribe failed list).", nil, nil),
		func(s QueueStatus) uint64 { return s.Dead }},
	{prometheus.NewDesc("regscribe_queue_stranded", "Jobs in the job stream that no consumer will deliver again (made dead letters by the workers' sweep).", nil, nil),
		func(s QueueStatus) uint64 { return s.Stranded }},
}

type queueCollector struct {
	read func() (QueueStatus, error)
}

func (c queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, g := range queueGauges {
		ch <- g.desc
	}
}

func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.read()
	if err != nil {
		return
	}
	for _, g := range queueGauges {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(g.value(s)))
	}
}
