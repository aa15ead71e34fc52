package notifier_test

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/queue"
	"github.com/regscribe/regscribe/notifier"
)

var update = flag.Bool("update", false, "rewrite testdata/<format>/*.golden.json from the notifier's answers")

// testSources has one source per format, named as its testdata directory,
// each with the kind of credential its registry can send.
var testSources = []notifier.Source{
	{Name: "distribution", Format: notifier.FormatDistribution, Registry: "registry.example.com:5000", Auth: notifier.Auth{Bearer: "distribution-token"}},
	{Name: "acr", Format: notifier.FormatACR, Registry: "myregistry.azurecr.io", Auth: notifier.Auth{Bearer: "acr-token"}},
	{Name: "harbor", Format: notifier.FormatHarbor, Registry: "harbor.example.com", Aliases: []string{"harbor.example.com:443"}, Auth: notifier.Auth{Bearer: "harbor-token"}},
	{Name: "zot", Format: notifier.FormatZot, Registry: "zot.example.com:5000", Auth: notifier.Auth{User: "zot", Password: "zot-password"}},
	{Name: "github", Format: notifier.FormatGitHub, Registry: "ghcr.io", Auth: notifier.Auth{HMACSecret: "github-secret"}},
	{Name: "quay", Format: notifier.FormatQuay, Registry: "quay.io", Auth: notifier.Auth{User: "regscribe", Password: "quay-password"}},
	{Name: "dockerhub", Format: notifier.FormatDockerHub, Registry: "registry-1.docker.io", Auth: notifier.Auth{User: "regscribe", Password: "hub-password"}},
}

// golden is what a fixture is expected to produce.
type golden struct {
	Status int            `json:"status"`
	Reply  notifier.Reply `json:"reply"`
	Jobs   []queue.Job    `json:"jobs"`
}

// fixture is one registry request from testdata: <name>.json is the body
// as the registry sends it, <name>.headers (optional) its headers.
type fixture struct {
	path   string
	body   []byte
	header http.Header
}

func fixtures(t testing.TB, dir string) []fixture {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	require.NoError(t, err)
	var out []fixture
	for _, p := range paths {
		if strings.HasSuffix(p, ".golden.json") {
			continue
		}
		body, err := os.ReadFile(p)
		require.NoError(t, err)
		h := http.Header{}
		if raw, err := os.ReadFile(strings.TrimSuffix(p, ".json") + ".headers"); err == nil {
			mh, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(raw, '\n')))).ReadMIMEHeader()
			require.NoError(t, err, p)
			h = http.Header(mh)
		}
		if h.Get("Content-Type") == "" {
			h.Set("Content-Type", "application/json")
			if dir == notifier.FormatDistribution {
				h.Set("Content-Type", notifier.MediaTypeDistributionEvents)
			}
		}
		out = append(out, fixture{path: p, body: body, header: h})
	}
	require.NotEmpty(t, out, "no fixtures in testdata/%s", dir)
	return out
}

// request returns the fixture's headers with the credentials src expects.
func (f fixture) request(src notifier.Source) http.Header {
	h := f.header.Clone()
	switch {
	case src.Auth.Bearer != "":
		h.Set("Authorization", "Bearer "+src.Auth.Bearer)
	case src.Auth.User != "":
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		r.SetBasicAuth(src.Auth.User, src.Auth.Password)
		h.Set("Authorization", r.Header.Get("Authorization"))
	}
	if src.Auth.HMACSecret != "" {
		h.Set("X-Hub-Signature-256", sign(src.Auth.HMACSecret, f.body))
	}
	return h
}

func sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// uniqueEvent is how a golden file writes an Event the notifier drew.
const uniqueEvent = "unique:*"

// stableEvents checks that every job names its announcement and that the
// Events the notifier drew (for formats that identify no announcement) are
// distinct, then writes those as uniqueEvent, so goldens compare.
func stableEvents(t testing.TB, jobs []queue.Job) []queue.Job {
	t.Helper()
	seen := map[string]bool{}
	for i, j := range jobs {
		require.NotEmpty(t, j.Event, "job %d names no announcement", i)
		if drawn, ok := strings.CutPrefix(j.Event, "unique:"); ok {
			require.Len(t, drawn, 26, "a drawn Event is 128 random bits")
			require.False(t, seen[drawn], "a drawn Event is unique")
			seen[drawn] = true
			jobs[i].Event = uniqueEvent
		}
	}
	return jobs
}

func goldenPath(p string) string { return strings.TrimSuffix(p, ".json") + ".golden.json" }

// Every fixture, posted to its format's source, gives its golden answer
// and queues exactly its golden jobs.
func TestGolden(t *testing.T) {
	t.Parallel()
	for _, src := range testSources {
		for _, f := range fixtures(t, src.Name) {
			t.Run(strings.TrimPrefix(f.path, "testdata/"), func(t *testing.T) {
				t.Parallel()
				e := startWith(t, notifier.Options{Sources: testSources})
				status, rep := e.postTo(t, "/v1/events/"+src.Name, f.request(src), string(f.body))
				got := golden{Status: status, Reply: rep, Jobs: stableEvents(t, e.queued(t))}
				if status >= 400 {
					require.NotEmpty(t, rep.Error, "a refusal has a reason")
					require.Empty(t, got.Jobs, "nothing is queued from a refused request")
				}
				for _, j := range got.Jobs {
					require.NoError(t, j.Validate())
					require.Equal(t, src.Registry, j.Registry, "the registry comes from configuration")
					require.Equal(t, src.Format, j.Source)
				}
				want, err := json.MarshalIndent(got, "", "  ")
				require.NoError(t, err)
				want = append(want, '\n')
				if *update {
					require.NoError(t, os.WriteFile(goldenPath(f.path), want, 0o644))
					return
				}
				raw, err := os.ReadFile(goldenPath(f.path))
				require.NoError(t, err, "run go test ./notifier -run TestGolden -update")
				require.JSONEq(t, string(raw), string(want))
			})
		}
	}
}

// Posted to a source with FormatAuto, every fixture (except ACR's, which
// reads as Distribution's) is recognised and gives the same answer.
func TestGoldenAutoDetect(t *testing.T) {
	t.Parallel()
	if *update {
		t.Skip("goldens are being rewritten")
	}
	for _, src := range testSources {
		if src.Format == notifier.FormatACR {
			continue
		}
		auto := src
		auto.Name, auto.Format = "auto", notifier.FormatAuto
		for _, f := range fixtures(t, src.Name) {
			t.Run(strings.TrimPrefix(f.path, "testdata/"), func(t *testing.T) {
				t.Parallel()
				raw, err := os.ReadFile(goldenPath(f.path))
				require.NoError(t, err)
				var want golden
				require.NoError(t, json.Unmarshal(raw, &want))
				e := startWith(t, notifier.Options{Sources: []notifier.Source{auto}})
				status, rep := e.postTo(t, "/v1/events/auto", f.request(auto), string(f.body))
				require.Equal(t, want.Status, status, rep.Error)
				require.Equal(t, want.Reply, rep)
				require.Equal(t, want.Jobs, stableEvents(t, e.queued(t)))
			})
		}
	}
}

// The default source (Options.Token, Options.Registry) recognises every
// format at /v1/events.
func TestDefaultSourceReadsEveryFormat(t *testing.T) {
	t.Parallel()
	pushes := map[string]string{
		"distribution": "manifest-push-tag.json",
		"harbor":       "push-cloudevents.json",
		"zot":          "image-updated-binary.json",
		"github":       "published-tag.json",
		"quay":         "repo-push.json",
		"dockerhub":    "push.json",
	}
	for _, src := range testSources {
		name, ok := pushes[src.Name]
		if !ok {
			continue
		}
		t.Run(src.Name, func(t *testing.T) {
			t.Parallel()
			f := fixtureNamed(t, src.Name, name)
			e := startWith(t, notifier.Options{Token: token, Registry: src.Registry})
			status, rep := e.postTo(t, "/v1/events", f.request(notifier.Source{Auth: notifier.Auth{Bearer: token}}), string(f.body))
			require.Equal(t, http.StatusOK, status, "%s: %s", f.path, rep.Error)
			jobs := e.queued(t)
			require.NotEmpty(t, jobs, f.path)
			for _, j := range jobs {
				require.Equal(t, src.Name, j.Source)
				require.Equal(t, src.Registry, j.Registry)
			}
		})
	}
}
