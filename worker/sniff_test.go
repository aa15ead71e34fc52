package worker_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/photo"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/worker"
)

// TestLayersThatSayNothingAreReadForPhotos: files pushed with oras's
// default media type are photos when their bytes are: a JPEG is described
// (its layer keeps its media type), a text file named like a photo is
// refused visibly (an event with the reason, a result, one log line), and
// a container image's tar layers are not read at all.
func TestLayersThatSayNothingAreReadForPhotos(t *testing.T) {
	t.Parallel()
	var log stacktest.LogBuffer
	s := stacktest.Start(t, stacktest.Options{Worker: worker.Options{
		Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}})
	const tar = ocispec.MediaTypeImageLayer
	photo := stacktest.JPEG(t, 640, 480, 71)
	s.Push(t, "photos/misc", "dune", stacktest.File{Name: "dune.jpg", MediaType: tar, Data: photo})
	text := []byte("Dune is a 1965 novel by Frank Herbert.\n")
	refused := s.Push(t, "photos/misc", "notes", stacktest.File{Name: "photo.jpg", MediaType: tar, Data: text})
	image := containerImage(t, s, "apps/server", "v1", stacktest.JPEG(t, 64, 64, 72))
	a, b := stacktest.JPEG(t, 320, 240, 73), stacktest.PNG(t, 240, 320, 74)
	s.Push(t, "photos/misc", "two", stacktest.File{Name: "a.jpg", MediaType: tar, Data: a},
		stacktest.File{Name: "readme.txt", MediaType: tar, Data: text}, stacktest.File{Name: "b.png", MediaType: "application/octet-stream", Data: b})

	_, m := s.WaitDescribed(t, "photos/misc", "dune")
	require.Equal(t, expectedText(photo), m.Annotations[registry.AnnotationDescription])
	require.Equal(t, tar, m.Layers[0].MediaType, "the layer stays as it was pushed")
	// Several photos among the files: each its own description.
	_, two := s.WaitDescribed(t, "photos/misc", "two")
	require.Equal(t, expectedText(a), two.Layers[0].Annotations[registry.AnnotationDescription])
	require.Empty(t, two.Layers[1].Annotations[registry.AnnotationDescription], "the text file is no photo")
	require.Equal(t, expectedText(b), two.Layers[2].Annotations[registry.AnnotationDescription])
	require.Equal(t, "a.jpg: "+expectedText(a)+"\nb.png: "+expectedText(b), two.Annotations[registry.AnnotationDescription])

	e := waitEvent(t, s, "refusal of the text file", func(e feed.Event) bool { return e.Kind == feed.Refused })
	require.Equal(t, refused.Digest.String(), e.Digest)
	require.Equal(t, `not an image: "photo.jpg" (application/vnd.oci.image.layer.v1.tar) holds text (text/plain; charset=utf-8), not a photo regscribe can describe`, e.Reason)
	r := resultOf(t, s, "the text file's job", func(r queue.Result) bool { return r.Job.Digest == refused.Digest.String() && r.Job.Tag == "notes" })
	require.Equal(t, queue.Refused, r.Outcome)
	require.Equal(t, e.Reason, r.Reason)
	s.WaitIdle(t)

	calls := s.Model.Calls()
	require.Len(t, calls, 3, "the photos only")
	var seen [][]byte
	for _, c := range calls {
		seen = append(seen, c.Images[0])
	}
	require.ElementsMatch(t, [][]byte{photo, a, b}, seen, "the model got the photos byte for byte")
	now, _ := s.Manifest(t, "photos/misc", "notes")
	require.Equal(t, refused.Digest, now.Digest, "a refused manifest is left as it is")
	now, _ = s.Manifest(t, "apps/server", "v1")
	require.Equal(t, image.Digest, now.Digest, "a container image is no photo")
	require.Equal(t, 1, strings.Count(log.String(), `msg="not an image`), "one line at info: %s", log.String())
	require.Len(t, refusals(t, s), 1, "the container image is not refused: it is no photo and nobody thinks it is")
}

// containerImage pushes an image manifest whose config is a container
// image config, with tar layers (one of them holding JPEG bytes), and
// tags it.
func containerImage(t *testing.T, s *stacktest.Stack, repoName, tag string, layer []byte) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	repo := s.Repository(t, repoName)
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cd, err := oras.PushBytes(ctx, repo, ocispec.MediaTypeImageConfig, config)
	require.NoError(t, err)
	ld := content.NewDescriptorFromBytes(ocispec.MediaTypeImageLayer, layer)
	require.NoError(t, repo.Push(ctx, ld, bytes.NewReader(layer)))
	desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "", oras.PackManifestOptions{ConfigDescriptor: &cd, Layers: []ocispec.Descriptor{ld}})
	require.NoError(t, err)
	require.NoError(t, repo.Tag(ctx, desc, tag))
	return desc
}

// refusals are the refusals on the description stream.
func refusals(t *testing.T, s *stacktest.Stack) []feed.Event {
	var out []feed.Event
	for _, e := range streamEvents(t, s) {
		if e.Kind == feed.Refused {
			out = append(out, e.Event)
		}
	}
	return out
}

// TestImageTypesRegscribeDoesNotKnowAreRead: a layer of an image/* media
// type regscribe does not prepare says nothing it can trust: image/jpg (a
// common typo) holding a JPEG is described, image/x-foo holding text is
// refused with the reason, never skipped silently.
func TestImageTypesRegscribeDoesNotKnowAreRead(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	photo := stacktest.JPEG(t, 320, 240, 75)
	s.Push(t, "photos/typo", "jpg", stacktest.File{Name: "dune.jpg", MediaType: "image/jpg", Data: photo})
	refused := s.Push(t, "photos/typo", "foo", stacktest.File{Name: "notes.foo", MediaType: "image/x-foo", Data: []byte("Dune is a 1965 novel by Frank Herbert.\n")})

	_, m := s.WaitDescribed(t, "photos/typo", "jpg")
	require.Equal(t, expectedText(photo), m.Annotations[registry.AnnotationDescription])
	require.Equal(t, "image/jpg", m.Layers[0].MediaType, "the layer stays as it was pushed")
	e := waitEvent(t, s, "refusal of image/x-foo", func(e feed.Event) bool { return e.Kind == feed.Refused })
	require.Equal(t, refused.Digest.String(), e.Digest)
	require.Equal(t, `not an image: "notes.foo" (image/x-foo) holds text (text/plain; charset=utf-8), not a photo regscribe can describe`, e.Reason)
	s.WaitIdle(t)
	require.Len(t, s.Model.Calls(), 1, "the JPEG only")
	require.Equal(t, photo, s.Model.Calls()[0].Images[0])
}

// TestCorrectionOfAPhotoPushedWithoutAMediaType: a person corrects one of
// two photos pushed with oras's default media type; the other keeps its
// model's description, read back from its layer whatever its media type.
func TestCorrectionOfAPhotoPushedWithoutAMediaType(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Worker: worker.Options{Mode: worker.ModeAnnotation}})
	const tar = ocispec.MediaTypeImageLayer
	a, b := stacktest.JPEG(t, 90, 60, 830), stacktest.JPEG(t, 60, 90, 831)
	s.Push(t, "photos/files", "latest", stacktest.File{Name: "a.jpg", MediaType: tar, Data: a},
		stacktest.File{Name: "notes.txt", MediaType: tar, Data: []byte("two photos\n")}, stacktest.File{Name: "b.jpg", MediaType: tar, Data: b})
	described, _ := s.WaitDescribed(t, "photos/files", "latest")
	s.WaitIdle(t)

	queueJob(t, s, queue.Job{Repository: "photos/files", Digest: described.Digest.String(), Tag: "latest",
		Correction: &queue.Correction{Layer: modeltest.Digest(b), Description: "Our dog Rex.", By: "ann"}})
	res := resultOf(t, s, "the correction", func(r queue.Result) bool { return r.Job.Correction != nil })
	require.Equal(t, queue.Described, res.Outcome, res.Reason)
	e := waitEvent(t, s, "the correction's event", func(e feed.Event) bool { return e.By == photo.PersonModel("ann") })
	require.Len(t, e.Photos, 2, "the event carries both photos")
	require.Equal(t, expectedText(a), e.Photos[0].Description, "the other photo keeps its description")
	require.Equal(t, "Our dog Rex.", e.Photos[1].Description)
	_, m := s.Manifest(t, "photos/files", "latest")
	require.Equal(t, "a.jpg: "+expectedText(a)+"\nb.jpg: Our dog Rex.", m.Annotations[registry.AnnotationDescription])
}
