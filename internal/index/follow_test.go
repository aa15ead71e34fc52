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
	e, srv := restartableEnv(t)
	ctx, js := e.ctx, e.js
	e.publish(written("photos/a", "sha256:m1", "ollama/a", nil, day("2026-01-01"), photo("sha256:l1", "A windmill by a canal.")))
	ix, _ := e.open(t.TempDir(), index.Options{})
	e.wait(ix)
	require.Len(t, e.search(ix, "windmill"), 1)

	srv.stop()
	time.Sleep(300 * time.Millisecond) // Follow meets the server gone
	srv.start()

	// Published once the client is back: the index, still following with
	// the same consumer, catches up.
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

// TestDeliveriesLostInANATSRestartAreReadAgain: events the consumer
// delivered (here fetched by someone else, as a fetch lost on the way)
// and never saw acknowledged, then a NATS restart: whatever the consumer
// remembers of them, an index opening it reads them, and does not count
// them as applied.
func TestDeliveriesLostInANATSRestartAreReadAgain(t *testing.T) {
	e, srv := restartableEnv(t)
	ctx, js := e.ctx, e.js
	dir := t.TempDir()
	ix, stop := e.open(dir, index.Options{})
	e.publish(written("photos/a", "sha256:m1", "ollama/a", nil, day("2026-01-01"), photo("sha256:l1", "A windmill by a canal.")))
	e.wait(ix)
	stop()

	e.publish(written("photos/a", "sha256:m2", "ollama/a", nil, day("2026-01-02"), photo("sha256:l2", "A lighthouse on a cliff.")))
	e.publish(written("photos/a", "sha256:m3", "ollama/a", nil, day("2026-01-03"), photo("sha256:l3", "A barge on a river.")))
	cons, err := js.Consumer(ctx, feed.Stream, ix.Consumer())
	require.NoError(t, err)
	lost, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	n := 0
	for range lost.Messages() {
		n++
	}
	require.Equal(t, 2, n, "both delivered, neither acknowledged")

	srv.stop()
	srv.start()

	again, _ := e.open(dir, index.Options{})
	require.Eventually(t, func() bool {
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		defer wcancel()
		return again.Wait(wctx, js) == nil
	}, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, []string{"sha256:l2"}, layers(e.search(again, "lighthouse")), "a delivery lost is read again, not counted as applied")
	require.Equal(t, []string{"sha256:l3"}, layers(e.search(again, "barge")))
}

// natsServer is a NATS server a test stops and starts again on the same
// store and port, under a client that reconnects.
type natsServer struct {
	t           *testing.T
	ns          *embedded.NATS
	nc          *nats.Conn
	store, addr string
}

// restartableEnv is an env on a NATS server of its own that the test can
// stop and start again.
func restartableEnv(t *testing.T) (*env, *natsServer) {
	t.Helper()
	n := &natsServer{t: t, store: t.TempDir()}
	var err error
	n.ns, err = embedded.StartNATS(embedded.NATSOptions{StoreDir: n.store, Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	n.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(n.ns.Addr().(*net.TCPAddr).Port))
	t.Cleanup(func() { n.ns.Stop() })
	n.nc, err = nats.Connect("nats://"+n.addr, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(n.nc.Close)
	js, err := jetstream.New(n.nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	_, err = feed.EnsureStream(ctx, js, 1)
	require.NoError(t, err)
	return &env{t: t, ctx: ctx, js: js, pub: feed.NewPublisher(js), log: &syncBuffer{}}, n
}

// stop stops the server and waits until the client knows.
func (n *natsServer) stop() {
	n.t.Helper()
	n.ns.Stop()
	require.Eventually(n.t, func() bool { return n.nc.Status() != nats.CONNECTED }, 10*time.Second, 10*time.Millisecond)
}

// start starts it again and waits until the client is back.
func (n *natsServer) start() {
	n.t.Helper()
	var err error
	n.ns, err = embedded.StartNATS(embedded.NATSOptions{StoreDir: n.store, Listen: n.addr})
	require.NoError(n.t, err)
	require.Eventually(n.t, func() bool { return n.nc.Status() == nats.CONNECTED }, 10*time.Second, 10*time.Millisecond)
}
