package main

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/regscribe/regscribe/internal/metrics"
)

// ops serves /metrics, /healthz and /readyz beside whatever else a process serves.
type ops struct {
	registry *prometheus.Registry
	metrics  *metrics.Metrics

	mu     sync.Mutex
	checks map[string]func(context.Context) error
}

func newOps() *ops {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &ops{registry: reg, metrics: metrics.New(reg), checks: map[string]func(context.Context) error{}}
}

// check adds a readiness check; slow checks are cached for a few seconds.
func (o *ops) check(name string, fn func(context.Context) error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.checks[name] = cached(fn, 5*time.Second)
}

// handler serves the ops endpoints and passes everything else to next.
func (o *ops) handler(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", o.ready)
	if next != nil {
		mux.Handle("/", next)
	}
	return mux
}

// ready answers 200 when every check passes, 503 otherwise, with each
// check's state as JSON.
func (o *ops) ready(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	names := make([]string, 0, len(o.checks))
	for n := range o.checks {
		names = append(names, n)
	}
	o.mu.Unlock()
	sort.Strings(names)
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	status, out := http.StatusOK, map[string]string{}
	for _, n := range names {
		o.mu.Lock()
		fn := o.checks[n]
		o.mu.Unlock()
		if err := fn(ctx); err != nil {
			status, out[n] = http.StatusServiceUnavailable, err.Error()
		} else {
			out[n] = "ok"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(out)
}

// cached runs fn at most once per ttl and returns its last answer meanwhile.
func cached(fn func(context.Context) error, ttl time.Duration) func(context.Context) error {
	var mu sync.Mutex
	var last error
	var at time.Time
	return func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) < ttl && !at.IsZero() {
			return last
		}
		last, at = fn(ctx), time.Now()
		return last
	}
}
