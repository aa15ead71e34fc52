package reconcile_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/reconcile"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// TestSweepCatchesPhotosPushedWithoutAMediaType: `oras push REF dune.jpg`
// (oras's default media type) whose notification was lost is caught by a
// sweep, which reads the layer's first bytes as the worker does: the JPEG
// is described; a text file pushed the same way is refused visibly (on
// the description stream, with the reason, and said once in the log). Once settled, the sweep is one HEAD a tag again: no
// manifest, no blob read.
func TestSweepCatchesPhotosPushedWithoutAMediaType(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{NotifierProxy: dropNotifications})
	work := t.TempDir()
	photo := stacktest.JPEG(t, 320, 240, 91)
	require.NoError(t, os.WriteFile(filepath.Join(work, "dune.jpg"), photo, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(work, "notes.jpg"), []byte("Dune is a 1965 novel by Frank Herbert.\n"), 0o644))
	stacktest.Oras(t, work, "push", "--plain-http", s.RegistryHost+"/photos/dune:latest", "dune.jpg")
	stacktest.Oras(t, work, "push", "--plain-http", s.RegistryHost+"/photos/dune:notes", "notes.jpg")

	var notes ocispec.Descriptor
	require.NoError(t, json.Unmarshal([]byte(stacktest.Oras(t, work, "manifest", "fetch", "--plain-http", "--descriptor", s.RegistryHost+"/photos/dune:notes")), &notes))

	c := &counter{}
	logs := &recorder{}
	ctx := context.Background()
	rec, err := reconcile.New(ctx, s.JS, sweepClient(t, s.RegistryHost, c), reconcile.Options{Model: s.Describer.Model(), Logger: slog.New(logs)})
	require.NoError(t, err)
	first, err := rec.Sweep(ctx, s.RegistryHost)
	require.NoError(t, err)
	require.Equal(t, 1, first.Counts.Queued, "the JPEG is caught")
	require.Equal(t, 1, first.Counts.NotPhotos, "the text file is no photo")
	// The text file is refused visibly, as its job would have refused it.
	refusal, ok, err := feed.Refusal(ctx, s.JS, strings.ToLower(s.RegistryHost), "photos/dune", notes.Digest.String())
	require.NoError(t, err)
	require.True(t, ok, "no refusal on the description stream")
	require.Equal(t, `not an image: "notes.jpg" (application/vnd.oci.image.layer.v1.tar) holds text (text/plain; charset=utf-8), not a photo regscribe can describe`, refusal.Reason)
	require.Equal(t, []string{"notes"}, refusal.Tags)

	_, m := s.WaitDescribed(t, "photos/dune", "latest")
	require.Equal(t, "A test photo "+modeltest.Digest(photo)[:19]+".", m.Annotations[registry.AnnotationDescription])
	require.Equal(t, ocispec.MediaTypeImageLayer, m.Layers[0].MediaType)
	s.WaitIdle(t)
	require.Len(t, s.Model.Calls(), 1, "the text file is no model call")

	// The write-back moved the tag: one more sweep settles it.
	second, err := rec.Sweep(ctx, s.RegistryHost)
	require.NoError(t, err)
	require.Equal(t, 1, second.Counts.AlreadyDescribed)
	heads, gets, blobs := c.heads.Load(), c.gets.Load(), c.blobs.Load()
	third, err := rec.Sweep(ctx, s.RegistryHost)
	require.NoError(t, err)
	require.Equal(t, 2, third.Counts.Unchanged)
	require.Equal(t, int64(2), c.heads.Load()-heads, "one HEAD a tag")
	require.Zero(t, c.gets.Load()-gets, "no manifest fetched")
	require.Zero(t, c.blobs.Load()-blobs, "no layer read")
	require.Equal(t, 1, logs.count("not an image; nothing described"), "said once")
}
