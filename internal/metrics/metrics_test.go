package metrics_test

import (
	"errors"
	"testing"

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
