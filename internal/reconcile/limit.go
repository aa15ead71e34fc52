package reconcile

import (
	"net/http"

	"golang.org/x/time/rate"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/regscribe/regscribe/internal/registry"
)

// Limit returns a RoundTripper that sends at most rps requests a second
// through next, one at a time (a burst of one), each waiting its turn
// until its context ends. rps <= 0 means no limit.
func Limit(next http.RoundTripper, rps float64) http.RoundTripper {
	if rps <= 0 {
		return next
	}
	return &limited{next: next, limiter: rate.NewLimiter(rate.Limit(rps), 1)}
}

type limited struct {
	next    http.RoundTripper
	limiter *rate.Limiter
}

func (l *limited) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := l.limiter.Wait(r.Context()); err != nil {
		return nil, err
	}
	return l.next.RoundTrip(r)
}

// NewClient returns a registry client for sweeps: like the workers' (the
// same endpoints, credentials and retries of 5xx and 429), on a connection
// pool of its own, with every request (retries included) limited to rps a
// second, so a sweep never competes with the photos being pushed.
func NewClient(endpoints []registry.Endpoint, rps float64, opts registry.Options) (*registry.Client, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	opts.HTTPClient = &http.Client{Transport: retry.NewTransport(Limit(t, rps))}
	return registry.New(endpoints, opts)
}
