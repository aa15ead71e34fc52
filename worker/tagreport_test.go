package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/worker"
)

// TestReferrerEventReportsTheTagOnlyForItsLastPush: in referrer mode the
// photo is described by digest, so a job that runs after a later push to
// its tag was announced must not report the tag (search would give the
// tag back to the older photo); the later push's job reports it.
func TestReferrerEventReportsTheTagOnlyForItsLastPush(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Workers: -1})
	ctx := context.Background()
	older := s.Push(t, "photos/tagged", "latest", stacktest.File{Name: "a.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 40, 30, 931)})
	newer := s.Push(t, "photos/tagged", "latest", stacktest.File{Name: "b.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 40, 30, 932)})
	require.Eventually(t, func() bool {
		rec, known, err := s.Tags.Get(ctx, s.RegistryHost, "photos/tagged", "latest")
		return err == nil && known && rec.Digest == newer.Digest.String()
	}, 30*time.Second, 20*time.Millisecond, "the notifier records the later push")

	w := worker.New(s.Client, s.Describer, s.Memory, worker.Options{Mode: worker.ModeReferrer, Logger: stacktest.Logger(t)})
	job := func(d string) queue.Job {
		return queue.Job{Version: 1, Registry: s.RegistryHost, Repository: "photos/tagged", Digest: d, Tag: "latest", Source: "test"}
	}
	res, err := w.Process(ctx, job(older.Digest.String()))
	require.NoError(t, err)
	require.Len(t, res.Events, 1)
	require.Empty(t, res.Events[0].Tags, "a later push to the tag was announced: its job reports the tag")

	res, err = w.Process(ctx, job(newer.Digest.String()))
	require.NoError(t, err)
	require.Len(t, res.Events, 1)
	require.Equal(t, []string{"latest"}, res.Events[0].Tags)
}
