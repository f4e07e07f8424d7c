package model

// Varints (the same wire format as encoding/binary), little-endian words and
// CRC32C, restated because encoding/binary and hash/crc32 reach sync.

func appendUvarint(buf []byte, v uint64) []byte {
	for v >= 0x80 {
		buf = append(buf, byte(v)|0x80)
		v >>= 7
	}
	return append(buf, byte(v))
}

func appendVarint(buf []byte, v int64) []byte {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return appendUvarint(buf, u)
}

// uvarint returns the value and the bytes read; n <= 0 on a bad or truncated varint.
func uvarint(buf []byte) (uint64, int) {
	var v uint64
	var shift uint
	for i, b := range buf {
		if i == 10 {
			return 0, -(i + 1) // overflow
		}
		if b < 0x80 {
			if i == 9 && b > 1 {
				return 0, -(i + 1)
			}
			return v | uint64(b)<<shift, i + 1
		}
		v |= uint64(b&0x7f) << shift
		shift += 7
	}
	return 0, 0
}

func varint(buf []byte) (int64, int) {
	u, n := uvarint(buf)
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v, n
}

func appendLE32(buf []byte, v uint32) []byte {
	return append(buf, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

func appendLE64(buf []byte, v uint64) []byte {
	return appendLE32(appendLE32(buf, uint32(v)), uint32(v>>32))
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func le64(b []byte) uint64 { return uint64(le32(b)) | uint64(le32(b[4:]))<<32 }

// crc32cTable is the Castagnoli polynomial's table (reflected, 0x82F63B78).
var crc32cTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i)
		for range 8 {
			if c&1 == 1 {
				c = c>>1 ^ 0x82f63b78
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}()

// CRC32C is the Castagnoli checksum of data (what hash/crc32 computes with
// crc32.Castagnoli).
func CRC32C(data []byte) uint32 {
	c := ^uint32(0)
	for _, b := range data {
		c = crc32cTable[byte(c)^b] ^ c>>8
	}
	return ^c
}
