package registry_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/require"
	"oras.land/oras-go/v2/registry/remote"
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
				var logs stacktest.LogBuffer
				tw := newTagWriter(t, ctx, host, &logs)
				event := 0
				announce := func(d ocispec.Descriptor) {
					event++
					tw.announce(d, "id:"+string(rune('a'+event)))
				}
				describe := func(d ocispec.Descriptor, text string) (registry.Written, error) { return tw.write(d, text, "") }

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

// Two pushes of a tag in flight at once: the registry stores and announces
// each, then links the tag, and the earlier push's link can land after the
// later one's (slow storage). The later push, announced last, is the
// newest: an earlier push's job that finds the tag on its own manifest
// writes its description by digest and moves the tag back to the later
// push's description when that push's job wrote one, and leaves the tag to
// that job when it has not run yet.
func TestEarlierPushLinkedAfterALaterOne(t *testing.T) {
	t.Parallel()
	for _, reg := range registries {
		for _, laterDescribed := range []bool{true, false} {
			name := reg.name + "/later push not described yet"
			if laterDescribed {
				name = reg.name + "/later push described"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				backend := reg.start(t)
				direct, packIn := user(t, backend)
				host := strings.TrimPrefix(backend, "http://")
				var logs stacktest.LogBuffer
				tw := newTagWriter(t, ctx, host, &logs)
				announce, describe := tw.announce, tw.describe

				earlier, later := packIn(ctx, "earlier"), packIn(ctx, "later")
				announce(earlier, "id:earlier")
				announce(later, "id:later")
				require.NoError(t, direct.Tag(ctx, later, "latest"))
				var laterDesc registry.Written
				if laterDescribed {
					laterDesc = describe(later, "later", "id:later")
					require.True(t, laterDesc.TagMoved)
				}
				require.NoError(t, direct.Tag(ctx, earlier, "latest")) // the earlier push's link, landing last

				w := describe(earlier, "earlier", "id:earlier")
				require.True(t, w.TagMovedOn, "the earlier push's description is not at the tag")
				require.False(t, w.TagMoved)
				exists, err := direct.Exists(ctx, w.Descriptor)
				require.NoError(t, err)
				require.True(t, exists, "the earlier push's description is written by digest")
				now, err := direct.Resolve(ctx, "latest")
				require.NoError(t, err)
				info := strings.Join(logs.Lines("INFO"), "\n")
				if laterDescribed {
					require.Equal(t, laterDesc.Descriptor.Digest, now.Digest, "the tag is back on the later push's description")
					require.Contains(t, info, "moved back to the later push's description")
					// The move back is regscribe's own: its announcement is no push.
					own, err := tw.tags.Announce(ctx, queue.TagAnnouncement{Registry: host, Repository: "photos/dunes", Tag: "latest",
						Digest: now.Digest.String(), Event: "id:move-back", At: tw.at.Add(time.Second)})
					require.NoError(t, err)
					require.True(t, own)
				} else {
					require.Equal(t, earlier.Digest, now.Digest, "the tag is left to the later push's job")
					require.Contains(t, info, "that push's job describes it")
				}
				require.Empty(t, logs.Lines("WARN"))
			})
		}
	}
}

// A job not made from an announcement (reprocess, reconcile) is not placed
// in the record's order: a push whose announcement was lost is described at
// its tag even though the record names an earlier push, described.
func TestPushWithALostAnnouncementDescribedAtItsTag(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	backend := registries[0].start(t)
	direct, packIn := user(t, backend)
	host := strings.TrimPrefix(backend, "http://")
	tw := newTagWriter(t, ctx, host, io.Discard)
	earlier := packIn(ctx, "earlier")
	require.NoError(t, direct.Tag(ctx, earlier, "latest"))
	tw.announce(earlier, "id:earlier")
	require.True(t, tw.describe(earlier, "earlier", "id:earlier").TagMoved)

	lost := packIn(ctx, "lost") // pushed; its announcement never came
	require.NoError(t, direct.Tag(ctx, lost, "latest"))
	w := tw.describe(lost, "lost", "")
	require.True(t, w.TagMoved)
	now, err := direct.Resolve(ctx, "latest")
	require.NoError(t, err)
	require.Equal(t, w.Descriptor.Digest, now.Digest)
}

// tagWriter writes descriptions of photos/dunes:latest at host back with
// a client whose tag moves are decided by a tag record store, as a
// worker's are, and announces pushes to that store as the notifier does.
type tagWriter struct {
	t    *testing.T
	ctx  context.Context
	host string
	c    *registry.Client
	repo *remote.Repository
	tags *queue.Tags
	at   time.Time // of the last announcement
}

func newTagWriter(t *testing.T, ctx context.Context, host string, log io.Writer) *tagWriter {
	tags, err := queue.OpenTags(ctx, stacktest.JetStream(t), 1)
	require.NoError(t, err)
	c, err := registry.New([]registry.Endpoint{{Host: host, PlainHTTP: true}}, registry.Options{
		Credentials: credentials.NewMemoryStore(), HTTPClient: &http.Client{}, Tags: tags, TagWait: time.Second,
		Logger: slog.New(slog.NewTextHandler(log, nil))})
	require.NoError(t, err)
	repo, err := c.Repository(host, "photos/dunes")
	require.NoError(t, err)
	return &tagWriter{t: t, ctx: ctx, host: host, c: c, repo: repo, tags: tags, at: time.Now()}
}

// announce records the push of d to the tag as announced, a second after
// the one before.
func (w *tagWriter) announce(d ocispec.Descriptor, event string) {
	w.at = w.at.Add(time.Second)
	_, err := w.tags.Announce(w.ctx, queue.TagAnnouncement{Registry: w.host, Repository: "photos/dunes", Tag: "latest",
		Digest: d.Digest.String(), Event: event, At: w.at})
	require.NoError(w.t, err)
}

// write writes text back as d's description, for the push announced as
// event ("": a job not made from an announcement).
func (w *tagWriter) write(d ocispec.Descriptor, text, event string) (registry.Written, error) {
	m, err := w.c.FetchManifest(w.ctx, w.repo, d.Digest.String())
	require.NoError(w.t, err)
	return w.c.WriteAnnotationOf(w.ctx, w.repo, m, registry.Edit{Manifest: map[string]string{
		registry.AnnotationDescription: text, registry.AnnotationModel: "ollama/m"}}, "latest", event)
}

// describe is write that must succeed.
func (w *tagWriter) describe(d ocispec.Descriptor, text, event string) registry.Written {
	written, err := w.write(d, text, event)
	require.NoError(w.t, err)
	return written
}
