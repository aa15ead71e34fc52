package imageprep

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"runtime"
	"sync"
)

// The pixel pipeline works on *image.RGBA (8-bit, alpha-premultiplied) with
// its origin at (0, 0):
//
//	decoded image -> shrink (integer box filter, fused with the colour
//	conversion) -> resample (separable Catmull-Rom) -> orient -> flatten
//
// Downscaling in two steps is what keeps a 12 MP photo fast: the box filter
// averages k×k blocks, which is exact anti-aliasing for an integer factor and
// costs one read per source pixel, and Catmull-Rom only does the remaining
// factor (below 2), with about six taps per pass instead of a dozen or more
// over the full image.

// fixBits is the precision of the fixed-point resampling weights.
const fixBits = 14

// boxFactor returns the integer factor by which to box-shrink a w×h image on
// its way to dw×dh: the whole part of the scale factor, so the box filter does
// the bulk of a large reduction and the kernel the rest.
func boxFactor(w, h, dw, dh int) int {
	long, dlong := max(w, h), max(dw, dh)
	return max(long/max(dlong, 1), 1)
}

// shrink returns the decoded image img, with header size w×h, as an RGBA
// image of ceil(w/k)×ceil(h/k), each pixel the average of a k×k block.
func shrink(img image.Image, w, h, k int) *image.RGBA {
	if k > 1 {
		if y, ok := img.(*image.YCbCr); ok && y.Rect == image.Rect(0, 0, w, h) {
			if out := shrinkYCbCr(y, k); out != nil {
				return out
			}
		}
	}
	if k == 1 {
		return toRGBA(img, w, h)
	}
	if m, ok := img.(*image.RGBA); ok && m.Rect == image.Rect(0, 0, w, h) {
		return shrinkRGBA(m, k)
	}
	return shrinkImage(img, w, h, k)
}

// shrinkImage box-shrinks any image (drawn on a transparent w×h canvas) by
// k, converting k rows at a time: it never holds an RGBA copy of the whole
// image, which for a 16-bit PNG would be half as large again as the
// decoded image.
func shrinkImage(img image.Image, w, h, k int) *image.RGBA {
	ow, oh := (w+k-1)/k, (h+k-1)/k
	dst := image.NewRGBA(image.Rect(0, 0, ow, oh))
	parallel(oh, func(oy0, oy1 int) {
		band := image.NewRGBA(image.Rect(0, 0, w, k))
		acc := make([]uint64, 4*ow)
		for oy := oy0; oy < oy1; oy++ {
			y0, y1 := oy*k, min(oy*k+k, h)
			clear(band.Pix)
			band.Rect = image.Rect(0, y0, w, y0+k)
			draw.Draw(band, image.Rect(0, y0, w, y1), img, image.Pt(0, y0), draw.Src)
			boxRow(dst, oy, band, y0, y1, k, acc)
		}
	})
	return dst
}

// toRGBA returns img drawn on a transparent w×h RGBA canvas at its own
// coordinates (a GIF frame may cover only part of its canvas).
func toRGBA(img image.Image, w, h int) *image.RGBA {
	r := image.Rect(0, 0, w, h)
	if m, ok := img.(*image.RGBA); ok && m.Rect == r {
		return m
	}
	dst := image.NewRGBA(r)
	if p, ok := img.(*image.Paletted); ok {
		palettedToRGBA(dst, p)
		return dst
	}
	parallel(h, func(y0, y1 int) {
		band := image.Rect(0, y0, w, y1)
		draw.Draw(dst, band, img, band.Min, draw.Src)
	})
	return dst
}

// palettedToRGBA draws p onto dst (same origin) through a premultiplied
// copy of its palette; indexes outside the palette are transparent.
func palettedToRGBA(dst *image.RGBA, p *image.Paletted) {
	var pal [256][4]uint8
	for i, c := range p.Palette {
		if i == len(pal) {
			break
		}
		if c == nil {
			continue
		}
		r, g, b, a := c.RGBA()
		pal[i] = [4]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}
	}
	r := p.Rect.Intersect(dst.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			si := p.PixOffset(x, y)
			if si < 0 || si >= len(p.Pix) {
				continue
			}
			c := pal[p.Pix[si]]
			di := dst.PixOffset(x, y)
			copy(dst.Pix[di:di+4], c[:])
		}
	}
}

// chromaShifts returns the log2 of the horizontal and vertical chroma
// subsampling of ratio, and false for ratios it does not know.
func chromaShifts(ratio image.YCbCrSubsampleRatio) (hs, vs uint, ok bool) {
	switch ratio {
	case image.YCbCrSubsampleRatio444:
		return 0, 0, true
	case image.YCbCrSubsampleRatio422:
		return 1, 0, true
	case image.YCbCrSubsampleRatio420:
		return 1, 1, true
	case image.YCbCrSubsampleRatio440:
		return 0, 1, true
	case image.YCbCrSubsampleRatio411:
		return 2, 0, true
	case image.YCbCrSubsampleRatio410:
		return 2, 1, true
	}
	return 0, 0, false
}

// shrinkYCbCr box-shrinks src (origin at 0, 0) by k, converting to RGB only
// the averaged pixels. It returns nil when src is of a shape it does not
// handle (the caller then takes the general path).
func shrinkYCbCr(src *image.YCbCr, k int) *image.RGBA {
	hs, vs, ok := chromaShifts(src.SubsampleRatio)
	w, h := src.Rect.Dx(), src.Rect.Dy()
	if !ok || w <= 0 || h <= 0 {
		return nil
	}
	// The decoder's planes must cover the image; check once, not per pixel.
	cw, ch := (w-1)>>hs+1, (h-1)>>vs+1
	if len(src.Y) < (h-1)*src.YStride+w || src.CStride < cw ||
		len(src.Cb) < (ch-1)*src.CStride+cw || len(src.Cr) < (ch-1)*src.CStride+cw {
		return nil
	}
	ow, oh := (w+k-1)/k, (h+k-1)/k
	dst := image.NewRGBA(image.Rect(0, 0, ow, oh))
	parallel(oh, func(oy0, oy1 int) {
		sy := make([]uint64, ow)
		sb := make([]uint64, ow)
		sr := make([]uint64, ow)
		for oy := oy0; oy < oy1; oy++ {
			clear(sy)
			clear(sb)
			clear(sr)
			y0, y1 := oy*k, min(oy*k+k, h)
			for y := y0; y < y1; y++ {
				yrow := src.Y[y*src.YStride : y*src.YStride+w]
				ci := (y >> vs) * src.CStride
				cbrow := src.Cb[ci : ci+cw]
				crrow := src.Cr[ci : ci+cw]
				for ox := range ow {
					x0, x1 := ox*k, min(ox*k+k, w)
					var a, b, c uint64
					for x := x0; x < x1; x++ {
						a += uint64(yrow[x])
						b += uint64(cbrow[x>>hs])
						c += uint64(crrow[x>>hs])
					}
					sy[ox] += a
					sb[ox] += b
					sr[ox] += c
				}
			}
			row := dst.Pix[oy*dst.Stride : oy*dst.Stride+4*ow]
			for ox := range ow {
				n := uint64((min(ox*k+k, w) - ox*k) * (y1 - y0))
				r, g, b := color.YCbCrToRGB(
					uint8((sy[ox]+n/2)/n), uint8((sb[ox]+n/2)/n), uint8((sr[ox]+n/2)/n))
				row[4*ox], row[4*ox+1], row[4*ox+2], row[4*ox+3] = r, g, b, 0xff
			}
		}
	})
	return dst
}

// shrinkRGBA box-shrinks src (origin at 0, 0) by k.
func shrinkRGBA(src *image.RGBA, k int) *image.RGBA {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	ow, oh := (w+k-1)/k, (h+k-1)/k
	dst := image.NewRGBA(image.Rect(0, 0, ow, oh))
	parallel(oh, func(oy0, oy1 int) {
		acc := make([]uint64, 4*ow)
		for oy := oy0; oy < oy1; oy++ {
			boxRow(dst, oy, src, oy*k, min(oy*k+k, h), k, acc)
		}
	})
	return dst
}

// boxRow sets row oy of dst to the k×k block averages of rows [y0, y1) of
// src, whose width is k times dst's, rounded up; acc is scratch of 4 per
// dst pixel.
func boxRow(dst *image.RGBA, oy int, src *image.RGBA, y0, y1, k int, acc []uint64) {
	w, ow := src.Rect.Dx(), dst.Rect.Dx()
	clear(acc)
	for y := y0; y < y1; y++ {
		row := src.Pix[src.PixOffset(0, y):][:4*w]
		for ox := range ow {
			x0, x1 := ox*k, min(ox*k+k, w)
			var r, g, b, a uint64
			for i := 4 * x0; i < 4*x1; i += 4 {
				p := row[i : i+4 : i+4]
				r += uint64(p[0])
				g += uint64(p[1])
				b += uint64(p[2])
				a += uint64(p[3])
			}
			s := acc[4*ox : 4*ox+4 : 4*ox+4]
			s[0] += r
			s[1] += g
			s[2] += b
			s[3] += a
		}
	}
	row := dst.Pix[oy*dst.Stride : oy*dst.Stride+4*ow]
	for ox := range ow {
		n := uint64((min(ox*k+k, w) - ox*k) * (y1 - y0))
		for c := range 4 {
			row[4*ox+c] = uint8((acc[4*ox+c] + n/2) / n)
		}
	}
}

// weights are the fixed-point filter weights that map a line of src pixels
// to dst pixels: dst pixel i is the sum over t < n of
// w[i*n+t] * src[start[i]+t], scaled by 1<<fixBits.
type weights struct {
	n     int
	start []int
	w     []int32
}

// catmullRom is the Catmull-Rom cubic (B=0, C=1/2), support 2.
func catmullRom(x float64) float64 {
	x = math.Abs(x)
	switch {
	case x < 1:
		return (1.5*x-2.5)*x*x + 1
	case x < 2:
		return ((-0.5*x+2.5)*x-4)*x + 2
	}
	return 0
}

// makeWeights returns the Catmull-Rom weights to resample srcN pixels to
// dstN, widened by the scale factor when downscaling. Taps beyond the edges
// fold onto the edge pixels.
func makeWeights(srcN, dstN int) weights {
	return windowWeights(srcN, dstN).trimmed(srcN)
}

// windowWeights is makeWeights over the whole window of taps around each
// pixel, zeros included.
func windowWeights(srcN, dstN int) weights {
	scale := float64(srcN) / float64(dstN)
	fs := max(scale, 1)
	support := 2 * fs
	taps := 2*int(math.Ceil(support)) + 1
	n := min(taps, srcN)
	ws := weights{n: n, start: make([]int, dstN), w: make([]int32, dstN*n)}
	fw := make([]float64, n)
	for i := range dstN {
		center := (float64(i)+0.5)*scale - 0.5
		left := int(math.Ceil(center - support))
		s := min(max(left, 0), srcN-n)
		clear(fw)
		sum := 0.0
		for j := left; j < left+taps; j++ {
			wt := catmullRom((float64(j) - center) / fs)
			if wt == 0 {
				continue
			}
			t := min(max(j, 0), srcN-1) - s
			if t < 0 || t >= n {
				continue
			}
			fw[t] += wt
			sum += wt
		}
		ws.start[i] = s
		out := ws.w[i*n : i*n+n]
		if sum == 0 { // cannot happen with this kernel; stay defined anyway
			out[min(max(int(math.Round(center)), 0), srcN-1)-s] = 1 << fixBits
			continue
		}
		var total int32
		big := 0
		for t, v := range fw {
			out[t] = int32(math.Round(v / sum * (1 << fixBits)))
			total += out[t]
			if out[t] > out[big] {
				big = t
			}
		}
		out[big] += 1<<fixBits - total
	}
	return ws
}

// trimmed returns ws, over srcN pixels, with n cut to the widest run of non-zero weights any
// pixel has: the window taps rounds up to whole pixels on both sides, so
// its ends are zero for most pixels, or for all.
func (ws weights) trimmed(srcN int) weights {
	lo, span := make([]int, len(ws.start)), 1
	for i := range ws.start {
		row := ws.w[i*ws.n : i*ws.n+ws.n]
		a, b := 0, len(row)-1
		for a < b && row[a] == 0 {
			a++
		}
		for b > a && row[b] == 0 {
			b--
		}
		lo[i], span = a, max(span, b-a+1)
	}
	if span == ws.n {
		return ws
	}
	out := weights{n: span, start: make([]int, len(ws.start)), w: make([]int32, len(ws.start)*span)}
	for i, s := range ws.start {
		// The window moves left only as far as the edge allows; what it
		// takes in past the run is zero.
		ns := min(s+lo[i], srcN-span)
		out.start[i] = ns
		for t := range span {
			if j := ns - s + t; j < ws.n {
				out.w[i*span+t] = ws.w[i*ws.n+j]
			}
		}
	}
	return out
}

// resample scales src (origin at 0, 0) to dw×dh with Catmull-Rom,
// horizontally then vertically; a pass whose size does not change is skipped.
func resample(src *image.RGBA, dw, dh int) *image.RGBA {
	if src.Rect.Dx() != dw {
		src = resampleH(src, dw)
	}
	if src.Rect.Dy() != dh {
		src = resampleV(src, dh)
	}
	return src
}

// resampleH scales the rows of src to dw pixels.
func resampleH(src *image.RGBA, dw int) *image.RGBA {
	sw, h := src.Rect.Dx(), src.Rect.Dy()
	ws := makeWeights(sw, dw)
	dst := image.NewRGBA(image.Rect(0, 0, dw, h))
	parallel(h, func(y0, y1 int) {
		for y := y0; y < y1; y++ {
			srow := src.Pix[y*src.Stride : y*src.Stride+4*sw]
			drow := dst.Pix[y*dst.Stride : y*dst.Stride+4*dw]
			for x := range dw {
				p := srow[4*ws.start[x]:]
				var r, g, b, a int32
				for t, wt := range ws.w[x*ws.n : x*ws.n+ws.n] {
					q := p[4*t : 4*t+4 : 4*t+4]
					r += wt * int32(q[0])
					g += wt * int32(q[1])
					b += wt * int32(q[2])
					a += wt * int32(q[3])
				}
				putPremul(drow[4*x:4*x+4:4*x+4], r, g, b, a)
			}
		}
	})
	return dst
}

// resampleV scales the columns of src to dh pixels.
func resampleV(src *image.RGBA, dh int) *image.RGBA {
	w, sh := src.Rect.Dx(), src.Rect.Dy()
	ws := makeWeights(sh, dh)
	dst := image.NewRGBA(image.Rect(0, 0, w, dh))
	parallel(dh, func(y0, y1 int) {
		acc := make([]int32, 4*w)
		for y := y0; y < y1; y++ {
			clear(acc)
			for t, wt := range ws.w[y*ws.n : y*ws.n+ws.n] {
				sy := ws.start[y] + t
				srow := src.Pix[sy*src.Stride : sy*src.Stride+4*w]
				for i, v := range srow {
					acc[i] += wt * int32(v)
				}
			}
			drow := dst.Pix[y*dst.Stride : y*dst.Stride+4*w]
			for i := 0; i < len(drow); i += 4 {
				putPremul(drow[i:i+4:i+4], acc[i], acc[i+1], acc[i+2], acc[i+3])
			}
		}
	})
	return dst
}

// putPremul stores fixed-point sums as a valid premultiplied pixel: each
// channel rounded and clamped to 0..255, colours no larger than alpha (the
// kernel's negative lobes can overshoot either way).
func putPremul(p []uint8, r, g, b, a int32) {
	const half = 1 << (fixBits - 1)
	ai := min(max((a+half)>>fixBits, 0), 255)
	p[0] = uint8(min(max((r+half)>>fixBits, 0), ai))
	p[1] = uint8(min(max((g+half)>>fixBits, 0), ai))
	p[2] = uint8(min(max((b+half)>>fixBits, 0), ai))
	p[3] = uint8(ai)
}

// orientImage returns src (origin at 0, 0) turned upright for EXIF
// orientation o: 2 flip horizontally, 3 rotate 180°, 4 flip vertically,
// 5 transpose, 6 rotate 90° clockwise, 7 transverse, 8 rotate 270°
// clockwise. Other values return src.
func orientImage(src *image.RGBA, o int) *image.RGBA {
	pix, dw, dh := orientPix(src.Pix, src.Stride, src.Rect.Dx(), src.Rect.Dy(), 4, o)
	if pix == nil {
		return src
	}
	return &image.RGBA{Pix: pix, Stride: 4 * dw, Rect: image.Rect(0, 0, dw, dh)}
}

// orientPix turns the w×h samples of bpp bytes in pix (rows stride apart)
// upright for orientation o, as orientImage does, and returns them packed
// with their new size; nil for an o that turns nothing.
func orientPix(pix []byte, stride, w, h, bpp, o int) ([]byte, int, int) {
	last, bottom := bpp*(w-1), (h-1)*stride
	// The source byte offset of destination sample (x, y) is
	// origin + x*dx + y*dy.
	var origin, dx, dy int
	switch o {
	case 2:
		origin, dx, dy = last, -bpp, stride
	case 3:
		origin, dx, dy = bottom+last, -bpp, -stride
	case 4:
		origin, dx, dy = bottom, bpp, -stride
	case 5:
		origin, dx, dy = 0, stride, bpp
	case 6:
		origin, dx, dy = bottom, -stride, bpp
	case 7:
		origin, dx, dy = bottom+last, -stride, -bpp
	case 8:
		origin, dx, dy = last, stride, -bpp
	default:
		return nil, w, h
	}
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	out := make([]byte, bpp*dw*dh)
	parallel(dh, func(y0, y1 int) {
		for y := y0; y < y1; y++ {
			row := out[y*bpp*dw : (y+1)*bpp*dw]
			si := origin + y*dy
			for x := 0; x < len(row); x += bpp {
				copy(row[x:x+bpp:x+bpp], pix[si:si+bpp:si+bpp])
				si += dx
			}
		}
	})
	return out, dw, dh
}

// flatten composites the premultiplied image m over white, in place, making
// it opaque.
func flatten(m *image.RGBA) {
	p := m.Pix
	for i := 0; i+3 < len(p); i += 4 {
		a := p[i+3]
		if a == 0xff {
			continue
		}
		add := 0xff - int(a)
		p[i] = uint8(min(int(p[i])+add, 0xff))
		p[i+1] = uint8(min(int(p[i+1])+add, 0xff))
		p[i+2] = uint8(min(int(p[i+2])+add, 0xff))
		p[i+3] = 0xff
	}
}

// minRowsPerWorker keeps small images on one goroutine.
const minRowsPerWorker = 64

// parallel calls fn over [0, rows) split into contiguous bands, one per
// processor, and returns when all are done.
func parallel(rows int, fn func(y0, y1 int)) {
	workers := min(runtime.GOMAXPROCS(0), rows/minRowsPerWorker)
	if workers <= 1 {
		fn(0, rows)
		return
	}
	var wg sync.WaitGroup
	for i := range workers {
		y0, y1 := rows*i/workers, rows*(i+1)/workers
		wg.Go(func() { fn(y0, y1) })
	}
	wg.Wait()
}
