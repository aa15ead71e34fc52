package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/regscribe/regscribe/internal/config"
	"github.com/regscribe/regscribe/internal/web"
)

// searchFlags are the flags of `regscribe search`.
type searchFlags struct {
	format     outputFormat
	limit      int
	repository string
	model      string
}

func (c *cli) searchCmd() *cobra.Command {
	var f searchFlags
	cmd := &cobra.Command{
		Use:   "search QUERY...",
		Short: "Find photos by what their descriptions say (asks the web address of 'up' or 'web')",
		Long: `Finds photos by what their descriptions say, best first, across every
repository regscribe has described. Asks the search API of a running
'regscribe up' or 'regscribe web' (REGSCRIBE_WEB_URL, else http:// and
REGSCRIBE_WEB_LISTEN; REGSCRIBE_WEB_TOKEN is sent when set).

The query is the gallery's (the Search section of the README describes
it): words (each must match), "quoted phrases", OR between two words
(either), -word or NOT word (without), and the filters repo:GLOB (a run of
whole path segments: repo:garden finds photos/garden; * within a segment,
** across), model:MODEL, tag:TAG, after:YYYY-MM-DD, before:YYYY-MM-DD. A
word after the query that starts with - is excluded, not a flag, unless it
is one of the flags below. The text search matches words of the
description, alt text, keywords, visible text and file name. When the
words find nothing, the words the index holds nearest to them are searched
and named on stderr. With REGSCRIBE_EMBED_MODEL set on the server, results
also match by meaning (semantic search); without it, by words alone.

Exit status: 0 with matches, 1 with none, 2 for a usage error (a filter it
cannot read, such as after:yesterday, is one) or when the search could not
be made.`,
		Example: `  regscribe search forklift
  regscribe search flower -orange --json
  regscribe search gerbera OR daisy repo:garden
  regscribe search '"Q3 revenue"' --repository 'slides/**'
  regscribe search dog after:2026-01-01 --limit 5 --json`,
		GroupID:           groupTools,
		ValidArgsFunction: cobra.NoFileCompletions,
		// The query's -word is no flag: the flags are read here.
		DisableFlagParsing: true,
	}
	run := c.tool(func(ctx context.Context, cfg config.Config, args []string) int {
		return search(ctx, cfg, strings.Join(args, " "), f, c.stdout, c.stderr)
	})
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		words, flags := queryArgs(cmd.Flags(), args)
		if err := cmd.Flags().Parse(flags); err != nil {
			return cmd.FlagErrorFunc()(cmd, err)
		}
		if help, _ := cmd.Flags().GetBool("help"); help {
			return cmd.Help()
		}
		if len(words) == 0 {
			return errors.New("takes a query, not 0 argument(s)")
		}
		return run(cmd, words)
	}
	addFormatFlags(cmd, cmd.Flags(), &f.format, "one object per line")
	cmd.Flags().IntVarP(&f.limit, "limit", "n", 10, "most results to print (1 to 1000)")
	cmd.Flags().StringVar(&f.repository, "repository", "", "only repositories matching this glob (same as repo:GLOB)")
	cmd.Flags().StringVar(&f.model, "model", "", "only descriptions by this model (same as model:MODEL)")
	return cmd
}

// queryArgs splits the command line of `search` into the query's words
// and the flags: --name (with its value) and -x (a shorthand, alone, with
// =value or digits) are flags; any other word, -orange included, is the
// query's, and so is everything after --.
func queryArgs(flags *pflag.FlagSet, args []string) (words, flagArgs []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		var f *pflag.Flag
		switch {
		case a == "--":
			return append(words, args[i+1:]...), flagArgs
		case strings.HasPrefix(a, "--"):
			name, _, hasValue := strings.Cut(a[2:], "=")
			if f = flags.Lookup(name); hasValue {
				f = nil
			}
		case len(a) >= 2 && a[0] == '-' && (len(a) == 2 || a[2] == '=' || strings.Trim(a[2:], "0123456789") == ""):
			if f = flags.ShorthandLookup(a[1:2]); f == nil {
				words = append(words, a)
				continue
			}
			if len(a) > 2 {
				f = nil
			}
		default:
			words = append(words, a)
			continue
		}
		flagArgs = append(flagArgs, a)
		if f != nil && f.NoOptDefVal == "" && i+1 < len(args) {
			i++
			flagArgs = append(flagArgs, args[i])
		}
	}
	return words, flagArgs
}

// search asks the web address for query and prints the hits.
func search(ctx context.Context, cfg config.Config, query string, f searchFlags, stdout, stderr io.Writer) int {
	if f.limit < 1 || f.limit > 1000 {
		fmt.Fprintln(stderr, "regscribe search: --limit must be 1 to 1000")
		return 2
	}
	if f.repository != "" {
		query += " repo:" + f.repository
	}
	if f.model != "" {
		query += " model:" + f.model
	}
	base, err := webURL(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "regscribe search:", err)
		return 2
	}
	answer, err := searchAPI(ctx, base, cfg.WebToken, query, f.limit)
	if err != nil {
		fmt.Fprintln(stderr, "regscribe search:", err)
		return 2
	}
	hits := answer.Results
	if answer.Suggestion != "" && len(hits) > 0 {
		fmt.Fprintf(stderr, "no photo matches %s; showing %s\n", strings.TrimSpace(query), answer.Suggestion)
		query = answer.Suggestion
	}
	if len(hits) == 0 {
		fmt.Fprintf(stderr, "no photo matches %s\n", strings.TrimSpace(query))
		return 1
	}
	if f.format == formatJSON {
		for _, h := range hits {
			writeJSON(stdout, h)
		}
		return 0
	}
	mark := highlighter(query, isTerminal(stdout))
	for i, h := range hits {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		ref := h.Registry + "/" + h.Repository + "@" + h.Digest
		fmt.Fprintln(stdout, ref)
		var about []string
		if len(h.Tags) > 0 {
			about = append(about, "tags "+strings.Join(h.Tags, ", "))
		}
		if h.Title != "" {
			about = append(about, h.Title)
		}
		about = append(about, "by "+h.Model, "score "+strconv.FormatFloat(h.Score, 'g', 3, 64))
		fmt.Fprintln(stdout, "  "+strings.Join(about, " · "))
		fmt.Fprintln(stdout, "  "+mark(h.Description))
		if h.Text != "" {
			fmt.Fprintln(stdout, "  text: "+mark(h.Text))
		}
		if len(h.Keywords) > 0 {
			fmt.Fprintln(stdout, "  keywords: "+mark(strings.Join(h.Keywords, ", ")))
		}
	}
	return 0
}

// webURL is the web address `search` asks: REGSCRIBE_WEB_URL, else
// REGSCRIBE_WEB_LISTEN over http (an unspecified host is asked on loopback).
func webURL(cfg config.Config) (string, error) {
	if cfg.WebURL != "" {
		u, err := url.Parse(cfg.WebURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("REGSCRIBE_WEB_URL %q: want http(s)://host[:port]", cfg.WebURL)
		}
		return strings.TrimRight(cfg.WebURL, "/"), nil
	}
	if cfg.WebListen == "" || cfg.WebListen == "off" {
		return "", errors.New("no web address: set REGSCRIBE_WEB_URL to a running 'regscribe up' or 'regscribe web'")
	}
	if _, _, err := net.SplitHostPort(cfg.WebListen); err != nil {
		return "", fmt.Errorf("REGSCRIBE_WEB_LISTEN %q: %w", cfg.WebListen, err)
	}
	return "http://" + browsable(cfg.WebListen), nil
}

// searchAPI calls GET /v1/search on base.
func searchAPI(ctx context.Context, base, token, query string, limit int) (web.SearchAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u := base + "/v1/search?" + url.Values{"q": {query}, "limit": {strconv.Itoa(limit)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return web.SearchAnswer{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return web.SearchAnswer{}, fmt.Errorf("nothing answers at %s: is 'regscribe up' or 'regscribe web' running? (REGSCRIBE_WEB_URL)", base)
		}
		return web.SearchAnswer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return web.SearchAnswer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return web.SearchAnswer{}, fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		if resp.StatusCode == http.StatusUnauthorized {
			return web.SearchAnswer{}, fmt.Errorf("%s: set REGSCRIBE_WEB_TOKEN to the server's token", resp.Status)
		}
		return web.SearchAnswer{}, fmt.Errorf("%s from %s", resp.Status, base)
	}
	var out web.SearchAnswer
	if err := json.Unmarshal(body, &out); err != nil {
		return web.SearchAnswer{}, fmt.Errorf("unreadable answer from %s: %w", base, err)
	}
	return out, nil
}

// queryFilter matches a filter of the query syntax (repo:…, model:…).
var queryFilter = regexp.MustCompile(`^[a-z]+:`)

// highlighter returns a function that marks the query's words in bold
// (on a terminal; elsewhere text is returned as it is); excluded words and
// OR are not marked.
func highlighter(query string, terminal bool) func(string) string {
	var words []string
	fields := strings.Fields(strings.ReplaceAll(query, `"`, " "))
	for i, w := range fields {
		if w == "OR" || w == "NOT" || strings.HasPrefix(w, "-") || i > 0 && fields[i-1] == "NOT" {
			continue
		}
		if !queryFilter.MatchString(w) && len(w) > 1 {
			words = append(words, regexp.QuoteMeta(w))
		}
	}
	if !terminal || len(words) == 0 {
		return func(s string) string { return s }
	}
	re := regexp.MustCompile(`(?i)\b(` + strings.Join(words, "|") + `)\w*`)
	return func(s string) string { return re.ReplaceAllString(s, "\x1b[1m$0\x1b[0m") }
}
