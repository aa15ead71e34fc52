package jpegdec

import (
	"bytes"
	"encoding/binary"

	"github.com/regscribe/regscribe/internal/imageprep/internal/zigzag"
)

// This file is a minimal JPEG writer for the tests: it writes chosen
// quantized coefficients, in any sampling, with restart intervals, in
// baseline frames whose Huffman tables give every DC size a 4-bit code and
// every AC symbol an 8-bit one. It covers what image/jpeg's encoder cannot
// write (4:4:4, 4:2:2, 4:4:0, 4:1:1, CMYK, YCCK, RGB).

// testComp is a frame component of a test JPEG.
type testComp struct {
	id, h, v uint8
}

// testFrame describes a test JPEG.
type testFrame struct {
	w, h    int
	comps   []testComp
	quant   [64]uint8 // zig-zag order, one table for all
	restart int
	adobe   int // Adobe transform + 1; 0 for no Adobe segment
	// coef returns the quantized coefficients of block (bx, by) of
	// component c, in natural order.
	coef func(c, bx, by int) [64]int32
}

type bitWriter struct {
	buf  bytes.Buffer
	acc  uint32
	nacc uint
}

func (w *bitWriter) write(v uint32, n uint) {
	for i := int(n) - 1; i >= 0; i-- {
		w.acc = w.acc<<1 | (v>>uint(i))&1
		w.nacc++
		if w.nacc == 8 {
			b := byte(w.acc)
			w.buf.WriteByte(b)
			if b == 0xff {
				w.buf.WriteByte(0)
			}
			w.acc, w.nacc = 0, 0
		}
	}
}

func (w *bitWriter) flush() {
	for w.nacc != 0 {
		w.write(1, 1)
	}
}

// sizeOf is the JPEG size category of v and its bits.
func sizeOf(v int32) (uint, uint32) {
	a, s := v, uint(0)
	if a < 0 {
		a = -a
	}
	for a>>s != 0 {
		s++
	}
	if v < 0 {
		v--
	}
	return s, uint32(v) & (1<<s - 1)
}

// acSymbols are the run/size symbols of the AC table in code order.
var acSymbols = func() (s []byte) {
	s = append(s, 0x00, 0xf0)
	for run := range 16 {
		for size := 1; size <= 10; size++ {
			s = append(s, byte(run<<4|size))
		}
	}
	return s
}()

func segment(out *bytes.Buffer, marker byte, payload []byte) {
	out.Write([]byte{0xff, marker})
	binary.Write(out, binary.BigEndian, uint16(len(payload)+2))
	out.Write(payload)
}

// encode writes the test JPEG f.
func (f testFrame) encode() []byte {
	var out bytes.Buffer
	out.Write([]byte{0xff, 0xd8})
	if f.adobe > 0 {
		segment(&out, 0xee, []byte{'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, byte(f.adobe - 1)})
	}
	segment(&out, 0xdb, append([]byte{0}, f.quant[:]...))
	sof := []byte{8, byte(f.h >> 8), byte(f.h), byte(f.w >> 8), byte(f.w), byte(len(f.comps))}
	hmax, vmax := 1, 1
	for _, c := range f.comps {
		sof = append(sof, c.id, c.h<<4|c.v, 0)
		hmax, vmax = max(hmax, int(c.h)), max(vmax, int(c.v))
	}
	segment(&out, 0xc0, sof)
	dht := []byte{0x00, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	dht = append(dht, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
	dht = append(dht, 0x10, 0, 0, 0, 0, 0, 0, 0, byte(len(acSymbols)), 0, 0, 0, 0, 0, 0, 0, 0)
	dht = append(dht, acSymbols...)
	segment(&out, 0xc4, dht)
	acCode := map[byte]uint32{}
	for i, s := range acSymbols {
		acCode[s] = uint32(i)
	}
	if f.restart > 0 {
		segment(&out, 0xdd, []byte{byte(f.restart >> 8), byte(f.restart)})
	}
	sos := []byte{byte(len(f.comps))}
	for _, c := range f.comps {
		sos = append(sos, c.id, 0)
	}
	sos = append(sos, 0, 63, 0)
	segment(&out, 0xda, sos)
	if len(f.comps) == 1 {
		f.comps[0].h, f.comps[0].v, hmax, vmax = 1, 1, 1, 1
	}
	mx, my := (f.w+8*hmax-1)/(8*hmax), (f.h+8*vmax-1)/(8*vmax)
	w := &bitWriter{}
	pred := make([]int32, len(f.comps))
	for m := range mx * my {
		if f.restart > 0 && m > 0 && m%f.restart == 0 {
			w.flush()
			w.buf.Write([]byte{0xff, byte(0xd0 + (m/f.restart-1)%8)})
			clear(pred)
		}
		for ci, c := range f.comps {
			for y := range int(c.v) {
				for x := range int(c.h) {
					b := f.coef(ci, m%mx*int(c.h)+x, m/mx*int(c.v)+y)
					s, bits := sizeOf(b[0] - pred[ci])
					pred[ci] = b[0]
					w.write(uint32(s), 4)
					w.write(bits, s)
					run := 0
					for k := 1; k < 64; k++ {
						v := b[zigzag.Order[k]]
						if v == 0 {
							run++
							continue
						}
						for run > 15 {
							w.write(acCode[0xf0], 8)
							run -= 16
						}
						s, bits := sizeOf(v)
						w.write(acCode[byte(run<<4)|byte(s)], 8)
						w.write(bits, s)
						run = 0
					}
					if run > 0 {
						w.write(acCode[0], 8)
					}
				}
			}
		}
	}
	w.flush()
	out.Write(w.buf.Bytes())
	out.Write([]byte{0xff, 0xd9})
	return out.Bytes()
}
