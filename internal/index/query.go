package index

import (
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search/query"
)

// Query is a parsed search.
type Query struct {
	// Text is the free text (words and "quoted phrases") left after the
	// filters.
	Text string
	// Repository is a glob of repositories: * matches within a path
	// segment, ** across segments ("photos/*", "team/**").
	Repository string
	// Model is a describer: the whole io.regscribe.model
	// ("ollama/qwen2.5vl:3b"), the model without its provider
	// ("qwen2.5vl:3b"), or "person" for every person's correction.
	Model string
	// Tag is one tag the manifest carries.
	Tag string
	// After and Before bound the description's time: After inclusive,
	// Before exclusive (zero: unbounded).
	After, Before time.Time
	// Limit is how many hits to return. If zero, 20.
	Limit int
	// Offset skips the first hits (paging).
	Offset int
}

// DefaultLimit is the hits a search returns when Query.Limit is zero.
const DefaultLimit = 20

// ParseQuery reads a search as a person types it: words, "quoted
// phrases", repo:GLOB (also repository:), model:M, tag:T, after:YYYY-MM-DD
// and before:YYYY-MM-DD. after: includes its day, before: excludes it. A
// prefix it does not know, or a date it cannot read, is a plain word.
func ParseQuery(s string) Query {
	var q Query
	var text []string
	for _, tok := range tokens(s) {
		if tok.quoted {
			text = append(text, `"`+tok.s+`"`)
			continue
		}
		name, value, ok := strings.Cut(tok.s, ":")
		if ok && value != "" {
			switch strings.ToLower(name) {
			case "repo", "repository":
				q.Repository = value
				continue
			case "model":
				q.Model = value
				continue
			case "tag":
				q.Tag = value
				continue
			case "after", "before":
				if t, err := time.Parse(time.DateOnly, value); err == nil {
					if strings.EqualFold(name, "after") {
						q.After = t
					} else {
						q.Before = t
					}
					continue
				}
			}
		}
		text = append(text, tok.s)
	}
	q.Text = strings.Join(text, " ")
	return q
}

type token struct {
	s      string
	quoted bool
}

// tokens splits s at spaces, keeping "quoted phrases" (an unclosed quote
// runs to the end) whole; a filter's value may be quoted too
// (tag:"my tag" gives the token tag:my tag).
func tokens(s string) []token {
	var out []token
	var b strings.Builder
	quoted, inQuote := false, false
	flush := func() {
		if t := strings.TrimSpace(b.String()); t != "" {
			out = append(out, token{s: t, quoted: quoted})
		}
		b.Reset()
		quoted = false
	}
	for _, r := range s {
		switch {
		case r == '"' && inQuote:
			inQuote = false
			flush()
		case r == '"':
			inQuote = true
			if b.Len() > 0 && !strings.HasSuffix(b.String(), ":") {
				flush()
			}
			quoted = b.Len() == 0
		case unicode.IsSpace(r) && !inQuote:
			flush()
		default:
			b.WriteRune(r)
		}
	}
	flush()
	return out
}

// words are the free text's terms: phrases (quoted) and single words.
func (q Query) words() []token {
	var out []token
	for _, tok := range tokens(q.Text) {
		out = append(out, tok)
	}
	return out
}

// textQuery is the bleve query of the free text: every word or phrase
// must match one of the text fields (each field boosted by its weight).
// ok is false when nothing searchable is left (no text, or only words the
// analyzer drops, such as "the").
func (ix *Index) textQuery(q Query) (query.Query, bool) {
	analyzer := ix.bi.Mapping().AnalyzerNamed(ix.bi.Mapping().AnalyzerNameForPath(fDescription))
	var must []query.Query
	for _, w := range q.words() {
		if analyzer != nil && len(analyzer.Analyze([]byte(w.s))) == 0 {
			continue
		}
		var any []query.Query
		for _, f := range textFields {
			if w.quoted || strings.ContainsFunc(w.s, unicode.IsSpace) {
				p := bleve.NewMatchPhraseQuery(w.s)
				p.SetField(f.name)
				p.SetBoost(f.boost)
				any = append(any, p)
				continue
			}
			m := bleve.NewMatchQuery(w.s)
			m.SetField(f.name)
			m.SetBoost(f.boost)
			m.SetOperator(query.MatchQueryOperatorAnd)
			any = append(any, m)
		}
		must = append(must, bleve.NewDisjunctionQuery(any...))
	}
	if len(must) == 0 {
		return nil, false
	}
	return bleve.NewConjunctionQuery(must...), true
}

// filters are the bleve queries of the query's filters (none: nil). The
// repository and model filters are matched here against the names the
// index holds ([state.names]) and become plain term queries: cheaper than
// bleve's regular expressions, which build an automaton per query.
func (ix *Index) filters(q Query) []query.Query {
	var out []query.Query
	if q.Repository != "" || q.Model != "" {
		ix.mu.Lock()
		repos, models := ix.state.names()
		ix.mu.Unlock()
		if q.Repository != "" {
			re := regexp.MustCompile("^(?:" + globRegexp(q.Repository) + ")$")
			out = append(out, anyTerm(fRepository, repos, re.MatchString))
		}
		if q.Model != "" {
			out = append(out, anyTerm(fModel, models, func(m string) bool {
				_, rest, _ := strings.Cut(m, "/")
				return m == q.Model || rest == q.Model || strings.HasPrefix(m, q.Model+":")
			}))
		}
	}
	if q.Tag != "" {
		t := bleve.NewTermQuery(q.Tag)
		t.SetField(fTags)
		out = append(out, t)
	}
	if !q.After.IsZero() || !q.Before.IsZero() {
		incl, excl := true, false
		r := bleve.NewDateRangeInclusiveQuery(q.After, q.Before, &incl, &excl)
		r.SetField(fCreated)
		out = append(out, r)
	}
	for _, f := range out {
		if b, ok := f.(query.BoostableQuery); ok {
			b.SetBoost(0)
		}
	}
	return out
}

// anyTerm matches the entries whose field is one of the names that match.
func anyTerm(field string, names []string, match func(string) bool) query.Query {
	var terms []query.Query
	for _, n := range names {
		if match(n) {
			t := bleve.NewTermQuery(n)
			t.SetField(field)
			terms = append(terms, t)
		}
	}
	if len(terms) == 0 {
		return bleve.NewMatchNoneQuery()
	}
	return bleve.NewDisjunctionQuery(terms...)
}

// globRegexp turns a repository glob into a regular expression over the
// whole name: * within a segment, ** across, ? one character; the rest,
// any text, matches itself.
func globRegexp(glob string) string {
	var b strings.Builder
	rs := []rune(glob)
	for i := 0; i < len(rs); i++ {
		switch c := rs[i]; {
		case c == '*' && i+1 < len(rs) && rs[i+1] == '*':
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}
