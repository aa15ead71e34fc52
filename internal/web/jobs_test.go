package web_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// deadLetters waits until there are n dead letters and returns them.
func deadLetters(t *testing.T, g *gallery, n int) []queue.DeadLetter {
	t.Helper()
	var dead []queue.DeadLetter
	require.Eventually(t, func() bool {
		var err error
		dead, err = queue.DeadLetters(context.Background(), g.JS)
		return err == nil && len(dead) == n
	}, 30*time.Second, 50*time.Millisecond, "want %d dead letter(s)", n)
	return dead
}

// TestJobsRetryAndReprocess: a photo that fails shows on the jobs page with
// its reason and can be retried; a reprocess started there is watched live
// to its end.
func TestJobsRetryAndReprocess(t *testing.T) {
	g := startGallery(t, "")
	b := newBrowser(t, g.URL, 1280, 900)
	// A photo the model is slow to describe is in flight meanwhile.
	hold := make(chan struct{})
	g.mu.Lock()
	g.hold = hold
	g.mu.Unlock()
	slow := g.Push(t, "photos/slow", "latest", stacktest.File{Name: "slow.jpg", MediaType: "image/jpeg", Data: scenes[5].picture(t, 640, 480, 7)})
	require.Eventually(t, func() bool {
		b.open("/jobs")
		return slices.ContainsFunc(b.texts("#inflight .ref"), func(s string) bool { return strings.Contains(s, slow.Digest.String()) })
	}, 20*time.Second, 200*time.Millisecond, "the job never showed in flight")
	b.shot("in-flight")
	g.mu.Lock()
	g.hold = nil
	g.mu.Unlock()
	close(hold)
	g.WaitIdle(t)

	g.pushScene(t, "photos/archive", "dune", scenes[2], 1)
	g.pushScene(t, "photos/archive", "flower", scenes[3], 2)
	// An HTML page pushed as a PNG: no model can describe it. The registry
	// announces the push twice (by digest, and by tag): two jobs, two dead letters.
	desc := g.Push(t, "photos/broken", "latest", stacktest.File{Name: "x.png", MediaType: "image/png", Data: []byte("<!doctype html><script>alert(1)</script>")})
	deadLetters(t, g, 2)
	g.WaitIdle(t)

	// Two jobs of one photo (the push announced by digest and by tag) are
	// one failed photo, on the front page and on the jobs page's counts.
	require.Eventually(t, func() bool {
		b.open("/")
		return slices.Equal(b.attrs(`.tile:has(a[href*="/photos/broken@"])`, "data-state"), []string{"failed"})
	}, 20*time.Second, 200*time.Millisecond, "the failed photo never showed as failed")
	require.Contains(t, b.texts(".side-repo"), "photos/broken 1")
	b.shot("front-page-with-failure")
	b.open("/jobs")
	require.Equal(t, "1", b.text(`#repositories tr:has(a[href$="/photos/broken"]) td:nth-child(4)`))

	b.open("/jobs")
	require.Equal(t, "2", b.text(".stats li:nth-child(4) .n"))
	failed := b.texts("#failed .job .ref")
	require.Len(t, failed, 2)
	require.Contains(t, failed, g.RegistryHost+"/photos/broken:latest@"+desc.Digest.String())
	require.Contains(t, b.text("#failed .job .reason"), "unrecognised format")
	b.shot("failed")

	// Retry the newest: its dead letter goes, the job runs again (and fails
	// again, as a new dead letter).
	before := deadLetters(t, g, 2)
	b.follow(`#failed .job button`)
	require.Equal(t, "/jobs?flash=retried", b.location())
	require.Equal(t, "The failed job is queued again.", b.text(".flash"))
	after := deadLetters(t, g, 2)
	require.Equal(t, before[0].Seq, after[0].Seq, "the oldest was not retried")
	require.Greater(t, after[1].Seq, before[1].Seq, "the retried job failed anew")
	require.Equal(t, before[1].Job, after[1].Job)

	// Retry all.
	b.follow(`#failed .section-head button`)
	require.Equal(t, "Every failed job is queued again.", b.text(".flash"))
	again := deadLetters(t, g, 2)
	require.Greater(t, again[0].Seq, after[1].Seq, "both jobs ran again")
	g.WaitIdle(t)

	// Reprocess photos/archive, every photo again, and watch it end.
	b.open("/jobs")
	b.do(
		chromedp.SetValue(chromedp.ID("target"), g.RegistryHost+"/photos/archive"),
		chromedp.Click(chromedp.CSS(`input[name="force"]`)),
	)
	b.shot("reprocess-form")
	b.follow(`form[action="/jobs/reprocess"] button`)
	require.True(t, strings.HasPrefix(b.location(), "/jobs/runs/"), b.location())
	// data-phase is set by the page's script from the event stream only.
	get(b, chromedp.Poll[chromedp.Void](`document.getElementById("run").dataset.phase === "done"`, chromedp.WithPollingTimeout(60*time.Second)))
	count := func(key string) int {
		n, err := strconv.Atoi(b.text(`[data-count="` + key + `"]`))
		require.NoError(t, err)
		return n
	}
	require.Equal(t, 2, count("manifests"))
	require.Equal(t, 2, count("queued"))
	require.Equal(t, 2, count("described"))
	require.Equal(t, 0, count("failed"))
	require.Equal(t, 0, count("pending"))
	require.Equal(t, "2 of 2 photos done", b.text("#progress-text"))
	b.shot("reprocess-done")

	b.open("/jobs")
	require.Contains(t, b.text(".runs"), "photos/archive")
	b.shot("jobs-after")
}
