package vision

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxRetryAfter caps the delay a server may ask for: a Retry-After of a day
// would otherwise park a job for a day.
const MaxRetryAfter = 15 * time.Minute

// Neither the ollama client nor go-openai hands back the headers of an error
// response. A provider therefore wraps its HTTP transport in a recorder and
// gives each call a responseMeta through the request context: the recorder
// fills it with the last response's status and headers, and classification
// reads Retry-After and x-ratelimit-reset-* from it. Each call has its own,
// so concurrent calls never see each other's headers.
type responseMeta struct {
	mu     sync.Mutex
	status int
	header http.Header
}

type responseMetaKey struct{}

// withResponseMeta returns ctx carrying a new responseMeta.
func withResponseMeta(ctx context.Context) (context.Context, *responseMeta) {
	m := &responseMeta{}
	return context.WithValue(ctx, responseMetaKey{}, m), m
}

func (m *responseMeta) set(status int, h http.Header) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status, m.header = status, h
}

// Header is the last response's headers (nil before any response).
func (m *responseMeta) Header() http.Header {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.header
}

// recorder is an http.RoundTripper that records each response's status and
// headers into the responseMeta of its request's context, if there is one.
type recorder struct{ next http.RoundTripper }

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if resp != nil {
		if m, ok := req.Context().Value(responseMetaKey{}).(*responseMeta); ok {
			m.set(resp.StatusCode, resp.Header.Clone())
		}
	}
	return resp, err
}

// recordingClient returns a copy of hc (or of a plain client when nil) whose
// transport records response headers.
func recordingClient(hc *http.Client) *http.Client {
	c := &http.Client{}
	if hc != nil {
		*c = *hc
	}
	next := c.Transport
	if next == nil {
		next = newTransport()
	}
	c.Transport = recorder{next: next}
	return c
}

// newTransport is http.DefaultTransport's setup in a transport of the
// provider's own, keeping enough idle connections for a worker's jobs in
// flight (the default keeps two per host). Its own, too, because code in the
// same process may close http.DefaultTransport's idle connections (the
// embedded registry does after every notification).
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return t
}

// retryAfter is how long a server asked to be left alone, from its
// response headers: Retry-After (seconds or an HTTP date) or retry-after-ms
// when present; otherwise the latest x-ratelimit-reset-requests /
// x-ratelimit-reset-tokens whose matching x-ratelimit-remaining-* is zero or
// absent (durations such as "1s", "6m0s", "250ms", or seconds). Zero when
// the headers ask for nothing; at most [MaxRetryAfter].
func retryAfter(h http.Header, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	var d time.Duration
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && ms > 0 {
			d = time.Duration(ms * float64(time.Millisecond))
		}
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" && d == 0 {
		if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		} else {
			d = parseDelay(v)
		}
	}
	if d <= 0 {
		for _, kind := range []string{"requests", "tokens"} {
			rem := strings.TrimSpace(h.Get("X-Ratelimit-Remaining-" + kind))
			if rem != "" && rem != "0" {
				continue
			}
			if r := parseDelay(h.Get("X-Ratelimit-Reset-" + kind)); r > d {
				d = r
			}
		}
	}
	if d < 0 {
		d = 0
	}
	return min(d, MaxRetryAfter)
}

// parseDelay reads "2", "0.5", "1s", "6m0s", "250ms" or "1h2m3.5s".
func parseDelay(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		switch {
		case !(s > 0): // also NaN
			return 0
		case s > MaxRetryAfter.Seconds():
			return MaxRetryAfter
		}
		return time.Duration(s * float64(time.Second))
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d
	}
	return 0
}
