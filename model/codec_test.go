package model

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
)

func TestCodecHelpersMatchTheStandardLibrary(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 300, 1 << 35, ^uint64(0)} {
		if got, want := appendUvarint(nil, v), binary.AppendUvarint(nil, v); string(got) != string(want) {
			t.Fatalf("uvarint %d: %x want %x", v, got, want)
		}
		if d, n := uvarint(binary.AppendUvarint(nil, v)); d != v || n <= 0 {
			t.Fatalf("uvarint decode %d: %d %d", v, d, n)
		}
	}
	for _, v := range []int64{0, -1, 1, -64, 64, -1 << 62, 1<<63 - 1, -1 << 63} {
		if got, want := appendVarint(nil, v), binary.AppendVarint(nil, v); string(got) != string(want) {
			t.Fatalf("varint %d: %x want %x", v, got, want)
		}
		if d, n := varint(binary.AppendVarint(nil, v)); d != v || n <= 0 {
			t.Fatalf("varint decode %d: %d %d", v, d, n)
		}
	}
	if _, n := uvarint([]byte{0x80, 0x80}); n > 0 {
		t.Fatal("a truncated varint decoded")
	}
	if _, n := uvarint([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}); n > 0 {
		t.Fatal("an overflowing varint decoded")
	}
	data := []byte("the quick brown fox jumps over the lazy dog")
	if got, want := CRC32C(data), crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)); got != want {
		t.Fatalf("crc32c %08x want %08x", got, want)
	}
	if le64(appendLE64(nil, 0x0102030405060708)) != 0x0102030405060708 {
		t.Fatal("little-endian round trip")
	}
}
