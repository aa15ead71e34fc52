package lease_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/lease"
)

func open(t *testing.T, ttl time.Duration) (*lease.Leases, *lease.Leases) {
	ns, err := embedded.StartNATS(embedded.NATSOptions{StoreDir: t.TempDir(), Listen: "off"})
	require.NoError(t, err)
	t.Cleanup(ns.Stop)
	var ls []*lease.Leases
	for range 2 { // two connections, as two processes would have
		nc, err := nats.Connect("", nats.InProcessServer(ns))
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		l, err := lease.Open(context.Background(), js, 1, ttl)
		require.NoError(t, err)
		ls = append(ls, l)
	}
	return ls[0], ls[1]
}

func TestOneHolderAtATime(t *testing.T) {
	t.Parallel()
	a, b := open(t, 0)
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := a
			if i%2 == 1 {
				l = b
			}
			unlock, err := l.Lock(context.Background(), "photos/x@sha256:1")
			require.NoError(t, err)
			n := inside.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(2 * time.Millisecond)
			inside.Add(-1)
			unlock()
		}()
	}
	wg.Wait()
	require.Equal(t, int32(1), most.Load())

	// Other names do not wait for each other.
	u1, err := a.Lock(context.Background(), "one")
	require.NoError(t, err)
	u2, err := b.Lock(context.Background(), "two")
	require.NoError(t, err)
	u1()
	u2()
}

func TestLockGivesUpWithItsContextAndLeasesExpire(t *testing.T) {
	t.Parallel()
	a, b := open(t, time.Second)
	unlock, err := a.Lock(context.Background(), "held")
	require.NoError(t, err)
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = b.Lock(ctx, "held")
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// The holder "dies" without unlocking: the lease expires.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	unlock2, err := b.Lock(ctx, "held")
	require.NoError(t, err)
	unlock2()
}
