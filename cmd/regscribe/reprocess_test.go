package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/embedded"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/reprocess"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// reprocessFixture is a registry without notifications (its photos were
// pushed "before regscribe ran") holding repository photos/cmd: a photo
// under two tags, another photo, a corrupt JPEG and an SBOM.
type reprocessFixture struct {
	host    string
	corrupt string // digest of the corrupt photo
}

func newReprocessFixture(t *testing.T) reprocessFixture {
	t.Helper()
	reg, err := embedded.StartRegistry(context.Background(), embedded.RegistryOptions{Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = reg.Stop(ctx)
	})
	// stacktest pushes to the stack's registry; point a Stack value at this one.
	s := &stacktest.Stack{RegistryHost: reg.Addr()}
	good := stacktest.JPEG(t, 120, 90, 3)
	a := stacktest.File{Name: "a.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 64, 48, 1)}
	desc := s.Push(t, "photos/cmd", "a1", a)
	require.NoError(t, s.Repository(t, "photos/cmd").Tag(context.Background(), desc, "a2"))
	s.Push(t, "photos/cmd", "b", stacktest.File{Name: "b.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 64, 48, 2)})
	bad := s.Push(t, "photos/cmd", "bad", stacktest.File{Name: "bad.jpg", MediaType: "image/jpeg", Data: good[:len(good)/3]})
	s.Push(t, "photos/cmd", "sbom", stacktest.File{Name: "sbom.json", MediaType: "application/spdx+json", Data: []byte(`{"spdxVersion":"SPDX-2.3"}`)})
	return reprocessFixture{host: reg.Addr(), corrupt: bad.Digest.String()}
}

// reprocessConfig is the configuration of a reprocess run against natsURL
// and the fake model at ollamaURL.
func reprocessConfig(t *testing.T, natsURL, ollamaURL string) config.Config {
	t.Helper()
	cfg, err := config.Load()
	require.NoError(t, err)
	cfg.NATSURL, cfg.OllamaHost, cfg.Model = natsURL, ollamaURL, stacktest.Model
	cfg.Registries = nil // the registry named on the command line is enough (loopback: plain HTTP)
	cfg.AckWait, cfg.MaxAttempts, cfg.ShutdownTimeout = 5*time.Second, 2, 5*time.Second
	cfg.LogLevel, cfg.LogFormat = "error", "text"
	return cfg
}

// runReprocess runs `regscribe reprocess args...` in process.
func runReprocess(t *testing.T, cfg config.Config, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCLI(t, cfg, append([]string{"reprocess"}, args...)...)
}

// runCLI runs `regscribe args...` in process with the configuration cfg.
func runCLI(t *testing.T, cfg config.Config, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	code = newCLI(&out, &errOut, func() (config.Config, error) { return cfg, nil }).execute(ctx, args)
	return code, out.String(), errOut.String()
}

// closedNATSURL is a loopback address nothing listens on.
func closedNATSURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "nats://" + addr
}

func requireRow(t *testing.T, out, name string, n int) {
	t.Helper()
	require.Regexp(t, regexp.MustCompile(`(?m)^\s+`+regexp.QuoteMeta(name)+`\s+`+strconv.Itoa(n)+`\s*$`), out)
}

// TestReprocessLocalRunsAlone: with no NATS and no workers anywhere,
// --local starts both in process and prints an exact summary; a failure
// makes the exit status 1.
func TestReprocessLocalRunsAlone(t *testing.T) {
	t.Parallel()
	fx := newReprocessFixture(t)
	model := modeltest.NewOllama(stacktest.Model)
	t.Cleanup(model.Close)
	cfg := reprocessConfig(t, closedNATSURL(t), model.URL)

	code, out, errOut := runReprocess(t, cfg, "--local", "--progress", fx.host+"/photos/cmd")
	require.Equal(t, 1, code, "a photo failed: %s\n%s", out, errOut)
	requireRow(t, out, "tags listed", 5)
	requireRow(t, out, "distinct manifests", 4)
	requireRow(t, out, "not photos", 1)
	requireRow(t, out, "already described", 0)
	requireRow(t, out, "indexed", 0)
	requireRow(t, out, "queued", 3)
	requireRow(t, out, "described", 2)
	requireRow(t, out, "skipped", 0)
	requireRow(t, out, "failed", 1)
	requireRow(t, out, "model calls", 2)
	require.Contains(t, out, "failed (1):\n  "+fx.host+"/photos/cmd@"+fx.corrupt+" (bad)\n      ")
	require.Contains(t, out, "corrupt")
	require.Contains(t, errOut, "described 2 · skipped 0 · failed 1", "the progress bar")
	require.Len(t, model.Calls(), 2)

	// Both tags of the photo moved to its described manifest.
	s := &stacktest.Stack{RegistryHost: fx.host}
	d1, m := s.Manifest(t, "photos/cmd", "a1")
	d2, _ := s.Manifest(t, "photos/cmd", "a2")
	require.Equal(t, d1.Digest, d2.Digest)
	require.Equal(t, "ollama/"+stacktest.Model, m.Annotations["io.regscribe.model"])
}

// TestReprocessJSONAndSecondRun: --json prints a line per photo and the
// summary; against the same NATS a second run queues nothing, lists the
// photo that failed before and exits 0.
func TestReprocessJSONAndSecondRun(t *testing.T) {
	t.Parallel()
	fx := newReprocessFixture(t)
	s := stacktest.Start(t, stacktest.Options{Workers: -1})
	cfg := reprocessConfig(t, s.NATS.ClientURL(), s.Model.URL)

	// A dry run queues nothing and says what it would.
	code, out, errOut := runReprocess(t, cfg, "--dry-run", fx.host+"/photos/cmd")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "would queue (3):")
	require.Contains(t, out, fx.host+"/photos/cmd@")
	require.Contains(t, out, "(a1, a2)\n      no description")
	info, err := s.Consumer.Info(context.Background())
	require.NoError(t, err)
	require.Zero(t, info.NumPending)

	code, out, errOut = runReprocess(t, cfg, "--local", "--json", fx.host+"/photos/cmd")
	require.Equal(t, 1, code, errOut)
	lines := jsonLines(t, out)
	require.Equal(t, "queued", lines[0]["type"])
	require.EqualValues(t, 3, lines[0]["queued"])
	photos := 0
	for _, l := range lines[1 : len(lines)-1] {
		require.Equal(t, "photo", l["type"])
		photos++
	}
	require.Equal(t, 3, photos)
	var summary struct {
		Type     string           `json:"type"`
		Batch    string           `json:"batch"`
		Counts   reprocess.Counts `json:"counts"`
		Failures []reprocess.Item `json:"failures"`
	}
	require.NoError(t, json.Unmarshal([]byte(lastLine(out)), &summary))
	require.Equal(t, "summary", summary.Type)
	require.NotEmpty(t, summary.Batch)
	require.Equal(t, reprocess.Counts{Tags: 5, Manifests: 4, NotPhotos: 1, Queued: 3, Described: 2, Failed: 1, ModelCalls: 2}, summary.Counts)
	require.Len(t, summary.Failures, 1)
	require.Equal(t, fx.corrupt, summary.Failures[0].Digest)
	require.Contains(t, summary.Failures[0].Result, "corrupt")

	code, out, errOut = runReprocess(t, cfg, "--wait", fx.host+"/photos/cmd")
	require.Equal(t, 0, code, "%s\n%s", out, errOut)
	requireRow(t, out, "already described", 2)
	requireRow(t, out, "indexed", 0) // the workers of the first run put what they wrote on the description stream already
	requireRow(t, out, "failed before", 1)
	requireRow(t, out, "queued", 0)
	require.Contains(t, out, "failed before, not queued again (--retry-failed queues them) (1):")
	require.Len(t, s.Model.Calls(), 2)

	// Without waiting (the default off a terminal), a forced run says what it queued.
	code, out, errOut = runReprocess(t, cfg, "--force", "--tag", "b", fx.host+"/photos/cmd")
	require.Equal(t, 0, code, "%s\n%s", out, errOut)
	requireRow(t, out, "queued", 1)
	require.Contains(t, out, "not waiting for the results")
}

func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "%s", sc.Text())
		lines = append(lines, m)
	}
	require.NotEmpty(t, lines)
	return lines
}

func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

func TestReprocessUsageErrors(t *testing.T) {
	t.Parallel()
	cfg := reprocessConfig(t, closedNATSURL(t), "http://127.0.0.1:1")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "takes one REGISTRY/REPOSITORY, or --all REGISTRY"},
		{[]string{"--missing", "--force", "localhost:5000/photos"}, "exclude each other"},
		{[]string{"localhost:5000"}, "names no repository"},
		{[]string{"localhost:5000/photos:latest"}, "--tag GLOB"},
		{[]string{"--all", "localhost:5000/photos"}, "--all takes a registry"},
		{[]string{"--local", "--dry-run", "localhost:5000/photos"}, "exclude each other"},
		{[]string{"--local", "--wait=false", "localhost:5000/photos"}, "--local waits"},
		{[]string{"--frobnicate", "localhost:5000/photos"}, "unknown flag: --frobnicate"},
	} {
		code, _, errOut := runReprocess(t, cfg, tc.args...)
		require.Equal(t, 2, code, "%v: %s", tc.args, errOut)
		require.Contains(t, errOut, tc.want, "%v", tc.args)
	}

	// No NATS and no --local: say how to get one, before listing anything.
	code, _, errOut := runReprocess(t, cfg, "127.0.0.1:1/photos")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "no NATS at")
	require.Contains(t, errOut, "--local")
}

// TestReprocessOneRunPerRepository: while a forced run of a repository
// describes its photos, a second run of it (under another loopback name)
// is refused and names the first; a run of another repository is not
// held up. Every photo gets exactly one model call.
func TestReprocessOneRunPerRepository(t *testing.T) {
	t.Parallel()
	fx := newReprocessFixture(t)
	_, port, err := net.SplitHostPort(fx.host)
	require.NoError(t, err)
	reg := &stacktest.Stack{RegistryHost: fx.host}
	reg.Push(t, "photos/other", "latest", stacktest.File{Name: "c.jpg", MediaType: "image/jpeg", Data: stacktest.JPEG(t, 64, 48, 4)})
	s := stacktest.Start(t, stacktest.Options{Workers: -1})
	hold := make(chan struct{})
	var letGo sync.Once
	release := func() { letGo.Do(func() { close(hold) }) }
	t.Cleanup(release) // before the stack stops, should the test fail early
	s.Model.Answer = func(c modeltest.Call) modeltest.Reply {
		<-hold
		return modeltest.DescribeByDigest(c)
	}
	cfg := reprocessConfig(t, s.NATS.ClientURL(), s.Model.URL)

	type result struct {
		code        int
		out, errOut string
	}
	first := make(chan result, 1)
	go func() {
		code, out, errOut := runReprocess(t, cfg, "--local", "--force", "--json", fx.host+"/photos/cmd")
		first <- result{code, out, errOut}
	}()
	require.Eventually(t, func() bool { return len(s.Model.Calls()) > 0 }, 30*time.Second, 10*time.Millisecond,
		"the first run's photos never reached the model")

	code, out, refused := runReprocess(t, cfg, "--force", "localhost:"+port+"/photos/cmd")
	require.Equal(t, 1, code, "%s\n%s", out, refused)
	require.Contains(t, refused, "localhost:"+port+"/photos/cmd is being reprocessed already: batch ")
	require.Contains(t, refused, "by regscribe reprocess on ")
	require.NotContains(t, out, "queued")

	code, out, errOut := runReprocess(t, cfg, "--force", fx.host+"/photos/other")
	require.Equal(t, 0, code, "another repository: %s\n%s", out, errOut)
	requireRow(t, out, "queued", 1)

	release()
	r := <-first
	require.Equal(t, 1, r.code, "the corrupt photo failed: %s\n%s", r.out, r.errOut)
	var summary struct {
		Batch string `json:"batch"`
	}
	require.NoError(t, json.Unmarshal([]byte(lastLine(r.out)), &summary))
	require.Contains(t, refused, "batch "+summary.Batch+",", "the refusal names the running run")
	perPhoto := map[string]int{}
	for _, c := range s.Model.Calls() {
		perPhoto[modeltest.Digest(c.Images[0])]++
	}
	require.Len(t, perPhoto, 3, "a, b and the other repository's photo")
	for photo, n := range perPhoto {
		require.Equal(t, 1, n, "%s: one model call", photo)
	}
}
