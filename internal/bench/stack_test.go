package bench

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/lease"
	"github.com/regscribe/regscribe/internal/queue"
)

// TestStackRunsWhatUpRuns checks that the benchmark's stack settles jobs
// through the parts `regscribe up` gives its workers: each photo's
// description event is on the description stream and in the search index
// that follows it, and the ledger and lease buckets are there.
func TestStackRunsWhatUpRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	ctx := context.Background()
	model := newFakeModel(time.Millisecond, 2)
	model.Start()
	defer model.Close()
	s, err := startStack(ctx, stackOptions{modelURL: model.URL, workers: 2, storage: InMemory})
	require.NoError(t, err)
	defer s.close()
	a, err := newAlbum(OneMP)
	require.NoError(t, err)
	p, err := newPusher(s.registry.Addr(), "photos/stack", 2)
	require.NoError(t, err)
	defer p.close()
	s.startWorkers()
	_, err = p.pushAll(ctx, a.photos(OneMP, 0, 3), 0, 2)
	require.NoError(t, err)
	jobs, err := s.results.settled(ctx, 3, time.Minute)
	require.NoError(t, err)
	require.Equal(t, 3, jobs.Described, s.results.reason)

	descriptions, err := s.js.Stream(ctx, feed.Stream)
	require.NoError(t, err, "the workers publish description events")
	info, err := descriptions.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 6, info.State.Msgs, "one description event per photo, and the announcement of its push")
	require.Eventually(t, func() bool {
		n, err := s.index.Count()
		return err == nil && n >= 3
	}, time.Minute, 20*time.Millisecond, "the search index follows the description stream")
	for _, bucket := range []string{queue.LedgerBucket, lease.Bucket} {
		_, err := s.js.KeyValue(ctx, bucket)
		require.NoError(t, err, bucket)
	}
	tags, err := s.js.KeyValue(ctx, queue.TagBucket)
	require.NoError(t, err)
	keys, err := tags.Keys(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, keys, "the notifier records each announced tag, as in up")
}
