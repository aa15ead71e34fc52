package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/regscribe/regscribe/internal/lease"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/internal/web"
)

// countingJS counts the GetMsg requests the web server sends, by stream.
type countingJS struct {
	jetstream.JetStream
	gets map[string]*atomic.Int64
}

func (c *countingJS) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	s, err := c.JetStream.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	n := c.gets[name]
	if n == nil {
		n = &atomic.Int64{}
	}
	return &countingStream{Stream: s, n: n}, nil
}

type countingStream struct {
	jetstream.Stream
	n *atomic.Int64
}

func (s *countingStream) GetMsg(ctx context.Context, seq uint64, opts ...jetstream.GetMsgOpt) (*jetstream.RawStreamMsg, error) {
	s.n.Add(1)
	return s.Stream.GetMsg(ctx, seq, opts...)
}

// emptyCatalog is a search index without photos.
type emptyCatalog struct{}

func (emptyCatalog) Search(context.Context, web.Query) ([]web.Hit, int, error) { return nil, 0, nil }
func (emptyCatalog) Suggest(_ context.Context, q web.Query) (web.Query, bool, error) {
	return q, false, nil
}
func (emptyCatalog) Repositories(context.Context) ([]web.Repository, error) { return nil, nil }
func (emptyCatalog) Tiles(context.Context, string, string, int, int) ([]web.Tile, int, error) {
	return nil, 0, nil
}
func (emptyCatalog) Photos(context.Context, string, string, int, int) ([]web.Entry, int, error) {
	return nil, 0, nil
}
func (emptyCatalog) Waiting(context.Context, string, string, string) (web.Tile, bool, error) {
	return web.Tile{}, false, nil
}
func (emptyCatalog) Photo(context.Context, string, string, string) ([]web.Entry, error) {
	return nil, nil
}
func (emptyCatalog) Semantic() bool { return false }
func (emptyCatalog) Similar(context.Context, string, string, string, int) ([]web.Hit, error) {
	return nil, nil
}
func (emptyCatalog) Wait(context.Context, jetstream.JetStream) error           { return nil }
func (emptyCatalog) Refusals(context.Context, int) ([]web.Refusal, int, error) { return nil, 0, nil }

func reviewServer(t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	rc, err := registry.New([]registry.Endpoint{{Host: "127.0.0.1:5000", PlainHTTP: true}}, registry.Options{Credentials: credentials.NewMemoryStore()})
	require.NoError(t, err)
	leases, err := lease.Open(context.Background(), js, 1, 0)
	require.NoError(t, err)
	srv, err := web.New(web.Options{Catalog: emptyCatalog{}, JetStream: js, Registry: rc, Registries: []string{"127.0.0.1:5000"},
		Leases: leases, Model: "ollama/x", ThumbDir: t.TempDir()})
	require.NoError(t, err)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Close)
	return ts.URL
}

// TestReviewJobsPageScanIsNotBoundedByItsLimit: the jobs page means to read
// the oldest 200 job messages (scanForList), but a job waiting for retry
// at the head of the work-queue stream, with thousands of jobs acked (and
// so deleted) after it, makes readQueue ask for every deleted sequence in
// between: one NATS request per job processed since, on every page view.
func TestReviewJobsPageScanIsNotBoundedByItsLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	raw := stacktest.JetStream(t)
	_, err := queue.EnsureStream(ctx, raw, queue.StreamOptions{})
	require.NoError(t, err)
	cons, err := queue.EnsureConsumer(ctx, raw, queue.ConsumerOptions{})
	require.NoError(t, err)
	job := func(i int) queue.Job {
		return queue.Job{Version: queue.JobVersion, Registry: "127.0.0.1:5000", Repository: "photos/a",
			Digest: fmt.Sprintf("sha256:%064x", i), Source: "web", Received: time.Now().UTC(), Event: fmt.Sprintf("e%d", i)}
	}
	pub := queue.NewPublisher(raw)
	// The oldest job fails once and waits an hour for its retry.
	require.NoError(t, pub.Publish(ctx, job(0)))
	b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	for m := range b.Messages() {
		require.NoError(t, m.NakWithDelay(time.Hour))
	}
	// Meanwhile 3000 other jobs are done (acked: gone from the work queue).
	const done = 3000
	for i := 1; i <= done; i += 500 {
		var jobs []queue.Job
		for k := i; k < i+500; k++ {
			jobs = append(jobs, job(k))
		}
		require.NoError(t, pub.Publish(ctx, jobs...))
	}
	acked := 0
	for acked < done {
		b, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		require.NoError(t, err)
		for m := range b.Messages() {
			require.NoError(t, m.DoubleAck(ctx))
			acked++
		}
	}
	st, err := raw.Stream(ctx, queue.Stream)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, info.State.Msgs, "one job is left in the queue")

	js := &countingJS{JetStream: raw, gets: map[string]*atomic.Int64{queue.Stream: {}}}
	base := reviewServer(t, js)
	resp, page := request(t, "GET", base+"/jobs", nil, nil)
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, page, "photos/a")
	gets := js.gets[queue.Stream].Load()
	t.Logf("GET /jobs with 1 job in the queue sent %d GetMsg requests", gets)
	require.LessOrEqual(t, gets, int64(250), "one job queued: the page should read about one message, at most scanForList (200)")
}

// TestReviewFrontPageReadsEveryDeadLetter: the dead-letter stream has no
// limit (no MaxAge, no MaxMsgs), and every view of the front page reads all
// of it, one request per dead letter, to count failures per repository
// (and the jobs page renders all of them).
func TestReviewFrontPageReadsEveryDeadLetter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	raw := stacktest.JetStream(t)
	_, err := queue.EnsureStream(ctx, raw, queue.StreamOptions{})
	require.NoError(t, err)
	const n = 2000
	for i := range n {
		d := queue.DeadLetter{Version: 1, Job: queue.Job{Version: queue.JobVersion, Registry: "127.0.0.1:5000", Repository: fmt.Sprintf("photos/r%d", i%7),
			Digest: fmt.Sprintf("sha256:%064x", i), Source: "web", Event: fmt.Sprint(i)}, Error: "model down", Attempts: 5, FailedAt: time.Now().UTC()}
		data, err := json.Marshal(d)
		require.NoError(t, err)
		_, err = raw.PublishAsync(queue.DeadSubjectPrefix+"web", data)
		require.NoError(t, err)
	}
	select {
	case <-raw.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("publish")
	}
	js := &countingJS{JetStream: raw, gets: map[string]*atomic.Int64{queue.DeadStream: {}}}
	base := reviewServer(t, js)
	start := time.Now()
	resp, _ := request(t, "GET", base+"/", nil, nil)
	require.Equal(t, 200, resp.StatusCode)
	gets := js.gets[queue.DeadStream].Load()
	t.Logf("GET / with %d dead letters: %d GetMsg requests on %s, %v", n, gets, queue.DeadStream, time.Since(start))
	_, jobs := request(t, "GET", base+"/jobs", nil, nil)
	t.Logf("GET /jobs lists %d failed jobs (%d bytes)", strings.Count(jobs, `name="seq"`), len(jobs))
	require.Less(t, gets, int64(n), "the front page should not read every dead letter on every view")
}
