package jpegscale

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"testing"
)

// pixelDigest is a SHA-256 of what a decoded image holds: its type, bounds,
// subsampling and, for every pixel, its samples (strides and padding left
// out).
func pixelDigest(t *testing.T, m image.Image) string {
	t.Helper()
	h := sha256.New()
	fmt.Fprintf(h, "%T %v\n", m, m.Bounds())
	r := m.Bounds()
	switch m := m.(type) {
	case *image.YCbCr:
		fmt.Fprintf(h, "%v\n", m.SubsampleRatio)
		for y := r.Min.Y; y < r.Max.Y; y++ {
			i := m.YOffset(r.Min.X, y)
			h.Write(m.Y[i : i+r.Dx()])
		}
		row := make([]byte, 0, 2*r.Dx())
		for y := r.Min.Y; y < r.Max.Y; y++ {
			row = row[:0]
			for x := r.Min.X; x < r.Max.X; x++ {
				i := m.COffset(x, y)
				row = append(row, m.Cb[i], m.Cr[i])
			}
			h.Write(row)
		}
	case *image.Gray:
		for y := r.Min.Y; y < r.Max.Y; y++ {
			i := m.PixOffset(r.Min.X, y)
			h.Write(m.Pix[i : i+r.Dx()])
		}
	default:
		t.Fatalf("no digest for a %T", m)
	}
	return hex.EncodeToString(h.Sum(nil))
}
