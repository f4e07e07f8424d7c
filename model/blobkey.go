package model

import (
	"fmt"
	"strings"
)

// Object keys. The object store is a flat key space on S3, GCS and Azure, but
// not on a filesystem bucket, where a key is a path: `a` and `a/b/c` cannot
// both exist (a file where a directory must be), `a//b`, `a/./b` and
// `c/../a` name the same file as `a/b` or `a`, and `../x` is outside the
// bucket. So the port accepts only keys that are flat on every backend, and
// every backend (sim/blobstore, runtime/blob) refuses any other key with
// ErrInvalid, whatever the operation:
//
//   - a key is segments joined by "/", at most MaxBlobKeyBytes bytes;
//   - every segment is non-empty (no leading, trailing or doubled "/"), at
//     most MaxBlobSegmentBytes bytes, and neither "." nor "..";
//   - directory segments (all but the last) contain no ".", and the last
//     segment (the object's name) contains one, as in `00003/<uuid>.snap`:
//     so no key is a directory of another;
//   - no NUL and no backslash (a path separator on some filesystems).
//
// The core's keys (SnapshotBlobKey) are of this form.
const (
	MaxBlobKeyBytes     = 1024 // S3's limit
	MaxBlobSegmentBytes = 255  // a file name on common filesystems
)

// ValidBlobKey reports why key is not a valid object key (nil if it is).
func ValidBlobKey(key string) error {
	if key == "" {
		return fmt.Errorf("blob key: empty")
	}
	if len(key) > MaxBlobKeyBytes {
		return fmt.Errorf("blob key %.40q...: %d bytes, more than %d", key, len(key), MaxBlobKeyBytes)
	}
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		if err := validSegment(key, seg, i == len(segs)-1); err != nil {
			return err
		}
	}
	return nil
}

// ValidBlobPrefix reports why prefix is not a valid list prefix: the
// complete segments of the prefix (those followed by "/") must be valid
// directory segments; the last, partial one may be anything without NUL or
// backslash. The empty prefix (every key) is valid.
func ValidBlobPrefix(prefix string) error {
	if len(prefix) > MaxBlobKeyBytes {
		return fmt.Errorf("blob prefix %.40q...: %d bytes, more than %d", prefix, len(prefix), MaxBlobKeyBytes)
	}
	if strings.ContainsAny(prefix, "\x00\\") {
		return fmt.Errorf("blob prefix %q: contains NUL or a backslash", prefix)
	}
	segs := strings.Split(prefix, "/")
	for _, seg := range segs[:len(segs)-1] {
		if err := validSegment(prefix, seg, false); err != nil {
			return err
		}
	}
	return nil
}

func validSegment(key, seg string, last bool) error {
	switch {
	case seg == "":
		return fmt.Errorf("blob key %q: empty segment (a leading, trailing or doubled /)", key)
	case seg == "." || seg == "..":
		return fmt.Errorf("blob key %q: segment %q", key, seg)
	case len(seg) > MaxBlobSegmentBytes:
		return fmt.Errorf("blob key %q: a segment of %d bytes, more than %d", key, len(seg), MaxBlobSegmentBytes)
	case strings.ContainsAny(seg, "\x00\\"):
		return fmt.Errorf("blob key %q: contains NUL or a backslash", key)
	case !last && strings.Contains(seg, "."):
		return fmt.Errorf("blob key %q: directory segment %q contains a dot (only the object's name may)", key, seg)
	case last && !strings.Contains(seg, "."):
		return fmt.Errorf("blob key %q: the object's name %q has no dot (it would clash with a directory of that name)", key, seg)
	}
	return nil
}
