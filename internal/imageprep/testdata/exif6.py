# exif6.py IN OUT: copies the JPEG IN to OUT with an EXIF segment saying
# orientation 6 (turn clockwise to display) right after SOI.
import struct, sys
d = open(sys.argv[1], 'rb').read()
assert d[:2] == b'\xff\xd8'
tiff = b'MM\x00\x2a' + struct.pack('>I', 8) + struct.pack('>H', 1) + struct.pack('>HHIHH', 0x0112, 3, 1, 6, 0) + struct.pack('>I', 0)
app1 = b'Exif\x00\x00' + tiff
open(sys.argv[2], 'wb').write(d[:2] + b'\xff\xe1' + struct.pack('>H', len(app1) + 2) + app1 + d[2:])
