package queue_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// countingJS counts the GetMsg requests sent to the streams it opens.
type countingJS struct {
	jetstream.JetStream
	gets atomic.Int64
}

func (c *countingJS) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	s, err := c.JetStream.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return &countingStream{Stream: s, n: &c.gets}, nil
}

type countingStream struct {
	jetstream.Stream
	n *atomic.Int64
}

func (s *countingStream) GetMsg(ctx context.Context, seq uint64, opts ...jetstream.GetMsgOpt) (*jetstream.RawStreamMsg, error) {
	s.n.Add(1)
	return s.Stream.GetMsg(ctx, seq, opts...)
}

// publishDead stores n dead letters of photos/dead-1 … photos/dead-n with
// job sequences from 1.
func publishDead(t *testing.T, js jetstream.JetStream, from, n int) {
	t.Helper()
	rep := queue.NewReporter(js)
	for i := from; i < from+n; i++ {
		require.NoError(t, rep.Dead(context.Background(), queue.DeadLetter{Job: testJob(fmt.Sprintf("photos/dead-%d", i)),
			Error: "model down", Attempts: 5, FailedAt: time.Now(), JobSeq: uint64(i)}))
	}
}

func jobSeqs(letters []queue.DeadLetter) []uint64 {
	var out []uint64
	for _, d := range letters {
		out = append(out, d.JobSeq)
	}
	return out
}

// The dead-letter stream keeps a month and ten thousand dead letters unless
// told otherwise; past its retention the oldest are dropped, and a stream
// made with another retention takes the new one in place.
func TestDeadLetterRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := stacktest.JetStream(t)
	_, err := queue.EnsureStream(ctx, js, queue.StreamOptions{})
	require.NoError(t, err)
	dead, err := js.Stream(ctx, queue.DeadStream)
	require.NoError(t, err)
	cfg := dead.CachedInfo().Config
	require.Equal(t, 30*24*time.Hour, cfg.MaxAge)
	require.EqualValues(t, 10_000, cfg.MaxMsgs)

	publishDead(t, js, 1, 8)
	_, err = queue.EnsureStream(ctx, js, queue.StreamOptions{DeadLetterMaxAge: 48 * time.Hour, DeadLetterMaxCount: 5})
	require.NoError(t, err)
	letters, err := queue.DeadLetters(ctx, js)
	require.NoError(t, err)
	require.Equal(t, []uint64{4, 5, 6, 7, 8}, jobSeqs(letters), "the oldest went")
	info, err := dead.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, 48*time.Hour, info.Config.MaxAge)

	publishDead(t, js, 9, 2)
	letters, err = queue.DeadLetters(ctx, js)
	require.NoError(t, err)
	require.Equal(t, []uint64{6, 7, 8, 9, 10}, jobSeqs(letters), "a new one pushes the oldest out")
}

// Windows of dead letters page through all of them once each, newest
// first, and each costs about as many requests as it shows, however many
// dead letters were queued again (deleted) in between.
func TestReadDeadLettersWindows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	raw := startJetStream(t)
	publishDead(t, raw, 1, 400)
	// 11 to 390 are queued again, in batches of 100: 380 holes.
	var next uint64 = 11
	for batches := 0; next != 0; batches++ {
		require.Less(t, batches, 4)
		done, n, err := queue.RetryDeadLetters(ctx, raw, next, 390, 100)
		require.NoError(t, err)
		for _, r := range done {
			require.NoError(t, r.Err)
		}
		next = n
	}
	jobs, err := raw.Stream(ctx, queue.Stream)
	require.NoError(t, err)
	info, err := jobs.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 380, info.State.Msgs, "every one was queued again")

	js := &countingJS{JetStream: raw}
	var seen []uint64
	w := queue.DeadLetterWindow{Limit: 5}
	var pages []queue.DeadLetterPage
	for {
		js.gets.Store(0)
		p, err := queue.ReadDeadLetters(ctx, js, w)
		require.NoError(t, err)
		// 5 dead letters, and a few requests to step over 380 deleted ones.
		require.LessOrEqual(t, js.gets.Load(), int64(30), "window %+v", w)
		t.Logf("window %+v: %d requests", w, js.gets.Load())
		require.EqualValues(t, 20, p.Total)
		seen = append(seen, jobSeqs(p.Letters)...)
		pages = append(pages, p)
		if p.Older == 0 {
			break
		}
		w = queue.DeadLetterWindow{Before: p.Older, Limit: 5}
	}
	require.Equal(t, []uint64{400, 399, 398, 397, 396, 395, 394, 393, 392, 391, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, seen)
	require.Len(t, pages, 4, "the holes cost no page of their own")
	require.Zero(t, pages[0].Newer)

	// Back to the newest from the oldest.
	p := pages[len(pages)-1]
	seen = nil
	for p.Newer != 0 {
		js.gets.Store(0)
		p, err = queue.ReadDeadLetters(ctx, js, queue.DeadLetterWindow{After: p.Newer, Limit: 5})
		require.NoError(t, err)
		require.LessOrEqual(t, js.gets.Load(), int64(6))
		seen = append(seen, jobSeqs(p.Letters)...)
	}
	require.Equal(t, []uint64{10, 9, 8, 7, 6, 395, 394, 393, 392, 391, 400, 399, 398, 397, 396}, seen)
}

// A dead letter queued again tells the gallery its photo waits again: a
// queued event of its manifest, with its tag, follows the failure on the
// description stream.
func TestRetriedDeadLetterIsAnnouncedAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := startJetStream(t)
	_, err := feed.EnsureStream(ctx, js, 1)
	require.NoError(t, err)
	job := testJob("photos/flaky")
	job.Tag = "latest"
	require.NoError(t, queue.NewReporter(js).Dead(ctx, queue.DeadLetter{Job: job, Error: "model down", Attempts: 5, FailedAt: time.Now(), JobSeq: 7}))
	letters, err := queue.DeadLetters(ctx, js)
	require.NoError(t, err)
	require.Len(t, letters, 1)

	_, err = queue.RetryDead(ctx, js, letters[0].Seq)
	require.NoError(t, err)
	s, err := js.Stream(ctx, feed.Stream)
	require.NoError(t, err)
	m, err := s.GetLastMsgForSubject(ctx, feed.Subject(feed.Event{Kind: feed.Queued, Registry: job.Registry, Repository: job.Repository, Digest: job.Digest}))
	require.NoError(t, err)
	e, err := feed.Parse(m.Data)
	require.NoError(t, err)
	require.Equal(t, feed.Queued, e.Kind)
	require.Equal(t, []string{"latest"}, e.Tags)
}
