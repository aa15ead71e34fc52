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

The query takes words, "quoted phrases" and filters: repo:GLOB (* within a
path segment, ** across), model:MODEL, tag:TAG, after:YYYY-MM-DD,
before:YYYY-MM-DD. The text search matches words of the description, alt
text, keywords, visible text and file name. With REGSCRIBE_EMBED_MODEL set on
the server, results also match by meaning (semantic search); without it,
by words alone.

Exit status: 0 with matches, 1 with none, 2 for a usage error or when the
search could not be made.`,
		Example: `  regscribe search forklift
  regscribe search '"Q3 revenue"' --repository 'slides/**'
  regscribe search dog after:2026-01-01 --limit 5 --json`,
		GroupID:           groupTools,
		Args:              argsBetween(1, -1, "a query"),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: c.tool(func(ctx context.Context, cfg config.Config, args []string) int {
			return search(ctx, cfg, strings.Join(args, " "), f, c.stdout, c.stderr)
		}),
	}
	addFormatFlags(cmd, cmd.Flags(), &f.format, "one object per line")
	cmd.Flags().IntVarP(&f.limit, "limit", "n", 10, "most results to print (1 to 1000)")
	cmd.Flags().StringVar(&f.repository, "repository", "", "only repositories matching this glob (same as repo:GLOB)")
	cmd.Flags().StringVar(&f.model, "model", "", "only descriptions by this model (same as model:MODEL)")
	return cmd
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
	hits, err := searchAPI(ctx, base, cfg.WebToken, query, f.limit)
	if err != nil {
		fmt.Fprintln(stderr, "regscribe search:", err)
		return 2
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
func searchAPI(ctx context.Context, base, token, query string, limit int) ([]web.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u := base + "/v1/search?" + url.Values{"q": {query}, "limit": {strconv.Itoa(limit)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, fmt.Errorf("nothing answers at %s: is 'regscribe up' or 'regscribe web' running? (REGSCRIBE_WEB_URL)", base)
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		if resp.StatusCode == http.StatusUnauthorized {
			return nil, fmt.Errorf("%s: set REGSCRIBE_WEB_TOKEN to the server's token", resp.Status)
		}
		return nil, fmt.Errorf("%s from %s", resp.Status, base)
	}
	var out web.SearchAnswer
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("unreadable answer from %s: %w", base, err)
	}
	return out.Results, nil
}

// queryFilter matches a filter of the query syntax (repo:…, model:…).
var queryFilter = regexp.MustCompile(`^[a-z]+:`)

// highlighter returns a function that marks the query's words in bold
// (on a terminal; elsewhere text is returned as it is).
func highlighter(query string, terminal bool) func(string) string {
	var words []string
	for _, w := range strings.Fields(strings.ReplaceAll(query, `"`, " ")) {
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
