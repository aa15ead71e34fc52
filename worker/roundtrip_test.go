package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// TestDescribingReadsTheMemoryOncePerPhoto counts the reads of the
// description memory (JetStream direct gets of its bucket) a job makes: one
// per photo, whether the model is asked after it or the memory answers.
func TestDescribingReadsTheMemoryOncePerPhoto(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Workers: -1})
	// A synchronous subscription holds every request the server routed
	// before a flush's answer.
	sub, err := s.Conn.SubscribeSync("$JS.API.DIRECT.GET.KV_" + queue.DescriptionBucket + ".>")
	require.NoError(t, err)
	require.NoError(t, sub.SetPendingLimits(-1, -1))
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, s.Conn.Flush())
	file := stacktest.File{Name: "gull.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 160, 120, 11)}
	wk := newWorker(t, s)
	ctx := context.Background()

	for _, c := range []struct {
		repository string
		modelCalls int
	}{
		{"photos/gulls", 1},    // new: read, then the model
		{"photos/seabirds", 0}, // the same photo elsewhere: the memory answers
	} {
		pushed := s.Push(t, c.repository, "", file)
		res, err := wk.Process(ctx, queue.Job{Version: 1, Registry: s.RegistryHost, Repository: c.repository, Digest: pushed.Digest.String(), Source: "test"})
		require.NoError(t, err)
		require.Equal(t, c.modelCalls, res.ModelCalls, c.repository)
		require.NoError(t, s.Conn.Flush())
		reads, _, err := sub.Pending()
		require.NoError(t, err)
		require.Equal(t, 1, reads, "memory reads for %s", c.repository)
		for range reads {
			_, err := sub.NextMsg(time.Second)
			require.NoError(t, err)
		}
	}
}
