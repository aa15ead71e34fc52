package vision_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/vision"
)

func TestCleanText(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("A calm harbour with fishing boats ", 10)
	cases := []struct {
		name, in, want string
		max            int
	}{
		{"plain text is kept", "A cat on a mat.", "A cat on a mat.", 0},
		{"this image shows", "This image shows a cat on a mat.", "A cat on a mat.", 0},
		{"the photo depicts", "The photo depicts a lighthouse at dusk.", "A lighthouse at dusk.", 0},
		{"the photograph captures", "The photograph captures two children running.", "Two children running.", 0},
		{"the image shows that", "The image shows that the door is open.", "The door is open.", 0},
		{"in this image, comma", "In this image, a heron stands in shallow water.", "A heron stands in shallow water.", 0},
		{"in the photo we see", "In the photo we see a red tram.", "A red tram.", 0},
		{"here is", "Here is a bowl of cherries.", "A bowl of cherries.", 0},
		{"here is a description", "Here is a short description of the image: a bowl of cherries.", "A bowl of cherries.", 0},
		{"sure, here is", "Sure! Here's a description: This image shows a bowl of cherries.", "A bowl of cherries.", 0},
		{"this is a photo of", "This is a close-up photo of a bee on lavender.", "A bee on lavender.", 0},
		{"label", "Description: A bee on lavender.", "A bee on lavender.", 0},
		{"German preamble", "Das Bild zeigt eine Katze auf einem Sofa.", "Eine Katze auf einem Sofa.", 0},
		{"French preamble", "L'image montre un chat sur un canapé.", "Un chat sur un canapé.", 0},
		{"a picture frame is not a preamble", "On the picture frame hangs a ribbon.", "On the picture frame hangs a ribbon.", 0},
		{"markdown bold", "**This image shows** a **red** kite.", "A red kite.", 0},
		{"markdown italics and code", "A *quiet* street with a `STOP` sign.", "A quiet street with a STOP sign.", 0},
		{"markdown header line", "## Description\nA fox in the snow.", "A fox in the snow.", 0},
		{"markdown bullets", "- a fox\n- snow\n- pine trees", "A fox. Snow. Pine trees.", 0},
		{"markdown link", "A poster for [the fair](https://example.com).", "A poster for the fair.", 0},
		{"surrounding quotes", `"A fox in the snow."`, "A fox in the snow.", 0},
		{"curly quotes", "“A fox in the snow.”", "A fox in the snow.", 0},
		{"quotes around parts are kept", `"Open" and "Closed" signs.`, `"Open" and "Closed" signs.`, 0},
		{"a final apostrophe is kept", "The players' bench", "The players' bench", 0},
		{"control characters", "A fox\x00 in\tthe\r\nsnow\x1b.", "A fox in the snow.", 0},
		{"bidi overrides", "A sign reading \u202eTIXE\u202c.", "A sign reading TIXE.", 0},
		{"whitespace folded", "  A  fox \n\n in   the snow.  ", "A fox in the snow.", 0},
		{"over-long text is cut at a word", long, "", 50},
		{"empty", "   ", "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			max := tc.max
			if max == 0 {
				max = vision.MaxTextLen
			}
			got := vision.CleanText(tc.in, max)
			if tc.name == "over-long text is cut at a word" {
				require.LessOrEqual(t, utf8.RuneCountInString(got), max)
				require.True(t, strings.HasSuffix(got, "…"), got)
				require.True(t, strings.HasPrefix(long, strings.TrimSuffix(got, "…")+" "), "cut at a word: %q", got)
				return
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseAnswer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		in       string
		text     string
		alt      string
		keywords []string
		visible  string
	}{
		{
			name: "JSON",
			in:   `{"description":"A red kite above a field.","alt":"Red kite","keywords":["kite","field"]}`,
			text: "A red kite above a field.", alt: "Red kite", keywords: []string{"kite", "field"},
		},
		{
			name: "keywords as a comma string",
			in:   `{"description":"A red kite.","alt":"Kite","keywords":"Kite, Sky , kite,"}`,
			text: "A red kite.", alt: "Kite", keywords: []string{"kite", "sky"},
		},
		{
			name: "keywords with hashes and non-strings",
			in:   `{"description":"A red kite.","alt":"Kite","keywords":["#Kite", 3, null, "bird."]}`,
			text: "A red kite.", alt: "Kite", keywords: []string{"kite", "bird"},
		},
		{
			name: "code-fenced JSON",
			in:   "```json\n{\"description\":\"This image shows a red kite.\",\"alt\":\"Kite\",\"keywords\":[\"kite\"]}\n```",
			text: "A red kite.", alt: "Kite", keywords: []string{"kite"},
		},
		{
			name: "JSON after prose",
			in:   "Sure, here is the JSON:\n{\"description\":\"A red kite.\",\"alt\":\"Kite\",\"keywords\":[]}",
			text: "A red kite.", alt: "Kite",
		},
		{
			name: "JSON with other field names",
			in:   `{"caption":"A red kite.","alt_text":"Kite","tags":["kite"]}`,
			text: "A red kite.", alt: "Kite", keywords: []string{"kite"},
		},
		{
			name: "JSON without alt takes the first sentence",
			in:   `{"description":"A red kite above a field. The sky is clear.","keywords":["kite"]}`,
			text: "A red kite above a field. The sky is clear.", alt: "A red kite above a field.", keywords: []string{"kite"},
		},
		{
			name: "JSON cut off after its description",
			in:   `{"description":"A red kite above a field.","alt":"Red kite","keywo`,
			text: "A red kite above a field.", alt: "Red kite",
		},
		{
			name: "prose",
			in:   "This image shows a red kite above a field. The sky is clear.",
			text: "A red kite above a field. The sky is clear.", alt: "A red kite above a field.",
		},
		{
			name: "prose with markdown and inner quotes",
			in:   "**This image shows** a \"dune\" at dusk.\n\nIt is quiet.",
			text: `A "dune" at dusk. It is quiet.`, alt: `A "dune" at dusk.`,
		},
		{
			name: "prose with a decimal keeps the sentence whole",
			in:   "A sign showing 3.5 km to the summit. Fog below.",
			text: "A sign showing 3.5 km to the summit. Fog below.", alt: "A sign showing 3.5 km to the summit.",
		},
		{
			name: "labelled sections",
			in:   "**Description:** A red kite above a field.\n**Alt text:** Red kite in flight\n**Keywords:** kite, field, sky",
			text: "A red kite above a field.", alt: "Red kite in flight", keywords: []string{"kite", "field", "sky"},
		},
		{
			name: "markdown sections",
			in:   "## Description\nThe photo depicts a red kite.\n\n## Keywords\n- kite\n- bird",
			text: "A red kite.", alt: "A red kite.", keywords: []string{"kite", "bird"},
		},
		{
			name: "a reasoning model's thinking is dropped",
			in:   "<think>The user wants JSON. I see a kite.</think>\n{\"description\":\"A red kite.\",\"alt\":\"Kite\",\"keywords\":[\"kite\"]}",
			text: "A red kite.", alt: "Kite", keywords: []string{"kite"},
		},
		{
			name: "JSON with visible text",
			in:   `{"description":"A road sign in fog.","alt":"Road sign","keywords":["sign"],"text":"  STOP\n Main  St.\u202e "}`,
			text: "A road sign in fog.", alt: "Road sign", keywords: []string{"sign"}, visible: "STOP Main St.",
		},
		{
			name: "visible text as a list of signs, \"none\" dropped",
			in:   `{"description":"Two signs.","alt":"Signs","keywords":[],"visible_text":["EXIT","none","Platform 3"]}`,
			text: "Two signs.", alt: "Signs", visible: "EXIT / Platform 3",
		},
		{
			name: "\"none\" is no visible text",
			in:   `{"description":"A red kite.","alt":"Kite","keywords":["kite"],"text":"None."}`,
			text: "A red kite.", alt: "Kite", keywords: []string{"kite"},
		},
		{
			name: "a lone \"text\" is the description, not visible text",
			in:   `{"text":"This image shows a red kite.","keywords":["kite"]}`,
			text: "A red kite.", alt: "A red kite.", keywords: []string{"kite"},
		},
		{
			name: "long visible text is capped",
			in:   `{"description":"A slide.","alt":"Slide","keywords":[],"text":"` + strings.Repeat("revenue ", 400) + `"}`,
			text: "A slide.", alt: "Slide", visible: strings.TrimSpace(strings.Repeat("revenue ", 249)) + "…",
		},
		{
			name: "a long alt text is capped",
			in:   `{"description":"A kite.","alt":"` + strings.Repeat("word ", 40) + `","keywords":[]}`,
			text: "A kite.", alt: strings.TrimSpace(strings.Repeat("word ", 24)) + "…",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := vision.ParseAnswer(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.text, d.Text)
			require.Equal(t, tc.alt, d.Alt)
			require.Equal(t, tc.keywords, d.Keywords)
			require.Equal(t, tc.visible, d.VisibleText)
			require.LessOrEqual(t, utf8.RuneCountInString(d.Alt), vision.MaxAltLen)
			require.LessOrEqual(t, utf8.RuneCountInString(d.VisibleText), vision.MaxVisibleTextLen)
		})
	}
}

func TestParseAnswerFailures(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"",
		"  \n\t ",
		`{"description":"A red kite above a fi`,
		"```json\n{\"alt\":\"",
		"<think>I see a kite</think>",
	} {
		_, err := vision.ParseAnswer(in)
		require.Error(t, err, "%q", in)
	}
}

func TestCleanTextIsIdempotent(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"**This image shows** a \"dune\" at dusk.\n\nIt is quiet.",
		"“In this image, a heron.”",
		strings.Repeat("long text ", 200),
	} {
		once := vision.CleanText(in, vision.MaxTextLen)
		require.Equal(t, once, vision.CleanText(once, vision.MaxTextLen))
	}
}
