package reconcile

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/photo"
)

// TestRetryDelay: a failed sweep is tried again after FirstRetry, doubled
// for each failure in a row, never later than the target's interval.
func TestRetryDelay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		failures     int
		first, every time.Duration
		want         time.Duration
	}{
		{"first failure", 1, 30 * time.Second, time.Hour, 30 * time.Second},
		{"second", 2, 30 * time.Second, time.Hour, time.Minute},
		{"fourth", 4, 30 * time.Second, time.Hour, 4 * time.Minute},
		{"capped at the interval", 8, 30 * time.Second, time.Hour, time.Hour},
		{"many failures do not overflow", 1 << 20, 30 * time.Second, time.Hour, time.Hour},
		{"interval shorter than the first retry", 1, 30 * time.Second, 10 * time.Second, 10 * time.Second},
		{"once at start: capped at an hour", 100, 30 * time.Second, 0, time.Hour},
		{"no failure count recorded", 0, 30 * time.Second, time.Hour, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, retryDelay(tc.failures, tc.first, tc.every))
		})
	}
}

// TestNotPhotoUnderOlderRulesIsJudgedAgain: a tag an older regscribe
// remembered as no photo (a JPEG pushed with oras's default media type,
// before its bytes were read) is not settled: the next sweep fetches it and
// judges it by today's rules. One judged by them stays settled.
func TestNotPhotoUnderOlderRulesIsJudgedAgain(t *testing.T) {
	t.Parallel()
	var old tagState
	require.NoError(t, json.Unmarshal([]byte(`{"repository":"photos/dune","tag":"latest","digest":"sha256:ab","status":"not-photo","model":"m"}`), &old))
	require.False(t, old.settled("m"))
	now := old
	now.Rules = photo.Rules
	require.True(t, now.settled("m"))
	require.True(t, now.settled("another/model"), "no photo whatever the model")
}
