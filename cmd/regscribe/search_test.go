package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/stacktest"
)

// searchCLI runs the built `regscribe search args...` with env and returns
// its exit status and output.
func searchCLI(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"search"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), out.String(), errOut.String()
	}
	require.NoError(t, err)
	return 0, out.String(), errOut.String()
}

// TestSearchQuickStart is the search issue's "done when", black box: a
// fresh `regscribe up`, photos pushed with the oras CLI, then `regscribe
// search` and GET /v1/search find each by its words and its visible text;
// a restart keeps the index without duplicates.
func TestSearchQuickStart(t *testing.T) {
	t.Parallel()
	forklift, pineapple := stacktest.JPEG(t, 320, 240, 501), stacktest.JPEG(t, 320, 240, 502)
	model := modeltest.NewOllama(stacktest.Model)
	model.Answer = func(c modeltest.Call) modeltest.Reply {
		switch modeltest.Digest(c.Images[0]) {
		case modeltest.Digest(forklift):
			return modeltest.JSONText("A yellow forklift lifts pallets in a warehouse.", "Forklift with pallets.", "EXIT 4", "forklift", "warehouse")
		case modeltest.Digest(pineapple):
			return modeltest.JSON("Three ripe pineapples on a wooden table.", "Pineapples on a table.", "fruit", "pineapple")
		}
		return modeltest.DescribeByDigest(c)
	}
	t.Cleanup(model.Close)
	regAddr, webAddr := freeAddr(t), freeAddr(t)
	_, regPort, _ := net.SplitHostPort(regAddr)
	env := upEnv(t,
		"REGSCRIBE_REGISTRY_ADDR="+regAddr,
		"REGSCRIBE_WEB_LISTEN="+webAddr,
		"REGSCRIBE_NOTIFY_TOKEN=",
		"OLLAMA_HOST="+model.URL,
		"REGSCRIBE_MODEL="+stacktest.Model,
	)
	client := []string{"REGSCRIBE_WEB_LISTEN=" + webAddr, "REGSCRIBE_WEB_URL="}

	work := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(work, "forklift.jpg"), forklift, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(work, "pineapple.jpg"), pineapple, 0o644))
	p := startUp(t, env...)
	up := p.WaitLog(t, "regscribe is up")
	require.Contains(t, up, "http://"+webAddr, "the start-up line names the gallery")
	oras(t, work, "push", "localhost:"+regPort+"/warehouse/floor:latest", "forklift.jpg:image/jpeg")
	oras(t, work, "push", "localhost:"+regPort+"/food/fruit:v1", "pineapple.jpg:image/jpeg")

	var code int
	var out, errOut string
	for _, word := range []string{"pineapples", "forklift"} {
		require.Eventually(t, func() bool {
			code, out, errOut = searchCLI(t, client, word)
			return code == 0
		}, 20*time.Second, 200*time.Millisecond, "%s never found: %d %s %s\nqueue: %s", word, code, out, errOut, queueStatus(env))
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.True(t, strings.HasPrefix(lines[0], "localhost:"+regPort+"/warehouse/floor@sha256:"), "by the name pushed to: %s", out)
	require.Contains(t, out, "tags latest")
	require.Contains(t, out, "A yellow forklift lifts pallets in a warehouse.")
	require.NotContains(t, out, "pineapple")
	require.NotContains(t, out, "\x1b[", "no terminal, no highlighting")

	// The visible text is searchable; filters and JSON lines work.
	code, out, _ = searchCLI(t, client, "--json", "exit", "--limit", "5")
	require.Equal(t, 0, code)
	var hit map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(out)), &hit), "one JSON object per line: %s", out)
	require.Equal(t, "warehouse/floor", hit["repository"])
	require.Equal(t, "EXIT 4", hit["text"])
	require.Equal(t, "ollama/"+stacktest.Model, hit["model"])
	for _, field := range []string{"registry", "digest", "tags", "title", "description", "alt", "keywords", "score"} {
		require.Contains(t, hit, field)
	}
	code, _, errOut = searchCLI(t, client, "pineapples", "--repository", "warehouse/*")
	require.Equal(t, 1, code, "no match in that repository")
	require.Contains(t, errOut, "no photo matches")
	code, out, _ = searchCLI(t, client, "--repository", "food/*", "pineapples")
	require.Equal(t, 0, code, "flags before the query")
	require.Contains(t, out, "localhost:"+regPort+"/food/fruit@")

	// The query language: -word excludes (not a flag), OR widens, a
	// misspelt word is searched as the index spells it, a filter it
	// cannot read is a usage error that shows the right form.
	code, _, errOut = searchCLI(t, client, "forklift", "-warehouse")
	require.Equal(t, 1, code, "the forklift photo says warehouse: %s", errOut)
	code, out, _ = searchCLI(t, client, "-n", "5", "pineapples", "-forklift", "--json")
	require.Equal(t, 0, code)
	require.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 1, out)
	code, out, _ = searchCLI(t, client, "--json", "pineapples", "OR", "forklift")
	require.Equal(t, 0, code)
	require.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 2, out)
	code, out, errOut = searchCLI(t, client, "forklfit")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, "no photo matches forklfit; showing forklift")
	require.Contains(t, out, "/warehouse/floor@")
	code, _, errOut = searchCLI(t, client, "forklift", "after:yesterday")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "after:yesterday is not a date: write YYYY-MM-DD, after:2026-01-01")
	code, out, _ = searchCLI(t, client, "pineapples", "repo:fruit")
	require.Equal(t, 0, code, "repo: matches a path segment")
	require.Contains(t, out, "/food/fruit@")

	// Usage errors.
	code, _, errOut = searchCLI(t, client)
	require.Equal(t, 2, code, errOut)
	code, _, errOut = searchCLI(t, client, "--limit", "0", "forklift")
	require.Equal(t, 2, code, errOut)

	// The HTTP API, as curl would ask it.
	resp, err := http.Get("http://" + webAddr + "/v1/search?q=" + url.QueryEscape("wooden table"))
	require.NoError(t, err)
	var api struct {
		Results []map[string]any `json:"results"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&api))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotEmpty(t, api.Results)
	require.Equal(t, "food/fruit", api.Results[0]["repository"])

	// A photo described before search existed (here by a person, which no
	// job replaces) is not in the index until reprocess finds it (named
	// 127.0.0.1:PORT on its command line: the same registry in search).
	require.NoError(t, os.WriteFile(filepath.Join(work, "lighthouse.jpg"), stacktest.JPEG(t, 320, 240, 503), 0o644))
	oras(t, work, "push", "--annotation", "io.regscribe.description=A white lighthouse on black rocks at dusk.",
		"--annotation", "io.regscribe.model=person:ann", "localhost:"+regPort+"/coast/old:v1", "lighthouse.jpg:image/jpeg")
	time.Sleep(time.Second) // its job runs and keeps the person's description
	code, _, _ = searchCLI(t, client, "lighthouse")
	require.Equal(t, 1, code, "a description no stream event announced is not indexed")
	reprocess := exec.Command(binary, "reprocess", "--wait", regAddr+"/coast/old")
	reprocess.Env = append(os.Environ(), "REGSCRIBE_NATS_URL=nats://"+natsListen(env))
	rout, err := reprocess.CombinedOutput()
	require.NoError(t, err, "%s", rout)
	require.Regexp(t, `indexed\s+1`, string(rout))
	require.Eventually(t, func() bool {
		code, out, _ = searchCLI(t, client, "lighthouse")
		return code == 0
	}, 20*time.Second, 200*time.Millisecond)
	require.Contains(t, out, "by person:ann")

	// A manifest deleted in the registry leaves search.
	oras(t, work, "manifest", "delete", "--force", "localhost:"+regPort+"/coast/old:v1")
	require.Eventually(t, func() bool {
		code, _, _ = searchCLI(t, client, "lighthouse")
		return code == 1
	}, 20*time.Second, 200*time.Millisecond, "the deleted manifest is still found")

	// A restart keeps the index and adds no duplicate.
	p.Stop(t)
	p = startUp(t, env...)
	p.WaitLog(t, "regscribe is up")
	require.Eventually(t, func() bool {
		code, out, _ = searchCLI(t, client, "--json", "forklift")
		return code == 0
	}, 30*time.Second, 200*time.Millisecond)
	require.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 1, out)
	p.Stop(t)

	// Nothing running: a clear error, not "no match".
	code, _, errOut = searchCLI(t, client, "forklift")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "nothing answers at http://"+webAddr)
}

// queueStatus is `regscribe status --format json` of the `up` started with
// env, for a failure message.
func queueStatus(env []string) string {
	cmd := exec.Command(binary, "status", "--format", "json")
	cmd.Env = append(os.Environ(), "REGSCRIBE_NATS_URL=nats://"+natsListen(env))
	out, err := cmd.CombinedOutput()
	return string(out) + fmt.Sprint(err)
}

// natsListen is the NATS address of the `up` started with env.
func natsListen(env []string) string {
	var addr string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "REGSCRIBE_NATS_LISTEN="); ok {
			addr = v
		}
	}
	return addr
}

// TestQueryArgs: a word of the query that starts with - is the query's
// (flower -orange), the flags are flags before and after the query, and
// everything after -- is the query.
func TestQueryArgs(t *testing.T) {
	t.Parallel()
	cmd := newCLI(nil, nil, noConfig(t)).searchCmd()
	cmd.InitDefaultHelpFlag()
	for _, tc := range []struct {
		args, words, flags []string
	}{
		{[]string{"flower", "-orange"}, []string{"flower", "-orange"}, nil},
		{[]string{"flower", "-orange", "--json"}, []string{"flower", "-orange"}, []string{"--json"}},
		{[]string{"--limit", "5", "flower", "-nature", "-n", "3"}, []string{"flower", "-nature"}, []string{"--limit", "5", "-n", "3"}},
		{[]string{"-n5", "-n=6", "--limit=7", "dog", "--repository", "photos/*"}, []string{"dog"}, []string{"-n5", "-n=6", "--limit=7", "--repository", "photos/*"}},
		{[]string{"--json", "--", "--limit", "-h"}, []string{"--limit", "-h"}, []string{"--json"}},
		{[]string{"dog", "-h"}, []string{"dog"}, []string{"-h"}},
		{[]string{"-", "a-b", "NOT", "cat", "--jsn"}, []string{"-", "a-b", "NOT", "cat"}, []string{"--jsn"}},
	} {
		words, flags := queryArgs(cmd.Flags(), tc.args)
		require.Equal(t, tc.words, words, "%v", tc.args)
		require.Equal(t, tc.flags, flags, "%v", tc.args)
	}
}
