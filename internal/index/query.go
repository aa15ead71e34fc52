package index

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search/query"
)

// Query is a parsed search.
type Query struct {
	// Text is the free text (words, "quoted phrases" and OR between
	// them) left after the filters and the excluded words.
	Text string
	// Not are the excluded words and "quoted phrases" (-word, NOT word):
	// an entry that matches one of them is not found.
	Not []string
	// Repository is a glob of repositories: * matches within a path
	// segment, ** across segments ("photos/*", "team/**"). It matches a
	// whole repository name or a run of its path segments, so "garden"
	// matches photos/garden and "photos" matches photos/garden.
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

// The words of the query language that are not searched for.
const (
	opOr  = "OR"
	opNot = "NOT"
)

// ParseQuery reads a search as a person types it (the README's Search
// section is its one description): words (each must match), "quoted
// phrases", OR between two words or phrases (either may match), -word or
// NOT word (must not match), and the filters repo:GLOB (also
// repository:), model:M, tag:T, after:YYYY-MM-DD and before:YYYY-MM-DD.
// after: includes its day, before: excludes it. A prefix it does not know
// is a plain word (http://x). A filter without a value, a date it cannot
// read, an unclosed quote and a dangling OR or NOT are errors that say
// how to write it.
func ParseQuery(s string) (Query, error) {
	var q Query
	toks, err := tokens(s)
	if err != nil {
		return Query{}, err
	}
	var text []string
	for i := 0; i < len(toks); i++ {
		tok := toks[i]
		if !tok.quoted && !tok.neg && tok.s == opNot {
			if i+1 == len(toks) || toks[i+1].neg || isOperator(toks[i+1]) {
				return Query{}, errors.New("NOT goes before a word: flower NOT orange (or flower -orange)")
			}
			i++
			tok = toks[i]
			tok.neg = true
		}
		if !tok.quoted {
			if name, value, ok := strings.Cut(tok.s, ":"); ok {
				known, err := q.filter(name, value)
				if err != nil {
					return Query{}, err
				}
				if known && tok.neg {
					return Query{}, fmt.Errorf("%s: a filter cannot be excluded; exclude words: flower -orange", tok.s)
				}
				if known {
					continue
				}
			}
		}
		if tok.neg {
			q.Not = append(q.Not, tok.text())
			continue
		}
		if isOperator(tok) && (len(text) == 0 || text[len(text)-1] == opOr || i+1 == len(toks) || isOperator(toks[i+1]) || toks[i+1].neg) {
			return Query{}, errors.New("OR goes between two words or phrases: gerbera OR daisy")
		}
		text = append(text, tok.text())
	}
	q.Text = strings.Join(text, " ")
	return q, nil
}

// filter sets the filter name:value of q; known is false for a name
// that is no filter (the token is a plain word).
func (q *Query) filter(name, value string) (known bool, err error) {
	name = strings.ToLower(name)
	example, ok := filterExamples[name]
	if !ok {
		return false, nil
	}
	if value == "" {
		return true, fmt.Errorf("%s: needs a value: %s", name, example)
	}
	switch name {
	case "repo", "repository":
		q.Repository = value
	case "model":
		q.Model = value
	case "tag":
		q.Tag = value
	case "after", "before":
		t, err := time.Parse(time.DateOnly, value)
		if err != nil {
			return true, fmt.Errorf("%s:%s is not a date: write YYYY-MM-DD, %s", name, value, example)
		}
		if name == "after" {
			q.After = t
		} else {
			q.Before = t
		}
	}
	return true, nil
}

// filterExamples are the filters, each with how it is written.
var filterExamples = map[string]string{
	"repo":       "repo:photos/garden",
	"repository": "repository:photos/garden",
	"model":      "model:qwen2.5vl:3b",
	"tag":        "tag:latest",
	"after":      "after:2026-01-01",
	"before":     "before:2026-02-01",
}

// String is q as it is typed: ParseQuery(q.String()) is q (but for
// Limit and Offset).
func (q Query) String() string {
	parts := []string{}
	if q.Text != "" {
		parts = append(parts, q.Text)
	}
	for _, n := range q.Not {
		parts = append(parts, "-"+n)
	}
	value := func(name, v string) {
		if v == "" {
			return
		}
		if strings.ContainsFunc(v, unicode.IsSpace) {
			v = `"` + v + `"`
		}
		parts = append(parts, name+":"+v)
	}
	value("repo", q.Repository)
	value("model", q.Model)
	value("tag", q.Tag)
	if !q.After.IsZero() {
		value("after", q.After.Format(time.DateOnly))
	}
	if !q.Before.IsZero() {
		value("before", q.Before.Format(time.DateOnly))
	}
	return strings.Join(parts, " ")
}

type token struct {
	s      string
	quoted bool
	// neg is set on -word and -"phrase" (s without the -).
	neg bool
}

// text is the token as Query.Text holds it: a phrase in quotes.
func (t token) text() string {
	if t.quoted {
		return `"` + t.s + `"`
	}
	return t.s
}

func isOperator(t token) bool { return !t.quoted && !t.neg && t.s == opOr }

// tokens splits s at spaces, keeping "quoted phrases" whole; a filter's
// value may be quoted too (tag:"my tag" gives the token tag:my tag), and
// a word or phrase with a leading - is excluded (neg). An unclosed quote
// is an error.
func tokens(s string) ([]token, error) {
	var out []token
	var b strings.Builder
	quoted, neg, inQuote := false, false, false
	flush := func() {
		t := strings.TrimSpace(b.String())
		if !quoted && len(t) > 1 && t[0] == '-' {
			t, neg = t[1:], true
		}
		if t != "" {
			out = append(out, token{s: t, quoted: quoted, neg: neg})
		}
		b.Reset()
		quoted, neg = false, false
	}
	for _, r := range s {
		switch {
		case r == '"' && inQuote:
			inQuote = false
			flush()
		case r == '"':
			inQuote = true
			if b.String() == "-" {
				b.Reset()
				neg = true
			}
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
	if inQuote {
		return nil, errors.New(`a quote is not closed: write a phrase as "blue sea"`)
	}
	flush()
	return out, nil
}

// groups are the free text's terms, each a run of alternatives joined by
// OR: every group must match, by one of its alternatives.
func (q Query) groups() [][]token {
	toks, _ := tokens(q.Text) // Text is what ParseQuery read
	var out [][]token
	for i, tok := range toks {
		switch {
		case isOperator(tok):
		case i > 0 && isOperator(toks[i-1]) && len(out) > 0:
			out[len(out)-1] = append(out[len(out)-1], tok)
		default:
			out = append(out, []token{tok})
		}
	}
	return out
}

// textQuery is the bleve query of the free text: every group must match
// one of the text fields by one of its alternatives (each field boosted
// by its weight). ok is false when nothing searchable is left (no text,
// or only words the analyzer drops, such as "the").
func (ix *Index) textQuery(q Query) (query.Query, bool) {
	var must []query.Query
	for _, g := range q.groups() {
		var any []query.Query
		for _, w := range g {
			if f := ix.fieldsQuery(w); f != nil {
				any = append(any, f)
			}
		}
		switch len(any) {
		case 0:
		case 1:
			must = append(must, any[0])
		default:
			must = append(must, bleve.NewDisjunctionQuery(any...))
		}
	}
	if len(must) == 0 {
		return nil, false
	}
	return bleve.NewConjunctionQuery(must...), true
}

// exclusions is the filter of the excluded words (none: nil).
func (ix *Index) exclusions(q Query) query.Query {
	var not []query.Query
	for _, n := range q.Not {
		w := token{s: strings.Trim(n, `"`), quoted: strings.HasPrefix(n, `"`)}
		if f := ix.fieldsQuery(w); f != nil {
			not = append(not, f)
		}
	}
	if len(not) == 0 {
		return nil
	}
	return query.NewBooleanQuery(nil, nil, not)
}

// fieldsQuery matches the word or phrase w in any text field (nil: the
// analyzer drops every word of w).
func (ix *Index) fieldsQuery(w token) query.Query {
	if len(ix.analyze(w.s)) == 0 {
		return nil
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
	return bleve.NewDisjunctionQuery(any...)
}

// analyze is the terms the text fields' analyzer makes of s.
func (ix *Index) analyze(s string) []string {
	analyzer := ix.bi.Mapping().AnalyzerNamed(ix.bi.Mapping().AnalyzerNameForPath(fDescription))
	if analyzer == nil {
		return strings.Fields(strings.ToLower(s))
	}
	var out []string
	for _, t := range analyzer.Analyze([]byte(s)) {
		out = append(out, string(t.Term))
	}
	return out
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
			// The glob matches a run of whole path segments.
			re := regexp.MustCompile("(?:^|/)(?:" + globRegexp(q.Repository) + ")(?:/|$)")
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
	if not := ix.exclusions(q); not != nil {
		out = append(out, not)
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
