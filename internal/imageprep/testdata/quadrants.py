# quadrants.py W H OUT [turned]: writes the quadrants test image (red, green
# on top; blue, white below, as displayed, W×H) as PNG, or as binary PPM when
# OUT ends in .ppm. With "turned" it is stored turned 90° anticlockwise
# (H×W), so that a reader must turn it clockwise (EXIF orientation 6).
import struct, sys, zlib
w, h, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
turned = len(sys.argv) > 4 and sys.argv[4] == 'turned'
def color(x, y):
    if y < h // 2:
        return (255, 0, 0) if x < w // 2 else (0, 255, 0)
    return (0, 0, 255) if x < w // 2 else (255, 255, 255)
sw, sh = (h, w) if turned else (w, h)
rows = []
for sy in range(sh):
    row = b''
    for sx in range(sw):
        x, y = (w - 1 - sy, sx) if turned else (sx, sy)
        row += bytes(color(x, y))
    rows.append(row)
if out.endswith('.ppm'):
    open(out, 'wb').write(b'P6\n%d %d\n255\n' % (sw, sh) + b''.join(rows))
    sys.exit()
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
raw = b''.join(b'\x00' + r for r in rows)
open(out, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', sw, sh, 8, 2, 0, 0, 0))
                      + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
