package web

import (
	"html"
	"html/template"
	"strings"
	"unicode"
)

// markedWords are the words a search looks for, as the page highlights
// them: not filters (repo:, tag:, …), not the words it excludes (-word,
// NOT word), not OR; a phrase's words each. Lower-cased, and a plural's
// final s dropped, so "insects" marks "insect" too.
func markedWords(q string) []string {
	var out []string
	not := false
	for _, f := range strings.Fields(q) {
		switch {
		case f == "OR":
			continue
		case f == "NOT":
			not = true
			continue
		case not || strings.HasPrefix(f, "-") || strings.Contains(f, ":"):
			not = false
			continue
		}
		w := strings.ToLower(strings.Trim(f, `"'.,;!?()`))
		if len(w) > 3 && strings.HasSuffix(w, "s") {
			w = w[:len(w)-1]
		}
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

// highlight is text, escaped, with each word that begins with one of
// marks in <mark>.
func highlight(text string, marks []string) template.HTML {
	if len(marks) == 0 {
		return template.HTML(html.EscapeString(text))
	}
	var b strings.Builder
	rest := text
	for rest != "" {
		i := strings.IndexFunc(rest, isWordRune)
		if i < 0 {
			b.WriteString(html.EscapeString(rest))
			break
		}
		b.WriteString(html.EscapeString(rest[:i]))
		rest = rest[i:]
		j := strings.IndexFunc(rest, func(r rune) bool { return !isWordRune(r) })
		if j < 0 {
			j = len(rest)
		}
		word := rest[:j]
		rest = rest[j:]
		lw := strings.ToLower(word)
		marked := false
		for _, m := range marks {
			if strings.HasPrefix(lw, m) {
				marked = true
				break
			}
		}
		if marked {
			b.WriteString("<mark>" + html.EscapeString(word) + "</mark>")
		} else {
			b.WriteString(html.EscapeString(word))
		}
	}
	return template.HTML(b.String())
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// searchFor is the query that finds word: quoted when it is more than one
// word.
func searchFor(word string) string {
	if strings.ContainsFunc(word, unicode.IsSpace) {
		return `"` + strings.ReplaceAll(word, `"`, "") + `"`
	}
	return word
}
