package worker_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/internal/stacktest"
	"github.com/regscribe/regscribe/notifier"
	"github.com/regscribe/regscribe/worker"
)

// A push no notifier announced (zot's event taken from NATS by the
// workers) shows in the gallery as waiting while it is described, as a
// push through the notifier does: its worker puts a queued event on the
// description stream before the model answers.
func TestZotEventFromNATSIsAnnounced(t *testing.T) {
	t.Parallel()
	const zotSubject = "zot.events"
	var src atomic.Pointer[notifier.Source]
	release := make(chan struct{})
	var once sync.Once
	s := stacktest.Start(t, stacktest.Options{ReferrersAPI: true, ExtraSubjects: []string{zotSubject}, Worker: worker.Options{
		Translate: func(_ string, data []byte) ([]queue.Job, error) {
			return notifier.JobsFromZotEvent(data, *src.Load(), time.Now())
		}}})
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // runs before the stack stops
	src.Store(&notifier.Source{Name: "zot-nats", Format: notifier.FormatZot, Registry: s.RegistryHost})
	s.Model.Answer = func(c modeltest.Call) modeltest.Reply {
		<-release
		return modeltest.DescribeByDigest(c)
	}
	d := s.Push(t, "photos/zot", "v1", stacktest.File{Name: "p.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 64, 48, 77)})
	event := fmt.Sprintf(`{"specversion":"1.0","id":"zot-1","source":"zot","type":"zotregistry.image.updated",`+
		`"data":{"name":"photos/zot","reference":"v1","digest":%q,"mediaType":"application/vnd.oci.image.manifest.v1+json"}}`, d.Digest)
	_, err := s.JS.Publish(context.Background(), zotSubject, []byte(event))
	require.NoError(t, err)

	// The queued event, while the model has not answered.
	st, err := s.JS.Stream(context.Background(), feed.Stream)
	require.NoError(t, err)
	subject := feed.Subject(feed.Event{Kind: feed.Queued, Registry: s.RegistryHost, Repository: "photos/zot", Digest: d.Digest.String()})
	var queued feed.Event
	require.Eventually(t, func() bool {
		m, err := st.GetLastMsgForSubject(context.Background(), subject)
		if err != nil {
			return false
		}
		queued, err = feed.Parse(m.Data)
		return err == nil
	}, 20*time.Second, 20*time.Millisecond, "the push is announced")
	require.Equal(t, feed.Queued, queued.Kind)
	require.Equal(t, s.RegistryHost, queued.Registry)
	require.Equal(t, "photos/zot", queued.Repository)
	require.Equal(t, []string{"v1"}, queued.Tags)
	once.Do(func() { close(release) })
	s.WaitDescribed(t, "photos/zot", "v1")
}
