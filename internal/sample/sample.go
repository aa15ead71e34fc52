// Package sample renders the picture the quick start pushes: a landscape
// (sky, sun, hills and trees) drawn by regscribe's own code, so a newcomer
// has something to push before they pick their own photos. It is a
// drawing, and a model describes it as one.
package sample

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
)

// Name is the file name [Write] gives the picture.
const Name = "sample-hills.jpg"

// Size of the picture.
const (
	Width  = 1200
	Height = 800
)

// JPEG renders the picture as a JPEG (the same bytes every time).
func JPEG() []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, render(), &jpeg.Options{Quality: 88}); err != nil {
		panic(err) // encoding an in-memory RGBA to a buffer cannot fail
	}
	return buf.Bytes()
}

// Write writes the picture into dir (unless there already) and returns its path.
func Write(dir string) (string, error) {
	p := filepath.Join(dir, Name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return p, os.WriteFile(p, JPEG(), 0o644)
}

// render draws the landscape back to front.
func render() *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, Width, Height))
	sunX, sunY, sunR := 0.72*Width, 0.26*Height, 0.06*Height
	far := func(x float64) float64 { return 0.55*Height - 40*math.Sin(x/170) - 25*math.Sin(x/61+1) }
	near := func(x float64) float64 { return 0.70*Height - 55*math.Sin(x/230+2) - 18*math.Sin(x/47) }
	for y := range Height {
		for x := range Width {
			fx, fy := float64(x), float64(y)
			// Sky: deep blue above, pale near the horizon, warmer by the sun.
			t := fy / (0.6 * Height)
			c := mix(rgb(52, 110, 190), rgb(190, 220, 240), math.Min(t, 1))
			d := math.Hypot(fx-sunX, fy-sunY)
			if glow := math.Max(0, 1-d/(5*sunR)); glow > 0 {
				c = mix(c, rgb(255, 236, 170), glow*glow*0.8)
			}
			if d < sunR {
				c = rgb(255, 226, 110)
			}
			switch {
			case fy > near(fx):
				shade := (fy - near(fx)) / (Height - near(fx) + 1)
				c = mix(rgb(96, 160, 64), rgb(46, 104, 40), shade)
			case fy > far(fx):
				c = mix(rgb(92, 130, 110), rgb(70, 112, 86), (fy-far(fx))/120)
			}
			m.Set(x, y, c)
		}
	}
	// Trees on the near hill: trunks and crowns.
	for i, tx := range []float64{140, 210, 260, 830, 905, 1010} {
		base := near(tx)
		h := 70 + float64(i%3)*18
		for y := int(base - h); y < int(base+6); y++ {
			for x := int(tx - h/3); x <= int(tx+h/3); x++ {
				fy := float64(y)
				half := (fy - (base - h)) / h * (h / 3)
				if math.Abs(float64(x)-tx) <= half && fy < base-8 {
					m.Set(x, y, rgb(30, 78, 42))
				} else if math.Abs(float64(x)-tx) <= 3 && fy >= base-8 {
					m.Set(x, y, rgb(92, 64, 40))
				}
			}
		}
	}
	return m
}

func rgb(r, g, b uint8) color.RGBA { return color.RGBA{r, g, b, 255} }

// mix is a + (b - a) × t.
func mix(a, b color.RGBA, t float64) color.RGBA {
	t = math.Max(0, math.Min(1, t))
	l := func(x, y uint8) uint8 { return uint8(float64(x) + (float64(y)-float64(x))*t + 0.5) }
	return color.RGBA{l(a.R, b.R), l(a.G, b.G), l(a.B, b.B), 255}
}
