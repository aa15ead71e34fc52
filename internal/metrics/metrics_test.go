package metrics_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/metrics"
)

func TestQueueGauges(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	var fail bool
	metrics.Queue(reg, func() (metrics.QueueStatus, error) {
		if fail {
			return metrics.QueueStatus{}, errors.New("no NATS")
		}
		return metrics.QueueStatus{Queued: 1, InFlight: 2, WaitingRetry: 3, Dead: 4, Stranded: 5}, nil
	})
	got := map[string]float64{}
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		got[f.GetName()] = f.GetMetric()[0].GetGauge().GetValue()
	}
	require.Equal(t, map[string]float64{
		"regscribe_queue_pending": 1, "regscribe_queue_in_flight": 2, "regscribe_queue_waiting_retry": 3,
		"regscribe_dead_letters": 4, "regscribe_queue_stranded": 5,
	}, got)

	fail = true
	families, err = reg.Gather()
	require.NoError(t, err)
	require.Empty(t, families, "a failed read reports no numbers rather than zeros")
}

func TestSwept(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	end := time.Unix(1_800_000_000, 0)
	m.Swept("127.0.0.1:5000", 10, 7, 2, 3*time.Second, end)
	m.Swept("127.0.0.1:5000", 10, 10, 0, time.Second, end.Add(time.Hour))
	m.SweepFailed("127.0.0.1:5000")
	got := map[string]float64{}
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "regscribe_reconcile_") {
			continue
		}
		for _, mt := range f.GetMetric() {
			switch {
			case mt.GetCounter() != nil:
				got[f.GetName()] = mt.GetCounter().GetValue()
			case mt.GetGauge() != nil:
				got[f.GetName()] = mt.GetGauge().GetValue()
			case mt.GetHistogram() != nil:
				got[f.GetName()] = float64(mt.GetHistogram().GetSampleCount())
			}
		}
	}
	require.Equal(t, map[string]float64{
		"regscribe_reconcile_tags_total": 20, "regscribe_reconcile_tags_unchanged_total": 17,
		"regscribe_reconcile_photos_queued_total": 2, "regscribe_reconcile_duration_seconds": 2,
		"regscribe_reconcile_sweeps_failed_total":          1,
		"regscribe_reconcile_last_sweep_timestamp_seconds": float64(end.Add(time.Hour).Unix()),
	}, got)
	var none *metrics.Metrics
	none.Swept("x", 1, 1, 1, time.Second, end) // a nil *Metrics records nothing
	none.SweepFailed("x")
}
