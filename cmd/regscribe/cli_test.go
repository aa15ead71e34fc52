package main

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/feed"
	"github.com/regscribe/regscribe/internal/modeltest"
	"github.com/regscribe/regscribe/internal/stacktest"
)

var update = flag.Bool("update", false, "rewrite the golden files of the help texts (testdata/help)")

// noConfig is the configuration loader of a command line that must not
// read one (a usage error is found before).
func noConfig(t *testing.T) func() (config.Config, error) {
	return func() (config.Config, error) {
		t.Error("the configuration was read")
		return config.Config{}, errors.New("no configuration in this test")
	}
}

// TestFlagsBeforeAndAfterArguments runs every command that takes flags
// with its flags before its arguments and after them, against a real
// registry, NATS and a fake model: both give the same exit status and output.
func TestFlagsBeforeAndAfterArguments(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t)
	host := reg.Addr()
	photo := stacktest.JPEG(t, 96, 64, 61)
	pushPhoto(t, openRepo(t, host, "photos/cli"), "latest", photo)
	pushPhoto(t, openRepo(t, host, "photos/cli"), "other", stacktest.JPEG(t, 96, 64, 62))
	model := modeltest.NewOllama(stacktest.Model)
	t.Cleanup(model.Close)
	ns, js := startQueue(t)
	cfg := reprocessConfig(t, ns.ClientURL(), model.URL)
	ref := host + "/photos/cli:latest"

	// Describe first (flags last), so that show has something to show.
	code, out, errOut := runCLI(t, cfg, "describe", ref, "--mode", "annotation")
	require.Equal(t, 0, code, "%s\n%s", out, errOut)
	require.Contains(t, out, "described "+ref+" as annotation")
	require.Empty(t, errOut)
	// What it wrote is on the description stream, so search finds it.
	s, err := js.Stream(context.Background(), feed.Stream)
	require.NoError(t, err)
	m, err := s.GetLastMsgForSubject(context.Background(), feed.SubjectPrefix+">")
	require.NoError(t, err)
	e, err := feed.Parse(m.Data)
	require.NoError(t, err)
	require.Equal(t, feed.Written, e.Kind)
	require.Equal(t, "photos/cli", e.Repository)
	require.Equal(t, []string{"latest"}, e.Tags)

	cases := []struct {
		name          string
		before, after []string
		code          int
		want          string // in stdout
	}{
		{"show", []string{"show", "--json", "--plain-http", ref}, []string{"show", ref, "--json", "--plain-http"}, 0, `"storedAs":"annotation"`},
		{"show --format", []string{"show", "--format", "json", ref}, []string{"show", ref, "--format=json"}, 0, `"reference":"` + ref + `"`},
		{"show text", []string{"show", "--plain-http", ref}, []string{"show", ref, "--plain-http"}, 0, "stored as: annotation"},
		{"show a repository as text", []string{"show", "--format", "text", host + "/photos/cli"}, []string{"show", host + "/photos/cli", "--format", "text"}, 1, " (other) ("},
		{"show a repository", []string{"show", "--json", host + "/photos/cli"}, []string{"show", host + "/photos/cli", "--json"}, 1, `"tags":["other"]`},
		{"describe", []string{"describe", "--mode", "annotation", "--force", host + "/photos/cli:other"}, []string{"describe", host + "/photos/cli:other", "--mode", "annotation", "--force"}, 0, "described " + host + "/photos/cli:other as annotation"},
		{"reprocess", []string{"reprocess", "--dry-run", "--json", host + "/photos/cli"}, []string{"reprocess", host + "/photos/cli", "--dry-run", "--json"}, 0, `"type":"summary"`},
		{"reprocess --format", []string{"reprocess", "--dry-run", "--format", "json", "--tag", "o*", host + "/photos/cli"}, []string{"reprocess", host + "/photos/cli", "--tag", "o*", "--format", "json", "--dry-run"}, 0, `"tags":["other"]`},
		{"failed list", []string{"failed", "list", "--json"}, []string{"failed", "list", "--format", "json"}, 0, "[]"},
		{"failed retry", []string{"failed", "retry", "--all", "999"}, []string{"failed", "retry", "999", "--all"}, 1, ""},
		{"status", []string{"status", "--json"}, []string{"status", "--format", "json"}, 0, `"consumers"`},
		{"version", []string{"version", "--json"}, []string{"version", "--format=json"}, 0, `"go":"` + runtime.Version() + `"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, cfg, tc.before...)
			require.Equal(t, tc.code, code, "%v\n%s\n%s", tc.before, out, errOut)
			require.Contains(t, out, tc.want, "%v", tc.before)
			code2, out2, errOut2 := runCLI(t, cfg, tc.after...)
			require.Equal(t, tc.code, code2, "%v\n%s\n%s", tc.after, out2, errOut2)
			if strings.HasPrefix(tc.name, "describe") {
				require.Contains(t, out2, tc.want, "%v", tc.after)
				return
			}
			require.Equal(t, out, out2, "%v and %v print the same", tc.before, tc.after)
		})
	}
	require.Len(t, model.Calls(), 3, "latest described once, other twice (forced)")
}

// TestShowJSONRecords: with --format json, each photo is one JSON object on
// its own line, of one shape for a reference, several and a repository.
func TestShowJSONRecords(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t)
	host := reg.Addr()
	model := modeltest.NewOllama(stacktest.Model)
	t.Cleanup(model.Close)
	cfg := reprocessConfig(t, closedNATSURL(t), model.URL)
	a, b := stacktest.JPEG(t, 80, 60, 71), stacktest.JPEG(t, 80, 60, 72)
	repo := openRepo(t, host, "photos/show")
	pushPhoto(t, repo, "a", a)
	pushPhoto(t, repo, "b", b)
	require.NoError(t, repo.Tag(t.Context(), pushPhoto(t, repo, "c", stacktest.JPEG(t, 80, 60, 73)), "c2"))
	for _, tag := range []string{"a", "b"} {
		code, out, errOut := runCLI(t, cfg, "describe", host+"/photos/show:"+tag, "--mode", "referrer")
		require.Equal(t, 0, code, "%s\n%s", out, errOut)
	}

	records := func(args ...string) (int, []shown) {
		code, out, errOut := runCLI(t, cfg, append([]string{"show"}, append(args, "--format", "json")...)...)
		var all []shown
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var s shown
			require.NoError(t, json.Unmarshal(sc.Bytes(), &s), "one object per line: %s\n%s", out, errOut)
			all = append(all, s)
		}
		return code, all
	}
	code, one := records(host + "/photos/show:a")
	require.Equal(t, 0, code)
	require.Len(t, one, 1)
	require.Equal(t, host+"/photos/show:a", one[0].Reference)
	require.Equal(t, []string{"a"}, one[0].Tags)
	require.Len(t, one[0].Descriptions, 1)
	require.Equal(t, "referrer", one[0].Descriptions[0].StoredAs)
	require.Equal(t, "A test photo "+modeltest.Digest(a)[:19]+".", one[0].Descriptions[0].Record.Photos[0].Description)

	code, two := records(host+"/photos/show:a", host+"/photos/show:b")
	require.Equal(t, 0, code)
	require.Len(t, two, 2)
	require.Equal(t, one[0], two[0], "the same record shape for one reference or several")
	require.Equal(t, "A test photo "+modeltest.Digest(b)[:19]+".", two[1].Descriptions[0].Record.Photos[0].Description)

	// The repository: each photo once with its tags; c (tagged c and c2)
	// has no description: status 1.
	code, all := records(host + "/photos/show")
	require.Equal(t, 1, code)
	require.Len(t, all, 3)
	byTags := map[string]shown{}
	for _, s := range all {
		byTags[strings.Join(s.Tags, ",")] = s
		require.Equal(t, host+"/photos/show@"+s.Digest, s.Reference)
	}
	require.Equal(t, one[0].Descriptions, byTags["a"].Descriptions)
	require.NotNil(t, byTags["c,c2"].Descriptions)
	require.Empty(t, byTags["c,c2"].Descriptions)
	require.Len(t, byTags["b"].Descriptions, 1)
}

// commandPaths lists every command of the tree, as its words.
func commandPaths(cmd *cobra.Command) [][]string {
	var out [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		out = append(out, path)
		for _, sub := range c.Commands() {
			if !sub.Hidden {
				walk(sub, append(append([]string{}, path...), sub.Name()))
			}
		}
	}
	walk(cmd, nil)
	return out
}

// TestHelpGolden: --help of every command, against testdata/help (go test
// -run TestHelpGolden -update rewrites them). The help of regscribe and of
// the services ends with the environment variables, which is config.Usage
// itself, not a copy: checked here, and left out of the golden files.
func TestHelpGolden(t *testing.T) {
	t.Parallel()
	var table strings.Builder
	require.NoError(t, config.Usage(&table))
	// The completion and help commands are added when the tree runs.
	tree := newCLI(nil, nil, noConfig(t)).root()
	tree.InitDefaultCompletionCmd()
	tree.InitDefaultHelpCmd()
	paths := commandPaths(tree)
	require.Greater(t, len(paths), 15)
	for _, path := range paths {
		name := strings.Join(append([]string{"regscribe"}, path...), "_")
		t.Run(name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := newCLI(&out, &errOut, noConfig(t)).execute(t.Context(), append(append([]string{}, path...), "--help"))
			require.Equal(t, 0, code, errOut.String())
			require.Empty(t, errOut.String())
			help := out.String()
			const marker = "\nConfiguration is read from the environment:\n"
			if i := strings.Index(help, marker); i >= 0 {
				require.Equal(t, table.String(), help[i+len(marker):], "the variables are config.Usage's")
				help = help[:i+len(marker)]
			}
			golden := filepath.Join("testdata", "help", name+".golden")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
				require.NoError(t, os.WriteFile(golden, []byte(help), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "go test ./cmd/regscribe -run TestHelpGolden -update writes it")
			require.Equal(t, string(want), help)
		})
	}
}

// TestHelpHasExamples: every command a person runs shows examples.
func TestHelpHasExamples(t *testing.T) {
	t.Parallel()
	for _, cmd := range newCLI(nil, nil, noConfig(t)).root().Commands() {
		require.NotEmpty(t, cmd.Example, cmd.Name())
		for _, sub := range cmd.Commands() {
			require.NotEmpty(t, sub.Example, sub.CommandPath())
		}
	}
}

// TestUsageErrors: unknown commands and flags, and wrong arguments, are
// one line on stderr with a suggestion where there is one, and status 2,
// before any configuration is read.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"shwo", "localhost:5000/photos/a:latest"}, `regscribe: unknown command "shwo"; did you mean "show"? (see 'regscribe --help')`},
		{[]string{"frobnicate"}, `regscribe: unknown command "frobnicate" (see 'regscribe --help')`},
		{[]string{"reprocess", "localhost:5000/photos", "--wiat"}, `regscribe reprocess: unknown flag: --wiat; did you mean --wait? (see 'regscribe reprocess --help')`},
		{[]string{"show", "localhost:5000/photos/a:latest", "--jsno"}, "unknown flag: --jsno; did you mean --json?"},
		{[]string{"reprocess", "--dry", "localhost:5000/photos"}, "unknown flag: --dry; did you mean --dry-run?"},
		{[]string{"show", "-json", "localhost:5000/photos/a:latest"}, "unknown shorthand flag: 'j' in -json; did you mean --json?"},
		{[]string{"status", "--frobnicate"}, "regscribe status: unknown flag: --frobnicate (see"},
		{[]string{"failed", "lst"}, `regscribe failed: unknown command "lst"; did you mean "list"?`},
		{[]string{"failed"}, "regscribe failed: which? list or retry"},
		{[]string{"failed", "retry"}, "takes the IDs of 'regscribe failed list', or --all"},
		{[]string{"failed", "retry", "7", "seven"}, `"seven" is not an ID`},
		{[]string{"up", "extra"}, `regscribe up: unexpected argument "extra": settings are environment variables`},
		{[]string{"worker", "--concurrency", "3"}, "regscribe worker: unknown flag: --concurrency"},
		{[]string{"show"}, "regscribe show: takes one or more REGISTRY/REPOSITORY[:TAG|@DIGEST], not 0 argument(s)"},
		{[]string{"describe", "a/b:c", "d/e:f"}, "regscribe describe: takes one REGISTRY/REPOSITORY[:TAG|@DIGEST], not 2 argument(s)"},
		{[]string{"status", "--format", "yaml"}, `invalid argument "yaml" for "--format" flag: want json or text`},
		{[]string{"status", "extra"}, "regscribe status: takes no arguments"},
		{[]string{"describe", "--mode"}, "flag needs an argument: --mode"},
		{[]string{"bench", "--format", "yaml"}, `regscribe bench: invalid argument "yaml" for --format`},
		{[]string{"search", "--jsn", "flower"}, "regscribe search: unknown flag: --jsn; did you mean --json?"},
		{[]string{"search"}, "regscribe search: takes a query, not 0 argument(s)"},
		{[]string{"search", "--json", "-n", "5"}, "regscribe search: takes a query, not 0 argument(s)"},
		{[]string{"search", "flower", "--limit"}, "flag needs an argument: --limit"},
	} {
		var out, errOut strings.Builder
		code := newCLI(&out, &errOut, noConfig(t)).execute(t.Context(), tc.args)
		require.Equal(t, 2, code, "%v: %s", tc.args, errOut.String())
		require.Contains(t, errOut.String(), tc.want, "%v", tc.args)
		require.Equal(t, 1, strings.Count(errOut.String(), "\n"), "%v: one line: %q", tc.args, errOut.String())
		require.Empty(t, out.String())
	}

	// regscribe alone: the help, on stderr, and status 2.
	var out, errOut strings.Builder
	require.Equal(t, 2, newCLI(&out, &errOut, noConfig(t)).execute(t.Context(), nil))
	require.Contains(t, errOut.String(), "Services (settings from the environment, no arguments):")
	require.Empty(t, out.String())
}

// TestCompletion: `regscribe completion SHELL` writes a script for each
// shell, bash takes it (when bash is here), and the flags' values complete.
func TestCompletion(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		var out, errOut strings.Builder
		code := newCLI(&out, &errOut, noConfig(t)).execute(t.Context(), []string{"completion", shell})
		require.Equal(t, 0, code, "%s: %s", shell, errOut.String())
		require.Contains(t, out.String(), "regscribe", shell)
		require.Contains(t, out.String(), "__complete", shell)
		require.Greater(t, len(out.String()), 1000, shell)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"sh"}, []string{"show"}},
		{[]string{"failed", ""}, []string{"list", "retry"}},
		{[]string{"show", "x/y:z", "--format", ""}, []string{"json", "text"}},
		{[]string{"describe", "--mode", ""}, []string{"annotation", "referrer", "auto"}},
		{[]string{"reprocess", "x/y", "--dry"}, []string{"--dry-run"}},
	} {
		var out strings.Builder
		require.Equal(t, 0, newCLI(&out, &strings.Builder{}, noConfig(t)).execute(t.Context(), append([]string{"__complete"}, tc.args...)))
		for _, w := range tc.want {
			require.Contains(t, strings.Fields(out.String()), w, "%v: %s", tc.args, out.String())
		}
	}

	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Log("no bash here: the script is not sourced")
		return
	}
	out, err := exec.Command(bash, "--norc", "--noprofile", "-c", "source <('"+binary+"' completion bash) && complete -p regscribe").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Regexp(t, `^complete .*-F __start_regscribe regscribe\n$`, string(out))
}

// TestVersion: the module version and the VCS revision come from the build
// information: a go install of a tagged version shows its version, a go
// build in a checkout its revision; the binary prints its own.
func TestVersion(t *testing.T) {
	t.Parallel()
	v := versionOf(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/regscribe/regscribe", Version: "v1.2.3"}})
	require.Equal(t, "v1.2.3", v.Version)
	require.Equal(t, "v1.2.3", v.Short())
	require.Equal(t, "go1.26.8", v.Go)

	v = versionOf(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-11-27T20:41:07Z"}, {Key: "vcs.modified", Value: "true"},
	}})
	require.Equal(t, versionInfo{Version: "(devel)", Revision: "0123456789abcdef0123456789abcdef01234567", Time: "2026-11-27T20:41:07Z",
		Modified: true, Go: "go1.26.8", Platform: runtime.GOOS + "/" + runtime.GOARCH}, v)
	require.Equal(t, "dev-0123456789ab+dirty", v.Short())
	var text strings.Builder
	v.write(&text, formatText)
	require.Equal(t, "regscribe (devel)\n  revision   0123456789abcdef0123456789abcdef01234567 (modified)\n  committed  2026-11-27T20:41:07Z\n  go         go1.26.8 "+v.Platform+"\n", text.String())
	require.Equal(t, "dev", versionOf(nil).Short())

	// The binary built for these tests prints what Go stamped into it.
	bi, err := buildinfo.ReadFile(binary)
	require.NoError(t, err)
	out, err := exec.Command(binary, "version", "--format", "json").Output()
	require.NoError(t, err)
	var got versionInfo
	require.NoError(t, json.Unmarshal(out, &got))
	require.Equal(t, versionOf(bi), got)
	out, err = exec.Command(binary, "--version").Output()
	require.NoError(t, err)
	require.Equal(t, "regscribe "+versionOf(bi).Short()+"\n", string(out))
}

// TestShowPrintsVisibleText: the text visible in a photo is shown with its
// description (annotation and referrer alike), and no line is printed for
// a photo without any.
func TestShowPrintsVisibleText(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t)
	host := reg.Addr()
	model := modeltest.NewUnstartedOllama(stacktest.Model)
	sign := stacktest.JPEG(t, 80, 60, 74)
	model.Answer = func(c modeltest.Call) modeltest.Reply {
		if modeltest.Digest(c.Images[0]) == modeltest.Digest(sign) {
			return modeltest.JSONText("A road sign.", "Road sign", "STOP", "sign")
		}
		return modeltest.DescribeByDigest(c)
	}
	model.Start()
	t.Cleanup(model.Close)
	cfg := reprocessConfig(t, closedNATSURL(t), model.URL)
	repo := openRepo(t, host, "photos/signs")
	pushPhoto(t, repo, "sign", sign)
	pushPhoto(t, repo, "plain", stacktest.JPEG(t, 80, 60, 75))
	for tag, mode := range map[string]string{"sign": "annotation", "plain": "referrer"} {
		code, out, errOut := runCLI(t, cfg, "describe", host+"/photos/signs:"+tag, "--mode", mode)
		require.Equal(t, 0, code, "%s\n%s", out, errOut)
	}
	code, out, errOut := runCLI(t, cfg, "show", host+"/photos/signs:sign")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "    A road sign.\n    alt: Road sign\n    keywords: sign\n    text: STOP\n")
	code, out, errOut = runCLI(t, cfg, "show", host+"/photos/signs:sign", "--format", "json")
	require.Equal(t, 0, code, errOut)
	var s shown
	require.NoError(t, json.Unmarshal([]byte(out), &s))
	require.Equal(t, "STOP", s.Descriptions[0].Record.Photos[0].Text)
	code, out, errOut = runCLI(t, cfg, "show", host+"/photos/signs:plain")
	require.Equal(t, 0, code, errOut)
	require.NotContains(t, out, "\n    text:")
}
