package worker_test

import (
	"bytes"
	"context"
	"image"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/internal/vision"
	"github.com/regscribe/regscribe/worker"
)

// expectedText is what regscribe writes for the fake's answer about photo.
func expectedText(photo []byte) string {
	return "A test photo " + modeltest.Digest(photo)[:19] + "."
}

func TestPushedPhotoIsDescribed(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	photo := stacktest.JPEG(t, 1024, 768, 1)
	pushed := s.Push(t, "photos/pineapple", "latest", stacktest.File{Name: "pineapple.jpg", MediaType: "image/jpeg", Data: photo})
	_, before := s.Manifest(t, "photos/pineapple", pushed.Digest.String())

	desc, m := s.WaitDescribed(t, "photos/pineapple", "latest")
	s.WaitIdle(t)

	require.NotEqual(t, pushed.Digest, desc.Digest, "the tag moves to the annotated manifest")
	require.Equal(t, expectedText(photo), m.Annotations[registry.AnnotationDescription])
	require.Equal(t, "Test photo "+modeltest.Digest(photo)[7:19], m.Annotations[registry.AnnotationAlt])
	require.Equal(t, "test, photo", m.Annotations[registry.AnnotationKeywords])
	require.Equal(t, "ollama/"+stacktest.Model, m.Annotations[registry.AnnotationModel])
	_, err := time.Parse(time.RFC3339, m.Annotations[registry.AnnotationCreated])
	require.NoError(t, err)
	// Everything the manifest had is kept.
	require.Equal(t, before.Annotations[ocispec.AnnotationCreated], m.Annotations[ocispec.AnnotationCreated])
	require.Equal(t, before.Layers, m.Layers)
	require.Equal(t, before.Config, m.Config)
	require.Equal(t, before.ArtifactType, m.ArtifactType)

	// The model got exactly one call, with the photo byte for byte, the
	// model name and the prompt; its own write-back caused no second call.
	calls := s.Model.Calls()
	require.Len(t, calls, 1)
	require.Equal(t, stacktest.Model, calls[0].Model)
	require.Equal(t, vision.Prompt{}.String(), calls[0].Prompt)
	require.Equal(t, photo, calls[0].Images[0])
	require.JSONEq(t, string(vision.Schema), string(calls[0].Format))
	require.Empty(t, s.Model.Problems())
}

func TestSamePhotoAgainNeedsNoModelCall(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	photo := stacktest.JPEG(t, 640, 480, 2)
	file := stacktest.File{Name: "dune.jpg", MediaType: "image/jpeg", Data: photo}

	s.Push(t, "photos/dune", "latest", file)
	_, first := s.WaitDescribed(t, "photos/dune", "latest")
	s.WaitIdle(t)

	// Same tag, new manifest (oras stamps a fresh created time).
	again := s.Push(t, "photos/dune", "latest", file)
	desc, m := s.WaitDescribed(t, "photos/dune", "latest")
	require.NotEqual(t, again.Digest, desc.Digest)
	// Another repository.
	s.Push(t, "archive/dune", "v1", file)
	_, other := s.WaitDescribed(t, "archive/dune", "v1")
	s.WaitIdle(t)

	require.Equal(t, 1, len(s.Model.Calls()), "remembered descriptions need no model call")
	require.Equal(t, first.Annotations[registry.AnnotationDescription], m.Annotations[registry.AnnotationDescription])
	require.Equal(t, first.Annotations[registry.AnnotationDescription], other.Annotations[registry.AnnotationDescription])
}

func TestArtifactsWithoutImagesCallNoModel(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	cases := []struct {
		repo  string
		files []stacktest.File
	}{
		{"apps/server", []stacktest.File{{Name: "layer.tar.gz", MediaType: ocispec.MediaTypeImageLayerGzip, Data: []byte("not really a tarball")}}},
		{"sboms/server", []stacktest.File{{Name: "sbom.spdx.json", MediaType: "application/spdx+json", Data: []byte(`{"spdxVersion":"SPDX-2.3"}`)}}},
	}
	var pushed []ocispec.Descriptor
	for _, tc := range cases {
		pushed = append(pushed, s.Push(t, tc.repo, "v1", tc.files...))
	}
	s.WaitIdle(t)
	for i, tc := range cases {
		desc, m := s.Manifest(t, tc.repo, "v1")
		require.Equal(t, pushed[i].Digest, desc.Digest, "%s must not be rewritten", tc.repo)
		require.Empty(t, m.Annotations[registry.AnnotationDescription])
	}
	require.Zero(t, len(s.Model.Calls()))
}

func TestSeveralPhotosInOneArtifact(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	a := stacktest.JPEG(t, 300, 200, 3)
	b := stacktest.PNG(t, 200, 300, 4)
	s.Push(t, "albums/summer", "2026",
		stacktest.File{Name: "beach.jpg", MediaType: "image/jpeg", Data: a},
		stacktest.File{Name: "notes.txt", MediaType: "text/plain", Data: []byte("hello")},
		stacktest.File{Name: "dunes.png", MediaType: "image/png", Data: b},
	)
	_, m := s.WaitDescribed(t, "albums/summer", "2026")
	s.WaitIdle(t)

	require.Equal(t, "beach.jpg: "+expectedText(a)+"\ndunes.png: "+expectedText(b), m.Annotations[registry.AnnotationDescription])
	require.Equal(t, expectedText(a), m.Layers[0].Annotations[registry.AnnotationDescription])
	require.Empty(t, m.Layers[1].Annotations[registry.AnnotationDescription])
	require.Equal(t, expectedText(b), m.Layers[2].Annotations[registry.AnnotationDescription])
	require.Equal(t, "beach.jpg", m.Layers[0].Annotations[ocispec.AnnotationTitle])
	require.Equal(t, 2, len(s.Model.Calls()))
}

func TestProcessWritesBack(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Workers: -1})
	photo := stacktest.JPEG(t, 320, 240, 5)
	file := stacktest.File{Name: "storm.jpg", MediaType: "image/jpeg", Data: photo}
	ctx := context.Background()

	t.Run("pushed by digest moves no tag", func(t *testing.T) {
		pushed := s.Push(t, "photos/storm", "", file)
		wk := newWorker(t, s)
		res, err := wk.Process(ctx, queue.Job{Version: 1, Registry: s.RegistryHost, Repository: "photos/storm", Digest: pushed.Digest.String(), Source: "test"})
		require.NoError(t, err)
		require.False(t, res.Written.TagMoved)
		_, m := s.Manifest(t, "photos/storm", res.Written.Descriptor.Digest.String())
		require.Equal(t, expectedText(photo), m.Annotations[registry.AnnotationDescription])

		// A redelivered job writes nothing new: same bytes, same digest.
		again, err := wk.Process(ctx, queue.Job{Version: 1, Registry: s.RegistryHost, Repository: "photos/storm", Digest: pushed.Digest.String(), Source: "test"})
		require.NoError(t, err)
		require.Equal(t, res.Written.Descriptor, again.Written.Descriptor)
		require.True(t, again.Written.AlreadyThere)
		require.Equal(t, 1, len(s.Model.Calls()))

		// Describing the annotated manifest is a skip: the description is there.
		_, err = wk.Process(ctx, queue.Job{Version: 1, Registry: s.RegistryHost, Repository: "photos/storm", Digest: res.Written.Descriptor.Digest.String(), Source: "test"})
		require.True(t, fault.Is(err, fault.KindSkip), "%v", err)

		// A job a person forced (reprocess --force, describe --force)
		// describes it again, even though the description is its own.
		forced, err := wk.Process(ctx, queue.Job{Version: 1, Registry: s.RegistryHost, Repository: "photos/storm", Digest: res.Written.Descriptor.Digest.String(), Source: "test", Force: true})
		require.NoError(t, err)
		require.Equal(t, 1, forced.ModelCalls)
		require.Equal(t, 2, len(s.Model.Calls()))
	})
	t.Run("a new description keeps nothing of the old one it does not say", func(t *testing.T) {
		s.Push(t, "photos/sign", "latest", stacktest.File{Name: "sign.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 120, 90, 7)})
		wk := newWorker(t, s)
		job := queue.Job{Version: 1, Registry: s.RegistryHost, Repository: "photos/sign", Tag: "latest", Source: "test"}
		corrected := job
		corrected.Correction = &queue.Correction{Description: "An exit sign.", Alt: "Exit sign", Keywords: []string{"sign"}, Text: "EXIT", By: "ann", At: time.Now()}
		_, err := wk.Process(ctx, corrected)
		require.NoError(t, err)
		_, m := s.Manifest(t, "photos/sign", "latest")
		require.Equal(t, "EXIT", m.Annotations[registry.AnnotationText])

		s.Model.Answer = func(modeltest.Call) modeltest.Reply { return modeltest.JSON("A green sign on a wall.", "") }
		t.Cleanup(func() { s.Model.Answer = nil })
		forced := job
		forced.Force = true
		_, err = wk.Process(ctx, forced)
		require.NoError(t, err)
		_, m = s.Manifest(t, "photos/sign", "latest")
		require.Equal(t, "A green sign on a wall.", m.Annotations[registry.AnnotationDescription])
		require.NotContains(t, m.Annotations, registry.AnnotationText, "the old visible text is not the new description's")
		require.NotContains(t, m.Annotations, registry.AnnotationKeywords)
		require.NotEqual(t, "Exit sign", m.Annotations[registry.AnnotationAlt])
	})
	t.Run("a tag that moved on is left alone", func(t *testing.T) {
		old := s.Push(t, "photos/moved", "latest", file)
		newer := s.Push(t, "photos/moved", "latest", stacktest.File{Name: "other.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 64, 64, 6)})
		res, err := newWorker(t, s).Process(ctx, queue.Job{Version: 1, Registry: s.RegistryHost, Repository: "photos/moved", Digest: old.Digest.String(), Tag: "latest", Source: "test"})
		require.NoError(t, err)
		require.True(t, res.Written.TagMovedOn)
		desc, _ := s.Manifest(t, "photos/moved", "latest")
		require.Equal(t, newer.Digest, desc.Digest)
	})
	t.Run("a registry that is not configured is refused", func(t *testing.T) {
		_, err := newWorker(t, s).Process(ctx, queue.Job{Version: 1, Registry: "attacker.example:443", Repository: "x", Digest: "sha256:" + strings.Repeat("0", 64), Source: "test"})
		require.True(t, fault.Is(err, fault.KindPermanent), "%v", err)
		require.ErrorContains(t, err, "not configured")
	})
}

func newWorker(t *testing.T, s *stacktest.Stack) *worker.Worker {
	return worker.New(s.Client, s.Describer, s.Memory, worker.Options{Logger: stacktest.Logger(t)})
}

func TestCorruptPhotoFailsForGoodAndWorkerGoesOn(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	good := stacktest.JPEG(t, 200, 200, 7)
	corrupt := append([]byte(nil), good[:len(good)/3]...) // a valid header, then nothing
	s.Push(t, "photos/broken", "latest", stacktest.File{Name: "broken.jpg", MediaType: "image/jpeg", Data: corrupt})
	s.Push(t, "photos/fine", "latest", stacktest.File{Name: "fine.jpg", MediaType: "image/jpeg", Data: good})
	s.WaitDescribed(t, "photos/fine", "latest")
	s.WaitIdle(t)
	_, m := s.Manifest(t, "photos/broken", "latest")
	require.Empty(t, m.Annotations[registry.AnnotationDescription])
	require.Equal(t, 1, len(s.Model.Calls()), "the corrupt photo never reaches the model")

	_, err := newWorker(t, s).Process(context.Background(), queue.Job{Version: 1, Registry: s.RegistryHost, Repository: "photos/broken", Tag: "latest", Source: "test"})
	require.True(t, fault.Is(err, fault.KindPermanent), "%v", err)

	// Each delivery of the broken photo (by digest, then by tag) is a dead
	// letter with the reason, after one attempt.
	dead, err := queue.DeadLetters(context.Background(), s.JS)
	require.NoError(t, err)
	require.Len(t, dead, 2)
	for _, d := range dead {
		require.Equal(t, "photos/broken", d.Job.Repository)
		require.Equal(t, 1, d.Attempts)
		require.Contains(t, d.Error, "corrupt")
	}
}

func TestMalformedJobIsTerminated(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{})
	_, err := s.JS.PublishMsg(context.Background(), &nats.Msg{Subject: queue.Subject("test"), Data: []byte(`{"v":1,"registry":`)})
	require.NoError(t, err)
	s.WaitIdle(t)
	info, err := s.Consumer.Info(context.Background())
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.AckFloor.Stream, "the malformed job was settled once")
	require.Zero(t, len(s.Model.Calls()))
	dead, err := queue.DeadLetters(context.Background(), s.JS)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	require.Contains(t, dead[0].Error, "malformed job")
	require.Contains(t, dead[0].Error, `{"v":1,"registry":`, "the raw job is kept")
}

func TestUnreachableModelKeepsJobsQueuedUntilItIsBack(t *testing.T) {
	t.Parallel()
	// Reserve an address, then leave it closed: connections are refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	s := stacktest.Start(t, stacktest.Options{OllamaURL: "http://" + addr, MaxAttempts: 2})
	photo := stacktest.JPEG(t, 200, 150, 8)
	s.Push(t, "photos/waiting", "latest", stacktest.File{Name: "w.jpg", MediaType: "image/jpeg", Data: photo})

	// The job is taken, meets the refused connection and waits, without
	// spending its (two) attempts.
	require.Eventually(t, func() bool {
		info, err := s.Consumer.Info(context.Background())
		return err == nil && info.NumAckPending >= 1
	}, 10*time.Second, 20*time.Millisecond)
	time.Sleep(1500 * time.Millisecond)
	_, m := s.Manifest(t, "photos/waiting", "latest")
	require.Empty(t, m.Annotations[registry.AnnotationDescription])

	// The model comes back on the same address.
	back := modeltest.NewUnstartedOllama(stacktest.Model)
	back.Listener, err = net.Listen("tcp", addr)
	require.NoError(t, err)
	back.Start()
	t.Cleanup(back.Close)

	_, m = s.WaitDescribed(t, "photos/waiting", "latest")
	require.Equal(t, expectedText(photo), m.Annotations[registry.AnnotationDescription])
	s.WaitIdle(t)
	require.Equal(t, 1, len(back.Calls()))
}

func TestModelErrorsAreClassified(t *testing.T) {
	t.Parallel()
	s := stacktest.Start(t, stacktest.Options{Workers: -1})
	photo := stacktest.JPEG(t, 100, 100, 9)
	pushed := s.Push(t, "photos/errors", "", stacktest.File{Name: "e.jpg", MediaType: "image/jpeg", Data: photo})
	job := queue.Job{Version: 1, Registry: s.RegistryHost, Repository: "photos/errors", Digest: pushed.Digest.String(), Source: "test"}
	cases := []struct {
		name  string
		reply modeltest.Reply
		kind  fault.Kind
	}{
		{"server error retries", modeltest.Reply{Status: http.StatusInternalServerError, Content: "runner crashed"}, fault.KindRetry},
		{"overloaded retries", modeltest.Reply{Status: http.StatusTooManyRequests, Content: "busy"}, fault.KindRetry},
		{"bad request is permanent", modeltest.Reply{Status: http.StatusBadRequest, Content: "image: unknown format"}, fault.KindPermanent},
		{"empty answer retries", modeltest.Reply{Content: "   "}, fault.KindRetry},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.Model.Answer = func(modeltest.Call) modeltest.Reply { return tc.reply }
			_, err := newWorker(t, s).Process(context.Background(), job)
			require.Error(t, err)
			require.True(t, fault.Is(err, tc.kind), "want %v, got %v", tc.kind, err)
			if tc.reply.Status >= 400 {
				require.ErrorContains(t, err, tc.reply.Content, "the server's message is kept")
			}
		})
	}
	s.Model.Answer = func(modeltest.Call) modeltest.Reply {
		return modeltest.Reply{Content: "**This image shows** a \"dune\" at dusk.\n\nIt is quiet."}
	}
	res, err := newWorker(t, s).Process(context.Background(), job)
	require.NoError(t, err)
	require.Equal(t, "A \"dune\" at dusk. It is quiet.", res.Descriptions[0].Text, "prose answers still give a description")
}

// A phone photo pushed as image/heic (stored turned, with an irot property
// as iPhones write it) is described: the model gets it as an upright JPEG.
func TestPushedHEICIsDescribed(t *testing.T) {
	t.Parallel()
	heic, err := os.ReadFile("../internal/imageprep/testdata/quadrants-irot3.heic")
	require.NoError(t, err)
	s := stacktest.Start(t, stacktest.Options{})
	s.Push(t, "photos/phone", "latest", stacktest.File{Name: "IMG_0001.HEIC", MediaType: "image/heic", Data: heic})

	_, m := s.WaitDescribed(t, "photos/phone", "latest")
	s.WaitIdle(t)
	calls := s.Model.Calls()
	require.Len(t, calls, 1)
	require.Equal(t, "A test photo "+modeltest.Digest(calls[0].Images[0])[:19]+".", m.Annotations[registry.AnnotationDescription])
	got, format, err := image.Decode(bytes.NewReader(calls[0].Images[0]))
	require.NoError(t, err)
	require.Equal(t, "jpeg", format, "the model is sent a JPEG, not the HEIC")
	require.Equal(t, image.Rect(0, 0, 256, 128), got.Bounds(), "turned upright: 256x128 as displayed")
	// Upright: red at the top left, white at the bottom right.
	r, g, b, _ := got.At(64, 32).RGBA()
	require.True(t, r>>8 > 200 && g>>8 < 80 && b>>8 < 80, "top left is red, got %d,%d,%d", r>>8, g>>8, b>>8)
	r, g, b, _ = got.At(192, 96).RGBA()
	require.True(t, r>>8 > 200 && g>>8 > 200 && b>>8 > 200, "bottom right is white, got %d,%d,%d", r>>8, g>>8, b>>8)
}
