package model

import (
	"encoding/binary"
	"hash/crc32"
)

// One-line wrappers over encoding/binary and hash/crc32, kept under the names
// of the hand-written helpers they replaced until the last call sites move.

func appendUvarint(buf []byte, v uint64) []byte { return binary.AppendUvarint(buf, v) }

func appendVarint(buf []byte, v int64) []byte { return binary.AppendVarint(buf, v) }

// uvarint returns the value and the bytes read; n <= 0 on a bad or truncated varint.
func uvarint(buf []byte) (uint64, int) { return binary.Uvarint(buf) }

func varint(buf []byte) (int64, int) { return binary.Varint(buf) }

func appendLE32(buf []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(buf, v) }

func appendLE64(buf []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(buf, v) }

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// CRC32C is the Castagnoli checksum of data.
func CRC32C(data []byte) uint32 { return crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)) }
