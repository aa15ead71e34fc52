package registry_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// user is a person's client of the registry at backend (http://host:port),
// past any proxy, on photos/dunes, and how it pushes a manifest (untagged)
// named name.
func user(t *testing.T, backend string) (*remote.Repository, func(ctx context.Context, name string) ocispec.Descriptor) {
	direct, err := remote.NewRepository(strings.TrimPrefix(backend, "http://") + "/photos/dunes")
	require.NoError(t, err)
	direct.PlainHTTP = true
	return direct, func(ctx context.Context, name string) ocispec.Descriptor {
		d, err := oras.PackManifest(ctx, direct, oras.PackManifestVersion1_1, "application/vnd.example.photo",
			oras.PackManifestOptions{ManifestAnnotations: map[string]string{ocispec.AnnotationTitle: name}})
		require.NoError(t, err)
		return d
	}
}

// A user's push to a tag can race regscribe's move of the same tag. The
// race is driven through a proxy that lets the user's push land right
// before, or right after, regscribe's PUT of the tag.
func TestTagMoveRace(t *testing.T) {
	t.Parallel()
	for _, reg := range registries {
		for _, userPushes := range []string{"before", "after"} {
			t.Run(reg.name+"/user push lands "+userPushes, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				backend := reg.start(t)
				direct, pack := user(t, backend)
				push := func(name string) ocispec.Descriptor {
					d := pack(ctx, name)
					require.NoError(t, direct.Tag(ctx, d, "latest"))
					return d
				}
				var pushed ocispec.Descriptor
				var raced atomic.Bool
				host := proxy(t, backend, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
					if r.Method != http.MethodPut || !strings.HasSuffix(r.URL.Path, "/manifests/latest") || raced.Swap(true) {
						next.ServeHTTP(w, r)
						return
					}
					if userPushes == "before" {
						pushed = push("user")
					}
					next.ServeHTTP(w, r)
					if userPushes == "after" {
						pushed = push("user")
					}
				})
				var logs stacktest.LogBuffer
				c, err := registry.New([]registry.Endpoint{{Host: host, PlainHTTP: true}}, registry.Options{
					Credentials: credentials.NewMemoryStore(), HTTPClient: &http.Client{},
					Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				require.NoError(t, err)
				repo, err := c.Repository(host, "photos/dunes")
				require.NoError(t, err)
				edit := registry.Edit{Manifest: map[string]string{registry.AnnotationDescription: "Dunes.", registry.AnnotationModel: "ollama/m"}}

				first := push("first")
				m, err := c.FetchManifest(ctx, repo, first.Digest.String())
				require.NoError(t, err)
				w, err := c.WriteAnnotation(ctx, repo, m, edit, "latest")
				require.NoError(t, err)
				require.True(t, raced.Load())
				now, err := direct.Resolve(ctx, "latest")
				require.NoError(t, err)

				if userPushes == "after" {
					// The newer push owns the tag: regscribe saw it and says
					// so rather than claim the tag.
					require.Equal(t, pushed.Digest, now.Digest)
					require.False(t, w.TagMoved)
					require.True(t, w.TagMovedOn)
					return
				}
				// Overwritten: regscribe cannot see it from its own write...
				require.Equal(t, w.Descriptor.Digest, now.Digest)
				require.True(t, w.TagMoved)
				require.Empty(t, logs.Lines("WARN"))
				// ...but the user push's own job finds its tag on a manifest
				// regscribe annotated from another one, and warns.
				um, err := c.FetchManifest(ctx, repo, pushed.Digest.String())
				require.NoError(t, err)
				uw, err := c.WriteAnnotation(ctx, repo, um, edit, "latest")
				require.NoError(t, err)
				require.True(t, uw.TagMovedOn)
				warns := logs.Lines("WARN")
				require.Len(t, warns, 1)
				for _, want := range []string{"tag=latest", "manifest=" + pushed.Digest.String(), "tag_now=" + w.Descriptor.Digest.String(), "overwritten"} {
					require.Contains(t, warns[0], want)
				}
			})
		}
	}
}

// TestOriginalDroppedOnTagMove: a registry that drops the manifest a tag
// move left (as zot does; here Distribution behind a proxy that deletes the
// old digest after each tag PUT) is detected after an annotation-mode
// write-back, and said once per registry.
func TestOriginalDroppedOnTagMove(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	backend := registries[0].start(t)
	for _, drops := range []bool{false, true} {
		var asked atomic.Int32 // HEADs of a manifest by digest: the originals
		host := proxy(t, backend, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			_, ref, _ := strings.Cut(r.URL.Path, "/manifests/")
			if r.Method == http.MethodHead && strings.HasPrefix(ref, "sha256:") {
				asked.Add(1)
			}
			if !drops || r.Method != http.MethodPut || ref == "" || strings.HasPrefix(ref, "sha256:") {
				next.ServeHTTP(w, r)
				return
			}
			head, err := http.NewRequestWithContext(r.Context(), http.MethodHead, backend+r.URL.Path, nil)
			require.NoError(t, err)
			head.Header.Set("Accept", ocispec.MediaTypeImageManifest)
			resp, err := http.DefaultClient.Do(head)
			require.NoError(t, err)
			resp.Body.Close()
			old := resp.Header.Get("Docker-Content-Digest")
			next.ServeHTTP(w, r)
			if old != "" {
				del, err := http.NewRequestWithContext(r.Context(), http.MethodDelete, backend+strings.TrimSuffix(r.URL.Path, ref)+old, nil)
				require.NoError(t, err)
				resp, err := http.DefaultClient.Do(del)
				require.NoError(t, err)
				resp.Body.Close()
			}
		})
		var logs stacktest.LogBuffer
		c, err := registry.New([]registry.Endpoint{{Host: host, PlainHTTP: true}}, registry.Options{
			Credentials: credentials.NewMemoryStore(), HTTPClient: &http.Client{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		require.NoError(t, err)
		for i, name := range []string{"photos/one", "photos/two"} {
			repo, err := c.Repository(host, name)
			require.NoError(t, err)
			d, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.example.photo",
				oras.PackManifestOptions{ManifestAnnotations: map[string]string{ocispec.AnnotationTitle: name}})
			require.NoError(t, err)
			require.NoError(t, repo.Tag(ctx, d, "latest"))
			m, err := c.FetchManifest(ctx, repo, d.Digest.String())
			require.NoError(t, err)
			w, err := c.WriteAnnotation(ctx, repo, m, registry.Edit{Manifest: map[string]string{registry.AnnotationDescription: "x", registry.AnnotationModel: "ollama/m"}}, "latest")
			require.NoError(t, err)
			require.True(t, w.TagMoved)
			require.Equal(t, drops, w.OriginalGone, "photo %d", i)
		}
		require.EqualValues(t, 1, asked.Load(), "a registry is asked on its first tag move only")
		warns := logs.Lines("WARN")
		if !drops {
			require.Empty(t, warns)
			continue
		}
		require.Len(t, warns, 1, "said once per registry")
		require.Contains(t, warns[0], "REGSCRIBE_MODE=referrer")
	}
}

// Distribution announces a push before it links the pushed tag (the
// manifest is stored, the notification queued, then the tag linked), so a
// quick worker can find the tag its job names not there yet. That is a
// retry, never a skip: a skip would leave the photo undescribed for good.
func TestTagNotLinkedYetIsARetry(t *testing.T) {
	t.Parallel()
	for _, reg := range registries {
		t.Run(reg.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			backend := reg.start(t)
			host := strings.TrimPrefix(backend, "http://")
			c, err := registry.New([]registry.Endpoint{{Host: host, PlainHTTP: true}}, registry.Options{
				Credentials: credentials.NewMemoryStore(), HTTPClient: &http.Client{}})
			require.NoError(t, err)
			repo, err := c.Repository(host, "photos/early")
			require.NoError(t, err)
			d, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, "application/vnd.example.photo", oras.PackManifestOptions{})
			require.NoError(t, err)
			m, err := c.FetchManifest(ctx, repo, d.Digest.String())
			require.NoError(t, err)
			edit := registry.Edit{Manifest: map[string]string{registry.AnnotationDescription: "Early.", registry.AnnotationModel: "ollama/m"}}

			_, err = c.WriteAnnotation(ctx, repo, m, edit, "latest")
			require.Error(t, err)
			require.True(t, fault.Is(err, fault.KindRetry), "a tag not linked yet is tried again: %v", err)

			require.NoError(t, repo.Tag(ctx, d, "latest"))
			w, err := c.WriteAnnotation(ctx, repo, m, edit, "latest")
			require.NoError(t, err)
			require.True(t, w.TagMoved)
		})
	}
}
