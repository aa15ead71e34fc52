package jpegdec

import (
	"image"
	"math"
)

// plane is one component's samples.
type plane struct {
	w, h int
	at   func(x, y int) uint8
}

// planesOf returns the planes of a grey or YCbCr image at their own
// resolution.
func planesOf(m image.Image) []plane {
	r := m.Bounds()
	switch m := m.(type) {
	case *image.Gray:
		return []plane{{r.Dx(), r.Dy(), func(x, y int) uint8 { return m.Pix[m.PixOffset(x, y)] }}}
	case *image.YCbCr:
		hs, vs := 1, 1
		switch m.SubsampleRatio {
		case image.YCbCrSubsampleRatio422:
			hs = 2
		case image.YCbCrSubsampleRatio420:
			hs, vs = 2, 2
		case image.YCbCrSubsampleRatio440:
			vs = 2
		case image.YCbCrSubsampleRatio411:
			hs = 4
		case image.YCbCrSubsampleRatio410:
			hs, vs = 4, 2
		}
		cw, ch := (r.Dx()+hs-1)/hs, (r.Dy()+vs-1)/vs
		return []plane{
			{r.Dx(), r.Dy(), func(x, y int) uint8 { return m.Y[m.YOffset(x, y)] }},
			{cw, ch, func(x, y int) uint8 { return m.Cb[m.COffset(x*hs, y*vs)] }},
			{cw, ch, func(x, y int) uint8 { return m.Cr[m.COffset(x*hs, y*vs)] }},
		}
	}
	return nil
}

// scaledPSNR returns the PSNR in dB of scaled, an image decoded at scale
// 1/f, against full, the same image decoded at full size and reduced by
// the mean of each f×f box (those cut by the edges: of their pixels in the
// image), plane by plane, over all samples.
func scaledPSNR(full, scaled image.Image, f int) float64 {
	fp, sp := planesOf(full), planesOf(scaled)
	if len(fp) != len(sp) || len(fp) == 0 {
		return 0
	}
	var se float64
	n := 0
	for i, p := range sp {
		q := fp[i]
		if (q.w+f-1)/f != p.w || (q.h+f-1)/f != p.h {
			return 0
		}
		for y := range p.h {
			for x := range p.w {
				sum, k := 0, 0
				for yy := y * f; yy < min(y*f+f, q.h); yy++ {
					for xx := x * f; xx < min(x*f+f, q.w); xx++ {
						sum += int(q.at(xx, yy))
						k++
					}
				}
				d := float64(p.at(x, y)) - float64(sum)/float64(k)
				se += d * d
				n++
			}
		}
	}
	return 10 * math.Log10(255*255/(se/float64(n)))
}
