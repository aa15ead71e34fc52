package reconcile_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/lease"
	"github.com/regscribe/regscribe/internal/metrics"
	"github.com/regscribe/regscribe/internal/reconcile"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/reprocess"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// dropNotifications stands between the registry and the notifier and
// swallows every notification, answering 200 as a sink that lost it would:
// the registry never retries, and no job is queued by a push.
func dropNotifications(http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
}

// counter counts a sweep client's registry requests on their way to the
// registry: manifest HEADs and GETs, blob GETs (whole or ranged), and
// catalog requests (one a sweep).
type counter struct {
	next                  http.RoundTripper
	delay                 time.Duration
	heads, gets, catalogs atomic.Int64
	blobs                 atomic.Int64
	// inFlight, if set, is shared by the clients of several processes:
	// it counts this client's requests in flight in slot own.
	inFlight *[2]atomic.Int64
	own      int
	overlaps *atomic.Int64
	// down, while true, fails every request as an unreachable registry.
	down atomic.Bool
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.down.Load() {
		return nil, errors.New("connect: connection refused (registry down)")
	}
	switch {
	case strings.Contains(r.URL.Path, "/manifests/") && r.Method == http.MethodHead:
		c.heads.Add(1)
	case strings.Contains(r.URL.Path, "/manifests/") && r.Method == http.MethodGet:
		c.gets.Add(1)
	case strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet:
		c.blobs.Add(1)
	case strings.HasSuffix(r.URL.Path, "/_catalog"):
		c.catalogs.Add(1)
	}
	if c.inFlight != nil {
		c.inFlight[c.own].Add(1)
		defer c.inFlight[c.own].Add(-1)
		if c.inFlight[1-c.own].Load() > 0 {
			c.overlaps.Add(1)
		}
	}
	if c.delay > 0 {
		select {
		case <-time.After(c.delay):
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return c.next.RoundTrip(r)
}

func sweepClient(t testing.TB, host string, c *counter) *registry.Client {
	t.Helper()
	if c.next == nil {
		c.next = http.DefaultTransport
	}
	client, err := registry.New([]registry.Endpoint{{Host: host, PlainHTTP: true}},
		registry.Options{Credentials: credentials.NewMemoryStore(), HTTPClient: &http.Client{Transport: c}})
	require.NoError(t, err)
	return client
}

func photo(t testing.TB, seed uint64) stacktest.File {
	return stacktest.File{Name: fmt.Sprintf("photo-%d.jpg", seed), MediaType: "image/jpeg", Data: stacktest.JPEG(t, 64, 48, seed)}
}

// TestLostNotificationsAreCaughtBySweeps is the acceptance test:
// with every notification lost, the reconcile loop describes every photo
// pushed, before and after it started; a sweep with nothing new fetches
// no manifest.
func TestLostNotificationsAreCaughtBySweeps(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{NotifierProxy: dropNotifications})
	s.Push(t, "photos/a", "latest", photo(t, 1))
	s.Push(t, "photos/a", "v2", photo(t, 2))
	s.Push(t, "images/app", "v1", stacktest.File{Name: "layer.tar.gz", MediaType: ocispec.MediaTypeImageLayerGzip, Data: []byte("not a photo")})

	c := &counter{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec, err := reconcile.New(ctx, s.JS, sweepClient(t, s.RegistryHost, c), reconcile.Options{
		Targets: []reconcile.Target{{Registry: s.RegistryHost, Every: 300 * time.Millisecond}},
		Model:   s.Describer.Model(), Locker: s.Leases, Tick: 50 * time.Millisecond, Logger: stacktest.Logger(t),
	})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); rec.Run(ctx) }()
	defer func() { cancel(); <-done }()

	s.WaitDescribed(t, "photos/a", "latest")
	s.WaitDescribed(t, "photos/a", "v2")
	// A photo pushed while the loop runs is caught by a later sweep.
	s.Push(t, "photos/b", "latest", photo(t, 3))
	s.WaitDescribed(t, "photos/b", "latest")
	_, m := s.Manifest(t, "images/app", "v1")
	require.Empty(t, m.Annotations[registry.AnnotationDescription], "no photo, no description")

	sweeps, err := reconcile.Sweeps(ctx, s.JS)
	require.NoError(t, err)
	require.Len(t, sweeps, 1)
	require.Equal(t, strings.ToLower(s.RegistryHost), sweeps[0].Registry)
	require.Empty(t, sweeps[0].Error)
}

// TestFailedSweepIsRetriedSoon: a sweep that fails (the registry is down)
// is recorded as failed, with why, and counted; the registry is swept again
// after the retry delay, not a whole interval later, and a sweep that
// succeeds clears the failure.
func TestFailedSweepIsRetriedSoon(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{NotifierProxy: dropNotifications})
	s.Push(t, "photos/a", "latest", photo(t, 1))

	c := &counter{}
	c.down.Store(true)
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec, err := reconcile.New(ctx, s.JS, sweepClient(t, s.RegistryHost, c), reconcile.Options{
		// An interval far longer than the test: only a retry can sweep again.
		Targets:    []reconcile.Target{{Registry: s.RegistryHost, Every: time.Hour}},
		Model:      s.Describer.Model(),
		Locker:     s.Leases,
		Tick:       10 * time.Millisecond,
		FirstRetry: 50 * time.Millisecond,
		Metrics:    metrics.New(reg),
		Logger:     stacktest.Logger(t),
	})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); rec.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var failed reconcile.Sweep
	require.Eventually(t, func() bool {
		sweeps, err := reconcile.Sweeps(ctx, s.JS)
		if err != nil || len(sweeps) != 1 || sweeps[0].Failures < 2 {
			return false
		}
		failed = sweeps[0]
		return true
	}, 20*time.Second, 10*time.Millisecond, "a failed sweep was not retried")
	require.Contains(t, failed.Error, "registry down")
	require.GreaterOrEqual(t, failedSweeps(t, reg, s.RegistryHost), 2.0)

	c.down.Store(false)
	s.WaitDescribed(t, "photos/a", "latest")
	require.Eventually(t, func() bool {
		sweeps, err := reconcile.Sweeps(ctx, s.JS)
		return err == nil && len(sweeps) == 1 && sweeps[0].Error == "" && sweeps[0].Failures == 0
	}, 20*time.Second, 10*time.Millisecond, "a successful sweep did not clear the failure")
}

// failedSweeps reads regscribe_reconcile_sweeps_failed_total of a registry.
func failedSweeps(t *testing.T, reg *prometheus.Registry, host string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "regscribe_reconcile_sweeps_failed_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "registry" && l.GetValue() == strings.ToLower(host) {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// recorder keeps every log record.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// count is how many records say msg, at any level.
func (r *recorder) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.records {
		if rec.Message == msg {
			n++
		}
	}
	return n
}

// warnings returns the messages of the warnings logged since the last call.
func (r *recorder) warnings() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.records {
		if rec.Level >= slog.LevelWarn {
			out = append(out, rec.Message)
		}
	}
	r.records = nil
	return out
}

// TestCaughtPhotosWarnOncePerSweep: a sweep that catches photos whose
// notification never came logs one warning that names the registry, how
// many photos it caught and what to check; a sweep that catches nothing
// warns of nothing.
func TestCaughtPhotosWarnOncePerSweep(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{NotifierProxy: dropNotifications})
	s.Push(t, "photos/a", "one", photo(t, 1))
	s.Push(t, "photos/b", "two", photo(t, 2))
	s.Push(t, "photos/b", "three", photo(t, 3))
	logs := &recorder{}
	ctx := context.Background()
	rec, err := reconcile.New(ctx, s.JS, sweepClient(t, s.RegistryHost, &counter{}), reconcile.Options{Model: s.Describer.Model(), Logger: slog.New(logs)})
	require.NoError(t, err)

	first, err := rec.Sweep(ctx, s.RegistryHost)
	require.NoError(t, err)
	require.Equal(t, 3, first.Counts.Queued)
	warnings := logs.warnings()
	require.Len(t, warnings, 1, "one warning a sweep, not one a photo")
	for _, want := range []string{strings.ToLower(s.RegistryHost), "caught 3 photos", "notification endpoint and token", "registry table"} {
		require.Contains(t, warnings[0], want)
	}

	for _, ref := range [][2]string{{"photos/a", "one"}, {"photos/b", "two"}, {"photos/b", "three"}} {
		s.WaitDescribed(t, ref[0], ref[1])
	}
	s.WaitIdle(t)
	second, err := rec.Sweep(ctx, s.RegistryHost)
	require.NoError(t, err)
	require.Zero(t, second.Counts.Queued)
	require.Empty(t, logs.warnings(), "nothing caught, nothing to warn of")
}

// TestUnchangedTagsCostOneHeadEach: once every tag is settled (described or
// no photo), a sweep costs one HEAD a tag and fetches no manifest.
func TestUnchangedTagsCostOneHeadEach(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{NotifierProxy: dropNotifications})
	for i := range 5 {
		s.Push(t, "photos/a", fmt.Sprintf("t%d", i), photo(t, uint64(i)))
	}
	s.Push(t, "images/app", "v1", stacktest.File{Name: "layer.tar.gz", MediaType: ocispec.MediaTypeImageLayerGzip, Data: []byte("x")})
	c := &counter{}
	ctx := context.Background()
	rec, err := reconcile.New(ctx, s.JS, sweepClient(t, s.RegistryHost, c), reconcile.Options{Model: s.Describer.Model(), Logger: stacktest.Logger(t)})
	require.NoError(t, err)

	first, err := rec.Sweep(ctx, s.RegistryHost)
	require.NoError(t, err)
	require.Equal(t, 6, first.Counts.Tags)
	require.Equal(t, 5, first.Counts.Queued, "every photo caught")
	require.Equal(t, 1, first.Counts.NotPhotos)
	for i := range 5 {
		s.WaitDescribed(t, "photos/a", fmt.Sprintf("t%d", i))
	}
	s.WaitIdle(t)
	// The write-backs moved the tags to annotated manifests: one more sweep
	// sees them described and settles them.
	second, err := rec.Sweep(ctx, s.RegistryHost)
	require.NoError(t, err)
	require.Equal(t, 5, second.Counts.AlreadyDescribed)
	require.Zero(t, second.Counts.Queued)

	heads, gets := c.heads.Load(), c.gets.Load()
	third, err := rec.Sweep(ctx, s.RegistryHost)
	require.NoError(t, err)
	require.Equal(t, 6, third.Counts.Tags)
	require.Equal(t, 6, third.Counts.Unchanged)
	require.Zero(t, third.Counts.Queued)
	require.Equal(t, int64(6), c.heads.Load()-heads, "one HEAD a tag")
	require.Zero(t, c.gets.Load()-gets, "no manifest fetched")

	// A tag moved to a new photo is looked at again, and caught.
	s.Push(t, "photos/a", "t0", photo(t, 99))
	fourth, err := rec.Sweep(ctx, s.RegistryHost)
	require.NoError(t, err)
	require.Equal(t, 5, fourth.Counts.Unchanged)
	require.Equal(t, 1, fourth.Counts.Queued)
}

// TestOneSweepAtATime: two worker processes (own NATS connections, own
// leases and clients) sweeping one registry often never sweep at once.
func TestOneSweepAtATime(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Workers: -1, NotifierProxy: dropNotifications})
	for i := range 4 {
		s.Push(t, "photos/a", fmt.Sprintf("t%d", i), photo(t, uint64(i)))
	}
	var inFlight [2]atomic.Int64
	var overlaps atomic.Int64
	counters := []*counter{
		{inFlight: &inFlight, own: 0, overlaps: &overlaps, delay: 20 * time.Millisecond},
		{inFlight: &inFlight, own: 1, overlaps: &overlaps, delay: 20 * time.Millisecond},
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 2 {
		nc, err := nats.Connect(s.ClientURLs())
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		leases, err := lease.Open(ctx, js, 1, 0)
		require.NoError(t, err)
		rec, err := reconcile.New(ctx, js, sweepClient(t, s.RegistryHost, counters[i]), reconcile.Options{
			Targets: []reconcile.Target{{Registry: s.RegistryHost, Every: 50 * time.Millisecond}},
			Model:   s.Describer.Model(), Locker: leases, Tick: 10 * time.Millisecond, Logger: stacktest.Logger(t),
		})
		require.NoError(t, err)
		wg.Add(1)
		go func() { defer wg.Done(); rec.Run(ctx) }()
	}
	require.Eventually(t, func() bool {
		return counters[0].catalogs.Load()+counters[1].catalogs.Load() >= 6
	}, 60*time.Second, 20*time.Millisecond, "the processes never swept six times")
	cancel()
	wg.Wait()
	require.Zero(t, overlaps.Load(), "requests of two sweeps were in flight at once")
}

// pushDescribed pushes n manifests of one photo, each tagged and already
// described by model in its annotations, concurrently.
func pushDescribed(t testing.TB, s *stacktest.Stack, repoName string, n int, model string) {
	t.Helper()
	ctx := context.Background()
	repo := s.Repository(t, repoName)
	f := photo(t, 1)
	layer := content.NewDescriptorFromBytes(f.MediaType, f.Data)
	require.NoError(t, repo.Push(ctx, layer, bytes.NewReader(f.Data)))
	var g errgroup.Group
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error {
			desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.unknown.artifact.v1", oras.PackManifestOptions{
				Layers: []ocispec.Descriptor{layer},
				ManifestAnnotations: map[string]string{
					ocispec.AnnotationCreated:      fmt.Sprintf("2026-01-01T00:00:%02dZ", i%60),
					"n":                            fmt.Sprint(i),
					registry.AnnotationDescription: "a photo",
					registry.AnnotationModel:       model,
				},
			})
			if err != nil {
				return err
			}
			return repo.Tag(ctx, desc, fmt.Sprintf("t%05d", i))
		})
	}
	require.NoError(t, g.Wait())
}

// BenchmarkSweepUnchanged measures a sweep of 2,000 settled, unchanged tags
// (no rate limit): the figure in the README. It fails if a sweep costs more
// than one HEAD a tag or fetches a manifest.
func BenchmarkSweepUnchanged(b *testing.B) {
	const tags = 2000
	s := stacktest.Start(b, stacktest.Options{Workers: -1, NotifierProxy: dropNotifications})
	pushDescribed(b, s, "photos/archive", tags, s.Describer.Model())
	c := &counter{}
	ctx := context.Background()
	rec, err := reconcile.New(ctx, s.JS, sweepClient(b, s.RegistryHost, c), reconcile.Options{Model: s.Describer.Model(), Concurrency: 16, Logger: stacktest.Logger(b)})
	require.NoError(b, err)
	first, err := rec.Sweep(ctx, s.RegistryHost)
	require.NoError(b, err)
	require.Equal(b, tags, first.Counts.AlreadyDescribed)
	heads, gets := c.heads.Load(), c.gets.Load()
	b.ResetTimer()
	for range b.N {
		sw, err := rec.Sweep(ctx, s.RegistryHost)
		require.NoError(b, err)
		require.Equal(b, tags, sw.Counts.Unchanged)
	}
	b.StopTimer()
	perSweep := float64(c.heads.Load()-heads) / float64(b.N)
	b.ReportMetric(perSweep, "HEADs/sweep")
	require.LessOrEqual(b, perSweep, float64(tags))
	require.Zero(b, c.gets.Load()-gets, "no manifest fetched")
}

// An empty registry (a fresh `regscribe up`) is no fault: its sweep finds
// nothing and says so without a warning.
func TestEmptyRegistryIsNoWarning(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Workers: -1})
	logs := &recorder{}
	ctx := context.Background()
	rec, err := reconcile.New(ctx, s.JS, sweepClient(t, s.RegistryHost, &counter{}), reconcile.Options{Model: s.Describer.Model(), Logger: slog.New(logs)})
	require.NoError(t, err)
	sw, err := rec.Sweep(ctx, s.RegistryHost)
	require.NoError(t, err)
	require.Zero(t, sw.Counts.Tags)
	require.Empty(t, logs.warnings(), "an empty catalog is not a misconfiguration")
}

// The sweeps run over everything every hour: they put no found description
// on the description stream (only `regscribe reprocess` backfills), though
// the registry holds described photos that a backfill would find.
func TestSweepPublishesNoFoundDescriptions(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Workers: -1, NotifierProxy: dropNotifications})
	ctx := context.Background()
	feedStream, err := feed.EnsureStream(ctx, s.JS, 1)
	require.NoError(t, err)
	repo := s.Repository(t, "photos/a")
	cat := photo(t, 1)
	layer := content.NewDescriptorFromBytes(cat.MediaType, cat.Data)
	require.NoError(t, repo.Push(ctx, layer, bytes.NewReader(cat.Data)))
	desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.unknown.artifact.v1", oras.PackManifestOptions{
		Layers:              []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{registry.AnnotationDescription: "Our cat.", registry.AnnotationModel: "person:ann"},
	})
	require.NoError(t, err)
	require.NoError(t, repo.Tag(ctx, desc, "latest"))
	s.Push(t, "photos/a", "new", photo(t, 2))

	client := sweepClient(t, s.RegistryHost, &counter{})
	rec, err := reconcile.New(ctx, s.JS, client, reconcile.Options{Model: s.Describer.Model(), Logger: stacktest.Logger(t)})
	require.NoError(t, err)
	sw, err := rec.Sweep(ctx, s.RegistryHost)
	require.NoError(t, err)
	require.Equal(t, 1, sw.Counts.AlreadyDescribed)
	require.Equal(t, 1, sw.Counts.Queued, "the sweep queued the undescribed photo")
	require.Zero(t, sw.Counts.Indexed)
	info, err := feedStream.Info(ctx)
	require.NoError(t, err)
	require.Zero(t, info.State.Msgs, "a sweep publishes no found description")

	items, err := reprocess.Plan(ctx, client, reprocess.PlanOptions{Registry: s.RegistryHost, Repository: "photos/a", Model: s.Describer.Model(), Backfill: true})
	require.NoError(t, err)
	found := 0
	for _, it := range items {
		found += len(it.Found)
	}
	require.Equal(t, 1, found, "a backfill would have found the person's description")
}
