package vision

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/jpeg" // the photos a stand-in is given: JPEG or PNG
	_ "image/png"
	"slices"
	"strings"
	"time"

	"github.com/regscribe/regscribe/internal/fault"
)

// StandInModel is the model name of the stand-in's descriptions.
const StandInModel = "none/stand-in"

// StandIn describes photos without a model (REGSCRIBE_PROVIDER=none), for a
// first look at regscribe on a machine that has none: it says what can be
// told from the pixels alone (shape, size as sent, main colours, light)
// and says, in every description, that no model saw the photo. It is never
// a description of what the photo shows.
type StandIn struct {
	now func() time.Time
}

// NewStandIn returns the stand-in describer.
func NewStandIn() *StandIn { return &StandIn{now: time.Now} }

// Model is [StandInModel].
func (s *StandIn) Model() string { return StandInModel }

// PromptDigest names the stand-in's one way of describing: a model
// configured later describes every photo again.
func (s *StandIn) PromptDigest() string { return "stand-in/1" }

// Accepts lists the media types the stand-in decodes.
func (s *StandIn) Accepts() []string { return []string{"image/jpeg", "image/png"} }

// Check always succeeds: there is nothing to reach.
func (s *StandIn) Check(context.Context) error { return nil }

// Describe says what the pixels alone tell.
func (s *StandIn) Describe(_ context.Context, img Image) (Description, error) {
	m, format, err := image.Decode(bytes.NewReader(img.Data))
	if err != nil {
		return Description{}, fault.Permanent(fmt.Errorf("stand-in: decode %s: %w", img.MediaType, err))
	}
	b := m.Bounds()
	shape := "square"
	switch {
	case b.Dx() > b.Dy()*11/10:
		shape = "landscape"
	case b.Dy() > b.Dx()*11/10:
		shape = "portrait"
	}
	colours, light := palette(m)
	main := strings.Join(colours, " and ")
	text := fmt.Sprintf("Not described by a model: regscribe's stand-in (REGSCRIBE_PROVIDER=none) sees no content. "+
		"A %s %s, %d × %d pixels as sent, mostly %s, %s.", shape, strings.ToUpper(format), b.Dx(), b.Dy(), main, light)
	return Description{
		Text:     text,
		Alt:      CleanText(fmt.Sprintf("Photo, mostly %s (not described: no model)", main), MaxAltLen),
		Keywords: append(slices.Clone(colours), shape),
		Model:    StandInModel,
		Created:  s.now().UTC(),
	}, nil
}

// palette names the one or two colours most of m's pixels have (of a
// sample of at most 64 × 64) and its light.
func palette(m image.Image) (colours []string, light string) {
	b := m.Bounds()
	stepX, stepY := max(1, b.Dx()/64), max(1, b.Dy()/64)
	counts := map[string]int{}
	var n int
	var luma float64
	for y := b.Min.Y; y < b.Max.Y; y += stepY {
		for x := b.Min.X; x < b.Max.X; x += stepX {
			r, g, bl, _ := m.At(x, y).RGBA()
			rf, gf, bf := float64(r)/0xffff, float64(g)/0xffff, float64(bl)/0xffff
			counts[colourName(rf, gf, bf)]++
			luma += 0.2126*rf + 0.7152*gf + 0.0722*bf
			n++
		}
	}
	names := make([]string, 0, len(counts))
	for c := range counts {
		names = append(names, c)
	}
	slices.SortFunc(names, func(a, b string) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return strings.Compare(a, b)
	})
	colours = names[:1]
	if len(names) > 1 && counts[names[1]]*100 >= n*15 {
		colours = names[:2]
	}
	switch mean := luma / float64(max(n, 1)); {
	case mean < 0.25:
		light = "dark"
	case mean > 0.7:
		light = "bright"
	default:
		light = "in medium light"
	}
	return colours, light
}

// colourName is the everyday name of an sRGB colour (components 0-1).
func colourName(r, g, b float64) string {
	hi, lo := max(r, g, b), min(r, g, b)
	chroma := hi - lo
	switch {
	case hi < 0.18:
		return "black"
	case chroma < 0.12 && hi > 0.85:
		return "white"
	case chroma < 0.12:
		return "grey"
	}
	var hue float64
	switch hi {
	case r:
		hue = 60 * (g - b) / chroma
	case g:
		hue = 60 * ((b-r)/chroma + 2)
	default:
		hue = 60 * ((r-g)/chroma + 4)
	}
	if hue < 0 {
		hue += 360
	}
	switch {
	case hue < 15 || hue >= 345:
		return "red"
	case hue < 45:
		if hi < 0.6 {
			return "brown"
		}
		return "orange"
	case hue < 70:
		return "yellow"
	case hue < 165:
		return "green"
	case hue < 200:
		return "cyan"
	case hue < 255:
		return "blue"
	case hue < 290:
		return "purple"
	default:
		return "pink"
	}
}
