// Package jpegenc encodes baseline JPEG images (ITU-T T.81, sequential DCT
// with Huffman coding) from Y'CbCr 4:2:0 planes: what imageprep sends to a
// model. It writes the example quantization tables of T.81 K.1 scaled by a
// quality of 1 to 100, and the example Huffman tables of K.3.
package jpegenc

import (
	"errors"
	"image"
	"math/bits"

	"github.com/regscribe/regscribe/internal/imageprep/internal/zigzag"
)

// ErrLayout is an image Encode does not take: not 4:2:0, empty, larger
// than a JPEG frame's 65,535 pixels a side, or with planes shorter than
// its bounds.
var ErrLayout = errors.New("jpegenc: image must be Y'CbCr 4:2:0 within 65535x65535 with whole planes")

// Encode returns the baseline JPEG of m at the given quality (1 to 100,
// clamped; 50 is T.81's example tables as they are, larger is finer).
func Encode(m *image.YCbCr, quality int) ([]byte, error) {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	if m.SubsampleRatio != image.YCbCrSubsampleRatio420 || w <= 0 || h <= 0 || w > 0xffff || h > 0xffff {
		return nil, ErrLayout
	}
	cw, ch := (m.Rect.Max.X+1)/2-m.Rect.Min.X/2, (m.Rect.Max.Y+1)/2-m.Rect.Min.Y/2
	y := plane{pix: m.Y[m.YOffset(m.Rect.Min.X, m.Rect.Min.Y):], stride: m.YStride, w: w, h: h}
	co := m.COffset(m.Rect.Min.X, m.Rect.Min.Y)
	cb := plane{pix: m.Cb[co:], stride: m.CStride, w: cw, h: ch}
	cr := plane{pix: m.Cr[co:], stride: m.CStride, w: cw, h: ch}
	if !y.whole() || !cb.whole() || !cr.whole() {
		return nil, ErrLayout
	}
	e := &encoder{out: make([]byte, 0, 1024+w*h/4)}
	lq, cq := quantTable(&lumaQuant, quality), quantTable(&chromaQuant, quality)
	e.headers(w, h, &lq, &cq)
	var (
		ly, cy       scaler
		ldc, lac     = codesOf(&lumaDC), codesOf(&lumaAC)
		cdc, cac     = codesOf(&chromaDC), codesOf(&chromaAC)
		py, pcb, pcr int32
		samples      [64]float32
		coefs        [64]int32
		mcusX, mcusY = (w + 15) / 16, (h + 15) / 16
	)
	ly.init(&lq)
	cy.init(&cq)
	for my := range mcusY {
		for mx := range mcusX {
			for i := range 4 {
				y.load(16*mx+8*(i&1), 16*my+8*(i>>1), &samples)
				nz := ly.transform(&samples, &coefs)
				e.block(&coefs, nz, &py, &ldc, &lac)
			}
			cb.load(8*mx, 8*my, &samples)
			nz := cy.transform(&samples, &coefs)
			e.block(&coefs, nz, &pcb, &cdc, &cac)
			cr.load(8*mx, 8*my, &samples)
			nz = cy.transform(&samples, &coefs)
			e.block(&coefs, nz, &pcr, &cdc, &cac)
		}
	}
	e.finish()
	return e.out, nil
}

// plane is one component's samples, w×h, rows stride apart.
type plane struct {
	pix       []byte
	stride, w int
	h         int
}

// whole reports whether pix holds every sample of the plane.
func (p plane) whole() bool {
	return p.w > 0 && p.h > 0 && p.stride >= p.w && len(p.pix) >= (p.h-1)*p.stride+p.w
}

// load puts the 8×8 samples at (x0, y0) in s, not level-shifted (the
// transform takes the shift off the DC alone); past
// the right and bottom edges the last column and row are repeated, as
// T.81 A.2.4 suggests for the MCUs' padding.
func (p plane) load(x0, y0 int, s *[64]float32) {
	if x0+8 <= p.w && y0+8 <= p.h {
		for y := range 8 {
			row := p.pix[(y0+y)*p.stride+x0:][:8]
			d := s[8*y : 8*y+8 : 8*y+8]
			for x, v := range row {
				d[x] = float32(v)
			}
		}
		return
	}
	for y := range 8 {
		row := p.pix[min(y0+y, p.h-1)*p.stride:]
		for x := range 8 {
			s[8*y+x] = float32(row[min(x0+x, p.w-1)])
		}
	}
}

// quantTable returns the zig-zag ordered table of base (row by row) for
// the quality: the scaling that the Independent JPEG Group's cjpeg made
// the common meaning of a JPEG quality, 5000/quality percent below 50,
// 200 - 2·quality percent from 50, each entry kept within 1 to 255.
func quantTable(base *[64]uint8, quality int) (q [64]uint8) {
	quality = min(max(quality, 1), 100)
	scale := 200 - 2*quality
	if quality < 50 {
		scale = 5000 / quality
	}
	for k, z := range zigzag.Order {
		q[k] = uint8(min(max((int(base[z])*scale+50)/100, 1), 255))
	}
	return q
}

// encoder writes the JPEG stream to out.
type encoder struct {
	out []byte
	acc uint64 // the last n bits written and not yet in out, in its low bits
	n   uint
}

// headers writes SOI and the segments before the entropy-coded data: the
// quantization tables, the frame header (Y 2×2, Cb and Cr 1×1 sampling),
// the Huffman tables and the scan header (T.81 B.2).
func (e *encoder) headers(w, h int, lq, cq *[64]uint8) {
	e.out = append(e.out, 0xff, 0xd8)
	e.out = append(e.out, 0xff, 0xdb, 0, 2+2*65, 0x00)
	e.out = append(e.out, lq[:]...)
	e.out = append(e.out, 0x01)
	e.out = append(e.out, cq[:]...)
	e.out = append(e.out, 0xff, 0xc0, 0, 17, 8, byte(h>>8), byte(h), byte(w>>8), byte(w), 3,
		1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1)
	n := 2
	specs := []*huffSpec{&lumaDC, &lumaAC, &chromaDC, &chromaAC}
	for _, s := range specs {
		n += 17 + len(s.vals)
	}
	e.out = append(e.out, 0xff, 0xc4, byte(n>>8), byte(n))
	for i, s := range specs {
		e.out = append(e.out, byte(i&1<<4|i>>1)) // class (DC 0, AC 1) and table
		e.out = append(e.out, s.counts[:]...)
		e.out = append(e.out, s.vals...)
	}
	e.out = append(e.out, 0xff, 0xda, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0)
}

// finish pads the last byte with 1 bits (T.81 F.1.2.3) and writes EOI.
func (e *encoder) finish() {
	if pad := (8 - e.n%8) % 8; pad > 0 {
		e.put(1<<pad-1, pad)
	}
	for e.n >= 8 {
		e.n -= 8
		e.byte(byte(e.acc >> e.n))
	}
	e.out = append(e.out, 0xff, 0xd9)
}

// put writes the low n bits of v (n at most 32).
func (e *encoder) put(v uint32, n uint) {
	e.acc = e.acc<<n | uint64(v)
	e.n += n
	if e.n >= 32 {
		e.n -= 32
		w := uint32(e.acc >> e.n)
		if x := ^w; (x-0x01010101)&^x&0x80808080 == 0 { // no 0xff byte
			e.out = append(e.out, byte(w>>24), byte(w>>16), byte(w>>8), byte(w))
			return
		}
		e.byte(byte(w >> 24))
		e.byte(byte(w >> 16))
		e.byte(byte(w >> 8))
		e.byte(byte(w))
	}
}

// byte writes one byte of entropy-coded data, stuffing a 0 after 0xff
// (T.81 F.1.2.3).
func (e *encoder) byte(b byte) {
	e.out = append(e.out, b)
	if b == 0xff {
		e.out = append(e.out, 0)
	}
}

// codes is a Huffman table for encoding: by value, the code << 8 | its
// length.
type codes [256]uint32

// codesOf makes the codes of s (T.81 C.2: lengths and codes in order).
func codesOf(s *huffSpec) (c codes) {
	code, k := uint32(0), 0
	for l := range 16 {
		for range s.counts[l] {
			c[s.vals[k]] = code<<8 | uint32(l+1)
			code++
			k++
		}
		code <<= 1
	}
	return c
}

// symbol writes the code of value rs from c followed by the size low bits
// of v (T.81 F.1.2.1: a negative value as v-1).
func (e *encoder) symbol(c *codes, rs uint8, v int32, size uint) {
	x := c[rs]
	l := uint(x & 0xff)
	e.put(x>>8<<size|uint32(v)&(1<<size-1), l+size)
}

// magnitude returns the size category of v (T.81 tables F.1 and F.2) and
// v as its bits are written: v-1 when negative.
func magnitude(v int32) (uint, int32) {
	a := v ^ v>>31 // |v| - 1 when negative, v otherwise
	s := uint(bits.Len32(uint32(a - v>>31)))
	return s, v + v>>31
}

// block writes one block's quantized coefficients, zig-zag ordered, nz
// having a bit for each non-zero AC one; pred is the component's DC
// prediction (T.81 F.1.2).
func (e *encoder) block(c *[64]int32, nz uint64, pred *int32, dc, ac *codes) {
	s, v := magnitude(c[0] - *pred)
	*pred = c[0]
	e.symbol(dc, uint8(s), v, s)
	last := 0
	for nz != 0 {
		k := bits.TrailingZeros64(nz)
		nz &= nz - 1
		run := k - last - 1
		for ; run >= 16; run -= 16 {
			e.symbol(ac, 0xf0, 0, 0) // ZRL
		}
		s, v := magnitude(c[k])
		e.symbol(ac, uint8(run<<4)|uint8(s), v, s)
		last = k
	}
	if last < 63 {
		e.symbol(ac, 0x00, 0, 0) // EOB
	}
}
