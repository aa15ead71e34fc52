package reprocess_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/reprocess"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/worker"
)

// foundEvents returns the description stream's events, At cleared, with
// the stream's last sequence.
func foundEvents(t *testing.T, js jetstream.JetStream) ([]feed.Event, uint64) {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, feed.Stream)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var out []feed.Event
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		require.NoError(t, err)
		e, err := feed.Parse(m.Data)
		require.NoError(t, err)
		require.Equal(t, feed.Subject(e), m.Subject)
		require.False(t, e.At.IsZero())
		e.At = time.Time{}
		out = append(out, e)
	}
	return out, info.State.LastSeq
}

// Photos described before the search index existed (an annotation by one
// model, a referrer by another, a person's annotation, a referrer of a
// manifest with two photos) are put on the description stream by a
// reprocess run, one found event per manifest and describer, without any
// model; a second run stores nothing new. With the referrers API and with
// the fallback tag schema.
func TestReprocessPutsFoundDescriptionsOnTheStream(t *testing.T) {
	t.Parallel()
	for name, start := range map[string]func(testing.TB) *quietRegistry{
		"distribution (fallback tags)": startQuietRegistry,
		"referrers API":                startGGCRRegistry,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			js := stacktest.JetStream(t)
			_, err := queue.EnsureStream(ctx, js, queue.StreamOptions{})
			require.NoError(t, err)
			_, err = feed.EnsureStream(ctx, js, 1)
			require.NoError(t, err)
			q := start(t)
			const repoName = "photos/old"
			created := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
			bus, cat, left, right, fresh := jpegFile(t, 1), jpegFile(t, 2), jpegFile(t, 3), jpegFile(t, 4), jpegFile(t, 5)
			pushed := q.push(t, []artifact{
				{repo: repoName, tags: []string{"latest", "v1"}, files: []stacktest.File{bus}, annotations: map[string]string{
					registry.AnnotationDescription: "A red bus in the rain.", registry.AnnotationAlt: "Red bus.",
					registry.AnnotationKeywords: "bus, rain", registry.AnnotationText: "LINE 7",
					registry.AnnotationModel: "ollama/a", registry.AnnotationCreated: created.Format(time.RFC3339),
				}},
				{repo: repoName, tags: []string{"tom"}, files: []stacktest.File{cat}, annotations: map[string]string{
					registry.AnnotationDescription: "Our cat Tom on the sofa.",
				}},
				{repo: repoName, tags: []string{"pair"}, files: []stacktest.File{left, right}},
				{repo: repoName, tags: []string{"new"}, files: []stacktest.File{fresh}},
				{repo: repoName, tags: []string{"sbom"}, files: []stacktest.File{{Name: "sbom.json", MediaType: "application/spdx+json", Data: []byte("{}")}}},
			})
			repo, err := q.Client.Repository(q.Host, repoName)
			require.NoError(t, err)
			// Another model described the bus in a referrer; the pair was
			// described in one referrer whose annotations join both photos.
			busRef, err := q.Client.WriteReferrer(ctx, repo, pushed[0], registry.Record{
				Subject: pushed[0].Digest.String(), Model: "openai/b", Created: created.Add(time.Hour),
				Photos: []registry.PhotoRecord{{Layer: blobDigest(bus.Data), Title: bus.Name, Description: "A double-decker bus.", Keywords: []string{"bus"}}},
			}, map[string]string{
				registry.AnnotationDescription: "A double-decker bus.", registry.AnnotationKeywords: "bus",
				registry.AnnotationModel: "openai/b", registry.AnnotationCreated: created.Add(time.Hour).Format(time.RFC3339),
			})
			require.NoError(t, err)
			pairRef, err := q.Client.WriteReferrer(ctx, repo, pushed[2], registry.Record{
				Subject: pushed[2].Digest.String(), Model: "ollama/a", Created: created,
				Photos: []registry.PhotoRecord{
					{Layer: blobDigest(left.Data), Title: left.Name, Description: "A left shoe.", Text: "SIZE 42"},
					{Layer: blobDigest(right.Data), Title: right.Name, Description: "A right shoe.", Alt: "Shoe."},
				},
			}, map[string]string{
				registry.AnnotationDescription: left.Name + ": A left shoe.\n" + right.Name + ": A right shoe.",
				registry.AnnotationModel:       "ollama/a", registry.AnnotationCreated: created.Format(time.RFC3339),
			})
			require.NoError(t, err)

			backfill := func() []reprocess.Item {
				items, err := reprocess.Plan(ctx, q.Client, reprocess.PlanOptions{Registry: q.Host, Repository: repoName, Model: "ollama/a", Backfill: true})
				require.NoError(t, err)
				require.NoError(t, reprocess.Run(ctx, js, items, reprocess.RunOptions{Batch: reprocess.NewBatch()}))
				return items
			}
			items := backfill()
			c := reprocess.Summarize(items)
			require.Equal(t, 4, c.Indexed, "%+v", c)
			require.Equal(t, 3, c.AlreadyDescribed, "bus and pair by ollama/a, Tom by a person")
			require.Equal(t, 1, c.Queued, "the undescribed photo is queued as always")

			photo := func(f stacktest.File, manifest ocispec.Descriptor, by, stored string, p feed.Photo) feed.Photo {
				p.Manifest, p.Layer, p.MediaType, p.Title, p.Model, p.Stored = manifest.Digest.String(), blobDigest(f.Data), f.MediaType, f.Name, by, stored
				return p
			}
			event := func(manifest ocispec.Descriptor, tags []string, by string, photos ...feed.Photo) feed.Event {
				return feed.Event{Version: feed.Version, Kind: feed.Found, Registry: q.Host, Repository: repoName,
					Digest: manifest.Digest.String(), Tags: tags, By: by, Photos: photos}
			}
			busStored := "referrer " + busRef.Descriptor.Digest.String()
			pairStored := "referrer " + pairRef.Descriptor.Digest.String()
			want := []feed.Event{
				event(pushed[0], []string{"latest", "v1"}, "ollama/a", photo(bus, pushed[0], "ollama/a", "annotation", feed.Photo{
					Description: "A red bus in the rain.", Alt: "Red bus.", Keywords: []string{"bus", "rain"}, Text: "LINE 7", Created: created})),
				event(pushed[0], []string{"latest", "v1"}, "openai/b", photo(bus, pushed[0], "openai/b", busStored, feed.Photo{
					Description: "A double-decker bus.", Keywords: []string{"bus"}, Created: created.Add(time.Hour)})),
				event(pushed[1], []string{"tom"}, "person", photo(cat, pushed[1], "person", "annotation", feed.Photo{
					Description: "Our cat Tom on the sofa."})),
				event(pushed[2], []string{"pair"}, "ollama/a",
					photo(left, pushed[2], "ollama/a", pairStored, feed.Photo{Description: "A left shoe.", Text: "SIZE 42", Created: created}),
					photo(right, pushed[2], "ollama/a", pairStored, feed.Photo{Description: "A right shoe.", Alt: "Shoe.", Created: created})),
			}
			got, last := foundEvents(t, js)
			require.ElementsMatch(t, want, got)

			// A second run stores nothing new: the stream has these
			// descriptions already.
			items = backfill()
			require.Equal(t, 0, reprocess.Summarize(items).Indexed)
			again, lastAgain := foundEvents(t, js)
			require.ElementsMatch(t, want, again)
			require.Equal(t, last, lastAgain, "the same found descriptions are not stored twice")

			// A plan without Backfill (the reconcile sweeps') finds nothing
			// to publish.
			items, err = reprocess.Plan(ctx, q.Client, reprocess.PlanOptions{Registry: q.Host, Repository: repoName, Model: "ollama/a"})
			require.NoError(t, err)
			for _, it := range items {
				require.Empty(t, it.Found, it.Ref())
			}
			require.True(t, strings.HasPrefix(busStored, "referrer sha256:"))
		})
	}
}

// Photos pushed with a media type that says nothing (oras's default,
// image/jpg) and described by regscribe before search existed, in
// annotation and referrer mode, are read back by a backfill like any other:
// each photo under its own title, a text file beside them left out.
func TestBackfillReadsBackPhotosPushedWithoutAMediaType(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := stacktest.Start(t, stacktest.Options{Workers: -1})
	q := startQuietRegistry(t)
	const repoName, tar = "photos/files", ocispec.MediaTypeImageLayer
	dune, moon, a, b, c := jpegFile(t, 11), jpegFile(t, 12), jpegFile(t, 13), jpegFile(t, 14), jpegFile(t, 15)
	dune.MediaType, moon.MediaType, a.MediaType, b.MediaType, c.MediaType = tar, "image/jpg", tar, "application/octet-stream", tar
	notes := stacktest.File{Name: "notes.txt", MediaType: tar, Data: []byte("not a photo\n")}
	pushed := q.push(t, []artifact{
		{repo: repoName, tags: []string{"dune"}, files: []stacktest.File{dune}},
		{repo: repoName, tags: []string{"moon"}, files: []stacktest.File{moon}},
		{repo: repoName, tags: []string{"pair"}, files: []stacktest.File{a, notes, b}},
		{repo: repoName, tags: []string{"ref"}, files: []stacktest.File{notes, c}},
	})
	for i, tag := range []string{"dune", "moon", "pair", "ref"} {
		mode := worker.ModeAnnotation
		if tag == "ref" {
			mode = worker.ModeReferrer
		}
		w := worker.New(q.Client, s.Describer, s.Memory, worker.Options{Mode: mode, Logger: stacktest.Logger(t)})
		_, err := w.Process(ctx, queue.Job{Version: queue.JobVersion, Registry: q.Host, Repository: repoName, Digest: pushed[i].Digest.String(), Tag: tag, Source: "test"})
		require.NoError(t, err, tag)
	}

	items, err := reprocess.Plan(ctx, q.Client, reprocess.PlanOptions{Registry: q.Host, Repository: repoName, Model: s.Describer.Model(), Backfill: true})
	require.NoError(t, err)
	said := map[string][]string{} // tag: title: description, per photo found
	for _, it := range items {
		require.Equal(t, reprocess.AlreadyDescribed, it.Status, "%s: %s", it.Ref(), it.Reason)
		require.Len(t, it.Found, 1, it.Ref())
		for _, p := range it.Found[0].Photos {
			said[it.Tag] = append(said[it.Tag], p.Title+": "+p.Description)
		}
	}
	text := func(f stacktest.File) string { return f.Name + ": A test photo " + modeltest.Digest(f.Data)[:19] + "." }
	require.Equal(t, map[string][]string{
		"dune": {text(dune)}, "moon": {text(moon)}, "pair": {text(a), text(b)}, "ref": {text(c)},
	}, said)
	require.NoError(t, reprocess.Run(ctx, s.JS, items, reprocess.RunOptions{Batch: reprocess.NewBatch()}))
	require.Equal(t, 4, reprocess.Summarize(items).Indexed)
}
