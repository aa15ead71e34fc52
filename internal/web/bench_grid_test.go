package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/index"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/internal/web"
)

// gridServer is a web server over a stack without workers whose index
// holds n described photos in 20 repositories of one registry, and a
// thousand more announced (describing), failed or refused; the events
// are put on the description stream as the notifier and the workers do.
func gridServer(b *testing.B, n int) (*web.Server, *index.Index, *stacktest.Stack) {
	b.Helper()
	s := stacktest.Start(b, stacktest.Options{Workers: -1})
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Duration(n) * time.Second)
	var pending []jetstream.PubAckFuture
	publish := func(e feed.Event) {
		e.Version = feed.Version
		data, err := json.Marshal(e)
		require.NoError(b, err)
		f, err := s.JS.PublishAsync(feed.Subject(e), data)
		require.NoError(b, err)
		pending = append(pending, f)
		if len(pending) == 2000 {
			for _, f := range pending {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					require.NoError(b, err)
				}
			}
			pending = pending[:0]
		}
	}
	for i := range n + 1000 {
		repo := fmt.Sprintf("photos/album-%02d", i%20)
		digest := fmt.Sprintf("sha256:%064x", i+1)
		when := at.Add(time.Duration(i) * time.Second)
		switch {
		case i < n:
			layer := fmt.Sprintf("sha256:%064x", i+10_000_000)
			publish(feed.Event{Kind: feed.Found, Registry: s.RegistryHost, Repository: repo, Digest: digest, At: when,
				Tags: []string{fmt.Sprintf("v%d", i)}, By: "ollama/" + stacktest.Model, Photos: []feed.Photo{{
					Manifest: digest, Layer: layer, MediaType: "image/jpeg", Title: fmt.Sprintf("img-%06d.jpg", i),
					Description: fmt.Sprintf("Photo %d of a long series: a harbour with fishing boats, gulls over the pier and a lighthouse at dusk.", i),
					Alt:         "Harbour with boats at dusk", Keywords: []string{"harbour", "boats", "dusk", "lighthouse"},
					Model: "ollama/" + stacktest.Model, Created: when, Stored: "annotation",
				}}})
		case i%3 == 0:
			publish(feed.Event{Kind: feed.Queued, Registry: s.RegistryHost, Repository: repo, Digest: digest, At: when, Tags: []string{"new"}})
		case i%3 == 1:
			publish(feed.Event{Kind: feed.Failed, Registry: s.RegistryHost, Repository: repo, Digest: digest, At: when, Reason: "the model failed"})
		default:
			publish(feed.Event{Kind: feed.Refused, Registry: s.RegistryHost, Repository: repo, Digest: digest, At: when, Reason: "not an image: text"})
		}
	}
	select {
	case <-s.JS.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("the events were not all stored")
	}
	start := time.Now()
	cat := startCatalog(b, s.JS, s.Client.Names())
	wctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	require.NoError(b, cat.Wait(wctx, s.JS))
	b.Logf("indexed %d events in %v", n+1000, time.Since(start).Round(time.Second))
	srv, err := web.New(web.Options{Catalog: cat, JetStream: s.JS, Registry: s.Client, Registries: []string{s.RegistryHost}, Leases: s.Leases,
		Model: "ollama/" + stacktest.Model, ThumbDir: b.TempDir(), Log: stacktest.Logger(b)})
	require.NoError(b, err)
	b.Cleanup(srv.Close)
	return srv, cat, s
}

// servePage serves path and fails unless it is a page of grid tiles.
func servePage(b *testing.B, h http.Handler, path string) time.Duration {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Host = "127.0.0.1"
	w := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(w, req)
	took := time.Since(start)
	if w.Code != http.StatusOK {
		b.Fatalf("GET %s: %d %s", path, w.Code, w.Body.String())
	}
	return took
}

// cpuTime is the CPU time the process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportP95 reports the 95th percentile of took, in milliseconds.
func reportP95(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)*95/100])/float64(time.Millisecond), "p95-ms")
}

// BenchmarkGrid100k serves the grid's pages over 100,000 described photos
// (and 1,000 describing, failed or not images), from the request to the
// last byte: the front page, a page scrolled to deep in it, and a
// repository's page scrolled to. "changing" applies an event to the index
// before each request (as while photos are being described), so the
// grid's order is made again every time.
func BenchmarkGrid100k(b *testing.B) {
	srv, cat, s := gridServer(b, 100_000)
	b.Logf("first front page (the grid's order made): %v", servePage(b, srv, "/"))
	repo := "/r/" + s.RegistryHost + "/photos/album-07"
	for _, c := range []struct {
		name, path string
		changing   bool
	}{
		{"front", "/", false},
		{"scroll-deep", "/?page=700", false},
		{"repository-scroll", repo + "?page=20", false},
		{"front-changing", "/", true},
		{"scroll-changing", "/?page=300", true},
	} {
		b.Run(c.name, func(b *testing.B) {
			servePage(b, srv, c.path)
			var took []time.Duration
			i := 0
			cpu := cpuTime()
			for b.Loop() {
				if c.changing {
					b.StopTimer()
					i++
					require.NoError(b, cat.Apply(context.Background(), feed.Event{Version: feed.Version, Kind: feed.Queued, Registry: s.RegistryHost,
						Repository: "photos/album-01", Digest: fmt.Sprintf("sha256:%064x", 50_000_000+i), At: time.Now().UTC()}))
					b.StartTimer()
				}
				took = append(took, servePage(b, srv, c.path))
			}
			// The process's CPU time, all of it: on a machine shared with
			// other work, what a request costs, whatever it waited.
			b.ReportMetric(float64(cpuTime()-cpu)/float64(time.Millisecond)/float64(len(took)), "cpu-ms/op")
			reportP95(b, took)
		})
	}
}
