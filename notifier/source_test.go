package notifier_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/notifier"
)

func TestNewRefusesSourcesThatCannotWork(t *testing.T) {
	t.Parallel()
	ok := notifier.Source{Name: "harbor", Format: notifier.FormatHarbor, Registry: "harbor.example.com", Auth: notifier.Auth{Bearer: "t"}}
	cases := []struct {
		name string
		edit func(*notifier.Source)
		want string
	}{
		{"no credentials", func(s *notifier.Source) { s.Auth = notifier.Auth{} }, "no credentials"},
		{"user without password", func(s *notifier.Source) { s.Auth = notifier.Auth{User: "u"} }, "no credentials"},
		{"unknown format", func(s *notifier.Source) { s.Format = "gitlab" }, "format"},
		{"no name", func(s *notifier.Source) { s.Name = "" }, "name"},
		{"name with a slash", func(s *notifier.Source) { s.Name = "a/b" }, "name"},
		{"no registry", func(s *notifier.Source) { s.Registry = "" }, "registry is required"},
		{"registry as URL", func(s *notifier.Source) { s.Registry = "https://harbor.example.com" }, "not host[:port]"},
		{"alias with a path", func(s *notifier.Source) { s.Aliases = []string{"harbor.example.com/x"} }, "not host[:port]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := ok
			tc.edit(&s)
			_, err := notifier.New(nil, notifier.Options{Sources: []notifier.Source{s}})
			require.ErrorContains(t, err, tc.want)
		})
	}
	t.Run("name used twice", func(t *testing.T) {
		t.Parallel()
		_, err := notifier.New(nil, notifier.Options{Sources: []notifier.Source{ok, ok}})
		require.ErrorContains(t, err, "twice")
	})
	t.Run("neither token nor sources", func(t *testing.T) {
		t.Parallel()
		_, err := notifier.New(nil, notifier.Options{Registry: registry})
		require.ErrorContains(t, err, "token")
	})
	t.Run("token without registry", func(t *testing.T) {
		t.Parallel()
		_, err := notifier.New(nil, notifier.Options{Token: token})
		require.ErrorContains(t, err, "registry")
	})
}

func TestSourceCredentials(t *testing.T) {
	t.Parallel()
	const secret = "hmac-secret"
	sources := []notifier.Source{
		{Name: "bearer", Registry: registry, Auth: notifier.Auth{Bearer: "bearer-token"}},
		{Name: "basic", Registry: registry, Auth: notifier.Auth{User: "zot", Password: "pa:ss"}},
		{Name: "either", Registry: registry, Auth: notifier.Auth{Bearer: "bearer-token", User: "zot", Password: "pa:ss"}},
		{Name: "hmac", Registry: registry, Auth: notifier.Auth{HMACSecret: secret}},
		{Name: "bearer-and-hmac", Registry: registry, Auth: notifier.Auth{Bearer: "bearer-token", HMACSecret: secret}},
	}
	e := startWith(t, notifier.Options{Sources: sources})
	body := envelope(event("push", ociMT, "photos/pineapple", digest, "latest"))
	basic := func(u, p string) string {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		r.SetBasicAuth(u, p)
		return r.Header.Get("Authorization")
	}
	cases := []struct {
		source, auth, signature string
		status                  int
		reason                  string
	}{
		{"bearer", "Bearer bearer-token", "", 200, ""},
		{"bearer", "Bearer wrong", "", 401, "bearer token"},
		{"bearer", basic("zot", "pa:ss"), "", 401, "bearer token"},
		{"basic", basic("zot", "pa:ss"), "", 200, ""},
		{"basic", basic("zot", "wrong"), "", 401, "basic credentials"},
		{"basic", basic("other", "pa:ss"), "", 401, "basic credentials"},
		{"basic", "Bearer pa:ss", "", 401, "basic credentials"},
		{"either", "Bearer bearer-token", "", 200, ""},
		{"either", basic("zot", "pa:ss"), "", 200, ""},
		{"either", "", "", 401, "credentials"},
		{"hmac", "", sign(secret, []byte(body)), 200, ""},
		{"hmac", "", sign("other", []byte(body)), 401, "wrong X-Hub-Signature-256"},
		{"hmac", "", "sha1=abc", 401, "X-Hub-Signature-256"},
		{"hmac", "", "sha256=zz", 401, "X-Hub-Signature-256"},
		{"hmac", "", "", 401, "X-Hub-Signature-256"},
		{"bearer-and-hmac", "Bearer bearer-token", sign(secret, []byte(body)), 200, ""},
		{"bearer-and-hmac", "Bearer bearer-token", "", 401, "X-Hub-Signature-256"},
		{"bearer-and-hmac", "", sign(secret, []byte(body)), 401, "bearer token"},
	}
	for _, tc := range cases {
		h := http.Header{"Content-Type": {notifier.MediaTypeDistributionEvents}, "Authorization": {tc.auth}, "X-Hub-Signature-256": {tc.signature}}
		status, rep := e.postTo(t, "/v1/events/"+tc.source, h, body)
		require.Equal(t, tc.status, status, "%s %q %q: %s", tc.source, tc.auth, tc.signature, rep.Error)
		require.Contains(t, rep.Error, tc.reason)
		for _, s := range []string{"bearer-token", "pa:ss", secret} {
			require.NotContains(t, rep.Error, s, "a refusal reveals no credential")
		}
	}
	require.Len(t, e.queued(t), 1, "every accepted request announced the same push")
}

// An unknown source name is a plain 404 that tells nothing about sources,
// with or without another source's credentials; without Options.Token
// /v1/events is not served.
func TestUnknownSourceIsNotFound(t *testing.T) {
	t.Parallel()
	e := startWith(t, notifier.Options{Sources: testSources})
	body := envelope(event("push", ociMT, "photos/pineapple", digest, "latest"))
	for _, auth := range []string{"", "Bearer distribution-token"} {
		status, rep := e.postTo(t, "/v1/events/nope", http.Header{"Authorization": {auth}}, body)
		require.Equal(t, http.StatusNotFound, status)
		require.Equal(t, notifier.Reply{Error: "not found"}, rep)
	}
	resp, err := http.Post(e.server.URL+"/v1/events", notifier.MediaTypeDistributionEvents, strings.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Empty(t, e.queued(t))
}

// A body that does not arrive within ReadTimeout is refused with 408.
func TestSlowBodyIsRefused(t *testing.T) {
	t.Parallel()
	e := startWith(t, notifier.Options{Token: token, Registry: registry, ReadTimeout: 100 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.server.URL, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"events\":", token)
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusRequestTimeout, resp.StatusCode)
	require.Empty(t, e.queued(t))
}

// Bad input of every format is a 4xx with a reason and queues nothing.
func TestBadInputIsRefused(t *testing.T) {
	t.Parallel()
	type input struct {
		name   string
		header http.Header
		body   string
		status int
	}
	ce := func(typ string) http.Header {
		return http.Header{"Ce-Type": {typ}, "Ce-Specversion": {"1.0"}, "Content-Type": {"application/json"}}
	}
	hub := http.Header{"X-GitHub-Event": {"registry_package"}}
	common := []input{
		{"not JSON", nil, "{", 400},
		{"a JSON array", nil, "[1,2]", 400},
		{"a JSON string", nil, `"push"`, 400},
		{"empty body", nil, "", 400},
		{"wrong content type", http.Header{"Content-Type": {"text/plain"}}, "{}", 400},
		{"form-encoded", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, "payload=%7B%7D", 400},
		{"over the body limit", nil, `{"a":"` + strings.Repeat("x", notifier.DefaultMaxBody) + `"}`, 413},
	}
	perFormat := map[string][]input{
		"distribution": {
			{"no action", nil, `{"events":[{"target":{"repository":"a","digest":"` + digest + `"}}]}`, 400},
			{"events not a list", nil, `{"events":{}}`, 400},
			{"digest with a path", nil, envelope(event("push", ociMT, "photos/x", "sha256:../../x", "")), 400},
			{"push without repository", nil, envelope(event("push", ociMT, "", digest, "")), 400},
			{"one bad event among good ones", nil, envelope(event("push", ociMT, "photos/x", digest, "v1"), event("push", ociMT, "photos/x", digest, "bad tag")), 400},
		},
		"acr": {
			{"event for another registry", nil, event("push", ociMT, "photos/x", digest, "v1"), 403},
			{"repository with upper case", nil, strings.ReplaceAll(event("push", ociMT, "Photos/X", digest, "v1"), "evil.example", "myregistry.azurecr.io"), 400},
		},
		"harbor": {
			{"no type", nil, `{"event_data":{"resources":[]}}`, 400},
			{"resources not a list", nil, `{"type":"PUSH_ARTIFACT","event_data":{"resources":{}}}`, 400},
			{"no repository", nil, `{"type":"PUSH_ARTIFACT","event_data":{"resources":[{"digest":"` + digest + `","tag":"v1"}]}}`, 400},
			{"CloudEvent without type", http.Header{"Content-Type": {"application/cloudevents+json"}}, `{"specversion":"1.0","data":{}}`, 400},
			{"CloudEvent data not an object", http.Header{"Content-Type": {"application/cloudevents+json"}}, `{"specversion":"1.0","type":"harbor.artifact.pushed","data":"x"}`, 400},
			{"resource URL of another host", nil, `{"type":"PUSH_ARTIFACT","event_data":{"resources":[{"digest":"` + digest + `","tag":"v1","resource_url":"169.254.169.254/team/photos:v1"}],"repository":{"repo_full_name":"team/photos"}}}`, 403},
		},
		"zot": {
			{"binary data not an image", ce("zotregistry.image.updated"), `[]`, 400},
			{"binary without data", ce("zotregistry.image.updated"), ``, 400},
			{"binary with a CloudEvents content type", http.Header{"Ce-Type": {"zotregistry.image.updated"}, "Content-Type": {"application/cloudevents+json"}}, `{}`, 400},
			{"structured without specversion", nil, `{"type":"zotregistry.image.updated","data":{}}`, 400},
			{"structured with bad base64", nil, `{"specversion":"1.0","type":"zotregistry.image.updated","data_base64":"%%%"}`, 400},
			{"image without name", ce("zotregistry.image.updated"), `{"reference":"latest","digest":"` + digest + `"}`, 400},
			{"image with a bad digest", ce("zotregistry.image.updated"), `{"name":"photos/x","reference":"latest","digest":"md5:$$"}`, 400},
		},
		"github": {
			{"no registry_package", hub, `{"action":"published"}`, 400},
			{"no package_version", hub, `{"action":"published","registry_package":{"name":"a","namespace":"b","package_type":"CONTAINER"}}`, 400},
			{"neither digest nor tag", hub, `{"action":"published","registry_package":{"name":"a","namespace":"b","package_type":"CONTAINER","package_version":{"version":"1.0"}}}`, 400},
			{"package URL of another host", hub, `{"action":"published","registry_package":{"name":"a","namespace":"b","package_type":"CONTAINER","package_version":{"version":"` + digest + `","package_url":"evil.example/b/a:v1"}}}`, 403},
		},
		"quay": {
			{"no repository", nil, `{"updated_tags":["v1"],"docker_url":"quay.io/x/y"}`, 400},
			{"tags not a list", nil, `{"repository":"team/photos","updated_tags":"v1"}`, 400},
			{"docker URL of another host", nil, `{"repository":"team/photos","docker_url":"localhost:5000/team/photos","updated_tags":["v1"]}`, 403},
		},
		"dockerhub": {
			{"no push_data", nil, `{"repository":{"repo_name":"a/b"}}`, 400},
			{"no repository", nil, `{"push_data":{"tag":"v1"}}`, 400},
			{"tag with a space", nil, `{"push_data":{"tag":"v 1"},"repository":{"repo_name":"a/b"}}`, 400},
		},
	}
	for _, src := range testSources {
		t.Run(src.Name, func(t *testing.T) {
			t.Parallel()
			e := startWith(t, notifier.Options{Sources: testSources})
			for _, in := range append(append([]input{}, common...), perFormat[src.Name]...) {
				f := fixture{body: []byte(in.body), header: http.Header{"Content-Type": {"application/json"}}}
				for k, v := range in.header {
					f.header[k] = v
				}
				status, rep := e.postTo(t, "/v1/events/"+src.Name, f.request(src), in.body)
				require.Equal(t, in.status, status, "%s: %s", in.name, rep.Error)
				require.NotEmpty(t, rep.Error, in.name)
				require.Zero(t, rep.Queued, in.name)
			}
			require.Empty(t, e.queued(t), "nothing is queued from bad input")
		})
	}
}

func TestJobsFromZotEvent(t *testing.T) {
	t.Parallel()
	src := notifier.Source{Name: "zot-nats", Format: notifier.FormatZot, Registry: "Zot.Example.com:5000"}
	read := func(name string) []byte {
		b, err := os.ReadFile("testdata/zot/" + name)
		require.NoError(t, err)
		return b
	}
	jobs, err := notifier.JobsFromZotEvent(read("image-updated-nats.json"), src, now)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	require.Equal(t, queue.Job{Version: queue.JobVersion, Registry: "zot.example.com:5000", Repository: "photos/kumquat",
		Digest: jobs[0].Digest, Tag: "v2", MediaType: ociMT, Source: notifier.FormatZot, Received: now,
		Event: "id:5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"}, jobs[0])
	require.NoError(t, jobs[0].Validate())

	jobs, err = notifier.JobsFromZotEvent(read("image-deleted.json"), src, now)
	require.NoError(t, err)
	require.Equal(t, []queue.Job{{Version: queue.JobVersion, Registry: "zot.example.com:5000", Repository: "photos/kumquat",
		Digest: "sha256:b0a085411122cca8ab3c192406a73d6eb5037f7b6a2427bd756c3bd6ec553979", Tag: "latest", MediaType: ociMT,
		Source: notifier.FormatZot, Received: now, Event: "id:5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f", Deleted: true}}, jobs,
		"image.deleted makes a deletion job")

	jobs, err = notifier.JobsFromZotEvent(read("image-lint-failed.json"), src, now)
	require.NoError(t, err)
	require.Empty(t, jobs, "only image.updated and image.deleted make jobs")

	// zot has no setting that renames its types: an event of another type
	// that merely ends like zot's is not zot's, and makes no job.
	var ev map[string]any
	require.NoError(t, json.Unmarshal(read("image-updated-nats.json"), &ev))
	ev["type"] = "com.example.registry.image.updated"
	renamed, err := json.Marshal(ev)
	require.NoError(t, err)
	jobs, err = notifier.JobsFromZotEvent(renamed, src, now)
	require.NoError(t, err)
	require.Empty(t, jobs)

	for _, bad := range []string{"", "{", `{"specversion":"1.0"}`, `{"specversion":"1.0","type":"zotregistry.image.updated"}`,
		`{"specversion":"1.0","type":"zotregistry.image.updated","data":{"name":"../x","reference":"v1"}}`} {
		jobs, err := notifier.JobsFromZotEvent([]byte(bad), src, now)
		require.Error(t, err, bad)
		require.Empty(t, jobs)
	}
	_, err = notifier.JobsFromZotEvent(read("image-updated-nats.json"), notifier.Source{}, now)
	require.ErrorContains(t, err, "registry")
}

func TestLoadSources(t *testing.T) {
	t.Parallel()
	sources, err := notifier.LoadSources(strings.NewReader(`
sources:
  - name: harbor
    format: harbor
    registry: harbor.example.com
    aliases: [harbor.example.com:443]
    auth: {bearer: harbor-token}
  - name: ghcr
    format: github
    registry: ghcr.io
    auth: {hmac_secret: github-secret}
  - name: quay
    format: quay
    registry: quay.io
    auth: {user: regscribe, password: quay-password}
`))
	require.NoError(t, err)
	require.Equal(t, []notifier.Source{
		{Name: "harbor", Format: "harbor", Registry: "harbor.example.com", Aliases: []string{"harbor.example.com:443"}, Auth: notifier.Auth{Bearer: "harbor-token"}},
		{Name: "ghcr", Format: "github", Registry: "ghcr.io", Auth: notifier.Auth{HMACSecret: "github-secret"}},
		{Name: "quay", Format: "quay", Registry: "quay.io", Auth: notifier.Auth{User: "regscribe", Password: "quay-password"}},
	}, sources)
	_, err = notifier.New(nil, notifier.Options{Sources: sources})
	require.NoError(t, err)

	empty, err := notifier.LoadSources(strings.NewReader(""))
	require.NoError(t, err)
	require.Empty(t, empty)

	for name, doc := range map[string]string{
		"misspelt credential": "sources: [{name: a, format: quay, registry: quay.io, auth: {berer: x}}]",
		"no credential":       "sources: [{name: a, format: quay, registry: quay.io}]",
		"unknown format":      "sources: [{name: a, format: gcr, registry: gcr.io, auth: {bearer: x}}]",
		"name used twice":     "sources: [{name: a, registry: quay.io, auth: {bearer: x}}, {name: a, registry: quay.io, auth: {bearer: y}}]",
		"not YAML":            "sources: [",
	} {
		_, err := notifier.LoadSources(strings.NewReader(doc))
		require.Error(t, err, name)
	}
	_, err = notifier.LoadSources(io.MultiReader())
	require.NoError(t, err)
}

// A reply to malformed JSON speaks of the JSON sent, not of Go types.
func TestMalformedJSONRepliesNameNoInternals(t *testing.T) {
	t.Parallel()
	e := startWith(t, notifier.Options{Sources: testSources})
	bodies := map[string]string{
		`{"events":{}}`: "events is a JSON object, want an array",
		`{"events":[{"action":"push","target":[]}]}`: "events.target is a JSON array, want an object",
		`[1]`:                       "a JSON array where an object was expected",
		`{"events":[{"action":1}]}`: "events.action is a JSON number, want a string",
		``:                          "invalid JSON at byte 0",
	}
	for body, want := range bodies {
		f := fixture{body: []byte(body), header: http.Header{"Content-Type": {"application/json"}}}
		status, rep := e.postTo(t, "/v1/events/distribution", f.request(testSources[0]), body)
		require.Equal(t, http.StatusBadRequest, status)
		require.Contains(t, rep.Error, want)
		for _, internal := range []string{"Go ", "notifier.", "struct"} {
			require.NotContains(t, rep.Error, internal)
		}
	}
}

// The zot config shipped in deploy/zot sends its events to a zot source.
func TestDeployedZotConfig(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../deploy/zot/config.json")
	require.NoError(t, err)
	var cfg struct {
		Extensions struct {
			Events struct {
				Enable bool `json:"enable"`
				Sinks  []struct {
					Type        string `json:"type"`
					Address     string `json:"address"`
					Credentials struct {
						Token string `json:"token"`
					} `json:"credentials"`
				} `json:"sinks"`
			} `json:"events"`
		} `json:"extensions"`
	}
	require.NoError(t, json.Unmarshal(raw, &cfg))
	ev := cfg.Extensions.Events
	require.True(t, ev.Enable)
	require.Len(t, ev.Sinks, 1)
	require.Equal(t, "http", ev.Sinks[0].Type)
	require.Equal(t, "http://127.0.0.1:8088/v1/events/zot", ev.Sinks[0].Address)
	require.Equal(t, "change-me", ev.Sinks[0].Credentials.Token)

	// A source configured as the README says answers zot's binary-mode events there.
	src := notifier.Source{Name: "zot", Format: notifier.FormatZot, Registry: "127.0.0.1:5000", Auth: notifier.Auth{Bearer: "change-me"}}
	e := startWith(t, notifier.Options{Sources: []notifier.Source{src}})
	f := fixtures(t, "zot")[0]
	for _, cand := range fixtures(t, "zot") {
		if strings.HasSuffix(cand.path, "image-updated-binary.json") {
			f = cand
		}
	}
	status, rep := e.postTo(t, strings.TrimPrefix(ev.Sinks[0].Address, "http://127.0.0.1:8088"), f.request(src), string(f.body))
	require.Equal(t, http.StatusOK, status, rep.Error)
	require.Equal(t, 1, rep.Queued)
}
