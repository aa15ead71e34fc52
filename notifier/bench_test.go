package notifier_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/notifier"
)

// BenchmarkNotify measures notifications per second end to end: keep-alive
// HTTP clients post single-event Distribution envelopes (distinct digests)
// to the notifier, which answers each only after embedded JetStream (file
// storage) has acknowledged the job. The notifier logs every job as it
// would in production, into io.Discard.
//
//	go test ./notifier -run '^$' -bench Notify -benchtime 20000x
func BenchmarkNotify(b *testing.B) {
	ns, err := embedded.StartNATS(embedded.NATSOptions{StoreDir: b.TempDir(), Listen: "127.0.0.1:0"})
	require.NoError(b, err)
	defer ns.Stop()
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(b, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(b, err)
	_, err = queue.EnsureStream(context.Background(), js, queue.StreamOptions{})
	require.NoError(b, err)
	n, err := notifier.New(queue.NewPublisher(js), notifier.Options{
		Token: token, Registry: registry,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(b, err)
	srv := httptest.NewServer(n)
	defer srv.Close()

	const clients = 64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}}
	var seq atomic.Uint64
	// Registries notify concurrently (one sender per registry endpoint, many
	// registries and replicas): 64 clients in flight.
	b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var buf [8]byte
		for pb.Next() {
			binary.BigEndian.PutUint64(buf[:], seq.Add(1))
			sum := sha256.Sum256(buf[:])
			body := envelope(event("push", ociMT, "photos/bench", "sha256:"+hex.EncodeToString(sum[:]), "latest"))
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/events", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", notifier.MediaTypeDistributionEvents)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")

	// Every notification was stored.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, queue.Stream)
	require.NoError(b, err)
	info, err := s.Info(ctx)
	require.NoError(b, err)
	require.EqualValues(b, seq.Load(), info.State.Msgs)
}
