package reprocess_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/reprocess"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// BenchmarkPlanAndQueue2000 measures one `regscribe reprocess --missing`
// without waiting, on a repository of 2,000 tagged photos that have no
// description: list the tags (two pages), fetch 2,000 manifests, look for
// 2,000 description referrers (Distribution: the fallback tag), read the dead
// letters and publish 2,000 jobs. Everything runs on loopback in process.
func BenchmarkPlanAndQueue2000(b *testing.B) {
	const n = 2000
	s := stacktest.Start(b, stacktest.Options{Workers: -1})
	q := startQuietRegistry(b)
	arts := make([]artifact, n)
	for i := range arts {
		// Tiny layers typed image/jpeg: planning never decodes a photo.
		arts[i] = artifact{repo: "photos/bench", tags: []string{fmt.Sprintf("t%04d", i)}, files: []stacktest.File{{
			Name: "p.jpg", MediaType: "image/jpeg", Data: fmt.Appendf(nil, "photo %d", i),
		}}}
	}
	q.push(b, arts)

	ctx := context.Background()
	// Each run publishes fresh jobs: a short duplicate window, and an empty
	// queue before each run (no worker takes the jobs).
	jobs, err := s.JS.Stream(ctx, queue.Stream)
	require.NoError(b, err)
	info, err := jobs.Info(ctx)
	require.NoError(b, err)
	cfg := info.Config
	cfg.Duplicates = 100 * time.Millisecond
	_, err = s.JS.UpdateStream(ctx, cfg)
	require.NoError(b, err)
	model := s.Describer.Model()

	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		require.NoError(b, jobs.Purge(ctx))
		time.Sleep(150 * time.Millisecond)
		b.StartTimer()

		items, err := reprocess.Plan(ctx, q.Client, reprocess.PlanOptions{Registry: q.Host, Repository: "photos/bench", Model: model})
		require.NoError(b, err)
		dead, err := queue.DeadLetters(ctx, s.JS)
		require.NoError(b, err)
		reprocess.ExcludeFailed(items, dead)
		require.NoError(b, reprocess.Run(ctx, s.JS, items, reprocess.RunOptions{Batch: reprocess.NewBatch()}))

		b.StopTimer()
		c := reprocess.Summarize(items)
		require.Equal(b, n, c.Queued, "%+v", c)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/run")
}
