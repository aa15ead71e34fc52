package feed_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/stacktest"
)

func event(kind feed.Kind, by, text string) feed.Event {
	return feed.Event{Kind: kind, Registry: "127.0.0.1:5000", Repository: "photos/a", Digest: "sha256:aa", By: by,
		Photos: []feed.Photo{{Layer: "sha256:bb", Description: text, Model: by, Stored: "annotation"}}}
}

// subjects returns the subjects of the messages the stream holds, oldest first.
func subjects(t *testing.T, s jetstream.Stream) []string {
	t.Helper()
	ctx := context.Background()
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var out []string
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		_, err = feed.Parse(m.Data)
		require.NoError(t, err)
		out = append(out, m.Subject)
	}
	return out
}

// newStream is the description stream on a NATS server of the test's
// own, a publisher and a context that ends with the test.
func newStream(t *testing.T) (context.Context, jetstream.JetStream, jetstream.Stream, *feed.Publisher) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	js := stacktest.JetStream(t)
	s, err := feed.EnsureStream(ctx, js, 1)
	require.NoError(t, err)
	return ctx, js, s, feed.NewPublisher(js)
}

func TestStreamKeepsNewestPerDescriberAndTombstonesPurge(t *testing.T) {
	ctx, _, s, p := newStream(t)
	var err error

	_, err = p.Publish(ctx, event(feed.Written, "ollama/a", "a red bus"), feed.JobID(1, 0))
	require.NoError(t, err)
	_, err = p.Publish(ctx, event(feed.Written, "ollama/a", "a red bus"), feed.JobID(1, 0))
	require.NoError(t, err)
	require.Len(t, subjects(t, s), 1, "the same job's event published twice is stored once")

	_, err = p.Publish(ctx, event(feed.Written, "ollama/a", "a blue bus"), feed.JobID(2, 0))
	require.NoError(t, err)
	_, err = p.Publish(ctx, event(feed.Written, "person:ann", "a blue tram"), feed.JobID(3, 0))
	require.NoError(t, err)
	require.Len(t, subjects(t, s), 2, "newest per describer")

	seq, err := p.Publish(ctx, feed.Event{Kind: feed.Deleted, Registry: "127.0.0.1:5000", Repository: "photos/a", Digest: "sha256:aa"}, "")
	require.NoError(t, err)
	got := subjects(t, s)
	require.Len(t, got, 1, "the tombstone purges what it supersedes")
	require.True(t, feed.IsDeletedSubject(got[0]))
	require.NotZero(t, seq)
}

// TestTombstoneKeepsWhatACarriedPhotoNeeds: a manifest whose events hold
// annotation descriptions of an album's children, or of two photos or
// more, may have been replaced by one that lists only some of them and
// carries the others over; its tombstone leaves its events, or an index
// rebuilt from the stream loses the carried photos; so does a manifest
// whose events replace a described one (they supersede its descriptions).
// An image manifest described in one photo, or in referrers only, is
// purged.
func TestTombstoneKeepsWhatACarriedPhotoNeeds(t *testing.T) {
	ctx, _, s, p := newStream(t)
	of := func(digest, by string, photos ...feed.Photo) feed.Event {
		return feed.Event{Kind: feed.Written, Registry: "127.0.0.1:5000", Repository: "albums/trip", Digest: digest, By: by, Photos: photos}
	}
	ph := func(layer, stored string) feed.Photo {
		return feed.Photo{Layer: layer, Description: "a photo", Model: "m", Stored: stored}
	}
	child := func(p feed.Photo) feed.Photo {
		p.Manifest = "sha256:child-" + p.Layer
		return p
	}
	replacing := func(e feed.Event, replaced string) feed.Event {
		e.Replaces = replaced
		return e
	}
	for name, c := range map[string]struct {
		before, events []feed.Event // before: other manifests'
		kept           bool
	}{
		"two annotated photos":         {nil, []feed.Event{of("sha256:a1", "ollama/a", ph("sha256:la", "annotation"), ph("sha256:lb", "annotation"))}, true},
		"two describers, a photo each": {nil, []feed.Event{of("sha256:a2", "ollama/a", ph("sha256:la", "annotation")), of("sha256:a2", "person:ann", ph("sha256:lb", "annotation"))}, true},
		"one photo, two describers":    {nil, []feed.Event{of("sha256:a3", "ollama/a", ph("sha256:la", "annotation")), of("sha256:a3", "person:ann", ph("sha256:la", "annotation"))}, false},
		"replaces a described manifest": {[]feed.Event{of("sha256:b1", "ollama/a", ph("sha256:la", "annotation"))},
			[]feed.Event{replacing(of("sha256:b2", "person:ann", ph("sha256:la", "annotation")), "sha256:b1")}, true},
		"replaces a manifest never described": {nil, []feed.Event{replacing(of("sha256:b3", "ollama/a", ph("sha256:la", "annotation")), "sha256:b0")}, false},
		"album of one described child":        {nil, []feed.Event{of("sha256:a5", "ollama/a", child(ph("sha256:la", "annotation")))}, true},
		"album described in referrers":        {nil, []feed.Event{of("sha256:a4", "ollama/a", child(ph("sha256:la", "referrer sha256:r1")), child(ph("sha256:lb", "referrer sha256:r2")))}, false},
	} {
		for _, e := range append(c.before, c.events...) {
			_, err := p.Publish(ctx, e, "")
			require.NoError(t, err, name)
		}
		digest := c.events[0].Digest
		_, err := p.Publish(ctx, feed.Event{Kind: feed.Deleted, Registry: "127.0.0.1:5000", Repository: "albums/trip", Digest: digest}, "")
		require.NoError(t, err, name)
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(feed.SubjectPrefix+feed.ManifestKey("127.0.0.1:5000", "albums/trip", digest)+".*"))
		require.NoError(t, err, name)
		want := uint64(1) // the tombstone
		if c.kept {
			want += uint64(len(c.events))
		}
		var held uint64
		for _, n := range info.State.Subjects {
			held += n
		}
		require.Equal(t, want, held, name)
	}
}

func TestValidate(t *testing.T) {
	for name, e := range map[string]feed.Event{
		"no digest":                   {Version: 1, Kind: feed.Written, Registry: "r", Repository: "p", By: "m"},
		"unknown kind":                {Version: 1, Kind: "moved", Registry: "r", Repository: "p", Digest: "d", By: "m"},
		"no describer":                {Version: 1, Kind: feed.Found, Registry: "r", Repository: "p", Digest: "d"},
		"old version":                 {Version: 0, Kind: feed.Deleted, Registry: "r", Repository: "p", Digest: "d"},
		"refused, not saying why":     {Version: 1, Kind: feed.Refused, Registry: "r", Repository: "p", Digest: "d"},
		"untagged without its tag":    {Version: 1, Kind: feed.Untagged, Registry: "r", Repository: "p"},
		"untagged with a digest":      {Version: 1, Kind: feed.Untagged, Registry: "r", Repository: "p", Digest: "d", Tags: []string{"v1"}},
		"untagged with two tags":      {Version: 1, Kind: feed.Untagged, Registry: "r", Repository: "p", Tags: []string{"v1", "v2"}},
		"untagged without repository": {Version: 1, Kind: feed.Untagged, Registry: "r", Tags: []string{"v1"}},
	} {
		t.Run(name, func(t *testing.T) { require.Error(t, e.Validate()) })
	}
	require.NoError(t, feed.Event{Version: 1, Kind: feed.Deleted, Registry: "r", Repository: "p", Digest: "d"}.Validate())
	require.NoError(t, feed.Event{Version: 1, Kind: feed.Untagged, Registry: "r", Repository: "p", Tags: []string{"v1"}}.Validate())
	require.NoError(t, feed.Event{Version: 1, Kind: feed.Refused, Registry: "r", Repository: "p", Digest: "d", Reason: "not an image"}.Validate())
}

// TestRefusal: a refusal is kept per manifest, found by its digest,
// counted, and purged with the manifest's other events by a deletion.
func TestRefusal(t *testing.T) {
	ctx, js, _, p := newStream(t)
	var err error
	refused := func(repo, digest, reason string) feed.Event {
		return feed.Event{Kind: feed.Refused, Registry: "127.0.0.1:5000", Repository: repo, Digest: digest, Reason: reason}
	}
	_, err = p.Publish(ctx, event(feed.Written, "ollama/a", "a red bus"), "")
	require.NoError(t, err)
	for _, e := range []feed.Event{refused("photos/a", "sha256:cc", "not an image: first"), refused("photos/a", "sha256:cc", "not an image: again"),
		refused("photos/b", "sha256:cc", "not an image: elsewhere")} {
		_, err = p.Publish(ctx, e, "")
		require.NoError(t, err)
	}
	got, ok, err := feed.Refusal(ctx, js, "127.0.0.1:5000", "photos/a", "sha256:cc")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "not an image: again", got.Reason, "the newest refusal")
	_, ok, err = feed.Refusal(ctx, js, "127.0.0.1:5000", "photos/a", "sha256:aa")
	require.NoError(t, err)
	require.False(t, ok, "a described manifest has none")
	n, err := feed.Refusals(ctx, js)
	require.NoError(t, err)
	require.Equal(t, uint64(2), n, "one per manifest")

	_, err = p.Publish(ctx, feed.Event{Kind: feed.Deleted, Registry: "127.0.0.1:5000", Repository: "photos/a", Digest: "sha256:cc"}, "")
	require.NoError(t, err)
	_, ok, err = feed.Refusal(ctx, js, "127.0.0.1:5000", "photos/a", "sha256:cc")
	require.NoError(t, err)
	require.False(t, ok, "gone with the manifest")
	n, err = feed.Refusals(ctx, js)
	require.NoError(t, err)
	require.Equal(t, uint64(1), n)
}

func TestFillNeverBuriesANewerDescription(t *testing.T) {
	ctx, _, s, p := newStream(t)
	var err error
	at := func(e feed.Event, created time.Time) feed.Event {
		e.Photos[0].Created = created
		return e
	}
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

	stored, err := p.Fill(ctx, at(event(feed.Found, "ollama/a", "a red bus"), t0), "")
	require.NoError(t, err)
	require.True(t, stored, "nothing on the stream yet")

	_, err = p.Publish(ctx, at(event(feed.Written, "ollama/a", "a blue bus"), t0.Add(time.Hour)), feed.JobID(7, 0))
	require.NoError(t, err)
	stored, err = p.Fill(ctx, at(event(feed.Found, "ollama/a", "a red bus"), t0), "")
	require.NoError(t, err)
	require.False(t, stored, "an older found description must not replace a newer written one")

	stored, err = p.Fill(ctx, at(event(feed.Found, "ollama/a", "a blue bus"), t0.Add(time.Hour)), "")
	require.NoError(t, err)
	require.False(t, stored, "the same description again adds nothing")

	stored, err = p.Fill(ctx, at(event(feed.Found, "ollama/a", "a green bus"), t0.Add(2*time.Hour)), "")
	require.NoError(t, err)
	require.True(t, stored, "a newer description found in the registry is stored")

	info, err := s.Info(ctx)
	require.NoError(t, err)
	m, err := s.GetMsg(ctx, info.State.LastSeq)
	require.NoError(t, err)
	e, err := feed.Parse(m.Data)
	require.NoError(t, err)
	require.Equal(t, "a green bus", e.Photos[0].Description)
}

// TestDescriptionSupersedesARefusal: a manifest refused, then described
// after all (by rules that read more: in referrer mode the same manifest,
// in annotation mode a re-pushed one that replaces it, or found by a
// backfill), has its refusal purged, so `regscribe status` counts what the
// index shows; a refusal stored after a description stays.
func TestDescriptionSupersedesARefusal(t *testing.T) {
	ctx, js, _, p := newStream(t)
	refused := func(digest string) feed.Event {
		return feed.Event{Kind: feed.Refused, Registry: "127.0.0.1:5000", Repository: "photos/a", Digest: digest, Reason: "not an image: JPEG XL"}
	}
	described := func(kind feed.Kind, digest, replaces string) feed.Event {
		e := event(kind, "ollama/a", "the moon")
		e.Digest, e.Replaces = digest, replaces
		return e
	}
	has := func(digest string) bool {
		t.Helper()
		_, ok, err := feed.Refusal(ctx, js, "127.0.0.1:5000", "photos/a", digest)
		require.NoError(t, err)
		return ok
	}
	for _, d := range []string{"sha256:r1", "sha256:r2", "sha256:r3", "sha256:r4"} {
		_, err := p.Publish(ctx, refused(d), "")
		require.NoError(t, err)
	}
	_, err := p.Publish(ctx, described(feed.Written, "sha256:r1", ""), "")
	require.NoError(t, err)
	_, err = p.Publish(ctx, described(feed.Written, "sha256:n2", "sha256:r2"), "")
	require.NoError(t, err)
	stored, err := p.Fill(ctx, described(feed.Found, "sha256:r3", ""), "")
	require.NoError(t, err)
	require.True(t, stored)
	require.False(t, has("sha256:r1"), "described in referrer mode")
	require.False(t, has("sha256:r2"), "replaced by its annotated copy")
	require.False(t, has("sha256:r3"), "found described by a backfill")
	require.True(t, has("sha256:r4"), "never described")
	n, err := feed.Refusals(ctx, js)
	require.NoError(t, err)
	require.Equal(t, uint64(1), n)

	_, err = p.Publish(ctx, refused("sha256:r1"), "")
	require.NoError(t, err)
	require.True(t, has("sha256:r1"), "a refusal newer than the description stays")
}

// TestWherePushesAreOnTheirWay: an announcement (queued), a failure and
// a skip are kept once per manifest, whatever comes after them (an index
// orders them), and never touch the manifest's descriptions or refusal.
func TestWherePushesAreOnTheirWay(t *testing.T) {
	ctx, _, s, p := newStream(t)
	publish := func(kind feed.Kind, digest string) {
		t.Helper()
		e := feed.Event{Kind: kind, Registry: "127.0.0.1:5000", Repository: "photos/a", Digest: digest, Reason: "why"}
		if kind == feed.Written {
			e = event(kind, "ollama/a", "the moon")
			e.Digest = digest
		}
		_, err := p.Publish(ctx, e, "")
		require.NoError(t, err)
	}
	kept := func() []string {
		var out []string
		for _, subject := range subjects(t, s) {
			out = append(out, subject[strings.LastIndex(subject, ".")+1:])
		}
		return out
	}
	described := feed.Subject(event(feed.Written, "ollama/a", ""))
	described = described[strings.LastIndex(described, ".")+1:]
	publish(feed.Queued, "sha256:q1")
	publish(feed.Queued, "sha256:q1") // announced again: kept once
	publish(feed.Failed, "sha256:q1")
	publish(feed.Written, "sha256:q1")
	publish(feed.Queued, "sha256:q2")
	publish(feed.Refused, "sha256:q2")
	publish(feed.Queued, "sha256:q3")
	publish(feed.Skipped, "sha256:q3")
	require.Equal(t, []string{"queued", "failed", described, "queued", "refused", "queued", "skipped"}, kept())
}
