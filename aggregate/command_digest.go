package aggregate

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

// A command ID is often a client's idempotency key, which may be personal
// data or a secret of the client's (issue 12): the store keeps only digests
// of it, never the ID itself.

// DefaultCommandKey is the HMAC key of command digests when
// Config.CommandKey is not set. It is public, so the digests it makes
// hide a command ID only as well as a hash does: enough for random IDs
// (UUIDs), not for guessable ones (order numbers, e-mail addresses); set
// Config.CommandKey for those.
var DefaultCommandKey = []byte("esv2 command ID")

// CommandDigest returns what Save and Update store under
// [CommandMetadataKey] for the command ID commandID, with key the
// repository's Config.CommandKey (nil means [DefaultCommandKey]):
// "hmac-sha256:" and the hex HMAC-SHA256 of the ID. A reader that knows a
// command ID finds its events by comparing digests.
//
// Events stored before esv2 kept digests hold the raw command ID under the
// key; they are not rewritten (delete or truncate their streams to remove
// it), and a retry of their commands is still recognised, by event ID.
func CommandDigest(key []byte, commandID string) string {
	if key == nil {
		key = DefaultCommandKey
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(commandID))
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))
}

// commandDigest is CommandDigest with the repository's key.
func (r *Repository[S, E]) commandDigest(commandID string) string {
	return CommandDigest(r.cfg.CommandKey, commandID)
}

// commandIDBase derives the event-ID prefix of a command on a stream. The
// stream is part of it because event IDs are unique across the store and
// one command may write to several streams.
//
// Without Config.CommandKey it is a SHA-256 of the stream and command IDs,
// as before command keys existed, so that a retry of a command stored by
// an older esv2 is still a no-op. With one it is an HMAC under that key,
// so that guessing a command ID from an event ID needs the key; setting
// or changing the key therefore makes retries of commands stored before
// unrecognisable (set it before the first command, or when no retry of an
// older command can still come).
func (r *Repository[S, E]) commandIDBase(streamID, commandID string) string {
	var h hash.Hash
	if r.cfg.CommandKey != nil {
		h = hmac.New(sha256.New, r.cfg.CommandKey)
	} else {
		h = sha256.New()
	}
	h.Write([]byte(streamID))
	h.Write([]byte{0})
	h.Write([]byte(commandID))
	var sum [sha256.Size]byte
	return "cmd-" + hex.EncodeToString(h.Sum(sum[:0])[:16]) + "-"
}
