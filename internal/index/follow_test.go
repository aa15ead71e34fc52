package index_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/index"
)

// TestFollowSurvivesNATSRestart stops the NATS server under a following
// index and starts it again on the same store and port: the index keeps
// following and applies what was published after the restart.
func TestFollowSurvivesNATSRestart(t *testing.T) {
	store := t.TempDir()
	ns, err := embedded.StartNATS(embedded.NATSOptions{StoreDir: store, Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ns.Addr().(*net.TCPAddr).Port))
	t.Cleanup(func() { ns.Stop() })
	nc, err := nats.Connect("nats://"+addr, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	_, err = feed.EnsureStream(ctx, js, 1)
	require.NoError(t, err)
	e := &env{t: t, ctx: ctx, js: js, pub: feed.NewPublisher(js), log: &syncBuffer{}}
	e.publish(written("photos/a", "sha256:m1", "ollama/a", nil, day("2026-01-01"), photo("sha256:l1", "A windmill by a canal.")))
	ix, _ := e.open(t.TempDir(), index.Options{})
	e.wait(ix)
	require.Len(t, e.search(ix, "windmill"), 1)

	ns.Stop()
	require.Eventually(t, func() bool { return nc.Status() != nats.CONNECTED }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // Follow meets the server gone
	ns, err = embedded.StartNATS(embedded.NATSOptions{StoreDir: store, Listen: addr})
	require.NoError(t, err)

	// Published once the client is back: the index, still following with
	// the same consumer, catches up.
	require.Eventually(t, func() bool { return nc.Status() == nats.CONNECTED }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		_, err := e.pub.Publish(ctx, written("photos/a", "sha256:m2", "ollama/a", nil, day("2026-01-02"),
			photo("sha256:l2", "A windmill in the snow.")), "")
		return err == nil
	}, 20*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool {
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		defer wcancel()
		return ix.Wait(wctx, js) == nil
	}, 30*time.Second, 50*time.Millisecond)
	require.ElementsMatch(t, []string{"sha256:l1", "sha256:l2"}, layers(e.search(ix, "windmill")))
	n, err := ix.Count()
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
}
