package notifier

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The fuzz targets run each decoder, then the path from events to jobs, on
// arbitrary bodies and headers. `go test` runs them on their seeds (every
// fixture of testdata/<format> and a few broken ones); `go test -fuzz
// FuzzDecodeHarbor ./notifier` explores further. Whatever the input: no
// panic; an error has a reason naming no Go type, comes with no events or jobs, and is a 4xx;
// every job is valid and names the configured registry.

func FuzzDecodeDistribution(f *testing.F) { fuzzDecoder(f, FormatDistribution, "distribution") }
func FuzzDecodeACR(f *testing.F)          { fuzzDecoder(f, FormatACR, "acr") }
func FuzzDecodeHarbor(f *testing.F)       { fuzzDecoder(f, FormatHarbor, "harbor") }
func FuzzDecodeZot(f *testing.F)          { fuzzDecoder(f, FormatZot, "zot") }
func FuzzDecodeGitHub(f *testing.F)       { fuzzDecoder(f, FormatGitHub, "github") }
func FuzzDecodeQuay(f *testing.F)         { fuzzDecoder(f, FormatQuay, "quay") }
func FuzzDecodeDockerHub(f *testing.F)    { fuzzDecoder(f, FormatDockerHub, "dockerhub") }

// FuzzDecodeAuto is format recognition followed by the recognised decoder.
func FuzzDecodeAuto(f *testing.F) {
	fuzzDecoder(f, FormatAuto, "distribution", "acr", "harbor", "zot", "github", "quay", "dockerhub")
}

func fuzzDecoder(f *testing.F, format string, dirs ...string) {
	for _, dir := range dirs {
		seedFixtures(f, dir)
	}
	for _, body := range []string{"", "{", "null", "[]", `{"events":null}`, `{"events":[null]}`, `{"specversion":"1.0","type":"x"}`,
		`{"type":"PUSH_ARTIFACT","event_data":{"resources":[{"tag":"sha256:"}]}}`, `{"updated_tags":[""]}`, `{"push_data":{"tag":"a"},"repository":{"repo_name":"/"}}`} {
		f.Add([]byte(body), "application/json", "", "")
		f.Add([]byte(body), "", "zotregistry.image.updated", "registry_package")
	}
	src := &Source{Name: "fuzz", Format: format, Registry: "registry.example.com", Aliases: []string{"registry.example.com:443"}}
	received := time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte, contentType, ceType, githubEvent string) {
		m := meta{contentType: contentType, ceType: ceType, githubEvent: githubEvent}
		input := string(body) + contentType + ceType + githubEvent
		noInternals := func(reason string) {
			for _, internal := range []string{"Go struct field", "Go value of type", "notifier."} {
				if strings.Contains(reason, internal) && !strings.Contains(input, internal) {
					t.Fatalf("reason names regscribe's internals: %s", reason)
				}
			}
		}
		decodeAs := format
		if format == FormatAuto {
			var err error
			if decodeAs, err = detect(body, m); err != nil {
				require.NotEmpty(t, err.Error())
				noInternals(err.Error())
				return
			}
			require.Contains(t, decoders, decodeAs)
		}
		events, err := decoders[decodeAs](body, m)
		if err != nil {
			require.NotEmpty(t, err.Error())
			noInternals(err.Error())
			require.Nil(t, events, "an error comes with no events")
			return
		}
		jobs, ignored, err := makeJobs(events, src, decodeAs, received)
		if err != nil {
			var re *requestError
			require.True(t, errors.As(err, &re), "a refusal carries its status: %v", err)
			require.True(t, re.status == http.StatusBadRequest || re.status == http.StatusForbidden, "status %d", re.status)
			require.NotEmpty(t, re.reason)
			noInternals(re.reason)
			require.Nil(t, jobs, "nothing is queued from a request with a bad event")
			return
		}
		require.Equal(t, len(events), len(jobs)+len(ignored), "every event makes a job or says why not")
		for _, why := range ignored {
			require.NotEmpty(t, why)
		}
		for _, j := range jobs {
			require.NoError(t, j.Validate())
			require.Equal(t, src.Registry, j.Registry, "the registry comes from configuration")
			require.Equal(t, decodeAs, j.Source)
			require.Regexp(t, repositoryRE, j.Repository)
			require.LessOrEqual(t, len(j.Repository), 255)
			if j.Digest != "" {
				require.Regexp(t, digestRE, j.Digest)
			}
			if j.Tag != "" {
				require.Regexp(t, tagRE, j.Tag)
				require.NotRegexp(t, fallbackTag, j.Tag)
			}
			require.NotEqual(t, mediaTypeDescription, j.MediaType)
			require.NotEmpty(t, j.Event, "every notifier job names its announcement")
		}
	})
}

// seedFixtures adds every fixture of testdata/<dir> with its headers.
func seedFixtures(f *testing.F, dir string) {
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	require.NoError(f, err)
	for _, p := range paths {
		if strings.HasSuffix(p, ".golden.json") {
			continue
		}
		body, err := os.ReadFile(p)
		require.NoError(f, err)
		h := http.Header{}
		if raw, err := os.ReadFile(strings.TrimSuffix(p, ".json") + ".headers"); err == nil {
			mh, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(raw, '\n')))).ReadMIMEHeader()
			require.NoError(f, err, p)
			h = http.Header(mh)
		}
		f.Add(body, h.Get("Content-Type"), h.Get("Ce-Type"), h.Get("X-GitHub-Event"))
	}
}
