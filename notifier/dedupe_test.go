package notifier_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/notifier"
)

// fixtureNamed returns testdata/<dir>/<name>.
func fixtureNamed(t testing.TB, dir, name string) fixture {
	t.Helper()
	for _, f := range fixtures(t, dir) {
		if filepath.Base(f.path) == name {
			return f
		}
	}
	t.Fatalf("no fixture testdata/%s/%s", dir, name)
	return fixture{}
}

// sourceNamed returns the test source named name.
func sourceNamed(t testing.TB, name string) notifier.Source {
	t.Helper()
	for _, s := range testSources {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no test source %s", name)
	return notifier.Source{}
}

// edit returns f with its JSON body changed by change.
func edit(t testing.TB, f fixture, change func(body map[string]any)) fixture {
	t.Helper()
	var body map[string]any
	require.NoError(t, json.Unmarshal(f.body, &body))
	change(body)
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	f.body, f.header = raw, f.header.Clone()
	return f
}

// withHeader returns a change of a fixture that sets header key to value.
func withHeader(key, value string) func(testing.TB, fixture) fixture {
	return func(_ testing.TB, f fixture) fixture {
		f.header = f.header.Clone()
		f.header.Set(key, value)
		return f
	}
}

func object(v any, key string) map[string]any { return v.(map[string]any)[key].(map[string]any) }

// JetStream's duplicate window drops only a registry delivering the same
// announcement again, never a second push: in each format, the same
// notification posted twice queues its jobs once (Quay, which cannot tell
// a retry from a push, queues them again), and a second push of the same
// tag or manifest within the window, told apart by what the format gives,
// queues again. Tag-only formats (Quay, Docker Hub) used to lose every push
// of :latest but the first in two minutes.
func TestDuplicateWindowDropsOnlyRedeliveries(t *testing.T) {
	t.Parallel()
	cases := []struct {
		source, fixture string
		// identifies: a redelivery is recognised as one.
		identifies bool
		// next is the next push of the same tag or manifest.
		next func(t testing.TB, f fixture) fixture
	}{
		{"quay", "repo-push.json", false, func(_ testing.TB, f fixture) fixture { return f }},
		{"dockerhub", "push.json", true, func(t testing.TB, f fixture) fixture {
			return edit(t, f, func(b map[string]any) { object(b, "push_data")["pushed_at"] = 1764276130 })
		}},
		{"distribution", "manifest-push-tag.json", true, func(t testing.TB, f fixture) fixture {
			return edit(t, f, func(b map[string]any) { b["events"].([]any)[0].(map[string]any)["id"] = "6f1b2c3d-0second" })
		}},
		{"acr", "push-oci.json", true, func(t testing.TB, f fixture) fixture {
			return edit(t, f, func(b map[string]any) { b["id"] = "cb8c3971-second" })
		}},
		{"harbor", "push-artifact.json", true, func(t testing.TB, f fixture) fixture {
			return edit(t, f, func(b map[string]any) { b["occur_at"] = 1764276130 })
		}},
		{"harbor", "push-cloudevents.json", true, func(t testing.TB, f fixture) fixture {
			return edit(t, f, func(b map[string]any) { b["id"] = "66e18103-second" })
		}},
		{"zot", "image-updated-binary.json", true, withHeader("Ce-Id", "5f0c1d2e-second")},
		{"zot", "image-updated-structured.json", true, func(t testing.TB, f fixture) fixture {
			return edit(t, f, func(b map[string]any) { b["id"] = "5f0c1d2e-second" })
		}},
		{"github", "published-tag.json", true, withHeader("X-GitHub-Delivery", "72d3162e-second")},
	}
	for _, tc := range cases {
		t.Run(tc.source+"/"+tc.fixture, func(t *testing.T) {
			t.Parallel()
			src := sourceNamed(t, tc.source)
			e := startWith(t, notifier.Options{Sources: testSources})
			post := func(f fixture) {
				t.Helper()
				status, rep := e.postTo(t, "/v1/events/"+src.Name, f.request(src), string(f.body))
				require.Equal(t, http.StatusOK, status, rep.Error)
				require.Positive(t, rep.Queued)
			}
			first := fixtureNamed(t, tc.source, tc.fixture)
			post(first)
			perPush := len(e.queued(t))
			require.Positive(t, perPush)

			post(first) // the registry retries
			want := perPush
			if !tc.identifies {
				want += perPush
			}
			require.Len(t, e.queued(t), want, "a redelivery")

			post(tc.next(t, first)) // the next push of the same tag
			jobs := e.queued(t)
			require.Len(t, jobs, want+perPush, "a second push within the window is queued")
			ids := map[string]bool{}
			for _, j := range jobs {
				ids[j.ID()] = true
			}
			require.Len(t, ids, len(jobs), "every queued job has its own id")
		})
	}
}

// Pushing a manifest back onto a tag (a revert) within the duplicate
// window queues a job although the same manifest was pushed as that tag a
// moment before: in annotation mode regscribe moved the tag to the
// described manifest meanwhile, so the reverted tag needs a description
// again.
func TestRevertPushWithinWindowQueues(t *testing.T) {
	t.Parallel()
	e := start(t)
	const described = "sha256:b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c"
	for _, p := range []struct{ id, digest string }{
		{"push-1", digest},    // the user pushes D as :latest
		{"push-2", described}, // regscribe moves :latest to described D'
		{"push-3", digest},    // the user pushes D as :latest again
	} {
		body := envelope(strings.Replace(event("push", ociMT, "photos/pineapple", p.digest, "latest"), `"id":"e1"`, `"id":"`+p.id+`"`, 1))
		status, rep := e.post(t, "Bearer "+token, notifier.MediaTypeDistributionEvents, body)
		require.Equal(t, http.StatusOK, status, rep.Error)
	}
	jobs := e.queued(t)
	require.Len(t, jobs, 3)
	require.Equal(t, digest, jobs[2].Digest, "the reverted tag is described again")
	require.Equal(t, "id:push-3", jobs[2].Event)
}
