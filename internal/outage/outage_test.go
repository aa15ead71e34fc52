package outage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/outage"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// TestBoard: an outage reported keeps its start however often it is
// reported again, is read by a command and followed by a web process, and
// is gone from both once the model is back.
func TestBoard(t *testing.T) {
	t.Parallel()
	js := stacktest.JetStream(t)
	ctx := context.Background()
	none, err := outage.Read(ctx, js)
	require.NoError(t, err)
	require.Empty(t, none, "no bucket yet: no outage")
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	f := outage.Follow(ctx, js, stacktest.Logger(t))

	b, err := outage.Open(ctx, js, 1)
	require.NoError(t, err)
	require.NoError(t, b.Down(ctx, "ollama/a", errors.New("connection refused")))
	first, err := outage.Read(ctx, js)
	require.NoError(t, err)
	require.Len(t, first, 1)
	time.Sleep(10 * time.Millisecond)
	require.NoError(t, b.Down(ctx, "ollama/a", errors.New("still refused")))
	again, err := outage.Read(ctx, js)
	require.NoError(t, err)
	require.Len(t, again, 1)
	require.Equal(t, first[0].Since, again[0].Since, "an outage keeps its start")
	require.Equal(t, "still refused", again[0].Cause, "and says its last cause")
	require.True(t, again[0].Seen.After(first[0].Seen))
	require.Regexp(t, `^model ollama/a unreachable since \d\d:\d\d UTC, \d+ \w+ \(for .+\); 3 jobs wait: still refused$`, again[0].Line(3))
	require.Eventually(t, func() bool {
		c := f.Current()
		return len(c) == 1 && c[0].Cause == "still refused"
	}, 10*time.Second, 10*time.Millisecond, "the follower never saw the outage")

	require.NoError(t, b.Up(ctx, "ollama/a"))
	over, err := outage.Read(ctx, js)
	require.NoError(t, err)
	require.Empty(t, over)
	require.Eventually(t, func() bool { return len(f.Current()) == 0 }, 10*time.Second, 10*time.Millisecond, "the follower kept the outage")
}
