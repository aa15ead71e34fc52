package vision

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 27, 20, 41, 7, 0, time.UTC)
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	cases := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"none", nil, 0},
		{"seconds", h("Retry-After", "2"), 2 * time.Second},
		{"fractional seconds", h("Retry-After", "0.5"), 500 * time.Millisecond},
		{"HTTP date", h("Retry-After", now.Add(30*time.Second).Format(http.TimeFormat)), 30 * time.Second},
		{"HTTP date in the past", h("Retry-After", now.Add(-time.Minute).Format(http.TimeFormat)), 0},
		{"duration", h("Retry-After", "1s"), time.Second},
		{"retry-after-ms", h("Retry-After-Ms", "250"), 250 * time.Millisecond},
		{"Retry-After wins over the resets", h("Retry-After", "2", "X-Ratelimit-Reset-Requests", "1s", "X-Ratelimit-Remaining-Requests", "0"), 2 * time.Second},
		{"request reset when none remain", h("X-Ratelimit-Remaining-Requests", "0", "X-Ratelimit-Reset-Requests", "6m0s"), 6 * time.Minute},
		{"token reset without a remaining count", h("X-Ratelimit-Reset-Tokens", "250ms"), 250 * time.Millisecond},
		{"the later of two exhausted resets", h("X-Ratelimit-Reset-Requests", "1s", "X-Ratelimit-Reset-Tokens", "20s"), 20 * time.Second},
		{"a reset of a limit not reached is ignored", h("X-Ratelimit-Remaining-Tokens", "5000", "X-Ratelimit-Reset-Tokens", "6m0s"), 0},
		{"capped", h("Retry-After", "86400"), MaxRetryAfter},
		{"garbage", h("Retry-After", "soon", "X-Ratelimit-Reset-Requests", "later"), 0},
		{"negative", h("Retry-After", "-3"), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, retryAfter(tc.header, now))
		})
	}
}
