package worker_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/index"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/photo"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/worker"
)

// followingIndex opens a search index in a new directory that follows the
// stack's description stream until the test ends.
func followingIndex(t *testing.T, s *stacktest.Stack) *index.Index {
	t.Helper()
	ix, err := index.Open(index.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = ix.Follow(ctx, s.JS) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		require.NoError(t, ix.Close())
	})
	return ix
}

// albumIndex is the album the tag names, with its digest.
func albumIndex(t *testing.T, s *stacktest.Stack, repo, tag string) (ocispec.Descriptor, ocispec.Index) {
	t.Helper()
	d, raw, err := oras.FetchBytes(context.Background(), s.Repository(t, repo), tag, oras.DefaultFetchBytesOptions)
	require.NoError(t, err)
	var idx ocispec.Index
	require.NoError(t, json.Unmarshal(raw, &idx))
	return d, idx
}

// describedAlbum is an album of a kite and a lighthouse, described by the
// model in mode, on a stack with a search index following its stream.
type describedAlbum struct {
	s                *stacktest.Stack
	ix               *index.Index
	kite, lighthouse []byte
	children         [2]ocispec.Descriptor
	album            ocispec.Descriptor
}

func describeAlbum(t *testing.T, mode worker.Mode, repo string) describedAlbum {
	t.Helper()
	s := stacktest.Start(t, stacktest.Options{ReferrersAPI: true, Worker: worker.Options{Mode: mode}})
	kite, lighthouse := stacktest.JPEG(t, 60, 40, 830), stacktest.JPEG(t, 60, 40, 831)
	said := map[string]modeltest.Reply{
		modeltest.Digest(kite):       modeltest.JSON("A red kite over a beach.", "A kite.", "kite"),
		modeltest.Digest(lighthouse): modeltest.JSON("A lighthouse at dusk.", "A lighthouse.", "lighthouse"),
	}
	s.Model.Answer = func(c modeltest.Call) modeltest.Reply { return said[modeltest.Digest(c.Images[0])] }
	al := describedAlbum{s: s, ix: followingIndex(t, s), kite: kite, lighthouse: lighthouse}
	al.children[0] = s.Push(t, repo, "", stacktest.File{Name: "kite.jpg", MediaType: "image/jpeg", Data: kite})
	al.children[1] = s.Push(t, repo, "", stacktest.File{Name: "lighthouse.jpg", MediaType: "image/jpeg", Data: lighthouse})
	al.album = pushAlbum(t, s, repo, "2026", al.children[0], al.children[1])
	queueJob(t, s, queue.Job{Repository: repo, Digest: al.album.Digest.String(), Tag: "2026"})
	res := resultOf(t, s, "the album's job", func(r queue.Result) bool { return r.Job.Correction == nil })
	require.Equal(t, queue.Described, res.Outcome, res.Reason)
	return al
}

// searcher searches al's index once it has followed the stream.
func (al describedAlbum) searcher(t *testing.T) func(q string) []index.Hit {
	return func(q string) []index.Hit {
		t.Helper()
		ctx := context.Background()
		require.NoError(t, al.ix.Wait(ctx, al.s.JS))
		pq, err := index.ParseQuery(q)
		require.NoError(t, err)
		hits, _, err := al.ix.Search(ctx, pq)
		require.NoError(t, err)
		return hits
	}
}

// A person's correction of one photo of an album, from the gallery, keeps
// the album's other photos in search: the worker re-pushes the corrected
// child and the album only, and the index following the stream carries the
// other child's description over to the new album.
func TestAlbumCorrectionKeepsTheOtherChildrenInSearch(t *testing.T) {
	t.Parallel()
	al := describeAlbum(t, worker.ModeAnnotation, "albums/trip")
	s, ix, kite, lighthouse, search := al.s, al.ix, al.kite, al.lighthouse, al.searcher(t)
	ctx := context.Background()
	described, before := albumIndex(t, s, "albums/trip", "2026")
	require.Len(t, search("lighthouse"), 1)
	require.Len(t, search("kite"), 1)

	queueJob(t, s, queue.Job{Repository: "albums/trip", Digest: described.Digest.String(), Tag: "2026",
		Correction: &queue.Correction{Layer: modeltest.Digest(kite), Description: "Our green kite above Brighton beach.", By: "ann",
			At: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}})
	res := resultOf(t, s, "the correction", func(r queue.Result) bool { return r.Job.Correction != nil })
	require.Equal(t, queue.Described, res.Outcome, res.Reason)
	corrected, after := albumIndex(t, s, "albums/trip", "2026")
	require.NotEqual(t, described.Digest, corrected.Digest)
	require.NotEqual(t, before.Manifests[0].Digest, after.Manifests[0].Digest, "the corrected child is pushed again")
	require.Equal(t, before.Manifests[1].Digest, after.Manifests[1].Digest, "the other child is not")

	hits := search("lighthouse")
	require.Len(t, hits, 1, "the other child's description stays in search")
	require.Equal(t, corrected.Digest.String(), hits[0].Digest, "carried by the album the tag names")
	require.Equal(t, after.Manifests[1].Digest.String(), hits[0].Manifest)
	require.Equal(t, []string{"2026"}, hits[0].Tags)
	require.Equal(t, "ollama/"+stacktest.Model, hits[0].Model)
	require.Empty(t, search("red"), "the corrected description leaves search")
	require.Len(t, search("green"), 1)

	entries, err := ix.Photo(ctx, s.RegistryHost, "albums/trip", modeltest.Digest(lighthouse))
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.True(t, entries[0].Superseded.IsZero(), "the photo page shows it as current")
	require.Equal(t, "A lighthouse at dusk.", entries[0].Description)

	entries, err = ix.Photo(ctx, s.RegistryHost, "albums/trip", modeltest.Digest(kite))
	require.NoError(t, err)
	require.Len(t, entries, 2)
	require.Equal(t, photo.PersonModel("ann"), entries[0].Model)
	require.True(t, entries[0].Superseded.IsZero())
	require.Equal(t, "A red kite over a beach.", entries[1].Description, "the model's description is history")
	require.Equal(t, corrected.Digest.String(), entries[1].SupersededBy)
	n, err := ix.Count()
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
}

// In referrer mode an album's event is for the album, by one describer:
// a person correcting one child and then another leaves both corrections
// in search. The second correction's event lists the first one too (read
// from the other child's referrers), since the stream keeps one event per
// manifest and describer and the index takes the newest as all the
// describer says of the album.
func TestAlbumCorrectionsOfTwoChildrenByOnePersonStayInSearch(t *testing.T) {
	t.Parallel()
	al := describeAlbum(t, worker.ModeReferrer, "albums/coast")
	s, ix, kite, lighthouse, search, album := al.s, al.ix, al.kite, al.lighthouse, al.searcher(t), al.album
	a, b := al.children[0], al.children[1]
	ctx := context.Background()

	correct := func(layer, text string, at time.Time) {
		t.Helper()
		queueJob(t, s, queue.Job{Repository: "albums/coast", Digest: album.Digest.String(), Tag: "2026",
			Correction: &queue.Correction{Layer: layer, Description: text, By: "ann", At: at}})
		res := resultOf(t, s, "the correction of "+layer, func(r queue.Result) bool {
			return r.Job.Correction != nil && r.Job.Correction.Layer == layer
		})
		require.Equal(t, queue.Described, res.Outcome, res.Reason)
	}
	correct(modeltest.Digest(kite), "Our green kite above Brighton beach.", time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC))
	require.Len(t, search("green"), 1)
	correct(modeltest.Digest(lighthouse), "The foggy lighthouse at Beachy Head.", time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC))

	for _, q := range []string{"green", "foggy", "red", "dusk"} {
		require.Len(t, search(q), 1, "search %q", q)
	}
	for layer, want := range map[string][]string{
		modeltest.Digest(kite):       {"A red kite over a beach.", "Our green kite above Brighton beach."},
		modeltest.Digest(lighthouse): {"A lighthouse at dusk.", "The foggy lighthouse at Beachy Head."},
	} {
		entries, err := ix.Photo(ctx, s.RegistryHost, "albums/coast", layer)
		require.NoError(t, err)
		var current []string
		for _, e := range entries {
			require.True(t, e.Superseded.IsZero(), "in referrer mode nothing is superseded: %+v", e)
			require.Equal(t, album.Digest.String(), e.Digest)
			current = append(current, e.Description)
		}
		slices.Sort(current)
		require.Equal(t, want, current, "the model's description and ann's correction of %s", layer)
	}
	n, err := ix.Count()
	require.NoError(t, err)
	require.EqualValues(t, 4, n)

	var last []stored
	for _, e := range streamEvents(t, s) {
		if e.Digest == album.Digest.String() && e.By == photo.PersonModel("ann") {
			last = append(last, e)
		}
	}
	require.Len(t, last, 1, "the stream keeps one event of the album by ann")
	got := last[0].Photos
	require.Len(t, got, 2, "it lists both of ann's corrections")
	require.Equal(t, []string{a.Digest.String(), b.Digest.String()}, []string{got[0].Manifest, got[1].Manifest}, "in album order")
	require.Equal(t, "Our green kite above Brighton beach.", got[0].Description)
	require.Equal(t, "The foggy lighthouse at Beachy Head.", got[1].Description)
	for _, p := range got {
		require.True(t, strings.HasPrefix(p.Stored, "referrer sha256:"), p.Stored)
		require.Equal(t, photo.PersonModel("ann"), p.Model)
	}
}

// A child with several photos holds them all in one referrer record: the
// album's next event by the same person reads it, and each photo keeps its
// own describer (a correction keeps the other photo's model description).
func TestAlbumEventReadsTheOtherChildsRecord(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{ReferrersAPI: true, Worker: worker.Options{Mode: worker.ModeReferrer}})
	kite, pier, boat := stacktest.JPEG(t, 60, 40, 834), stacktest.JPEG(t, 60, 40, 835), stacktest.JPEG(t, 60, 40, 836)
	said := map[string]modeltest.Reply{
		modeltest.Digest(kite): modeltest.JSON("A red kite.", "A kite.", "kite"),
		modeltest.Digest(pier): modeltest.JSON("A wooden pier.", "A pier.", "pier"),
		modeltest.Digest(boat): modeltest.JSON("A fishing boat.", "A boat.", "boat"),
	}
	s.Model.Answer = func(c modeltest.Call) modeltest.Reply { return said[modeltest.Digest(c.Images[0])] }
	a := s.Push(t, "albums/harbour", "", stacktest.File{Name: "kite.jpg", MediaType: "image/jpeg", Data: kite})
	b := s.Push(t, "albums/harbour", "", stacktest.File{Name: "pier.jpg", MediaType: "image/jpeg", Data: pier},
		stacktest.File{Name: "boat.jpg", MediaType: "image/jpeg", Data: boat})
	album := pushAlbum(t, s, "albums/harbour", "2026", a, b)
	queueJob(t, s, queue.Job{Repository: "albums/harbour", Digest: album.Digest.String(), Tag: "2026"})
	res := resultOf(t, s, "the album's job", func(r queue.Result) bool { return r.Job.Correction == nil })
	require.Equal(t, queue.Described, res.Outcome, res.Reason)

	for _, c := range []queue.Correction{
		{Layer: modeltest.Digest(boat), Description: "Our blue boat.", By: "ann", At: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)},
		{Layer: modeltest.Digest(kite), Description: "Our green kite.", By: "ann", At: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)},
	} {
		queueJob(t, s, queue.Job{Repository: "albums/harbour", Digest: album.Digest.String(), Tag: "2026", Correction: &c})
		res := resultOf(t, s, "the correction of "+c.Layer, func(r queue.Result) bool {
			return r.Job.Correction != nil && r.Job.Correction.Layer == c.Layer
		})
		require.Equal(t, queue.Described, res.Outcome, res.Reason)
	}

	e := waitEvent(t, s, "the album's event by ann", func(e feed.Event) bool {
		return e.Digest == album.Digest.String() && e.By == photo.PersonModel("ann")
	})
	type listed struct{ manifest, layer, model, description string }
	var got []listed
	for _, p := range e.Photos {
		got = append(got, listed{p.Manifest, p.Layer, p.Model, p.Description})
	}
	model := "ollama/" + stacktest.Model
	require.Equal(t, []listed{
		{a.Digest.String(), modeltest.Digest(kite), photo.PersonModel("ann"), "Our green kite."},
		{b.Digest.String(), modeltest.Digest(pier), model, "A wooden pier."},
		{b.Digest.String(), modeltest.Digest(boat), photo.PersonModel("ann"), "Our blue boat."},
	}, got)
}
