package vision

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ParseAnswer turns a model's answer into a Description. It takes, in turn:
// JSON following [Schema] (also inside a code fence or surrounded by prose,
// and with the common aliases "caption", "alt_text", "tags"); labelled
// sections ("Description: …", "Keywords: …"); otherwise the whole answer as
// prose. Without an alt text the first sentence of the description is used.
// Reasoning models' <think> blocks are dropped. An answer with no usable
// text, or JSON cut off before its description ends, is an error.
func ParseAnswer(answer string) (Description, error) {
	s := strings.TrimSpace(stripThinking(answer))
	var d Description
	switch obj, found, complete := findJSON(s); {
	case complete:
		d = fromFields(obj)
	case found:
		// JSON the model did not finish (the token limit): keep what is whole.
		d = salvageJSON(s)
		if d.Text == "" {
			return d, fmt.Errorf("model answered with incomplete JSON: %q", truncate(answer, 200))
		}
	default:
		d = fromSections(s)
	}
	if d.Text == "" {
		d.Text = CleanText(s, MaxTextLen)
	}
	if d.Text == "" {
		return d, fmt.Errorf("model answered with no usable text: %q", truncate(answer, 200))
	}
	if d.Alt == "" {
		d.Alt = CleanText(firstSentence(d.Text), MaxAltLen)
	}
	return d, nil
}

// Field names models use for the parts of the answer, the schema's first.
// "text" is the schema's visible text; an answer with no description under
// any of its names but a "text" (models that call their description so)
// reads it as the description and has no visible text.
var (
	descriptionKeys = []string{"description", "caption", "summary"}
	altKeys         = []string{"alt", "alt_text", "alttext", "alt text", "alt-text"}
	keywordKeys     = []string{"keywords", "tags", "keyword", "labels"}
	visibleKeys     = []string{"text", "visible_text", "visibletext", "visible text", "ocr"}
)

// fromFields reads a decoded JSON answer: for each part the first of its
// field names that holds a value.
func fromFields(obj map[string]json.RawMessage) Description {
	lookup := func(keys []string, usable func(json.RawMessage) bool) json.RawMessage {
		for _, k := range keys {
			for name, v := range obj {
				if strings.EqualFold(name, k) && usable(v) {
					return v
				}
			}
		}
		return nil
	}
	text := func(keys []string, max int) string {
		var s string
		lookup(keys, func(v json.RawMessage) bool {
			return json.Unmarshal(v, &s) == nil && strings.TrimSpace(s) != ""
		})
		return CleanText(s, max)
	}
	d := Description{
		Text:        text(descriptionKeys, MaxTextLen),
		Alt:         text(altKeys, MaxAltLen),
		Keywords:    cleanKeywords(lookup(keywordKeys, func(v json.RawMessage) bool { return len(cleanKeywords(v)) > 0 })),
		VisibleText: cleanVisibleText(lookup(visibleKeys, func(v json.RawMessage) bool { return cleanVisibleText(v) != "" })),
	}
	if d.Text == "" && d.VisibleText != "" {
		d.Text, d.VisibleText = text(visibleKeys, MaxTextLen), ""
	}
	return d
}

// CleanPerson cleans a description a person wrote (a correction) as every
// text is cleaned before it reaches a manifest: control and invisible
// formatting characters removed, whitespace folded, lengths capped, keywords
// lowercased and deduplicated. Unlike a model's answer, the words are kept
// as written (no preamble or markdown trimmed). Without an alt text the
// first sentence of the description is used. Model and Created are kept.
func CleanPerson(d Description) Description {
	plain := func(s string, max int) string {
		return truncate(strings.TrimSpace(spaces.ReplaceAllString(stripControl(s), " ")), max)
	}
	kw, _ := json.Marshal(d.Keywords)
	vt, _ := json.Marshal(d.VisibleText)
	out := Description{Text: plain(d.Text, MaxTextLen), Alt: plain(d.Alt, MaxAltLen), Keywords: cleanKeywords(kw),
		VisibleText: cleanVisibleText(vt), Model: d.Model, Created: d.Created}
	if out.Alt == "" {
		out.Alt = plain(firstSentence(out.Text), MaxAltLen)
	}
	return out
}

// noText are the answers models give for "no visible text" instead of "".
var noText = map[string]bool{"none": true, "n/a": true, "na": true, "no text": true, "no visible text": true, "null": true, "-": true}

// cleanVisibleText reads the visible text of an answer: a string, or a list
// of strings (one per sign or line) joined with " / ". Control and
// formatting characters are removed and whitespace folded like any text, but
// no preamble or markdown is trimmed (the words are as written in the
// photo); "none" and its like are no text; the length is capped at
// [MaxVisibleTextLen].
func cleanVisibleText(raw json.RawMessage) string {
	var parts []string
	var one string
	if json.Unmarshal(raw, &one) == nil {
		parts = []string{one}
	} else if json.Unmarshal(raw, &parts) != nil {
		return ""
	}
	var kept []string
	for _, p := range parts {
		p = strings.TrimSpace(spaces.ReplaceAllString(stripControl(p), " "))
		if p != "" && !noText[strings.ToLower(strings.Trim(p, ".()[] "))] {
			kept = append(kept, p)
		}
	}
	return truncate(strings.Join(kept, " / "), MaxVisibleTextLen)
}

// findJSON finds the JSON object in an answer: the whole answer, the body of
// a code fence, or the outermost braces in prose. found is true when the
// answer starts like JSON (or has a fenced JSON block); complete when an
// object with a description was decoded.
func findJSON(s string) (obj map[string]json.RawMessage, found, complete bool) {
	candidates := []string{}
	if body, ok := codeFence(s); ok {
		candidates = append(candidates, body)
		found = strings.HasPrefix(body, "{")
	}
	if strings.HasPrefix(s, "{") {
		candidates = append(candidates, s)
		found = true
	}
	if i, j := strings.IndexByte(s, '{'), strings.LastIndexByte(s, '}'); i >= 0 && j > i {
		candidates = append(candidates, s[i:j+1])
	}
	for _, c := range candidates {
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(c), &m) != nil {
			continue
		}
		if d := fromFields(m); d.Text != "" {
			return m, true, true
		}
	}
	return nil, found, false
}

var fence = regexp.MustCompile("(?s)```[a-zA-Z]*[ \t]*\n?(.*?)(?:```|$)")

// codeFence returns the body of the first markdown code fence in s.
func codeFence(s string) (string, bool) {
	m := fence.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	return strings.TrimSpace(m[1]), true
}

// jsonString matches a complete JSON string value of a named field.
func jsonString(keys []string) *regexp.Regexp {
	return regexp.MustCompile(`(?i)"(?:` + strings.Join(keys, "|") + `)"\s*:\s*("(?:[^"\\]|\\.)*")`)
}

var (
	descriptionString = jsonString(descriptionKeys)
	altString         = jsonString(altKeys)
)

// salvageJSON takes the description and alt text out of JSON that was cut
// off, when their strings are complete.
func salvageJSON(s string) Description {
	get := func(re *regexp.Regexp, max int) string {
		m := re.FindStringSubmatch(s)
		if m == nil {
			return ""
		}
		var v string
		if json.Unmarshal([]byte(m[1]), &v) != nil {
			return ""
		}
		return CleanText(v, max)
	}
	return Description{Text: get(descriptionString, MaxTextLen), Alt: get(altString, MaxAltLen)}
}

var (
	thinking = regexp.MustCompile(`(?is)^\s*<think(?:ing)?>.*?</think(?:ing)?>`)
	label    = regexp.MustCompile(`(?i)^[\s#*_>-]*(description|caption|alt[ _-]?text|alt|keywords|tags)[\s*_]*(?:[:：]|$)[\s*_]*(.*)$`)
)

func stripThinking(s string) string { return thinking.ReplaceAllString(s, "") }

// fromSections reads answers written as labelled sections, such as
// "**Description:** …\n**Alt text:** …\n**Keywords:** a, b" or markdown
// headers followed by text. Without a description section it returns the
// zero Description.
func fromSections(s string) Description {
	sections := map[string][]string{}
	current := ""
	for _, line := range strings.Split(s, "\n") {
		if m := label.FindStringSubmatch(line); m != nil {
			current = strings.ToLower(m[1])
			switch current {
			case "caption":
				current = "description"
			case "tags":
				current = "keywords"
			case "alt":
			default:
				if strings.HasPrefix(current, "alt") {
					current = "alt"
				}
			}
			line = m[2]
		}
		if strings.TrimSpace(line) != "" {
			sections[current] = append(sections[current], line)
		}
	}
	text := strings.Join(sections["description"], "\n")
	if strings.TrimSpace(text) == "" {
		return Description{}
	}
	d := Description{
		Text: CleanText(text, MaxTextLen),
		Alt:  CleanText(strings.Join(sections["alt"], " "), MaxAltLen),
	}
	if kw := sections["keywords"]; len(kw) > 0 {
		var items []string
		for _, l := range kw {
			items = append(items, strings.Split(cleanLine(l), ",")...)
		}
		raw, _ := json.Marshal(items)
		d.Keywords = cleanKeywords(raw)
	}
	return d
}

var (
	preamble = regexp.MustCompile(`(?i)^(?:` +
		`(?:sure|certainly|of course|okay|ok)\b[!,.]*\s*|` +
		`here(?:'s|’s|\s+is|\s+are)\s+(?:(?:a|an|the|my)\s+)?(?:[\w-]+\s+){0,3}?(?:description|caption|alt text|summary|json|answer)\b[^:\n]*:\s*|` +
		`here\s+(?:we\s+see|you\s+can\s+see|is|are)\s+|` +
		`(?:this|the)\s+(?:image|photo|photograph|picture|shot|scene|snapshot|still)\s+(?:clearly\s+)?(?:shows|depicts|features|displays|captures|contains|presents|portrays|illustrates|showcases|is\s+of|is\s+a\s+(?:photo|picture|image)\s+of)\s*:?\s*(?:that\s+)?|` +
		`this\s+is\s+(?:a|an)\s+(?:[\w-]+\s+)?(?:image|photo|photograph|picture)\s+(?:of|showing|that\s+shows)\s+|` +
		`(?:in|on)\s+(?:this|the)\s+(?:image|photo|photograph|picture)\b(?:\s*,\s*(?:(?:we|you)\s+(?:can\s+)?see\s+|there\s+(?:is|are)\s+)?|\s+(?:(?:we|you)\s+(?:can\s+)?see|there\s+(?:is|are)|is|are)\s+)|` +
		`(?:the\s+)?(?:image|photo|picture)\b\s*:\s*|` +
		`(?:description|caption|alt[ _-]?text|alt)\s*:\s*|` +
		`(?:das|dieses)\s+(?:bild|foto)\s+zeigt\s+|` +
		`(?:l['’]|cette\s+)(?:image|photo)\s+(?:montre|représente)\s+|` +
		`(?:la|esta)\s+(?:imagen|foto)\s+muestra\s+` +
		`)`)
	header  = regexp.MustCompile(`^\s{0,3}#{1,6}\s+`)
	bullet  = regexp.MustCompile(`^\s*(?:[-*+•]|\d{1,2}[.)])\s+`)
	rule    = regexp.MustCompile(`^\s*(?:-{3,}|\*{3,}|_{3,})\s*$`)
	link    = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	strong  = regexp.MustCompile("\\*\\*|__|`")
	emph    = regexp.MustCompile(`(^|[\s(])[*_]([^*_\s][^*_]*?)[*_]($|[\s).,;:!?])`)
	spaces  = regexp.MustCompile(`\s+`)
	endMark = regexp.MustCompile(`[.!?…:;,]$`)
)

// CleanText makes model text safe and tidy for an annotation: control and
// bidirectional formatting characters removed; markdown (headers, bullets,
// bold, italics, code, links) removed; whitespace folded; a leading "This
// image shows"-style preamble and surrounding quotes trimmed (the first
// letter then capitalised); and the length capped at max runes, cut at a
// word with an ellipsis.
func CleanText(s string, max int) string {
	s = stripControl(s)
	lines := strings.Split(s, "\n")
	var kept []string
	for i, l := range lines {
		if rule.MatchString(l) {
			continue
		}
		// A header line followed by text is a title, not content.
		if header.MatchString(l) && hasTextAfter(lines[i+1:]) {
			continue
		}
		wasBullet := bullet.MatchString(l)
		l = cleanLine(l)
		if l == "" {
			continue
		}
		if wasBullet && !endMark.MatchString(l) {
			l = capitalise(l) + "."
		}
		kept = append(kept, l)
	}
	s = strings.TrimSpace(spaces.ReplaceAllString(strings.Join(kept, " "), " "))
	s = unquote(s)
	for range 3 {
		loc := preamble.FindStringIndex(s)
		if loc == nil || loc[1] == 0 {
			break
		}
		s = capitalise(unquote(strings.TrimSpace(s[loc[1]:])))
	}
	return truncate(unquote(s), max)
}

// cleanLine removes the markdown of one line.
func cleanLine(l string) string {
	l = header.ReplaceAllString(l, "")
	l = bullet.ReplaceAllString(l, "")
	l = link.ReplaceAllString(l, "$1")
	l = strong.ReplaceAllString(l, "")
	l = emph.ReplaceAllString(l, "$1$2$3")
	return strings.TrimSpace(l)
}

func hasTextAfter(lines []string) bool {
	for _, l := range lines {
		if strings.TrimSpace(l) != "" && !header.MatchString(l) {
			return true
		}
	}
	return false
}

// stripControl removes control characters (tabs and line ends become
// spaces, except \n, which CleanText reads as a line break), invalid UTF-8
// and invisible formatting characters that could reorder or hide text.
func stripControl(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n':
			return r
		case r == '\t' || r == '\r' || r == '\v' || r == '\f' || r == 0x85 || r == 0x2028 || r == 0x2029:
			return ' '
		case unicode.IsControl(r) || r == utf8.RuneError:
			return -1
		case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200B, r == 0xFEFF, r == 0x200E, r == 0x200F:
			return -1
		}
		return r
	}, s)
}

// quotePairs are the quotes a whole answer may be wrapped in.
var quotePairs = [][2]string{{`"`, `"`}, {"'", "'"}, {"“", "”"}, {"‘", "’"}, {"„", "“"}, {"«", "»"}, {"»", "«"}, {"「", "」"}}

// unquote removes quotes around the whole of s (only a matching pair, so an
// apostrophe that ends a word is kept).
func unquote(s string) string {
	s = strings.TrimSpace(s)
	for changed := true; changed; {
		changed = false
		for _, q := range quotePairs {
			if len(s) >= len(q[0])+len(q[1]) && strings.HasPrefix(s, q[0]) && strings.HasSuffix(s, q[1]) {
				inner := s[len(q[0]) : len(s)-len(q[1])]
				if strings.Contains(inner, q[0]) || strings.Contains(inner, q[1]) {
					continue // "a" and "b": the quotes are not around the whole
				}
				s = strings.TrimSpace(inner)
				changed = true
			}
		}
	}
	return s
}

func cleanKeywords(raw json.RawMessage) []string {
	var list []string
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err == nil {
		for _, it := range items {
			var k string
			if json.Unmarshal(it, &k) == nil {
				list = append(list, k)
			}
		}
	} else {
		var joined string
		if json.Unmarshal(raw, &joined) != nil {
			return nil
		}
		list = strings.FieldsFunc(joined, func(r rune) bool { return r == ',' || r == ';' || r == '\n' })
	}
	seen := map[string]bool{}
	var out []string
	for _, k := range list {
		k = strings.ToLower(CleanText(strings.TrimLeft(strings.TrimSpace(k), "#"), MaxKeywordLen))
		k = strings.TrimSpace(strings.TrimRight(strings.ReplaceAll(k, ",", " "), ".…"))
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, k)
		if len(out) == MaxKeywords {
			break
		}
	}
	return out
}

// firstSentence is s up to the first full stop, exclamation or question
// mark that ends a sentence (followed by a space or the end).
func firstSentence(s string) string {
	for i, r := range s {
		if r == '.' || r == '!' || r == '?' {
			next := i + 1
			if next == len(s) || s[next] == ' ' {
				return s[:next]
			}
		}
	}
	return s
}

func capitalise(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// truncate caps s at max runes, cutting at the last space when there is one
// in the last fifth, and adds an ellipsis when it cut.
func truncate(s string, max int) string {
	if max <= 0 || utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)[:max-1]
	cut := string(r)
	if i := strings.LastIndexByte(cut, ' '); i > len(cut)*4/5 {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, " ,;:.") + "…"
}
