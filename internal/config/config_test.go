package config_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/feed"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	good := func() config.Config {
		return config.Config{Concurrency: 4, MaxBlobBytes: 1, MaxAttempts: 5, Mode: "auto", Select: "all",
			OptInAnnotation: "io.regscribe.describe=true", Provider: "ollama", OpenAIDetail: "auto", LogFormat: "auto", Replicas: 1,
			DeadLetterMaxAge: 720 * time.Hour, DeadLetterMaxCount: 10_000}
	}
	require.NoError(t, good().Validate())
	cases := []struct {
		name string
		edit func(*config.Config)
		want string
	}{
		{"concurrency", func(c *config.Config) { c.Concurrency = 0 }, "REGSCRIBE_CONCURRENCY"},
		{"mode", func(c *config.Config) { c.Mode = "tattoo" }, "REGSCRIBE_MODE"},
		{"provider", func(c *config.Config) { c.Provider = "clippy" }, "REGSCRIBE_PROVIDER"},
		{"registry scheme", func(c *config.Config) { c.Registries = []string{"ftp://x"} }, "REGSCRIBE_REGISTRIES"},
		{"registry path", func(c *config.Config) { c.Registries = []string{"https://x/v2"} }, "REGSCRIBE_REGISTRIES"},
		{"prompt twice", func(c *config.Config) { c.Prompt, c.PromptFile = "a", "b" }, "not both"},
		{"zot subject inside regscribe", func(c *config.Config) { c.ZotSubject, c.ZotRegistry = "regscribe.jobs.zot", "z:5000" }, "REGSCRIBE_ZOT_SUBJECT"},
		{"zot without registry", func(c *config.Config) { c.ZotSubject = "zot.events" }, "REGSCRIBE_ZOT_REGISTRY"},
		{"opt-in annotation", func(c *config.Config) { c.OptInAnnotation = "describe" }, "REGSCRIBE_OPT_IN_ANNOTATION"},
		{"replicas", func(c *config.Config) { c.Replicas = 7 }, "REGSCRIBE_REPLICAS"},
		{"reconcile interval", func(c *config.Config) { c.ReconcileInterval = "hourly" }, "REGSCRIBE_RECONCILE_INTERVAL"},
		{"reconcile interval too short", func(c *config.Config) { c.ReconcileInterval = "10ms" }, "REGSCRIBE_RECONCILE_INTERVAL"},
		{"reconcile rate", func(c *config.Config) { c.ReconcileRPS = -1 }, "REGSCRIBE_RECONCILE_RPS"},
		{"dead letters kept too briefly", func(c *config.Config) { c.DeadLetterMaxAge = time.Minute }, "REGSCRIBE_DEAD_LETTER_MAX_AGE"},
		{"no dead letters kept", func(c *config.Config) { c.DeadLetterMaxCount = 0 }, "REGSCRIBE_DEAD_LETTER_MAX_COUNT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := good()
			tc.edit(&c)
			require.ErrorContains(t, c.Validate(), tc.want)
		})
	}
}

func TestOllamaURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                        "http://localhost:11434",
		"0.0.0.0":                 "http://0.0.0.0:11434",
		"gpu-box:8080":            "http://gpu-box:8080",
		"https://ollama.internal": "https://ollama.internal:443",
	} {
		u, err := config.OllamaURL(in)
		require.NoError(t, err, in)
		require.Equal(t, want, u.String(), in)
	}
}

var variable = regexp.MustCompile(`\bREGSCRIBE_[A-Z_]*[A-Z]\b`)

// testOnly are variables the tests read, not regscribe (the soak's seed, the
// browser of the gallery's tests).
var testOnly = []string{"REGSCRIBE_SOAK_SEED", "REGSCRIBE_CHROMIUM", "REGSCRIBE_AXE"}

// streams are JetStream names the README mentions, which look like variables.
var streams = []string{feed.Stream}

// Every REGSCRIBE_ variable the README or the deploy files name exists, and
// the README's configuration table names every variable.
func TestReconcileEvery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
		on   bool
	}{{"", time.Hour, true}, {"15m", 15 * time.Minute, true}, {"off", 0, false}} {
		every, on, err := config.Config{ReconcileInterval: tc.in}.ReconcileEvery()
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, every, tc.in)
		require.Equal(t, tc.on, on, tc.in)
	}
}

func TestDocumentedVariablesExist(t *testing.T) {
	t.Parallel()
	known := config.Variables()
	require.Contains(t, known, "REGSCRIBE_CONCURRENCY")
	files := []string{"../../README.md"}
	require.NoError(t, filepath.WalkDir("../../deploy", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	}))
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, v := range variable.FindAllString(string(b), -1) {
			if slices.Contains(testOnly, v) || slices.Contains(streams, v) {
				continue
			}
			require.True(t, slices.Contains(known, v), "%s names %s, which regscribe does not read", f, v)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	for _, v := range known {
		alt := strings.TrimPrefix(v, config.Prefix+"_")
		require.True(t, strings.Contains(string(readme), v) || strings.Contains(string(readme), "`"+alt+"`"),
			"README's configuration table lacks %s", v)
	}
}
