package testenv

import "strings"

// HashTag returns the part of a key Redis Cluster hashes (CLUSTER KEYSLOT's rule):
// tests use it to check that keys meant to share a slot do.
func HashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}
