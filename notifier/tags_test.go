package notifier_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/notifier"
)

// The notifier records each announced change of a tag before it queues
// the push's job, in the events' own order (Distribution's timestamp): a
// worker always finds its push recorded, and a registry redelivering an
// older event does not undo a newer one.
func TestTagChangesAreRecordedBeforeJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := stacktest.JetStream(t)
	tags, err := queue.OpenTags(ctx, js, 1)
	require.NoError(t, err)
	e := startWith(t, notifier.Options{Token: token, Registry: registry, Tags: tags})
	other := "sha256:" + fmt.Sprintf("%064x", 7)
	docker := "sha256:" + fmt.Sprintf("%064x", 8)
	at := func(s int) string { return now.Add(time.Duration(s) * time.Second).Format(time.RFC3339Nano) }
	ev := func(id, action, mediaType, dgst, tag, when string) string {
		return fmt.Sprintf(`{"id":%q,"timestamp":%q,"action":%q,"target":{"mediaType":%q,"digest":%q,"repository":"photos/x","tag":%q},"request":{"useragent":"oras/1.3.6"}}`,
			id, when, action, mediaType, dgst, tag)
	}
	post := func(events ...string) {
		t.Helper()
		status, rep := e.post(t, "Bearer "+token, notifier.MediaTypeDistributionEvents, envelope(events...))
		require.Equal(t, http.StatusOK, status, rep.Error)
	}
	last := func() queue.TagRecord {
		t.Helper()
		r, ok, err := tags.Get(ctx, registry, "photos/x", "latest")
		require.NoError(t, err)
		require.True(t, ok)
		return r
	}

	post(ev("a", "push", ociMT, digest, "latest", at(1)))
	require.Equal(t, digest, last().Digest)
	require.Equal(t, "id:a", last().Event)
	require.Len(t, e.queued(t), 1)

	post(ev("b", "push", ociMT, other, "latest", at(3)))
	post(ev("a", "push", ociMT, digest, "latest", at(1))) // redelivered, late
	require.Equal(t, other, last().Digest, "an older event does not undo a newer one")

	// A Docker image takes the tag as well, though it makes no job.
	post(ev("c", "push", "application/vnd.docker.distribution.manifest.v2+json", docker, "latest", at(4)))
	require.Equal(t, docker, last().Digest)
	require.Len(t, e.queued(t), 2)

	// A deletion of the tag leaves a record naming no push: no worker waits
	// for one.
	post(ev("d", "delete", "", "", "latest", at(5)))
	require.Empty(t, last().Digest)

	// Blob pushes and pushes by digest only change no tag.
	post(ev("e", "push", "application/octet-stream", other, "", at(6)), ev("f", "push", ociMT, other, "", at(6)))
	require.Empty(t, last().Digest)
}

// A tag change that cannot be recorded is answered 503 like a job that
// cannot be queued, and no job is queued: the registry sends it again.
func TestTagRecordDownAnswers503(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := stacktest.JetStream(t)
	tags, err := queue.OpenTags(ctx, ns, 1)
	require.NoError(t, err)
	require.NoError(t, ns.DeleteKeyValue(ctx, queue.TagBucket))
	e := startWith(t, notifier.Options{Token: token, Registry: registry, Tags: tags})
	status, _ := e.post(t, "Bearer "+token, notifier.MediaTypeDistributionEvents, envelope(event("push", ociMT, "photos/pineapple", digest, "latest")))
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Empty(t, e.queued(t))
}

// The announcement of regscribe's own write-back (a tag move it recorded)
// makes no job: the job would only find the description it moved the tag
// to. The same manifest pushed back by a person later is a push.
func TestOwnWriteBackMakesNoJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := stacktest.JetStream(t)
	tags, err := queue.OpenTags(ctx, js, 1)
	require.NoError(t, err)
	e := startWith(t, notifier.Options{Token: token, Registry: registry, Tags: tags})
	described := "sha256:" + fmt.Sprintf("%064x", 9)
	ev := func(id, dgst string, s int) string {
		return fmt.Sprintf(`{"id":%q,"timestamp":%q,"action":"push","target":{"mediaType":%q,"digest":%q,"repository":"photos/x","tag":"latest"},"request":{"useragent":"oras/1.3.6"}}`,
			id, now.Add(time.Duration(s)*time.Second).Format(time.RFC3339Nano), ociMT, dgst)
	}
	post := func(event string) notifier.Reply {
		t.Helper()
		status, rep := e.post(t, "Bearer "+token, notifier.MediaTypeDistributionEvents, envelope(event))
		require.Equal(t, http.StatusOK, status, rep.Error)
		return rep
	}

	require.Equal(t, notifier.Reply{Queued: 1}, post(ev("a", digest, 1)), "a person's push")
	_, err = tags.Move(ctx, registry, "photos/x", "latest", digest, "", described)
	require.NoError(t, err)
	require.Equal(t, notifier.Reply{Ignored: 1}, post(ev("b", described, 2)), "regscribe's own write-back")
	require.Equal(t, notifier.Reply{Ignored: 1}, post(ev("b", described, 2)), "redelivered")
	require.Len(t, e.queued(t), 1)

	require.Equal(t, notifier.Reply{Queued: 1}, post(ev("c", described, 3)), "pushed back by a person: another announcement")
	require.Len(t, e.queued(t), 2)
}

// A push is announced on the description stream (the gallery shows it
// from then on) once its job is stored, before the registry has its
// answer: an announcement stored later could outlive the manifest.
func TestPushIsAnnounced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var js jetstream.JetStream
	e := startWithJS(t, func(j jetstream.JetStream) notifier.Options {
		js = j
		_, err := feed.EnsureStream(ctx, js, 1)
		require.NoError(t, err)
		return notifier.Options{Token: token, Registry: registry, Announce: feed.NewPublisher(js)}
	})
	status, rep := e.post(t, "Bearer "+token, notifier.MediaTypeDistributionEvents, envelope(
		fmt.Sprintf(`{"id":"a","timestamp":%q,"action":"push","target":{"mediaType":%q,"digest":%q,"repository":"photos/x","tag":"latest"},"request":{"useragent":"oras/1.3.6"}}`,
			now.Format(time.RFC3339Nano), ociMT, digest)))
	require.Equal(t, http.StatusOK, status, rep.Error)
	require.Equal(t, 1, rep.Queued)
	st, err := js.Stream(ctx, feed.Stream)
	require.NoError(t, err)
	m, err := st.GetLastMsgForSubject(ctx, feed.Subject(feed.Event{Kind: feed.Queued, Registry: registry, Repository: "photos/x", Digest: digest}))
	require.NoError(t, err, "announced by the time the registry has the answer")
	ev, err := feed.Parse(m.Data)
	require.NoError(t, err)
	require.Equal(t, []string{"latest"}, ev.Tags)
	require.Len(t, e.queued(t), 1)
}
