package queue_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// The tag record keeps the push last announced, in the announcements' own
// order, and tells regscribe's own tag moves from pushes.
func TestTagRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tags, err := queue.OpenTags(ctx, stacktest.JetStream(t), 1)
	require.NoError(t, err)
	const reg, repo, tag = "Registry.Example:5000", "photos/x", "latest"
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	announce := func(digest, event string, at time.Time) (own bool) {
		t.Helper()
		own, err := tags.Announce(ctx, queue.TagAnnouncement{Registry: reg, Repository: repo, Tag: tag, Digest: digest, Event: event, At: at})
		require.NoError(t, err)
		return own
	}
	get := func() queue.TagRecord {
		t.Helper()
		r, ok, err := tags.Get(ctx, "registry.example:5000", repo, tag)
		require.NoError(t, err)
		require.True(t, ok)
		return r
	}
	_, ok, err := tags.Get(ctx, reg, repo, "other")
	require.NoError(t, err)
	require.False(t, ok)

	require.False(t, announce("sha256:a", "id:1", t0), "a push")
	require.Equal(t, "sha256:a", get().Digest)

	// regscribe moves the tag to A's description: recorded before the move,
	// and the move's own announcement is no push.
	r, err := tags.Move(ctx, reg, repo, tag, "sha256:a", "", "sha256:a2")
	require.NoError(t, err)
	require.Equal(t, "sha256:a2", r.Described)
	require.False(t, announce("sha256:b", "id:3", t0.Add(2*time.Second)))
	require.True(t, announce("sha256:a2", "id:2", t0.Add(time.Second)), "the move's announcement, late, is regscribe's own")
	require.True(t, announce("sha256:a2", "id:2", t0.Add(time.Second)), "and so is its redelivery")
	r = get()
	require.Equal(t, "sha256:b", r.Digest, "a late announcement of regscribe's own move is no push")
	require.Empty(t, r.Described)
	require.True(t, r.Moved("sha256:a2"))

	// A redelivered older event changes nothing; a redelivery of the same
	// one neither.
	announce("sha256:a", "id:1", t0)
	announce("sha256:b", "id:3", t0.Add(2*time.Second))
	require.Equal(t, "sha256:b", get().Digest)

	// A person pushing regscribe's manifest back is a push (another event).
	require.False(t, announce("sha256:a2", "id:4", t0.Add(3*time.Second)))
	require.Equal(t, "sha256:a2", get().Digest)

	// A deletion leaves a record naming no push, so nobody waits for one.
	_, err = tags.Announce(ctx, queue.TagAnnouncement{Registry: reg, Repository: repo, Tag: tag, Event: "id:5", At: t0.Add(4 * time.Second), Deleted: true})
	require.NoError(t, err)
	require.Empty(t, get().Digest)

	// The same manifest pushed again while it was described: the move for
	// the first push leaves the second undescribed (the registry may link
	// the tag to it after the move), the move for the second describes it.
	require.False(t, announce("sha256:c", "id:6", t0.Add(5*time.Second)))
	require.False(t, announce("sha256:c", "id:7", t0.Add(6*time.Second)), "a person pushing it again")
	r, err = tags.Move(ctx, reg, repo, tag, "sha256:c", "id:6", "sha256:c2")
	require.NoError(t, err)
	require.Empty(t, r.Described, "the move was for the first push")
	r, err = tags.Move(ctx, reg, repo, tag, "sha256:c", "id:7", "sha256:c2")
	require.NoError(t, err)
	require.Equal(t, "sha256:c2", r.Described)

	// Concurrent writers all land (compare-and-swap on the revision).
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := tags.Move(ctx, reg, repo, tag, "sha256:x", "", "sha256:m"+string(rune('0'+i)))
			require.NoError(t, err)
		}()
	}
	wg.Wait()
	r = get()
	for i := range 6 {
		require.True(t, r.Moved("sha256:m"+string(rune('0'+i))), "move %d", i)
	}
	require.LessOrEqual(t, len(r.Moves), 8)
}

// Tags writes on the revision it holds: one round trip per announcement
// and move on the notifier's path, where the registry waits for each
// event in turn; a record written by another process in between is read
// again, so nothing written elsewhere is lost or decided on stale.
func TestTagRecordWritesOnTheRevisionItHolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns, err := embedded.StartNATS(embedded.NATSOptions{StoreDir: t.TempDir(), Listen: "off"})
	require.NoError(t, err)
	t.Cleanup(ns.Stop)
	open := func() (*queue.Tags, *nats.Conn) {
		nc, err := nats.Connect("", nats.InProcessServer(ns))
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		tags, err := queue.OpenTags(ctx, js, 1)
		require.NoError(t, err)
		return tags, nc
	}
	notifier, nc := open() // the notifier's process
	worker, _ := open()    // a worker's, elsewhere
	const reg, repo = "registry.example:5000", "photos/y"
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sent := func(f func()) uint64 {
		t.Helper()
		require.NoError(t, nc.Flush())
		before := nc.Stats().OutMsgs
		f()
		return nc.Stats().OutMsgs - before
	}
	announce := func(tag, digest, event string, at time.Time) (own bool) {
		t.Helper()
		own, err := notifier.Announce(ctx, queue.TagAnnouncement{Registry: reg, Repository: repo, Tag: tag, Digest: digest, Event: event, At: at})
		require.NoError(t, err)
		return own
	}

	require.EqualValues(t, 1, sent(func() { announce("new", "sha256:a", "id:1", t0) }), "a tag never seen: created")
	require.EqualValues(t, 1, sent(func() { announce("new", "sha256:b", "id:2", t0.Add(time.Second)) }), "pushed again: written on the revision held")

	// A worker elsewhere moves the tag; the notifier learns of it by its
	// watch, or by a write that finds its revision stale.
	_, err = worker.Move(ctx, reg, repo, "new", "sha256:b", "", "sha256:b2")
	require.NoError(t, err)
	require.True(t, announce("new", "sha256:b2", "id:3", t0.Add(2*time.Second)), "the move's announcement is regscribe's own")
	r, _, err := notifier.Get(ctx, reg, repo, "new")
	require.NoError(t, err)
	require.Equal(t, "sha256:b", r.Digest)
	require.Equal(t, "sha256:b2", r.Described, "the worker's write is kept")

	// Many writers on both sides, each deciding on a record held: all land.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := worker.Move(ctx, reg, repo, "busy", "sha256:x", "", fmt.Sprintf("sha256:m%d", i))
			require.NoError(t, err)
		}()
		go func() {
			defer wg.Done()
			_, err := notifier.Announce(ctx, queue.TagAnnouncement{Registry: reg, Repository: repo, Tag: "busy",
				Digest: fmt.Sprintf("sha256:p%d", i), Event: fmt.Sprintf("id:p%d", i), At: t0.Add(time.Duration(i) * time.Second)})
			require.NoError(t, err)
		}()
	}
	wg.Wait()
	r, _, err = worker.Get(ctx, reg, repo, "busy")
	require.NoError(t, err)
	require.Equal(t, "sha256:p7", r.Digest, "the latest announcement wins, whatever the order of writes")
	require.Len(t, r.Moves, 8)

	// A record the watch brought is written on at once too.
	_, err = worker.Move(ctx, reg, repo, "seen", "", "", "sha256:s2")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return sent(func() { announce("seen", "sha256:s2", "id:s", t0) }) == 1
	}, 5*time.Second, 10*time.Millisecond, "the watch keeps the notifier's record current")
}
