// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package jpegscale

import "encoding/binary"

// maxCodeLength is the maximum (inclusive) number of bits in a Huffman code.
const maxCodeLength = 16

// maxNCodes is the maximum (inclusive) number of codes in a Huffman tree.
const maxNCodes = 256

// lutSize is the log-2 size of the Huffman decoder's look-up tables.
const lutSize = 9

// huffman is a Huffman decoder, specified in section C.
type huffman struct {
	// length is the number of codes in the tree.
	nCodes int32
	// lut is the look-up table for the next lutSize bits in the bit-stream.
	// The high 8 bits of the uint16 are the encoded value. The low 8 bits
	// are the code length, or 0 if the code is longer than lutSize bits.
	lut [1 << lutSize]uint16
	// fast decodes a symbol and the value that follows it together, as
	// libjpeg-turbo and stb_image do, when the code and the value's bits
	// both fit in the next lutSize bits: the value (extended, signed) in the
	// high 16 bits, the zero run before it in bits 8 to 15 (AC tables) and
	// the bits to consume in the low 8 bits; 0 otherwise. An AC table's
	// end-of-band and zero-run symbols are never in it.
	fast [1 << lutSize]int32
	// vals are the decoded values, sorted by their encoding.
	vals [maxNCodes]uint8
	// minCodes[i] is the minimum code of length i, or -1 if there are no
	// codes of that length.
	minCodes [maxCodeLength]int32
	// maxCodes[i] is the maximum code of length i, or -1 if there are no
	// codes of that length.
	maxCodes [maxCodeLength]int32
	// valsIndices[i] is the index into vals of minCodes[i].
	valsIndices [maxCodeLength]int32
}

// errShortHuffmanData means that an unexpected EOF occurred while decoding
// Huffman data.
var errShortHuffmanData = FormatError("short Huffman data")

// refill adds whole bytes of the scan's entropy-coded data to d.bits until it
// holds more than 56 bits, byte stuffing undone. It never goes past a marker
// or the end of the input: there it sets d.bits.end, and the bits after the
// last byte read are zeros, which a decoder that consumes them sees as
// d.bits.n < 0.
func (d *decoder) refill() {
	if d.bits.end {
		return
	}
	// Eight bytes at once when none of them is 0xff.
	if d.bytes.j-d.bytes.i >= 8 {
		u := binary.BigEndian.Uint64(d.bytes.buf[d.bytes.i:])
		x := ^u
		if (x-0x0101010101010101)&^x&0x8080808080808080 == 0 {
			n := uint(d.bits.n)
			k := (64 - n) >> 3
			d.bits.a |= u >> n
			n += 8 * k
			d.bits.a &^= ^uint64(0) >> n
			d.bits.n = int32(n)
			d.bytes.i += int(k)
			return
		}
	}
	for d.bits.n <= 56 {
		if d.bytes.j-d.bytes.i < 2 && !d.fillScan() {
			return
		}
		c := d.bytes.buf[d.bytes.i]
		if c == 0xff {
			if d.bytes.buf[d.bytes.i+1] != 0x00 { // A marker: the scan's data ends.
				d.bits.end = true
				return
			}
			d.bytes.i++
		}
		d.bytes.i++
		d.bits.a |= uint64(c) << (56 - uint(d.bits.n))
		d.bits.n += 8
	}
}

// fillScan reads more input for refill, so that d.bytes holds at least two
// bytes. At the end of the input it returns whether one byte, not 0xff, is
// left, and sets d.bits.end if none is.
func (d *decoder) fillScan() bool {
	m := copy(d.bytes.buf[:], d.bytes.buf[d.bytes.i:d.bytes.j])
	d.bytes.i, d.bytes.j = 0, m
	for empty := 0; d.bytes.j < 2 && empty < 100; {
		n, err := d.r.Read(d.bytes.buf[d.bytes.j:])
		d.bytes.j += n
		if err != nil {
			break
		}
		if n == 0 {
			empty++
		}
	}
	if d.bytes.j >= 2 {
		return true
	}
	if d.bytes.j == 1 && d.bytes.buf[0] != 0xff {
		return true
	}
	d.bits.end = true
	return false
}

// consume drops the next n bits, and reports whether they were data.
func (d *decoder) consume(n uint8) bool {
	d.bits.a <<= n
	d.bits.n -= int32(n)
	return d.bits.n >= 0
}

// receiveExtend is the composition of RECEIVE and EXTEND, specified in section
// F.2.2.1.
func (d *decoder) receiveExtend(t uint8) (int32, error) {
	if d.bits.n < int32(t) {
		d.refill()
	}
	x := int32(d.bits.a >> (64 - uint(t)))
	if !d.consume(t) {
		return 0, errShortHuffmanData
	}
	if s := int32(1) << t; x < s>>1 {
		x += ((-1) << t) + 1
	}
	return x, nil
}

// processDHT processes a Define Huffman Table marker, and initializes a huffman
// struct from its contents. Specified in section B.2.4.2.
func (d *decoder) processDHT(n int) error {
	for n > 0 {
		if n < 17 {
			return FormatError("DHT has wrong length")
		}
		if err := d.readFull(d.tmp[:17]); err != nil {
			return err
		}
		tc := d.tmp[0] >> 4
		if tc > maxTc {
			return FormatError("bad Tc value")
		}
		th := d.tmp[0] & 0x0f
		// The baseline th <= 1 restriction is specified in table B.5.
		if th > maxTh || (d.baseline && th > 1) {
			return FormatError("bad Th value")
		}
		h := &d.huff[tc][th]

		// Read nCodes and h.vals (and derive h.nCodes).
		// nCodes[i] is the number of codes with code length i.
		// h.nCodes is the total number of codes.
		h.nCodes = 0
		var nCodes [maxCodeLength]int32
		for i := range nCodes {
			nCodes[i] = int32(d.tmp[i+1])
			h.nCodes += nCodes[i]
		}
		if h.nCodes == 0 {
			return FormatError("Huffman table has zero length")
		}
		if h.nCodes > maxNCodes {
			return FormatError("Huffman table has excessive length")
		}
		n -= int(h.nCodes) + 17
		if n < 0 {
			return FormatError("DHT has wrong length")
		}
		if err := d.readFull(h.vals[:h.nCodes]); err != nil {
			return err
		}

		// Derive minCodes, maxCodes, and valsIndices. A table with more
		// codes of a length than that length has is refused, as libjpeg
		// does.
		var c, index int32
		for i, n := range nCodes {
			if n == 0 {
				h.minCodes[i] = -1
				h.maxCodes[i] = -1
				h.valsIndices[i] = -1
			} else {
				h.minCodes[i] = c
				h.maxCodes[i] = c + n - 1
				h.valsIndices[i] = index
				c += n
				index += n
				if c > 1<<(i+1) {
					h.nCodes = 0
					return FormatError("bad Huffman table")
				}
			}
			c <<= 1
		}

		// Derive the look-up tables.
		clear(h.lut[:])
		clear(h.fast[:])
		var x, code uint32
		for i := uint32(0); i < lutSize; i++ {
			code <<= 1
			length := i + 1
			for j := int32(0); j < nCodes[i]; j++ {
				// Every lutSize-bit sequence whose high length bits are
				// code decodes to vals[x].
				v := h.vals[x]
				base := code << (lutSize - length)
				for k := uint32(0); k < 1<<(lutSize-length); k++ {
					h.lut[base|k] = uint16(v)<<8 | uint16(length)
					run, size := uint32(0), uint32(v)
					if tc == acTable {
						run, size = uint32(v>>4), uint32(v&0x0f)
						if size == 0 {
							continue
						}
					}
					if length+size > lutSize {
						continue
					}
					extra := int32(k>>(lutSize-length-size)) & (1<<size - 1)
					if extra < 1<<size>>1 {
						extra += (-1 << size) + 1
					}
					h.fast[base|k] = extra<<16 | int32(run<<8|(length+size))
				}
				code++
				x++
			}
		}
	}
	return nil
}

// decodeHuffman returns the next Huffman-coded value from the bit-stream,
// decoded according to h.
func (d *decoder) decodeHuffman(h *huffman) (uint8, error) {
	if h.nCodes == 0 {
		return 0, FormatError("uninitialized Huffman table")
	}
	if d.bits.n < maxCodeLength {
		d.refill()
	}
	if v := h.lut[d.bits.a>>(64-lutSize)]; v != 0 {
		if !d.consume(uint8(v)) {
			return 0, errShortHuffmanData
		}
		return uint8(v >> 8), nil
	}
	for i := 0; i < maxCodeLength; i++ {
		code := int32(d.bits.a >> (63 - i))
		if code <= h.maxCodes[i] {
			if !d.consume(uint8(i + 1)) {
				return 0, errShortHuffmanData
			}
			return h.vals[h.valsIndices[i]+code-h.minCodes[i]], nil
		}
	}
	return 0, FormatError("bad Huffman code")
}

func (d *decoder) decodeBit() (bool, error) {
	if d.bits.n < 1 {
		d.refill()
	}
	ret := d.bits.a>>63 != 0
	if !d.consume(1) {
		return false, errShortHuffmanData
	}
	return ret, nil
}

func (d *decoder) decodeBits(n int32) (uint32, error) {
	if d.bits.n < n {
		d.refill()
	}
	ret := uint32(d.bits.a >> (64 - uint(n)))
	if !d.consume(uint8(n)) {
		return 0, errShortHuffmanData
	}
	return ret, nil
}

// decodeDC decodes a DC coefficient's difference, as specified in section
// F.2.2.1.
func (d *decoder) decodeDC(h *huffman) (int32, error) {
	if d.bits.n < 32 {
		d.refill()
	}
	if e := h.fast[d.bits.a>>(64-lutSize)]; e != 0 {
		if !d.consume(uint8(e)) {
			return 0, errShortHuffmanData
		}
		return e >> 16, nil
	}
	value, err := d.decodeHuffman(h)
	if err != nil {
		return 0, err
	}
	if value > 16 {
		return 0, UnsupportedError("excessive DC component")
	}
	return d.receiveExtend(value)
}

// decodeAC decodes a block's AC coefficients zig to zigEnd, shifted left by
// al, into b, as specified in sections F.2.2.2 and G.1.2.2 (a sequential
// scan or a progressive scan's first pass).
func (d *decoder) decodeAC(b *block, h *huffman, zig, zigEnd int32, al uint32) error {
	if d.eobRun > 0 {
		d.eobRun--
		return nil
	}
	a, n := d.bits.a, d.bits.n
	for ; zig <= zigEnd; zig++ {
		if n < 32 {
			d.bits.a, d.bits.n = a, n
			d.refill()
			a, n = d.bits.a, d.bits.n
		}
		peek := a >> (64 - lutSize)
		if e := h.fast[peek]; e != 0 {
			if z := zig + e>>8&0xff; z <= zigEnd {
				zig = z
				a <<= uint8(e)
				n -= int32(uint8(e))
				b[unzig[zig]] = e >> 16 << al
				continue
			}
		} else if v := h.lut[peek]; v != 0 && v>>8 == 0 {
			// End of band: an eobRun of 1, this block.
			a <<= uint8(v)
			n -= int32(uint8(v))
			break
		}
		d.bits.a, d.bits.n = a, n
		value, err := d.decodeHuffman(h)
		if err != nil {
			return err
		}
		val0 := value >> 4
		val1 := value & 0x0f
		if val1 != 0 {
			zig += int32(val0)
			if zig > zigEnd {
				return nil
			}
			ac, err := d.receiveExtend(val1)
			if err != nil {
				return err
			}
			b[unzig[zig]] = ac << al
		} else {
			if val0 != 0x0f {
				d.eobRun = uint16(1 << val0)
				if val0 != 0 {
					bits, err := d.decodeBits(int32(val0))
					if err != nil {
						return err
					}
					d.eobRun |= uint16(bits)
				}
				d.eobRun--
				return nil
			}
			zig += 0x0f
		}
		a, n = d.bits.a, d.bits.n
	}
	d.bits.a, d.bits.n = a, n
	if n < 0 {
		return errShortHuffmanData
	}
	return nil
}
