package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// binary is the regscribe binary built once for the black-box tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "regscribe-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "regscribe")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestHelpListsCommandsAndVariables(t *testing.T) {
	t.Parallel()
	variables := []string{"REGSCRIBE_CONCURRENCY", "REGSCRIBE_DATA_DIR", "OLLAMA_HOST", "REGSCRIBE_NATS_URL", "REGSCRIBE_OCI_DESCRIPTION", "qwen2.5vl:3b"}
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}, {"up", "-h"}, {"worker", "--help"}, {"help", "notifier"}} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		require.NoError(t, err, "%v: %s", args, out)
		for _, want := range variables {
			require.Contains(t, string(out), want, "%v", args)
		}
	}
	out, err := exec.Command(binary, "help").CombinedOutput()
	require.NoError(t, err)
	for _, want := range []string{"up", "notifier", "worker", "show", "describe", "reprocess", "status", "failed", "bench", "version", "completion"} {
		require.Contains(t, string(out), "\n  "+want+" ", "regscribe help lists %s", want)
	}
	out, err = exec.Command(binary, "version").CombinedOutput()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(out), "regscribe "), "%s", out)

	cmd := exec.Command(binary, "frobnicate")
	out, err = cmd.CombinedOutput()
	require.Error(t, err)
	require.Equal(t, 2, cmd.ProcessState.ExitCode())
	require.Contains(t, string(out), `unknown command "frobnicate"`)
}

func TestBadConfigurationSaysWhich(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(binary, "worker")
	cmd.Env = append(os.Environ(), "REGSCRIBE_CONCURRENCY=0", "REGSCRIBE_REGISTRIES=ftp://x")
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "REGSCRIBE_CONCURRENCY")
	require.Contains(t, string(out), "REGSCRIBE_REGISTRIES")
}

// process is a running `regscribe up` whose log the test can wait on.
type process = stacktest.Process

func startUp(t *testing.T, env ...string) *process {
	t.Helper()
	cmd := exec.Command(binary, "up")
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "REGSCRIBE_WEB_LISTEN=") }) {
		env = append(env, "REGSCRIBE_WEB_LISTEN="+freeAddr(t))
	}
	cmd.Env = append(os.Environ(), env...)
	return stacktest.StartProcess(t, cmd)
}

// upEnv is the environment of a `regscribe up` of a test's own: a fresh
// data dir and free ports for the notifier and NATS, then extra.
func upEnv(t *testing.T, extra ...string) []string {
	return append([]string{
		"REGSCRIBE_DATA_DIR=" + t.TempDir(),
		"REGSCRIBE_LISTEN=" + freeAddr(t),
		"REGSCRIBE_NATS_LISTEN=" + freeAddr(t),
	}, extra...)
}

// handedOut holds the addresses freeAddr gave, so that two servers of one
// test run never get the same port (the kernel may offer a closed one again).
var handedOut sync.Map

// freeAddr returns a loopback address with a port nobody listens on, and
// that this test binary has not handed out before.
func freeAddr(t *testing.T) string {
	t.Helper()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		if _, taken := handedOut.LoadOrStore(addr, true); !taken {
			return addr
		}
	}
}

// describedManifest waits (30 s at most) until `oras manifest fetch ref`
// shows a description, and returns the manifest.
func describedManifest(t *testing.T, dir, ref string) (manifest struct {
	Annotations map[string]string `json:"annotations"`
}) {
	t.Helper()
	require.Eventually(t, func() bool {
		require.NoError(t, json.Unmarshal([]byte(oras(t, dir, "manifest", "fetch", ref)), &manifest))
		return manifest.Annotations["io.regscribe.description"] != ""
	}, 30*time.Second, 100*time.Millisecond)
	return manifest
}

// oras runs the real oras CLI in dir (see stacktest.Oras).
func oras(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return stacktest.Oras(t, dir, args...)
}

// TestUpWithOrasCLI is the quick start, black box: `regscribe up`, then the
// real oras CLI pushes a photo and reads its description back. The model is
// unreachable at first: jobs stay queued across a restart and are done once
// it is back.
func TestUpWithOrasCLI(t *testing.T) {
	t.Parallel()
	modelAddr := freeAddr(t)
	regAddr, webAddr := freeAddr(t), freeAddr(t)
	_, regPort, _ := net.SplitHostPort(regAddr)
	env := upEnv(t,
		"REGSCRIBE_WEB_LISTEN="+webAddr,
		"REGSCRIBE_REGISTRY_ADDR="+regAddr,
		"REGSCRIBE_NOTIFY_TOKEN=",
		"OLLAMA_HOST=http://"+modelAddr,
		"REGSCRIBE_MODEL="+stacktest.Model,
		"REGSCRIBE_ACK_WAIT=3s",
	)
	work := t.TempDir()
	photo := stacktest.JPEG(t, 800, 600, 42)
	require.NoError(t, os.WriteFile(filepath.Join(work, "pineapple.jpg"), photo, 0o644))
	ref := "localhost:" + regPort + "/photos/pineapple:latest"

	// 1. No model: one clear line with the fix, and regscribe keeps running.
	p := startUp(t, env...)
	p.WaitLog(t, "regscribe is up")
	line := p.WaitLog(t, "no Ollama server at http://"+modelAddr)
	require.Contains(t, line, "ollama pull "+stacktest.Model)
	require.Contains(t, line, "REGSCRIBE_PROVIDER=openai")
	oras(t, work, "push", ref, "pineapple.jpg:image/jpeg")
	p.WaitLog(t, "model unavailable")
	p.Stop(t)
	require.NotContains(t, p.Log(), "panic")

	// 2. The model is back; a restart picks up the queued job.
	model := modeltest.NewUnstartedOllama(stacktest.Model)
	var err error
	model.Listener, err = net.Listen("tcp", modelAddr)
	require.NoError(t, err)
	model.Start()
	t.Cleanup(model.Close)
	p = startUp(t, env...)
	p.WaitLog(t, "model ready")

	manifest := describedManifest(t, work, ref)
	require.Equal(t, "A test photo "+modeltest.Digest(photo)[:19]+".", manifest.Annotations["io.regscribe.description"])
	require.Equal(t, manifest.Annotations["io.regscribe.description"], manifest.Annotations["org.opencontainers.image.description"],
		"the image-spec key, which registries' own pages show")
	require.Equal(t, "ollama/"+stacktest.Model, manifest.Annotations["io.regscribe.model"])
	require.Len(t, model.Calls(), 1)
	require.Equal(t, photo, model.Calls()[0].Images[0])
	require.Empty(t, model.Problems())

	// Search and the gallery name the registry as the photo was pushed,
	// under either loopback name.
	var found struct {
		Results []struct{ Registry, Digest string } `json:"results"`
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + webAddr + "/v1/search?q=test+photo")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&found))
		return len(found.Results) > 0
	}, 30*time.Second, 100*time.Millisecond)
	require.Len(t, found.Results, 1)
	require.Equal(t, "localhost:"+regPort, found.Results[0].Registry)
	for _, host := range []string{"localhost:" + regPort, "127.0.0.1:" + regPort} {
		resp, err := http.Get("http://" + webAddr + "/p/" + host + "/photos/pineapple@" + found.Results[0].Digest)
		require.NoError(t, err)
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, host)
		require.Contains(t, strings.ReplaceAll(string(page), "<wbr>", ""), "oras manifest fetch --pretty localhost:"+regPort+"/photos/pineapple@", host)
	}
	require.Contains(t, p.Log(), "localhost:"+regPort+" (once at start)", "the reconcile sweep names it so too")

	// The token never reaches the log.
	require.NotRegexp(t, `Bearer [0-9a-f]{20,}`, p.Log())
	p.Stop(t)
}

// TestReferrerModeWithOrasDiscover: in referrer mode the photo keeps its
// digest, `oras discover` lists the description with its annotations,
// `oras manifest fetch` returns the referrer, and `regscribe show` prints it.
func TestReferrerModeWithOrasDiscover(t *testing.T) {
	t.Parallel()
	model := modeltest.NewOllama(stacktest.Model)
	t.Cleanup(model.Close)
	regAddr := freeAddr(t)
	_, regPort, _ := net.SplitHostPort(regAddr)
	natsAddr := freeAddr(t)
	env := upEnv(t,
		"REGSCRIBE_REGISTRY_ADDR="+regAddr,
		"OLLAMA_HOST="+model.URL,
		"REGSCRIBE_MODEL="+stacktest.Model,
		"REGSCRIBE_MODE=referrer",
		"REGSCRIBE_NATS_LISTEN="+natsAddr,
	)
	p := startUp(t, env...)
	p.WaitLog(t, "model ready")
	work := t.TempDir()
	photo := stacktest.JPEG(t, 640, 480, 43)
	require.NoError(t, os.WriteFile(filepath.Join(work, "storm.jpg"), photo, 0o644))
	ref := "localhost:" + regPort + "/photos/storm:latest"
	oras(t, work, "push", ref, "storm.jpg:image/jpeg")
	var pushed struct {
		Digest string `json:"digest"`
	}
	require.NoError(t, json.Unmarshal([]byte(oras(t, work, "manifest", "fetch", "--descriptor", ref)), &pushed))

	var discovered struct {
		Referrers []struct {
			Digest       string            `json:"digest"`
			ArtifactType string            `json:"artifactType"`
			Annotations  map[string]string `json:"annotations"`
		} `json:"referrers"`
	}
	require.Eventually(t, func() bool {
		require.NoError(t, json.Unmarshal([]byte(oras(t, work, "discover", "--format", "json", ref)), &discovered))
		return len(discovered.Referrers) > 0
	}, 30*time.Second, 100*time.Millisecond)
	require.Len(t, discovered.Referrers, 1)
	r := discovered.Referrers[0]
	require.Equal(t, "application/vnd.regscribe.description.v1+json", r.ArtifactType)
	want := "A test photo " + modeltest.Digest(photo)[:19] + "."
	require.Equal(t, want, r.Annotations["io.regscribe.description"])

	var referrer struct {
		ArtifactType string `json:"artifactType"`
		Subject      struct {
			Digest string `json:"digest"`
		} `json:"subject"`
	}
	require.NoError(t, json.Unmarshal([]byte(oras(t, work, "manifest", "fetch", "localhost:"+regPort+"/photos/storm@"+r.Digest)), &referrer))
	require.Equal(t, "application/vnd.regscribe.description.v1+json", referrer.ArtifactType)
	require.Equal(t, pushed.Digest, referrer.Subject.Digest)
	var now struct {
		Digest string `json:"digest"`
	}
	require.NoError(t, json.Unmarshal([]byte(oras(t, work, "manifest", "fetch", "--descriptor", ref)), &now))
	require.Equal(t, pushed.Digest, now.Digest, "the photo keeps its digest")

	out, err := exec.Command(binary, "show", ref).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), want)
	require.Contains(t, string(out), "referrer "+r.Digest)
	// Flags after the arguments, as with oras.
	out, err = exec.Command(binary, "show", ref, "--json").Output()
	require.NoError(t, err)
	var shownPhoto struct {
		Reference    string `json:"reference"`
		Digest       string `json:"digest"`
		Tags         []string
		Descriptions []struct {
			StoredAs string `json:"storedAs"`
			Record   struct {
				Photos []struct {
					Description string `json:"description"`
				} `json:"photos"`
			} `json:"record"`
		} `json:"descriptions"`
	}
	require.Equal(t, 1, strings.Count(string(out), "\n"), "one photo, one line: %s", out)
	require.NoError(t, json.Unmarshal(out, &shownPhoto))
	require.Equal(t, ref, shownPhoto.Reference)
	require.Equal(t, pushed.Digest, shownPhoto.Digest)
	require.Equal(t, []string{"latest"}, shownPhoto.Tags)
	require.Len(t, shownPhoto.Descriptions, 1)
	require.Equal(t, "referrer", shownPhoto.Descriptions[0].StoredAs)
	require.Equal(t, want, shownPhoto.Descriptions[0].Record.Photos[0].Description)

	// reprocess finds it described, and says so in JSON, flags last.
	cmd := exec.Command(binary, "reprocess", "localhost:"+regPort+"/photos/storm", "--dry-run", "--json")
	cmd.Env = append(os.Environ(), "REGSCRIBE_NATS_URL=nats://"+natsAddr, "REGSCRIBE_MODEL="+stacktest.Model)
	out, err = cmd.Output()
	require.NoError(t, err, "%s", out)
	lines := jsonLines(t, string(out))
	require.Equal(t, "item", lines[0]["type"])
	require.Equal(t, "described", lines[0]["item"].(map[string]any)["status"])
	require.Equal(t, "summary", lines[len(lines)-1]["type"])
	require.Equal(t, true, lines[len(lines)-1]["dryRun"])
	p.Stop(t)
}

// TestUpWithOpenAIProvider: the openai provider against a fake that speaks
// the chat completions API, with a prompt file and a language.
func TestUpWithOpenAIProvider(t *testing.T) {
	t.Parallel()
	model := modeltest.NewOpenAI("sk-test-key", "gpt-4o-mini")
	t.Cleanup(model.Close)
	regAddr := freeAddr(t)
	_, regPort, _ := net.SplitHostPort(regAddr)
	promptFile := filepath.Join(t.TempDir(), "prompt.txt")
	require.NoError(t, os.WriteFile(promptFile, []byte("Describe the photo for the museum archive."), 0o644))
	p := startUp(t, upEnv(t,
		"REGSCRIBE_REGISTRY_ADDR="+regAddr,
		"REGSCRIBE_PROVIDER=openai",
		"OPENAI_BASE_URL="+model.BaseURL(),
		"OPENAI_API_KEY=sk-test-key",
		"REGSCRIBE_PROMPT_FILE="+promptFile,
		"REGSCRIBE_LANGUAGE=de",
	)...)
	p.WaitLog(t, "model ready")
	work := t.TempDir()
	photo := stacktest.JPEG(t, 320, 240, 44)
	require.NoError(t, os.WriteFile(filepath.Join(work, "ladybird.jpg"), photo, 0o644))
	ref := "localhost:" + regPort + "/photos/ladybird:latest"
	oras(t, work, "push", ref, "ladybird.jpg:image/jpeg")
	manifest := describedManifest(t, work, ref)
	require.Equal(t, "openai/gpt-4o-mini", manifest.Annotations["io.regscribe.model"])
	require.Equal(t, "A test photo "+modeltest.Digest(photo)[:19]+".", manifest.Annotations["io.regscribe.description"])
	calls := model.Calls()
	require.Len(t, calls, 1)
	require.True(t, strings.HasPrefix(calls[0].Prompt, "Describe the photo for the museum archive."), calls[0].Prompt)
	require.Contains(t, calls[0].Prompt, "German")
	require.Equal(t, photo, calls[0].Images[0])
	require.Equal(t, "image/jpeg", calls[0].MediaType)
	require.Empty(t, model.Problems())
	require.NotContains(t, p.Log(), "sk-test-key", "the API key is never logged")
	p.Stop(t)
}

// TestUpWithoutAModel is the quick start's first look without AI:
// `regscribe up` with REGSCRIBE_PROVIDER=none prints the next commands,
// pushing the picture it wrote works as printed, and the stand-in
// describes it by its size and colours, saying that no model saw it.
func TestUpWithoutAModel(t *testing.T) {
	t.Parallel()
	regAddr, webAddr := freeAddr(t), freeAddr(t)
	_, regPort, _ := net.SplitHostPort(regAddr)
	p := startUp(t, upEnv(t,
		"REGSCRIBE_WEB_LISTEN="+webAddr,
		"REGSCRIBE_REGISTRY_ADDR="+regAddr,
		"REGSCRIBE_PROVIDER=none",
	)...)
	p.WaitLog(t, "regscribe is up")
	var try struct{ Msg string }
	require.NoError(t, json.Unmarshal([]byte(p.WaitLog(t, "try it:")), &try))
	var dir, ref, file string
	_, err := fmt.Sscanf(try.Msg, "try it: cd %s && oras push %s %s", &dir, &ref, &file)
	require.NoError(t, err, try.Msg)
	require.Equal(t, "localhost:"+regPort+"/photos/hills:latest", ref)
	require.Equal(t, "sample-hills.jpg:image/jpeg", file)
	p.WaitLog(t, "then open http://"+webAddr)
	p.WaitLog(t, "no model (REGSCRIBE_PROVIDER=none)")

	oras(t, dir, "push", ref, file)
	manifest := describedManifest(t, dir, ref)
	d := manifest.Annotations["io.regscribe.description"]
	require.Contains(t, d, "Not described by a model")
	require.Contains(t, d, "A landscape JPEG, 1200 × 800 pixels as sent, mostly blue and green")
	require.Equal(t, "none/stand-in", manifest.Annotations["io.regscribe.model"])
	p.Stop(t)
	require.NotContains(t, p.Log(), "panic")
}
