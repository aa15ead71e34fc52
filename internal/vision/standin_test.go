package vision_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/regscribe/regscribe/internal/fault"
	"github.com/regscribe/regscribe/internal/vision"
)

// The stand-in says what the pixels tell, and in every description that
// no model saw the photo.
func TestStandInSaysWhatThePixelsTellAndThatNoModelSawThem(t *testing.T) {
	t.Parallel()
	paint := func(w, h int, top, bottom color.Color, topShare float64) *image.RGBA {
		m := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			c := bottom
			if float64(y) < float64(h)*topShare {
				c = top
			}
			for x := range w {
				m.Set(x, y, c)
			}
		}
		return m
	}
	enc := func(m image.Image, kind string) vision.Image {
		var buf bytes.Buffer
		if kind == "png" {
			require.NoError(t, png.Encode(&buf, m))
			return vision.Image{Data: buf.Bytes(), MediaType: "image/png"}
		}
		require.NoError(t, jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}))
		return vision.Image{Data: buf.Bytes(), MediaType: "image/jpeg"}
	}
	sky, meadow := color.RGBA{70, 130, 220, 255}, color.RGBA{60, 170, 60, 255}
	for name, tc := range map[string]struct {
		img      vision.Image
		text     []string
		keywords []string
	}{
		"sky over a meadow": {enc(paint(400, 300, sky, meadow, 0.4), "jpeg"),
			[]string{"A landscape JPEG, 400 × 300 pixels as sent, mostly green and blue, in medium light."}, []string{"green", "blue", "landscape"}},
		"a night, upright": {enc(paint(200, 300, color.Black, color.RGBA{20, 20, 30, 255}, 0.5), "png"),
			[]string{"A portrait PNG, 200 × 300 pixels as sent, mostly black, dark."}, []string{"black", "portrait"}},
		"snow": {enc(paint(100, 100, color.White, color.RGBA{240, 240, 245, 255}, 0.95), "png"),
			[]string{"A square PNG", "mostly white, bright."}, []string{"white", "square"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d, err := vision.NewStandIn().Describe(context.Background(), tc.img)
			require.NoError(t, err)
			require.Contains(t, d.Text, "Not described by a model")
			for _, want := range tc.text {
				require.Contains(t, d.Text, want)
			}
			require.Equal(t, tc.keywords, d.Keywords)
			require.Contains(t, d.Alt, "not described: no model")
			require.Equal(t, vision.StandInModel, d.Model)
			require.False(t, d.Created.IsZero())
		})
	}

	_, err := vision.NewStandIn().Describe(context.Background(), vision.Image{Data: []byte("not an image"), MediaType: "image/jpeg"})
	require.Error(t, err)
	kind, _ := fault.Classify(err)
	require.Equal(t, fault.KindPermanent, kind)
}
