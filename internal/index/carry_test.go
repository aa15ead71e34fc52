package index_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/index"
)

// Tests of annotation-mode write-backs that change some photos of a
// manifest only: the photos the event does not list keep their
// descriptions, carried over to the re-pushed manifest.

const album = "albums/trip"

// publishAll publishes events in order.
func (e *env) publishAll(events ...feed.Event) {
	e.t.Helper()
	for _, ev := range events {
		e.publish(ev)
	}
}

// publishFoundLate publishes a correction, then the description it
// replaced as reprocess finds it in the registry later: without Replaces,
// a month on.
func (e *env) publishFoundLate(correction, replaced feed.Event) {
	e.t.Helper()
	e.publish(correction)
	replaced.Kind, replaced.Replaces, replaced.At = feed.Found, "", day("2026-02-01")
	e.publish(replaced)
}

// count is how many current entries ix holds.
func (e *env) count(ix *index.Index) uint64 {
	e.t.Helper()
	n, err := ix.Count()
	require.NoError(e.t, err)
	return n
}

// inAlbum is p as a photo of the album's child manifest child.
func inAlbum(child string, p feed.Photo) feed.Photo {
	p.Manifest = child
	return p
}

// albumCorrected is an album of two children described by a model
// (sha256:i1, re-pushed from sha256:i0), then a person's correction of the
// first child's photo (sha256:i2, pushing that child again as sha256:c2a;
// the second child, sha256:c1b, is unchanged).
func albumCorrected() []feed.Event {
	described := written(album, "sha256:i1", "ollama/a", []string{"2026"}, day("2026-01-01"),
		inAlbum("sha256:c1a", photo("sha256:la", "A red kite over a beach.", "kite")),
		inAlbum("sha256:c1b", photo("sha256:lb", "A lighthouse at dusk.", "lighthouse")))
	described.Replaces = "sha256:i0"
	corrected := written(album, "sha256:i2", "person:ann", []string{"2026"}, day("2026-01-02"),
		inAlbum("sha256:c2a", photo("sha256:la", "Our green kite above Brighton beach.", "kite")))
	corrected.Replaces = "sha256:i1"
	events := []feed.Event{described, corrected}
	for i := range events {
		events[i].Version = feed.Version
	}
	return events
}

// page is what Photo answers for digest in repo, as lines: describer,
// description, the manifest carrying it (and its child), and its tags if
// current, else what replaced it when.
func page(t *testing.T, ix *index.Index, repo, digest string) []string {
	t.Helper()
	entries, err := ix.Photo(t.Context(), reg, repo, digest)
	require.NoError(t, err)
	out := []string{}
	for _, e := range entries {
		line := e.Model + ": " + e.Description + " @" + e.Digest
		if e.Manifest != e.Digest {
			line += "/" + e.Manifest
		}
		if e.Superseded.IsZero() {
			line += " " + joinTags(e.Tags)
		} else {
			line += " (replaced by " + e.SupersededBy + " on " + e.Superseded.Format(time.DateOnly) + ")"
		}
		out = append(out, line)
	}
	return out
}

func joinTags(tags []string) string {
	s := "["
	for i, t := range tags {
		if i > 0 {
			s += " "
		}
		s += t
	}
	return s + "]"
}

var (
	lighthouse = "ollama/a: A lighthouse at dusk. @sha256:i2/sha256:c1b [2026]"
	greenKite  = "person:ann: Our green kite above Brighton beach. @sha256:i2/sha256:c2a [2026]"
	redKite    = "ollama/a: A red kite over a beach. @sha256:i1/sha256:c1a (replaced by sha256:i2 on 2026-01-02)"
)

// checkAlbumCorrected checks what search and the photo pages know after
// albumCorrected.
func checkAlbumCorrected(t *testing.T, e *env, ix *index.Index) {
	t.Helper()
	require.Equal(t, []string{lighthouse}, page(t, ix, album, "sha256:lb"), "the unchanged child's description is current, in the new album")
	require.Equal(t, []string{lighthouse, redKite}, page(t, ix, album, "sha256:c1b"), "and on its own child manifest's page (with the album's history)")
	require.Equal(t, []string{greenKite, redKite}, page(t, ix, album, "sha256:la"), "the corrected child's model description is history")
	require.Equal(t, []string{greenKite, lighthouse, redKite}, page(t, ix, album, "sha256:i2"))

	hits := e.search(ix, "lighthouse")
	require.Equal(t, []string{"sha256:lb"}, layers(hits), "search still finds the unchanged child")
	require.Equal(t, "sha256:i2", hits[0].Digest)
	require.Equal(t, "sha256:c1b", hits[0].Manifest, "the child was not pushed again")
	require.True(t, hits[0].Superseded.IsZero())
	require.Equal(t, []string{"sha256:la"}, layers(e.search(ix, "green")))
	require.Empty(t, e.search(ix, "red"), "the corrected description leaves search")
	require.ElementsMatch(t, []string{"sha256:la", "sha256:lb"}, layers(e.search(ix, "tag:2026")), "the tag carried over to both")
	require.Empty(t, e.search(ix, "model:ollama/a kite"))
	require.EqualValues(t, 2, e.count(ix))
	_, total, err := ix.Photos(e.ctx, reg, album, 0, 10)
	require.NoError(t, err)
	require.Equal(t, 2, total)
}

func TestCorrectionOfOneChildKeepsTheOthers(t *testing.T) {
	e := newEnv(t)
	e.publishAll(albumCorrected()...)
	dir := t.TempDir()
	ix, stop := e.open(dir, index.Options{})
	e.wait(ix)
	checkAlbumCorrected(t, e, ix)

	// Applied again, in order and out of it (a batch delivered again after
	// a crash before its ack), nothing changes.
	events := albumCorrected()
	for _, ev := range append(events, events[1], events[0], events[0]) {
		require.NoError(t, ix.Apply(e.ctx, ev))
		checkAlbumCorrected(t, e, ix)
	}

	// A restart reads it back, with what the correction listed: the
	// model's event applied once more still carries the lighthouse over.
	stop()
	ix, _ = e.open(dir, index.Options{})
	e.wait(ix)
	checkAlbumCorrected(t, e, ix)
	for _, ev := range albumCorrected() {
		require.NoError(t, ix.Apply(e.ctx, ev))
	}
	checkAlbumCorrected(t, e, ix)

	// Rebuilt from the stream: the old album's event, then the new one's.
	rebuilt, _ := e.open(t.TempDir(), index.Options{})
	e.wait(rebuilt)
	checkAlbumCorrected(t, e, rebuilt)
}

func TestCorrectionFoundBeforeTheAlbumItCorrected(t *testing.T) {
	// The correction is on the stream before the model's description of
	// the album it replaced (reprocess found it in the registry later).
	e := newEnv(t)
	events := albumCorrected()
	e.publishFoundLate(events[1], events[0])
	ix, _ := e.open(t.TempDir(), index.Options{})
	e.wait(ix)
	checkAlbumCorrected(t, e, ix)
}

func TestNewChildDescribedBesideDescribedOnes(t *testing.T) {
	// An album of a described child and a new one (sha256:i2, found by
	// reprocess with the one description), whose job describes the new
	// child only, with the same model: sha256:i3.
	e := newEnv(t)
	found := written(album, "sha256:i2", "ollama/a", []string{"2026"}, day("2026-01-04"),
		inAlbum("sha256:c1b", photo("sha256:lb", "A lighthouse at dusk.", "lighthouse")))
	found.Kind = feed.Found
	added := written(album, "sha256:i3", "ollama/a", []string{"2026"}, day("2026-01-05"),
		inAlbum("sha256:c3a", photo("sha256:la", "A red kite over a beach.", "kite")))
	added.Replaces = "sha256:i2"
	events := []feed.Event{found, added}
	e.publishAll(events...)
	dir := t.TempDir()
	ix, stop := e.open(dir, index.Options{})
	e.wait(ix)
	want := []string{
		"ollama/a: A red kite over a beach. @sha256:i3/sha256:c3a [2026]",
		"ollama/a: A lighthouse at dusk. @sha256:i3/sha256:c1b [2026]",
	}
	check := func(ix *index.Index) {
		t.Helper()
		require.ElementsMatch(t, want, page(t, ix, album, "sha256:i3"), "the same describer's description of the other child is carried over, not removed")
		require.Equal(t, want[1:], page(t, ix, album, "sha256:lb"))
		require.Equal(t, []string{"sha256:lb"}, layers(e.search(ix, "lighthouse")))
		require.EqualValues(t, 2, e.count(ix))
	}
	check(ix)
	for _, ev := range append(events, events...) {
		ev.Version = feed.Version
		require.NoError(t, ix.Apply(e.ctx, ev))
		check(ix)
	}
	stop()
	ix, _ = e.open(dir, index.Options{})
	e.wait(ix)
	check(ix)
	rebuilt, _ := e.open(t.TempDir(), index.Options{})
	e.wait(rebuilt)
	check(rebuilt)
}

// dogsCorrected is a manifest of two photos described by a model
// (sha256:m1, re-pushed from sha256:m0), a person's correction of one
// (m2), and a write-back listing one photo only (m3).
func dogsCorrected() []feed.Event {
	described := written("photos/dogs", "sha256:m1", "ollama/a", []string{"latest"}, day("2026-01-01"),
		photo("sha256:l1", "A brown dog on a sofa.", "dog"), photo("sha256:l2", "A wet dog on a beach.", "dog"))
	described.Replaces = "sha256:m0"
	// The worker's correction of one photo of two lists both: the other
	// keeps its model's description, in the person's write-back.
	corrected := written("photos/dogs", "sha256:m2", "person:ann", []string{"latest"}, day("2026-01-02"),
		photo("sha256:l1", "A brown dog on a sofa.", "dog"), photo("sha256:l2", "Our dog Rex on the beach.", "dog", "rex"))
	corrected.Photos[0].Model = "ollama/a"
	corrected.Replaces = "sha256:m1"
	// A write-back listing one photo only leaves the other as it was.
	partial := written("photos/dogs", "sha256:m3", "person:bob", []string{"latest"}, day("2026-01-03"),
		photo("sha256:l2", "Rex, wet, on Brighton beach.", "rex"))
	partial.Replaces = "sha256:m2"
	return []feed.Event{described, corrected, partial}
}

func TestCorrectionOfOnePhotoOfAManifest(t *testing.T) {
	e := newEnv(t)
	e.publishAll(dogsCorrected()...)
	ix, _ := e.open(t.TempDir(), index.Options{})
	e.wait(ix)

	require.Equal(t, []string{
		"ollama/a: A brown dog on a sofa. @sha256:m3 [latest]",
		"ollama/a: A brown dog on a sofa. @sha256:m1 (replaced by sha256:m2 on 2026-01-02)",
	}, page(t, ix, "photos/dogs", "sha256:l1"), "listed by the correction, carried over by the partial write-back")
	require.Equal(t, []string{
		"person:bob: Rex, wet, on Brighton beach. @sha256:m3 [latest]",
		"person:ann: Our dog Rex on the beach. @sha256:m2 (replaced by sha256:m3 on 2026-01-03)",
		"ollama/a: A wet dog on a beach. @sha256:m1 (replaced by sha256:m2 on 2026-01-02)",
	}, page(t, ix, "photos/dogs", "sha256:l2"))
	require.Equal(t, []string{"sha256:l1"}, layers(e.search(ix, "dog")))
	require.Equal(t, []string{"sha256:l2"}, layers(e.search(ix, "rex")))
	for _, h := range e.search(ix, "tag:latest") {
		require.Equal(t, "sha256:m3", h.Digest)
		require.Equal(t, "sha256:m3", h.Manifest, "an image manifest's photo is the re-pushed manifest's")
	}
	require.EqualValues(t, 2, e.count(ix))
}

func TestDeletionOfACorrectedAlbum(t *testing.T) {
	e := newEnv(t)
	e.publishAll(albumCorrected()...)
	ix, _ := e.open(t.TempDir(), index.Options{})
	e.wait(ix)

	// The old album deleted: the carried description stays with the new one.
	e.publish(feed.Event{Kind: feed.Deleted, Registry: reg, Repository: album, Digest: "sha256:i1"})
	e.wait(ix)
	require.Equal(t, []string{lighthouse}, page(t, ix, album, "sha256:lb"))
	require.Equal(t, []string{greenKite}, page(t, ix, album, "sha256:la"))

	// The unchanged child deleted: its photo goes.
	e.publish(feed.Event{Kind: feed.Deleted, Registry: reg, Repository: album, Digest: "sha256:c1b"})
	e.wait(ix)
	require.Empty(t, page(t, ix, album, "sha256:lb"))
	require.Empty(t, e.search(ix, "lighthouse"))

	// The new album deleted: nothing is left.
	e.publish(feed.Event{Kind: feed.Deleted, Registry: reg, Repository: album, Digest: "sha256:i2"})
	e.wait(ix)
	require.Empty(t, page(t, ix, album, "sha256:la"))
	require.Zero(t, e.count(ix))
}
