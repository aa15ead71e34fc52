package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2/content"

	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/notifier"
	"github.com/regscribe/regscribe/worker"
)

// announceFirst makes go-containerregistry's registry (which sends no
// notifications) behave as CNCF Distribution does: a manifest PUT by tag is
// stored, announced, and only then linked to the tag (held by the gate).
// Every manifest PUT is announced, regscribe's own too.
func announceFirst(gate *stacktest.TagLinkGate, notify func(repo, tag string, d ocispec.Descriptor)) func(http.Handler) http.Handler {
	put := regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m := put.FindStringSubmatch(r.URL.Path)
			if r.Method != http.MethodPut || m == nil {
				next.ServeHTTP(w, r)
				gate.Resolved(r)
				return
			}
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			d := content.NewDescriptorFromBytes(r.Header.Get("Content-Type"), body)
			tag := m[2]
			if strings.Contains(tag, ":") {
				tag = ""
			}
			// Stored by digest, announced, then linked.
			store := r.Clone(r.Context())
			store.URL.Path = "/v2/" + m[1] + "/manifests/" + d.Digest.String()
			store.Body = io.NopCloser(bytes.NewReader(body))
			rec := &discard{header: http.Header{}}
			next.ServeHTTP(rec, store)
			if rec.status != http.StatusCreated {
				http.Error(w, "store failed", rec.status)
				return
			}
			notify(m[1], tag, d)
			if tag != "" {
				gate.Hold(m[1], tag)
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			next.ServeHTTP(w, r)
		})
	}
}

// discard is a ResponseWriter that keeps only the status.
type discard struct {
	header http.Header
	status int
}

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(status int)      { d.status = status }

// A photo pushed to a tag that holds an earlier, described push is
// described at that tag every time: the same photo again (byte for byte:
// the fastest job, whose description is on the tag already) and another
// photo, 20 pushes in a row, with the registry linking each push only
// after its job has looked at the tag (the race, provoked every time), on
// the disk-backed CNCF Distribution of `regscribe up` and on
// go-containerregistry's registry announcing as Distribution does.
func TestRepushedTagIsDescribedEveryTime(t *testing.T) {
	t.Parallel()
	const pushes = 20
	for _, reg := range []string{"distribution", "ggcr"} {
		t.Run(reg, func(t *testing.T) {
			t.Parallel()
			gate := &stacktest.TagLinkGate{}
			logs := &stacktest.LogBuffer{}
			opts := stacktest.Options{Worker: worker.Options{Mode: worker.ModeAnnotation,
				Logger: slog.New(slog.NewTextHandler(io.MultiWriter(logs, testLog(t)), &slog.HandlerOptions{Level: slog.LevelDebug}))}}
			var started atomic.Pointer[stacktest.Stack]
			if reg == "distribution" {
				opts.RegistryOnDisk = true
				opts.RegistryStorage, opts.RegistryProxy = gate.Storage, gate.Watch
			} else {
				opts.ReferrersAPI = true
				opts.RegistryHook = announceFirst(gate, func(repo, tag string, d ocispec.Descriptor) {
					if s := started.Load(); s != nil {
						if err := announce(s, repo, tag, d); err != nil {
							t.Error(err)
						}
					}
				})
			}
			s := stacktest.Start(t, opts)
			started.Store(s)

			photos := make([]photoManifest, 3)
			for i := range photos {
				photos[i] = newPhotoManifest(t, s, "photos/x", uint64(40+i))
			}
			for i := range pushes {
				// A, B, B again, C, C again, A, A again, …
				n := (i + 1) / 2 % len(photos)
				p := photos[n]
				s.WaitIdle(t)
				gate.Arm("photos/x", "latest")
				p.push(t, s, "latest")
				require.Equal(t, i+1, gate.Races(), "push %d: the registry linked the tag before the job looked", i)
				require.Eventually(t, func() bool {
					_, m := s.Manifest(t, "photos/x", "latest")
					return p.describedBy(m)
				}, 20*time.Second, 20*time.Millisecond, "push %d (photo %d): the tag does not end on its description", i, n)
			}
			s.WaitIdle(t)
			_, m := s.Manifest(t, "photos/x", "latest")
			require.True(t, photos[pushes/2%len(photos)].describedBy(m))
			require.NotContains(t, logs.String(), "may have been overwritten")
			require.NotContains(t, logs.String(), "has not linked the tag to it:")
			require.Contains(t, logs.String(), "has not linked the tag to it yet; waiting for the link")
		})
	}
}

// testLog is where a test's log lines go with -v.
func testLog(t *testing.T) io.Writer {
	if testing.Verbose() {
		return tWriter{t}
	}
	return io.Discard
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// photoManifest is one photo's manifest, the same bytes at every push.
type photoManifest struct {
	repo  string
	raw   []byte
	desc  ocispec.Descriptor
	layer ocispec.Descriptor
	text  string
}

func newPhotoManifest(t *testing.T, s *stacktest.Stack, repo string, seed uint64) photoManifest {
	t.Helper()
	ctx := context.Background()
	r := s.Repository(t, repo)
	photo := stacktest.JPEG(t, 64, 48, seed)
	layer := content.NewDescriptorFromBytes("image/jpeg", photo)
	layer.Annotations = map[string]string{ocispec.AnnotationTitle: fmt.Sprintf("photo-%d.jpg", seed)}
	require.NoError(t, r.Blobs().Push(ctx, layer, bytes.NewReader(photo)))
	require.NoError(t, r.Blobs().Push(ctx, ocispec.DescriptorEmptyJSON, bytes.NewReader(ocispec.DescriptorEmptyJSON.Data)))
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: "application/vnd.example.photo",
		Config:       ocispec.DescriptorEmptyJSON,
		Layers:       []ocispec.Descriptor{layer},
		Annotations:  map[string]string{ocispec.AnnotationCreated: time.Date(2026, 1, 1, 0, 0, int(seed), 0, time.UTC).Format(time.RFC3339)},
	}
	raw, err := json.Marshal(m)
	require.NoError(t, err)
	return photoManifest{repo: repo, raw: raw, desc: content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, raw), layer: layer, text: expectedText(photo)}
}

// push pushes the manifest by tag in one request, as `oras push` does.
func (p photoManifest) push(t *testing.T, s *stacktest.Stack, tag string) {
	t.Helper()
	require.NoError(t, s.Repository(t, p.repo).Manifests().PushReference(context.Background(), p.desc, bytes.NewReader(p.raw), tag))
}

// describedBy reports whether m is this photo's manifest with its
// description.
func (p photoManifest) describedBy(m ocispec.Manifest) bool {
	return len(m.Layers) == 1 && m.Layers[0].Digest == p.layer.Digest && m.Annotations[registry.AnnotationDescription] == p.text
}

// announce posts Distribution's notification of a manifest push to the
// stack's notifier, as the registry would.
func announce(s *stacktest.Stack, repo, tag string, d ocispec.Descriptor) error {
	body, err := json.Marshal(map[string]any{"events": []any{map[string]any{
		"id": digest.FromString(fmt.Sprint(time.Now().UnixNano(), repo, tag, d.Digest)).Encoded()[:16], "timestamp": time.Now().UTC(),
		"action": "push", "target": map[string]any{"mediaType": d.MediaType, "digest": d.Digest, "size": d.Size, "repository": repo, "tag": tag},
		"request": map[string]any{"useragent": "oras/1.3.6"},
	}}})
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, s.NotifierURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("Content-Type", notifier.MediaTypeDistributionEvents)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("notifier answered %s", resp.Status)
	}
	return nil
}
