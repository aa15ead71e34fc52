package jpegdec

import (
	"encoding/binary"
	"fmt"
	"image"

	"github.com/regscribe/regscribe/internal/imageprep/internal/zigzag"
)

// Marker codes (T.81 table B.1).
const (
	markerSOF0 = 0xc0 // baseline DCT
	markerSOF1 = 0xc1 // extended sequential DCT, Huffman
	markerSOF2 = 0xc2 // progressive DCT, Huffman
	markerDHT  = 0xc4
	markerRST0 = 0xd0
	markerRST7 = 0xd7
	markerSOI  = 0xd8
	markerEOI  = 0xd9
	markerSOS  = 0xda
	markerDQT  = 0xdb
	markerDNL  = 0xdc
	markerDRI  = 0xdd
	markerAPP0 = 0xe0
	markerAPPE = 0xee // Adobe
	markerCOM  = 0xfe
)

// Adobe APP14 colour transforms (Adobe Technical Note 5116).
const (
	adobeNone  = 0 // RGB or CMYK as stored
	adobeYCbCr = 1
	adobeYCCK  = 2
)

// component is a frame component (T.81 B.2.2) and what is decoded of it.
type component struct {
	id     uint8
	h, v   int // sampling factors
	tq     uint8
	bw, bh int // blocks across and down, whole MCUs' worth

	// coef holds the quantized coefficients of every block of a
	// progressive frame across scans: those of the n×n lowest
	// frequencies that the scale uses, row by row, n² per block.
	coef []int32
	// nonzero has a bit per block for each AC coefficient, by zig-zag
	// position, that is not zero: all a refinement scan needs of those
	// the scale does not use (T.81 G.1.2.3).
	nonzero []uint64
	// plane is the decoded samples, n×n per block, stride bw·n.
	plane []byte
}

// huffman is a Huffman decoding table (T.81 F.2.2.3) with a lookup of the
// codes up to lookupBits long.
type huffman struct {
	defined bool
	// lookup is indexed by the next lookupBits bits: code length << 8 |
	// value, or 0 when the code is longer.
	lookup [1 << lookupBits]uint16
	// fast is indexed alike for an AC table's codes whose value bits
	// follow within lookupBits: the value << 16 | run << 8 | bits used
	// (code and value); fastEOB | bits used for EOB; or 0.
	fast    [1 << lookupBits]int32
	maxcode [18]int32 // largest code of each length, -1 when none
	valptr  [17]int32 // index in vals of the first code of each length, minus that code
	vals    [256]uint8
}

const lookupBits = 11

// fastEOB marks EOB in huffman.fast.
const fastEOB = 0x80 << 8

// decoder is the state of one decode.
type decoder struct {
	data []byte
	pos  int

	shift uint // output scale 1/2^shift
	n     int  // samples across an output block: 8 >> shift
	// keep is, by zig-zag position, the index in the block of the
	// coefficients the scale uses (those of the n×n lowest frequencies),
	// and for the others at a reduced scale 7, a slot of the block that
	// the reduced inverse DCTs never read (its first row past n); stored
	// is their index in component.coef's n×n, -1 for the others.
	keep, stored [64]int8
	// maxPixels, when not 0, refuses larger frames: for the tests, whose
	// callers do not read the header first.
	maxPixels int

	width, height int
	progressive   bool
	frame         bool
	comps         []component
	hmax, vmax    int
	mcusX, mcusY  int

	quant   [4][64]int32 // zig-zag order
	dc, ac  [4]huffman
	restart int // restart interval in MCUs, 0 for none

	adobe          bool
	adobeTransform uint8
}

// Decode decodes the JPEG image data at full size.
func Decode(data []byte) (image.Image, error) {
	return DecodeScaled(data, 0)
}

// DecodeScaled decodes the JPEG image data at 1/2^shift of its size (shift 0
// to 3; larger is 3), each side rounded up. Every component is scaled
// alike: the image keeps its chroma subsampling. A reduced scale computes
// each block's n×n output samples from its n×n lowest frequencies, weighted
// so that a sample is the mean of the 8/n × 8/n pixels it stands for as far
// as those frequencies go (a box filter, without the aliasing the higher
// frequencies would fold in).
func DecodeScaled(data []byte, shift uint) (image.Image, error) {
	return decode(data, shift, 0)
}

// decode is DecodeScaled refusing frames of more than maxPixels if it is
// not 0.
func decode(data []byte, shift uint, maxPixels int) (image.Image, error) {
	d := &decoder{data: data, shift: min(shift, 3), maxPixels: maxPixels}
	d.n = 8 >> d.shift
	for k, z := range zigzag.Order {
		d.keep[k], d.stored[k] = 7, -1
		if u, v := int(z%8), int(z/8); u < d.n && v < d.n {
			d.keep[k], d.stored[k] = int8(z), int8(v*d.n+u)
		}
	}
	if err := d.decode(); err != nil {
		return nil, err
	}
	return d.image()
}

// decode reads the segments up to EOI and decodes every scan.
func (d *decoder) decode() error {
	if len(d.data) < 2 || d.data[0] != 0xff || d.data[1] != markerSOI {
		return FormatError("missing SOI marker")
	}
	d.pos = 2
	for {
		marker, err := d.nextMarker()
		if err != nil {
			if err == errEnd && d.frame && !d.progressive && d.scanned() {
				// No EOI after a sequential frame's scans: whole all the
				// same. A progressive one may lack its last scans.
				return nil
			}
			return err
		}
		switch {
		case marker == markerEOI:
			if !d.frame {
				return FormatError("no frame before EOI")
			}
			if !d.scanned() {
				return FormatError("no scan before EOI")
			}
			return nil
		case marker >= markerRST0 && marker <= markerRST7, marker == 0x01:
			continue // no length: a stray restart marker or TEM
		}
		seg, err := d.segment()
		if err != nil {
			return err
		}
		switch {
		case marker == markerSOF0, marker == markerSOF1, marker == markerSOF2:
			err = d.parseFrame(seg, marker == markerSOF2)
		case marker == markerDHT:
			err = d.parseDHT(seg)
		case marker == markerDQT:
			err = d.parseDQT(seg)
		case marker == markerDRI:
			if len(seg) != 2 {
				return FormatError("DRI length")
			}
			d.restart = int(binary.BigEndian.Uint16(seg))
		case marker == markerSOS:
			err = d.parseScan(seg)
		case marker == markerAPPE:
			if len(seg) >= 12 && string(seg[:5]) == "Adobe" {
				d.adobe = true
				d.adobeTransform = seg[11]
			}
		case marker >= markerAPP0 && marker <= 0xef, marker == markerCOM:
			// application data and comments: skipped
		case marker == markerDNL:
			return UnsupportedError("DNL marker")
		case marker >= 0xc0 && marker <= 0xcf && marker != 0xc8:
			if marker == 0xcc {
				return UnsupportedError("arithmetic coding")
			}
			return UnsupportedError(fmt.Sprintf("SOF%d frame", marker-0xc0))
		case marker >= 0xf0 && marker <= 0xfd, marker == 0xc8, marker >= 0xde:
			// JPEG extensions and reserved markers with a length: skipped
		default:
			return FormatError(fmt.Sprintf("unknown marker %#02x", marker))
		}
		if err != nil {
			return err
		}
	}
}

var errEnd = FormatError("unexpected end of data")

// scanned reports whether a scan was decoded.
func (d *decoder) scanned() bool {
	for _, c := range d.comps {
		if c.plane != nil || c.coef != nil {
			return true
		}
	}
	return false
}

// nextMarker skips to the next marker (past fill bytes and, after a scan,
// any bytes before it) and returns its code.
func (d *decoder) nextMarker() (byte, error) {
	for {
		for d.pos < len(d.data) && d.data[d.pos] != 0xff {
			d.pos++
		}
		for d.pos < len(d.data) && d.data[d.pos] == 0xff {
			d.pos++
		}
		if d.pos >= len(d.data) {
			return 0, errEnd
		}
		m := d.data[d.pos]
		d.pos++
		if m != 0 { // 0xff00 is a stuffed byte of entropy-coded data
			return m, nil
		}
	}
}

// segment returns the payload of the segment whose length is at d.pos and
// moves past it.
func (d *decoder) segment() ([]byte, error) {
	if d.pos+2 > len(d.data) {
		return nil, errEnd
	}
	n := int(binary.BigEndian.Uint16(d.data[d.pos:]))
	if n < 2 {
		return nil, FormatError("segment length")
	}
	if d.pos+n > len(d.data) {
		return nil, errEnd
	}
	seg := d.data[d.pos+2 : d.pos+n]
	d.pos += n
	return seg, nil
}

// parseFrame reads a frame header (T.81 B.2.2) and lays out the components.
func (d *decoder) parseFrame(seg []byte, progressive bool) error {
	if d.frame {
		return FormatError("more than one frame")
	}
	if len(seg) < 6 {
		return FormatError("SOF length")
	}
	if seg[0] != 8 {
		return UnsupportedError(fmt.Sprintf("%d-bit precision", seg[0]))
	}
	d.height = int(binary.BigEndian.Uint16(seg[1:]))
	d.width = int(binary.BigEndian.Uint16(seg[3:]))
	nc := int(seg[5])
	if d.height == 0 {
		return UnsupportedError("DNL marker (height 0)")
	}
	if d.width == 0 {
		return FormatError("width 0")
	}
	if d.maxPixels > 0 && d.width*d.height > d.maxPixels {
		return UnsupportedError("image too large")
	}
	switch nc {
	case 1, 3, 4:
	default:
		return UnsupportedError(fmt.Sprintf("%d components", nc))
	}
	if len(seg) != 6+3*nc {
		return FormatError("SOF length")
	}
	d.comps = make([]component, nc)
	d.hmax, d.vmax = 1, 1
	for i := range d.comps {
		c := &d.comps[i]
		p := seg[6+3*i:]
		c.id = p[0]
		c.h, c.v = int(p[1]>>4), int(p[1]&15)
		c.tq = p[2]
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 {
			return FormatError("sampling factor")
		}
		if c.tq > 3 {
			return FormatError("quantization table selector")
		}
		for j := range i {
			if d.comps[j].id == c.id {
				return FormatError("repeated component identifier")
			}
		}
		if nc == 1 {
			c.h, c.v = 1, 1 // one component: its MCU is one block (T.81 A.2.2)
		}
		d.hmax, d.vmax = max(d.hmax, c.h), max(d.vmax, c.v)
	}
	for i := range d.comps {
		c := &d.comps[i]
		if d.hmax%c.h != 0 || d.vmax%c.v != 0 {
			return UnsupportedError("sampling factors that do not divide each other")
		}
	}
	d.mcusX = (d.width + 8*d.hmax - 1) / (8 * d.hmax)
	d.mcusY = (d.height + 8*d.vmax - 1) / (8 * d.vmax)
	for i := range d.comps {
		c := &d.comps[i]
		c.bw, c.bh = d.mcusX*c.h, d.mcusY*c.v
	}
	if nc == 3 {
		// YCbCr in a ratio an image.YCbCr holds, or RGB without
		// subsampling: which of them an Adobe marker may still say.
		y, cb, cr := d.comps[0], d.comps[1], d.comps[2]
		same := y.h == cb.h && y.h == cr.h && y.v == cb.v && y.v == cr.v
		if _, ok := d.ratio(); !ok && !same {
			return UnsupportedError("luma/chroma subsampling ratio")
		}
	}
	d.progressive = progressive
	d.frame = true
	return nil
}

// parseDQT reads quantization tables (T.81 B.2.4.1).
func (d *decoder) parseDQT(seg []byte) error {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, seg[0]&15
		if tq > 3 || pq > 1 {
			return FormatError("DQT table")
		}
		seg = seg[1:]
		q := &d.quant[tq]
		if pq == 0 {
			if len(seg) < 64 {
				return FormatError("DQT length")
			}
			for k := range q {
				q[k] = int32(seg[k])
			}
			seg = seg[64:]
		} else {
			if len(seg) < 128 {
				return FormatError("DQT length")
			}
			for k := range q {
				q[k] = int32(binary.BigEndian.Uint16(seg[2*k:]))
			}
			seg = seg[128:]
		}
	}
	return nil
}

// parseDHT reads Huffman tables (T.81 B.2.4.2) and builds their decoding
// tables (Annex C and F.2.2.3).
func (d *decoder) parseDHT(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return FormatError("DHT length")
		}
		tc, th := seg[0]>>4, seg[0]&15
		if tc > 1 || th > 3 {
			return FormatError("DHT table")
		}
		counts := seg[1:17]
		total := 0
		for _, c := range counts {
			total += int(c)
		}
		if total == 0 || total > 256 || len(seg) < 17+total {
			return FormatError("DHT length")
		}
		t := &d.dc[th]
		if tc == 1 {
			t = &d.ac[th]
		}
		if err := t.build(counts, seg[17:17+total]); err != nil {
			return err
		}
		seg = seg[17+total:]
	}
	return nil
}

// build makes t from the number of codes of each length 1 to 16 and their
// values in order of increasing code.
func (t *huffman) build(counts []byte, vals []byte) error {
	*t = huffman{defined: true}
	copy(t.vals[:], vals)
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		n := int32(counts[l-1])
		if n == 0 {
			t.maxcode[l] = -1
		} else {
			t.valptr[l] = k - code
			for range n {
				if code >= 1<<l {
					return FormatError("Huffman table: too many codes")
				}
				if l <= lookupBits {
					first := code << (lookupBits - l)
					for j := range int32(1) << (lookupBits - l) {
						t.lookup[first+j] = uint16(l)<<8 | uint16(vals[k])
					}
				}
				code++
				k++
			}
			t.maxcode[l] = code - 1
		}
		code <<= 1
	}
	t.maxcode[17] = 1 << 30 // sentinel: never reached past 16 bits
	for i, e := range t.lookup {
		l, run, size := uint(e>>8), int32(e>>4&15), uint(e&15)
		switch {
		case e == 0 || l+size > lookupBits:
			continue
		case e&0xff == 0x00:
			t.fast[i] = fastEOB | int32(l)
			continue
		case size == 0:
			continue // ZRL, or a progressive scan's end-of-band run
		}
		v := int32(i>>(lookupBits-l-size)) & (1<<size - 1)
		if v < 1<<(size-1) {
			v += -1<<size + 1
		}
		t.fast[i] = v<<16 | run<<8 | int32(l+size)
	}
	return nil
}
