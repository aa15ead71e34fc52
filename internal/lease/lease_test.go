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

// open returns two lease holders on two connections, as two processes would
// have, and the first one's connection (closing it is that process dying).
func open(t *testing.T, ttl time.Duration) (*lease.Leases, *lease.Leases, *nats.Conn) {
	ns, err := embedded.StartNATS(embedded.NATSOptions{StoreDir: t.TempDir(), Listen: "off"})
	require.NoError(t, err)
	t.Cleanup(ns.Stop)
	var ls []*lease.Leases
	var conns []*nats.Conn
	for range 2 {
		nc, err := nats.Connect("", nats.InProcessServer(ns))
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		l, err := lease.Open(context.Background(), js, 1, ttl)
		require.NoError(t, err)
		ls = append(ls, l)
		conns = append(conns, nc)
	}
	return ls[0], ls[1], conns[0]
}

func TestOneHolderAtATime(t *testing.T) {
	t.Parallel()
	a, b, _ := open(t, 0)
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
			_, unlock, err := l.Lock(context.Background(), "photos/x@sha256:1")
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
	_, u1, err := a.Lock(context.Background(), "one")
	require.NoError(t, err)
	_, u2, err := b.Lock(context.Background(), "two")
	require.NoError(t, err)
	u1()
	u2()
}

// A lease held three times its time to live stays held (it is renewed)
// and a second Lock waits; unlock ends the holder's context and hands it on.
func TestLeaseIsRenewedWhileHeld(t *testing.T) {
	t.Parallel()
	const ttl = time.Second
	a, b, _ := open(t, ttl)
	held, unlock, err := a.Lock(context.Background(), "held")
	require.NoError(t, err)
	defer unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 3*ttl)
	defer cancel()
	_, _, err = b.Lock(ctx, "held")
	require.ErrorIs(t, err, context.DeadlineExceeded, "the second Lock waits while the first holder renews")
	require.NoError(t, held.Err(), "the holder still holds the lease")

	unlock()
	require.ErrorIs(t, held.Err(), context.Canceled)
	require.NotErrorIs(t, context.Cause(held), lease.ErrLost, "given back, not lost")
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, unlock2, err := b.Lock(ctx, "held")
	require.NoError(t, err, "given back, the lease is free at once")
	unlock2()
}

// A holder whose process died (its connection gone: no renewals) loses the
// lease after its time to live, and learns it from its context.
func TestLeaseOfADeadHolderExpires(t *testing.T) {
	t.Parallel()
	a, b, aConn := open(t, time.Second)
	held, unlock, err := a.Lock(context.Background(), "held")
	require.NoError(t, err)
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, _, err = b.Lock(ctx, "held")
	require.ErrorIs(t, err, context.DeadlineExceeded)

	aConn.Close()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, unlock2, err := b.Lock(ctx, "held")
	require.NoError(t, err, "the dead holder's lease expires")
	defer unlock2()
	select {
	case <-held.Done():
		require.ErrorIs(t, context.Cause(held), lease.ErrLost)
	case <-ctx.Done():
		t.Fatal("the holder that could not renew was not told it lost the lease")
	}
}

func TestLockGivesUpWithItsContext(t *testing.T) {
	t.Parallel()
	a, b, _ := open(t, 0)
	_, unlock, err := a.Lock(context.Background(), "held")
	require.NoError(t, err)
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, _, err = b.Lock(ctx, "held")
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// TryLock takes a free lease, names the holder of a held one at once (the
// holder's words kept through renewals), and takes it once the holder is
// gone: given back, or dead and expired.
func TestTryLockNamesTheHolder(t *testing.T) {
	t.Parallel()
	a, b, aConn := open(t, time.Second)
	ctx := context.Background()
	_, unlock, err := a.TryLock(ctx, "reprocess photos/x", "batch 1")
	require.NoError(t, err)
	time.Sleep(1500 * time.Millisecond) // renewed meanwhile
	_, _, err = b.TryLock(ctx, "reprocess photos/x", "batch 2")
	var held *lease.HeldError
	require.ErrorAs(t, err, &held)
	require.Equal(t, "batch 1", held.Holder)
	require.Equal(t, "reprocess photos/x", held.Name)
	_, u, err := b.TryLock(ctx, "reprocess photos/y", "batch 2")
	require.NoError(t, err, "another name is free")
	u()
	unlock()
	_, u, err = b.TryLock(ctx, "reprocess photos/x", "batch 2")
	require.NoError(t, err, "given back")
	u()

	_, _, err = a.TryLock(ctx, "reprocess photos/z", "batch 3")
	require.NoError(t, err)
	aConn.Close() // its process dies
	require.Eventually(t, func() bool {
		_, u, err := b.TryLock(ctx, "reprocess photos/z", "batch 4")
		if err == nil {
			u()
		}
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "the dead holder's lease expires")
}
