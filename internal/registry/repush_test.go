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
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/registry"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// A push to a tag that holds an earlier push is announced before the
// registry links the tag (CNCF Distribution): its write-back finds the tag
// on the earlier push's manifest. The tag's record, not a guess, decides:
// its own push still the last announced means wait for the link (or, if a
// move of regscribe's for the earlier push took the tag, restore it); a
// later push announced means leave the tag to that push's job. The
// registry links the tag here only once the write-back has seen it
// elsewhere, so the race happens every time.
func TestTagRecordDecidesARepush(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// link: the registry links the tag to the push after the write-back
		// first finds it elsewhere.
		link bool
		// samePhoto: the push is the earlier photo again (its description
		// is on the tag already).
		samePhoto bool
		// later: a later push is announced after this one.
		later bool
		// taken: the tag stays on regscribe's move for the earlier push
		// (that move overwrote this push).
		taken bool
		// unlinked: the tag stays on an undescribed earlier push.
		unlinked bool
		// wantTag: what the tag ends on: "push" (this push's description),
		// "earlier" (where it was), "same".
		wantTag string
		wantLog string // the line that says what happened
		warn    bool
	}{
		{name: "another photo, linked late", link: true, wantTag: "push", wantLog: "the registry linked the tag to this push"},
		{name: "same photo again, linked late", link: true, samePhoto: true, wantTag: "push", wantLog: "the registry linked the tag to this push"},
		{name: "a later push announced", later: true, wantTag: "earlier", wantLog: "a later push of the tag was announced"},
		{name: "regscribe's earlier move took the tag", taken: true, wantTag: "push", wantLog: "took the tag from this push"},
		{name: "never linked", unlinked: true, wantTag: "earlier", wantLog: "has not linked the tag to it", warn: true},
	}
	for _, reg := range registries {
		for _, tc := range cases {
			t.Run(reg.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				backend := reg.start(t)
				direct, packIn := user(t, backend)
				pack := func(name string) ocispec.Descriptor { return packIn(ctx, name) }
				// linkOnResolve is set to the push to link once the
				// write-back has resolved the tag.
				var linkOnResolve atomic.Pointer[ocispec.Descriptor]
				host := proxy(t, backend, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
					next.ServeHTTP(w, r)
					if strings.HasSuffix(r.URL.Path, "/manifests/latest") && (r.Method == http.MethodHead || r.Method == http.MethodGet) {
						if d := linkOnResolve.Swap(nil); d != nil {
							require.NoError(t, direct.Tag(context.Background(), *d, "latest"))
						}
					}
				})
				tags, err := queue.OpenTags(ctx, stacktest.JetStream(t), 1)
				require.NoError(t, err)
				var logs stacktest.LogBuffer
				c, err := registry.New([]registry.Endpoint{{Host: host, PlainHTTP: true}}, registry.Options{
					Credentials: credentials.NewMemoryStore(), HTTPClient: &http.Client{}, Tags: tags, TagWait: time.Second,
					Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				require.NoError(t, err)
				repo, err := c.Repository(host, "photos/dunes")
				require.NoError(t, err)
				at := time.Now()
				event := 0
				announce := func(d ocispec.Descriptor) {
					event++
					at = at.Add(time.Second)
					_, err := tags.Announce(ctx, queue.TagAnnouncement{Registry: host, Repository: "photos/dunes", Tag: "latest",
						Digest: d.Digest.String(), Event: "id:" + string(rune('a'+event)), At: at})
					require.NoError(t, err)
				}
				describe := func(d ocispec.Descriptor, text string) (registry.Written, error) {
					m, err := c.FetchManifest(ctx, repo, d.Digest.String())
					require.NoError(t, err)
					return c.WriteAnnotation(ctx, repo, m, registry.Edit{Manifest: map[string]string{registry.AnnotationDescription: text, registry.AnnotationModel: "ollama/m"}}, "latest")
				}

				// The earlier push, described: the tag is on regscribe's move.
				earlier := pack("earlier")
				if tc.unlinked {
					require.NoError(t, direct.Tag(ctx, earlier, "latest"))
					announce(earlier)
				} else {
					require.NoError(t, direct.Tag(ctx, earlier, "latest"))
					announce(earlier)
					w, err := describe(earlier, "earlier")
					require.NoError(t, err)
					require.True(t, w.TagMoved)
				}
				before, err := direct.Resolve(ctx, "latest")
				require.NoError(t, err)

				push := earlier
				if !tc.samePhoto {
					push = pack("push")
				}
				announce(push) // announced, not linked
				if tc.later {
					announce(pack("later"))
				}
				if tc.link {
					linkOnResolve.Store(&push)
				}
				text := "push"
				if tc.samePhoto {
					text = "earlier"
				}
				w, err := describe(push, text)
				require.NoError(t, err)
				require.Nil(t, linkOnResolve.Load(), "the write-back resolved the tag before the link")

				now, err := direct.Resolve(ctx, "latest")
				require.NoError(t, err)
				switch tc.wantTag {
				case "push":
					require.Equal(t, w.Descriptor.Digest, now.Digest, "the tag ends on this push's description")
					require.True(t, w.TagMoved)
				case "earlier":
					require.Equal(t, before.Digest, now.Digest, "the tag is left where it was")
					require.False(t, w.TagMoved)
				}
				require.Equal(t, tc.later, w.TagMovedOn)
				require.Equal(t, tc.unlinked, w.TagNeverLinked)
				all := strings.Join(append(logs.Lines("INFO"), logs.Lines("WARN")...), "\n")
				require.Contains(t, all, tc.wantLog)
				require.NotContains(t, all, "may have been overwritten")
				if !tc.warn {
					require.Empty(t, logs.Lines("WARN"))
				}
			})
		}
	}
}
