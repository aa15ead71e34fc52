package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/queue"
)

// TestFailedListAndRetry: `failed list` shows the newest --limit dead
// letters and says how many there are; the configured retention
// (REGSCRIBE_DEAD_LETTER_MAX_COUNT) applies to the stream as soon as a
// command ensures it; `failed retry --all` queues every one again.
func TestFailedListAndRetry(t *testing.T) {
	t.Parallel()
	ns, js := startQueue(t)
	ctx := context.Background()
	rep := queue.NewReporter(js)
	for i := 1; i <= 8; i++ {
		require.NoError(t, rep.Dead(ctx, queue.DeadLetter{Job: queue.Job{Version: queue.JobVersion, Registry: "127.0.0.1:5000",
			Repository: fmt.Sprintf("photos/f%d", i), Tag: "latest", Source: "distribution", Received: time.Now()},
			Error: "model down", Attempts: 5, FailedAt: time.Now(), JobSeq: uint64(i)}))
	}
	cfg := reprocessConfig(t, ns.ClientURL(), closedNATSURL(t))
	require.Equal(t, 720*time.Hour, cfg.DeadLetterMaxAge, "the default")
	require.EqualValues(t, 10_000, cfg.DeadLetterMaxCount, "the default")

	code, out, errOut := runCLI(t, cfg, "failed", "list", "--limit", "3")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "regscribe failed list: the newest 3 of 8 failed jobs (--limit 0 lists all)\n", errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4)
	require.Contains(t, lines[1], "photos/f6:latest")
	require.Contains(t, lines[3], "photos/f8:latest", "the newest last")

	cfg.DeadLetterMaxCount = 5
	code, out, errOut = runCLI(t, cfg, "failed", "list", "--limit", "0", "--format", "json")
	require.Equal(t, 0, code, errOut)
	require.Empty(t, errOut)
	var letters []queue.DeadLetter
	require.NoError(t, json.Unmarshal([]byte(out), &letters))
	require.Len(t, letters, 5, "the three oldest were dropped")
	require.Equal(t, "photos/f4", letters[0].Job.Repository)

	code, out, errOut = runCLI(t, cfg, "failed", "retry", "--all")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, 5, strings.Count(out, "queued again: "))
	code, out, _ = runCLI(t, cfg, "failed", "list")
	require.Equal(t, 0, code)
	require.Equal(t, "no failed jobs\n", out)
	st, err := queue.ReadStatus(ctx, js)
	require.NoError(t, err)
	require.EqualValues(t, 5, st.Messages)

	code, _, errOut = runCLI(t, cfg, "failed", "list", "--limit", "-1")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--limit")
}
