package jpegdec

import "math"

// The 8×8 inverse DCT is the separable integer Chen–Wang algorithm (Z.
// Wang, "Fast algorithms for the discrete W transform and for the discrete
// Fourier transform", IEEE Trans. ASSP-32, 1984, after W.-H. Chen, C. H.
// Smith and S. C. Fralick, 1977), as the IEEE 1180-conformant MPEG
// reference decoder computes it: a pass over the rows with 11 fractional
// bits, 8 of them kept, then over the columns with 8 more, all 14 dropped
// with rounding. Its constants are 2048·√2·cos(kπ/16).
const (
	w1 = 2841 // k = 1
	w2 = 2676 // k = 2
	w3 = 2408 // k = 3
	w5 = 1609 // k = 5
	w6 = 1108 // k = 6
	w7 = 565  // k = 7
	r2 = 181  // 256/√2
)

// idctRows is the first pass: each row of blk, scaled by 8, to ws. The
// arithmetic is 64-bit: coefficients up to T.81's ±2047 (and a damaged
// file's beyond) do not overflow it.
func idctRows(blk *[64]int32, ws *[64]int) {
	for y := 0; y < 64; y += 8 {
		b, w := (*[8]int32)(blk[y:]), (*[8]int)(ws[y:])
		if b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] == 0 {
			v := int(b[0]) << 3
			*w = [8]int{v, v, v, v, v, v, v, v}
			continue
		}
		x0, x1 := int(b[0])<<11+128, int(b[4])<<11
		x2, x3, x4, x5, x6, x7 := int(b[6]), int(b[2]), int(b[1]), int(b[7]), int(b[5]), int(b[3])
		// Odd part.
		x8 := w7 * (x4 + x5)
		x4 = x8 + (w1-w7)*x4
		x5 = x8 - (w1+w7)*x5
		x8 = w3 * (x6 + x7)
		x6 = x8 - (w3-w5)*x6
		x7 = x8 - (w3+w5)*x7
		// Even part.
		x8 = x0 + x1
		x0 -= x1
		x1 = w6 * (x3 + x2)
		x2 = x1 - (w2+w6)*x2
		x3 = x1 + (w2-w6)*x3
		o := combine(x0, x2, x3, x4, x5, x6, x7, x8)
		*w = [8]int{o[0] >> 8, o[1] >> 8, o[2] >> 8, o[3] >> 8, o[4] >> 8, o[5] >> 8, o[6] >> 8, o[7] >> 8}
	}
}

// idctColumns is the second pass over the columns of ws, writing the
// samples, level-shifted by 128 and clamped, to dst with the given stride.
func idctColumns(ws *[64]int, dst []byte, stride int) {
	_ = dst[7*stride+7]
	for x := range 8 {
		b0, b1, b2, b3 := ws[x], ws[8+x], ws[16+x], ws[24+x]
		b4, b5, b6, b7 := ws[32+x], ws[40+x], ws[48+x], ws[56+x]
		if b1|b2|b3|b4|b5|b6|b7 == 0 {
			v := clampWide(int64((b0 + 32) >> 6))
			for y := range 8 {
				dst[y*stride+x] = v
			}
			continue
		}
		x0, x1 := b0<<8+8192, b4<<8
		x2, x3, x4, x5, x6, x7 := b6, b2, b1, b7, b5, b3
		x8 := w7*(x4+x5) + 4
		x4 = (x8 + (w1-w7)*x4) >> 3
		x5 = (x8 - (w1+w7)*x5) >> 3
		x8 = w3*(x6+x7) + 4
		x6 = (x8 - (w3-w5)*x6) >> 3
		x7 = (x8 - (w3+w5)*x7) >> 3
		x8 = x0 + x1
		x0 -= x1
		x1 = w6*(x3+x2) + 4
		x2 = (x1 - (w2+w6)*x2) >> 3
		x3 = (x1 + (w2-w6)*x3) >> 3
		o := combine(x0, x2, x3, x4, x5, x6, x7, x8)
		for y, v := range o {
			dst[y*stride+x] = clampWide(int64(v >> 14))
		}
	}
}

// combine is the last two stages of both passes: the even part's x0, x2,
// x3, x8 and the odd part's x4 to x7 make the eight outputs, still scaled.
func combine(x0, x2, x3, x4, x5, x6, x7, x8 int) [8]int {
	x1 := x4 + x6
	x4 -= x6
	x6 = x5 + x7
	x5 -= x7
	x7 = x8 + x3
	x8 -= x3
	x3 = x0 + x2
	x0 -= x2
	x2 = (r2*(x4+x5) + 128) >> 8
	x4 = (r2*(x4-x5) + 128) >> 8
	return [8]int{x7 + x1, x3 + x2, x0 + x4, x8 + x6, x8 - x6, x0 - x4, x3 - x2, x7 - x1}
}

func clamp(v int32) byte {
	return byte(min(max(v, 0), 255))
}

// reducedBits is the fixed-point precision of the reduced kernels.
const reducedBits = 12

// reduced[n] is the n-point kernel of scale 8/n (n = 2, 4), n×n: entry
// [x*n+u] weighs frequency u for output sample x. An output sample is the
// mean of the m = 8/n pixels it stands for; the mean of the basis function
// cos((2t+1)uπ/16) over those pixels is cos((2x+1)uπ/2n) times
// sin(muπ/16) / (m·sin(uπ/16)). With the IDCT's own factor C(u)/2 that
// is the kernel, scaled by 2^reducedBits.
var reduced = func() (k [5][]int64) {
	for _, n := range []int{2, 4} {
		m := float64(8 / n)
		k[n] = make([]int64, n*n)
		for x := range n {
			for u := range n {
				c, box := 0.5, 1.0
				if u == 0 {
					c = 0.5 / math.Sqrt2
				} else {
					box = math.Sin(m*float64(u)*math.Pi/16) / (m * math.Sin(float64(u)*math.Pi/16))
				}
				f := c * box * math.Cos(float64(2*x+1)*float64(u)*math.Pi/float64(2*n))
				k[n][x*n+u] = int64(math.Round(f * (1 << reducedBits)))
			}
		}
	}
	return k
}()

// The kernels' entries, named: k4[x][u] of reduced[4] and k2 of
// reduced[2], as constants, which the multiplications take as immediates
// (TestReducedKernels checks them against reduced). Both kernels are
// symmetric: sample n-1-x weighs frequency u by (-1)^u times what sample x
// does.
const (
	k4dc, k4c2           = 1448, 1338
	k4x0u1, k4x0u3       = 1856, 652
	k4x1u1, k4x1u3       = 769, -1573
	k2dc, k2u1           = 1448, 1312
	reducedHalf    int64 = 1 << (2*reducedBits - 1)
)

// idct4 writes the 4×4 samples of blk's lowest 4×4 frequencies to dst
// with the given stride: the columns of each row of coefficients, then
// the rows, each 4-point pass split in its even and odd halves.
func idct4(blk *[64]int32, dst []byte, stride int) {
	_ = dst[3*stride+3]
	if blk[1]|blk[2]|blk[3]|blk[8]|blk[9]|blk[10]|blk[11]|blk[16]|blk[17]|blk[18]|blk[19]|blk[24]|blk[25]|blk[26]|blk[27] == 0 {
		v := clampWide((int64(blk[0])*k4dc*k4dc + reducedHalf) >> (2 * reducedBits))
		for y := range 4 {
			d := dst[y*stride : y*stride+4]
			d[0], d[1], d[2], d[3] = v, v, v, v
		}
		return
	}
	var t [16]int64 // [v*4+x]
	for v := range 4 {
		f := blk[v*8 : v*8+4]
		if f[0]|f[1]|f[2]|f[3] == 0 {
			continue
		}
		e0, e2 := int64(f[0])*k4dc, int64(f[2])*k4c2
		f1, f3 := int64(f[1]), int64(f[3])
		o0, o1 := f1*k4x0u1+f3*k4x0u3, f1*k4x1u1+f3*k4x1u3
		t[v*4], t[v*4+1], t[v*4+2], t[v*4+3] = e0+e2+o0, e0-e2+o1, e0-e2-o1, e0+e2-o0
	}
	for x := range 4 {
		e0, e2 := t[x]*k4dc, t[8+x]*k4c2
		o0, o1 := t[4+x]*k4x0u1+t[12+x]*k4x0u3, t[4+x]*k4x1u1+t[12+x]*k4x1u3
		dst[x] = clampWide((e0 + e2 + o0 + reducedHalf) >> (2 * reducedBits))
		dst[stride+x] = clampWide((e0 - e2 + o1 + reducedHalf) >> (2 * reducedBits))
		dst[2*stride+x] = clampWide((e0 - e2 - o1 + reducedHalf) >> (2 * reducedBits))
		dst[3*stride+x] = clampWide((e0 + e2 - o0 + reducedHalf) >> (2 * reducedBits))
	}
}

// idct2 writes the 2×2 samples of blk's lowest 2×2 frequencies to dst.
func idct2(blk *[64]int32, dst []byte, stride int) {
	_ = dst[stride+1]
	a, b := int64(blk[0])*k2dc, int64(blk[1])*k2u1 // row 0
	c, d := int64(blk[8])*k2dc, int64(blk[9])*k2u1 // row 1
	t0, t1, t2, t3 := a+b, a-b, c+d, c-d           // [v][x]
	dst[0] = clampWide((t0*k2dc + t2*k2u1 + reducedHalf) >> (2 * reducedBits))
	dst[1] = clampWide((t1*k2dc + t3*k2u1 + reducedHalf) >> (2 * reducedBits))
	dst[stride] = clampWide((t0*k2dc - t2*k2u1 + reducedHalf) >> (2 * reducedBits))
	dst[stride+1] = clampWide((t1*k2dc - t3*k2u1 + reducedHalf) >> (2 * reducedBits))
}

// clampWide is clamp of a sample not yet level-shifted, of any size.
func clampWide(v int64) byte {
	return byte(min(max(v+128, 0), 255))
}

// output writes the samples of the dequantized block blk, the block (bx,
// by) of c, at the decoder's scale; blk is overwritten.
func (d *decoder) output(c *component, bx, by int, blk *[64]int32) {
	n := d.n
	if blockHook != nil {
		blockHook(blk)
	}
	stride := c.bw * n
	dst := c.plane[by*n*stride+bx*n:]
	switch n {
	case 8:
		var ws [64]int
		idctRows(blk, &ws)
		idctColumns(&ws, dst, stride)
	case 4:
		idct4(blk, dst, stride)
	case 2:
		idct2(blk, dst, stride)
	case 1:
		dst[0] = clamp((blk[0]+4)>>3 + 128)
	}
}

// blockHook, if not nil, sees every dequantized block before its inverse
// DCT: for the tests.
var blockHook func(blk *[64]int32)
