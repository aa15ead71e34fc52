package imageprep

import "image"

// A decoded JPEG or HEIC is Y'CbCr, and so is the JPEG Prepare encodes: for
// such an image the pipeline stays in Y'CbCr, one 8-bit plane at a time,
// instead of going through RGBA. The luma plane is box-shrunk and resampled
// to the output size and each chroma plane straight to the output's 4:2:0
// chroma size, so a 4:2:0 photo is filtered as 1.5 samples a pixel rather
// than 4, and no pixel is converted to RGB and back.

// plane is one 8-bit channel of w×h samples, rows stride apart.
type plane struct {
	pix    []byte
	stride int
	w, h   int
}

func newPlane(w, h int) plane { return plane{make([]byte, w*h), w, w, h} }

// renderYCbCr is render for a Y'CbCr image of w×h at its origin: the upright
// 4:2:0 image of at most maxSide, or nil when src is of a shape it does not
// handle.
func renderYCbCr(src *image.YCbCr, w, h, maxSide, orient int) *image.YCbCr {
	hs, vs, ok := chromaShifts(src.SubsampleRatio)
	if !ok || w <= 0 || h <= 0 || src.Rect != image.Rect(0, 0, w, h) {
		return nil
	}
	cw, ch := (w-1)>>hs+1, (h-1)>>vs+1
	if src.YStride < w || len(src.Y) < (h-1)*src.YStride+w || src.CStride < cw ||
		len(src.Cb) < (ch-1)*src.CStride+cw || len(src.Cr) < (ch-1)*src.CStride+cw {
		return nil
	}
	dw, dh := fit(w, h, maxSide)
	dcw, dch := (dw+1)/2, (dh+1)/2
	y := scalePlane(plane{src.Y, src.YStride, w, h}, dw, dh)
	cb := scalePlane(plane{src.Cb, src.CStride, cw, ch}, dcw, dch)
	cr := scalePlane(plane{src.Cr, src.CStride, cw, ch}, dcw, dch)
	y, cb, cr = orientPlane(y, orient), orientPlane(cb, orient), orientPlane(cr, orient)
	return &image.YCbCr{
		Y: y.pix, Cb: cb.pix, Cr: cr.pix,
		YStride: y.stride, CStride: cb.stride,
		SubsampleRatio: image.YCbCrSubsampleRatio420,
		Rect:           image.Rect(0, 0, y.w, y.h),
	}
}

// scalePlane box-shrinks p by the whole part of the factor, then resamples
// it with Catmull-Rom to dw×dh.
func scalePlane(p plane, dw, dh int) plane {
	if k := boxFactor(p.w, p.h, dw, dh); k > 1 {
		p = shrinkPlane(p, k)
	}
	if p.w != dw {
		p = resamplePlaneH(p, dw)
	}
	if p.h != dh {
		p = resamplePlaneV(p, dh)
	}
	return p
}

// shrinkPlane returns p of ceil(w/k)×ceil(h/k), each sample the average of a
// k×k block.
func shrinkPlane(p plane, k int) plane {
	ow, oh := (p.w+k-1)/k, (p.h+k-1)/k
	dst := newPlane(ow, oh)
	parallel(oh, func(oy0, oy1 int) {
		acc := make([]uint32, ow)
		for oy := oy0; oy < oy1; oy++ {
			clear(acc)
			y0, y1 := oy*k, min(oy*k+k, p.h)
			for y := y0; y < y1; y++ {
				row := p.pix[y*p.stride : y*p.stride+p.w]
				for ox := range ow {
					var s uint32
					for _, v := range row[ox*k : min(ox*k+k, p.w)] {
						s += uint32(v)
					}
					acc[ox] += s
				}
			}
			out := dst.pix[oy*dst.stride : oy*dst.stride+ow]
			for ox := range ow {
				n := uint32((min(ox*k+k, p.w) - ox*k) * (y1 - y0))
				out[ox] = uint8((acc[ox] + n/2) / n)
			}
		}
	})
	return dst
}

// clampFix rounds a fixed-point sum to a sample, clamped to 0..255 (the
// kernel's negative lobes overshoot).
func clampFix(v int32) uint8 {
	return uint8(min(max((v+1<<(fixBits-1))>>fixBits, 0), 255))
}

// The plane resamplers add two samples' products at once: each in 32 bits
// of an int64 (a pair), one at the bottom and one at bit 32. A sum of
// products by the fixed-point weights stays well within 32 bits (at most
// 255 × 1.3 × 2^fixBits in magnitude), so the two lanes are exact and the
// upper is the sum's top half less the lower's sign.

// pair packs samples a and b in the lanes of an int64.
func pair(a, b uint8) int64 { return int64(a) | int64(b)<<32 }

// unpair returns the two lanes of a sum of pairs.
func unpair(v int64) (lo, hi int32) {
	lo = int32(v)
	return lo, int32((v - int64(lo)) >> 32)
}

// resamplePlaneH scales the rows of p to dw samples, four rows at a time
// (two pairs, which share each weight's load).
func resamplePlaneH(p plane, dw int) plane {
	ws := makeWeights(p.w, dw)
	dst := newPlane(dw, p.h)
	parallel((p.h+3)/4, func(q0, q1 int) {
		pairs := make([]int64, 2*p.w) // [x*2+i]: rows y+2i and y+2i+1
		spare := make([]byte, dw)     // the output of rows past the last
		var src [4][]byte
		var out [4][]byte
		for y := 4 * q0; y < min(4*q1, p.h); y += 4 {
			for i := range 4 {
				sy := min(y+i, p.h-1)
				src[i] = p.pix[sy*p.stride : sy*p.stride+p.w]
				out[i] = spare
				if y+i < p.h {
					out[i] = dst.pix[(y+i)*dst.stride : (y+i)*dst.stride+dw]
				}
			}
			s0, s1, s2, s3 := src[0], src[1][:len(src[0])], src[2][:len(src[0])], src[3][:len(src[0])]
			for x, v := range s0 {
				pp := pairs[2*x : 2*x+2 : 2*x+2]
				pp[0], pp[1] = pair(v, s1[x]), pair(s2[x], s3[x])
			}
			d0, d1, d2, d3 := out[0], out[1][:len(out[0])], out[2][:len(out[0])], out[3][:len(out[0])]
			for x := range d0 {
				sp := pairs[2*ws.start[x]:][:2*ws.n]
				var a, b int64
				for t, wt := range ws.w[x*ws.n : x*ws.n+ws.n] {
					w := int64(wt)
					a += w * sp[2*t]
					b += w * sp[2*t+1]
				}
				lo, hi := unpair(a)
				d0[x], d1[x] = clampFix(lo), clampFix(hi)
				lo, hi = unpair(b)
				d2[x], d3[x] = clampFix(lo), clampFix(hi)
			}
		}
	})
	return dst
}

// resamplePlaneV scales the columns of p to dh samples: each output row
// summed straight from its source rows, four samples (two pairs) a step.
func resamplePlaneV(p plane, dh int) plane {
	ws := makeWeights(p.h, dh)
	dst := newPlane(p.w, dh)
	parallel(dh, func(y0, y1 int) {
		rows := make([][]byte, ws.n)
		for y := y0; y < y1; y++ {
			wt := ws.w[y*ws.n : y*ws.n+ws.n]
			for t := range rows {
				sy := ws.start[y] + t
				rows[t] = p.pix[sy*p.stride : sy*p.stride+p.w]
			}
			drow := dst.pix[y*dst.stride : y*dst.stride+p.w]
			i := 0
			for ; i+8 <= len(drow); i += 8 {
				var a, b, c, e int64
				for t, r := range rows {
					q := r[i : i+8 : i+8]
					w := int64(wt[t])
					a += w * pair(q[0], q[1])
					b += w * pair(q[2], q[3])
					c += w * pair(q[4], q[5])
					e += w * pair(q[6], q[7])
				}
				d := drow[i : i+8 : i+8]
				for j, v := range [4]int64{a, b, c, e} {
					lo, hi := unpair(v)
					d[2*j], d[2*j+1] = clampFix(lo), clampFix(hi)
				}
			}
			for ; i < len(drow); i++ {
				var acc int32
				for t, r := range rows {
					acc += wt[t] * int32(r[i])
				}
				drow[i] = clampFix(acc)
			}
		}
	})
	return dst
}

// orientPlane returns p turned upright for EXIF orientation o, as
// orientImage does for RGBA.
func orientPlane(p plane, o int) plane {
	pix, dw, dh := orientPix(p.pix, p.stride, p.w, p.h, 1, o)
	if pix == nil {
		return p
	}
	return plane{pix, dw, dw, dh}
}
