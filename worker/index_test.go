package worker_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2"

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

// A person's correction of one photo of an album, from the gallery, keeps
// the album's other photos in search: the worker re-pushes the corrected
// child and the album only, and the index following the stream carries the
// other child's description over to the new album.
func TestAlbumCorrectionKeepsTheOtherChildrenInSearch(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{ReferrersAPI: true, Worker: worker.Options{Mode: worker.ModeAnnotation}})
	kite, lighthouse := stacktest.JPEG(t, 60, 40, 830), stacktest.JPEG(t, 60, 40, 831)
	said := map[string]modeltest.Reply{
		modeltest.Digest(kite):       modeltest.JSON("A red kite over a beach.", "A kite.", "kite"),
		modeltest.Digest(lighthouse): modeltest.JSON("A lighthouse at dusk.", "A lighthouse.", "lighthouse"),
	}
	s.Model.Answer = func(c modeltest.Call) modeltest.Reply { return said[modeltest.Digest(c.Images[0])] }
	ix := followingIndex(t, s)
	ctx := context.Background()
	search := func(q string) []index.Hit {
		t.Helper()
		require.NoError(t, ix.Wait(ctx, s.JS))
		hits, _, err := ix.Search(ctx, index.ParseQuery(q))
		require.NoError(t, err)
		return hits
	}

	a := s.Push(t, "albums/trip", "", stacktest.File{Name: "kite.jpg", MediaType: "image/jpeg", Data: kite})
	b := s.Push(t, "albums/trip", "", stacktest.File{Name: "lighthouse.jpg", MediaType: "image/jpeg", Data: lighthouse})
	pushed := pushAlbum(t, s, "albums/trip", "2026", a, b)
	queueJob(t, s, queue.Job{Repository: "albums/trip", Digest: pushed.Digest.String(), Tag: "2026"})
	res := resultOf(t, s, "the album's job", func(r queue.Result) bool { return r.Job.Correction == nil })
	require.Equal(t, queue.Described, res.Outcome, res.Reason)
	described, before := albumIndex(t, s, "albums/trip", "2026")
	require.Len(t, search("lighthouse"), 1)
	require.Len(t, search("kite"), 1)

	queueJob(t, s, queue.Job{Repository: "albums/trip", Digest: described.Digest.String(), Tag: "2026",
		Correction: &queue.Correction{Layer: modeltest.Digest(kite), Description: "Our green kite above Brighton beach.", By: "ann",
			At: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}})
	res = resultOf(t, s, "the correction", func(r queue.Result) bool { return r.Job.Correction != nil })
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
