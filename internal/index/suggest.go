package index

import (
	"context"
	"fmt"
	"strings"
	"unicode"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search"
	bindex "github.com/blevesearch/bleve_index_api"
)

// Suggest spells q's words as the index does, for a search that found
// nothing: a word no description holds becomes the nearest word one
// holds (one edit away for words of up to five letters as typed, two for
// longer ones, a swap of two letters being two; the more common word when
// two are as near), and two neighbouring
// words no description holds become one word when a description holds
// them written together ("lady bird": "ladybird"). Phrases, excluded
// words and filters stay as they are. ok is false when no word changed.
func (ix *Index) Suggest(ctx context.Context, q Query) (_ Query, ok bool, err error) {
	toks, err := tokens(q.Text)
	if err != nil {
		return q, false, fmt.Errorf("index: suggest: %w", err)
	}
	adv, err := ix.bi.Advanced()
	if err != nil {
		return q, false, fmt.Errorf("index: suggest: %w", err)
	}
	r, err := adv.Reader()
	if err != nil {
		return q, false, fmt.Errorf("index: suggest: %w", err)
	}
	defer r.Close()
	fuzzy, _ := r.(bindex.IndexReaderFuzzy)
	out := make([]string, 0, len(toks))
	for i := 0; i < len(toks); i++ {
		tok := toks[i]
		if err := ctx.Err(); err != nil {
			return q, false, err
		}
		if tok.quoted || isOperator(tok) || ix.holds(tok.s) {
			out = append(out, tok.text())
			continue
		}
		if i+1 < len(toks) && !toks[i+1].quoted && !isOperator(toks[i+1]) && !ix.holds(toks[i+1].s) {
			if joined := tok.s + toks[i+1].s; ix.holds(joined) {
				out = append(out, strings.ToLower(joined))
				ok = true
				i++
				continue
			}
		}
		if w := ix.nearest(fuzzy, tok.s); w != "" {
			out = append(out, w)
			ok = true
			continue
		}
		out = append(out, tok.text())
	}
	if !ok {
		return q, false, nil
	}
	q.Text = strings.Join(out, " ")
	return q, true, nil
}

// holds reports whether some description holds every term of word (a
// word the analyzer drops is held).
func (ix *Index) holds(word string) bool {
	for _, t := range ix.analyze(word) {
		if ix.termField(t) == "" {
			return false
		}
	}
	return true
}

// termField is a text field that holds term ("": none does).
func (ix *Index) termField(term string) string {
	for _, f := range textFields {
		d, err := ix.bi.FieldDictPrefix(f.name, []byte(term))
		if err != nil {
			continue
		}
		e, err := d.Next()
		_ = d.Close()
		if err == nil && e != nil && e.Term == term {
			return f.name
		}
	}
	return ""
}

// nearest is the word of the descriptions nearest to word ("": none is
// near, or word is made of more than one term).
func (ix *Index) nearest(r bindex.IndexReaderFuzzy, word string) string {
	terms := ix.analyze(word)
	if r == nil || len(terms) != 1 || len([]rune(terms[0])) < 3 {
		return ""
	}
	term := terms[0]
	edits := 1
	if len([]rune(word)) > 5 { // as typed: the stem may be shorter
		edits = 2
	}
	best, bestField, bestDist, bestCount := "", "", edits+1, uint64(0)
	for _, f := range textFields {
		d, err := r.FieldDictFuzzy(f.name, term, edits, "")
		if err != nil {
			continue
		}
		for e, err := d.Next(); err == nil && e != nil; e, err = d.Next() {
			dist := search.LevenshteinDistance(term, e.Term)
			if e.Term == term || dist > edits {
				continue
			}
			if dist < bestDist || dist == bestDist && (e.Count > bestCount || e.Count == bestCount && e.Term < best) {
				best, bestField, bestDist, bestCount = e.Term, f.name, dist, e.Count
			}
		}
		_ = d.Close()
	}
	if best == "" {
		return ""
	}
	return ix.surface(bestField, best)
}

// surface is a word as a description writes it whose term is term (the
// term itself when none is found, as when the stemmer changed it).
func (ix *Index) surface(field, term string) string {
	t := bleve.NewTermQuery(term)
	t.SetField(field)
	req := bleve.NewSearchRequestOptions(t, 1, 0, false)
	req.Fields = []string{fSource}
	res, err := ix.bi.Search(req)
	if err != nil || len(res.Hits) == 0 {
		return term
	}
	d := docFromFields(res.Hits[0].Fields)
	if d == nil {
		return term
	}
	text := strings.Join(append([]string{d.Description, d.Alt, d.Text, d.Title}, d.Keywords...), " ")
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) }) {
		if got := ix.analyze(w); len(got) == 1 && got[0] == term {
			return strings.ToLower(w)
		}
	}
	return term
}
