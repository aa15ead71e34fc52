package jpegenc

import (
	"math"

	"github.com/regscribe/regscribe/internal/imageprep/internal/zigzag"
)

// The forward DCT is the scaled one of Y. Arai, T. Agui and M. Nakajima ("A
// fast DCT-SQ scheme for images", Trans. IEICE E71, 1988), in float32: an
// 8-point pass over the rows, then over the columns, with 5 multiplications
// each. Its output (u, v) is the DCT of T.81 A.3.3 times 8·a(u)·a(v), a(0)
// = 1 and a(k) = √2·cos(kπ/16); the quantization divides that away.
const (
	aanC4  = 0.70710678118654752 // cos(4π/16)
	aanC6  = 0.38268343236508977 // cos(6π/16)
	aanC26 = 0.54119610014619698 // cos(2π/16) - cos(6π/16)
	aanC62 = 1.30656296487637653 // cos(2π/16) + cos(6π/16)
)

// fdct8 is the one-dimensional pass over the 8 samples of s at 0, d, …, 7d.
func fdct8(s []float32, d int) {
	_ = s[7*d]
	t0, t7 := s[0]+s[7*d], s[0]-s[7*d]
	t1, t6 := s[d]+s[6*d], s[d]-s[6*d]
	t2, t5 := s[2*d]+s[5*d], s[2*d]-s[5*d]
	t3, t4 := s[3*d]+s[4*d], s[3*d]-s[4*d]
	// Even part.
	e0, e3 := t0+t3, t0-t3
	e1, e2 := t1+t2, t1-t2
	s[0], s[4*d] = e0+e1, e0-e1
	z1 := (e2 + e3) * aanC4
	s[2*d], s[6*d] = e3+z1, e3-z1
	// Odd part.
	o0, o1, o2 := t4+t5, t5+t6, t6+t7
	z5 := (o0 - o2) * aanC6
	z2 := aanC26*o0 + z5
	z4 := aanC62*o2 + z5
	z3 := o1 * aanC4
	z11, z13 := t7+z3, t7-z3
	s[5*d], s[3*d] = z13+z2, z13-z2
	s[d], s[7*d] = z11+z4, z11-z4
}

// scaler transforms and quantizes blocks with one quantization table.
type scaler struct {
	// recip is, by zig-zag position, 1 / (8·a(u)·a(v)·q): what turns the
	// scaled DCT into quantized coefficients.
	recip [64]float32
}

// init sets s up for the zig-zag ordered table q.
func (s *scaler) init(q *[64]uint8) {
	a := func(k uint8) float64 {
		if k == 0 {
			return 1
		}
		return math.Sqrt2 * math.Cos(float64(k)*math.Pi/16)
	}
	for k, z := range zigzag.Order {
		s.recip[k] = float32(1 / (8 * a(z%8) * a(z/8) * float64(q[k])))
	}
}

// transform turns the samples b (overwritten) into c, the
// quantized coefficients in zig-zag order, and returns a mask with a bit
// for each non-zero AC coefficient by zig-zag position.
func (s *scaler) transform(b *[64]float32, c *[64]int32) uint64 {
	for y := 0; y < 64; y += 8 {
		fdct8(b[y:y+8], 1)
	}
	for x := range 8 {
		fdct8(b[x:], 8)
	}
	// The level shift (T.81 A.3.1) of the 64 samples by 128 is the DC's
	// by 64·128: the scaled DC is their sum.
	b[0] -= 64 * 128
	var nz uint64
	for k, z := range zigzag.Order {
		v := b[z] * s.recip[k]
		// Rounded to the nearest (halves up) and kept within
		// the 11-bit sizes of T.81 tables F.1 and F.2.
		q := int32(min(max(v, -1023), 1023)+1024.5) - 1024
		c[k] = q
		nz |= uint64(uint32(q|-q)>>31) << k
	}
	return nz &^ 1
}
