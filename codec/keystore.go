package codec

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/esv2/esv2/eventstore"
)

// KeyStore keeps one secret key per data subject, for [Personal] values.
// Keys are [KeySize] random bytes. Every implementation passes the
// conformance tests of package codec/keystoretest; the adapters keep keys
// in the event store's own database ((*sqlite.Store).KeyStore,
// (*postgres.Store).KeyStore), and [MemoryKeyStore] keeps them in memory.
//
// A subject ID is 1 to [eventstore.MaxIDLength] bytes of UTF-8 without
// NUL; others are refused with an error wrapping [ErrInvalidSubject].
type KeyStore interface {
	// Key returns the subject's key, or an error wrapping
	// [ErrKeyNotFound] when it has none: never created, or forgotten.
	Key(ctx context.Context, subject string) ([]byte, error)
	// Create returns the subject's key, creating a random one when it has
	// none. Concurrent calls for one subject, from any process sharing
	// the store, return the same key.
	Create(ctx context.Context, subject string) ([]byte, error)
	// Forget deletes the subject's key for good: the subject's personal
	// values decode as redacted from then on. Forgetting a subject
	// without a key is not an error. A later Create makes a new key,
	// which cannot open values sealed under the forgotten one.
	Forget(ctx context.Context, subject string) error
}

// Errors of key stores and personal data.
var (
	// ErrKeyNotFound reports a subject without a key.
	ErrKeyNotFound = errors.New("codec: subject key not found")
	// ErrInvalidSubject reports a subject ID a key store cannot keep.
	ErrInvalidSubject = errors.New("codec: invalid subject ID")
	// ErrNoKeyStore reports a [Personal] value encoded or decoded by an
	// encoding without a key store; see [WithKeyStore].
	ErrNoKeyStore = errors.New("codec: personal data needs a key store (codec.WithKeyStore)")
	// ErrKeyStore reports a key store that failed (its database is down,
	// say) while a value was decoded: a [*DecodeError] with this Kind
	// unwraps to the key store's error too. It never means the key was
	// forgotten: that decodes as redacted.
	ErrKeyStore = errors.New("codec: key store failed")
)

// CheckSubject returns an error wrapping [ErrInvalidSubject] when subject is
// not a valid subject ID, for key store implementations.
func CheckSubject(subject string) error { return checkSubject(subject) }

func checkSubject(subject string) error {
	if subject == "" || len(subject) > eventstore.MaxIDLength || !utf8.ValidString(subject) || strings.IndexByte(subject, 0) >= 0 {
		return fmt.Errorf("%w %q: want 1 to %d bytes of UTF-8 without NUL", ErrInvalidSubject, subject, eventstore.MaxIDLength)
	}
	return nil
}

// NewKey returns a new random subject key of [KeySize] bytes, for key
// store implementations.
func NewKey() ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("codec: new key: %w", err)
	}
	return key, nil
}

// MemoryKeyStore is a [KeyStore] in memory, for tests and examples: its
// keys are gone when the process ends. The zero value is ready to use; it
// is safe for concurrent use.
type MemoryKeyStore struct {
	mu   sync.Mutex
	keys map[string][]byte
}

var _ KeyStore = (*MemoryKeyStore)(nil)

// NewMemoryKeyStore returns an empty [MemoryKeyStore].
func NewMemoryKeyStore() *MemoryKeyStore { return &MemoryKeyStore{} }

func callCheck(ctx context.Context, subject string) error {
	if ctx == nil {
		return &eventstore.ValidationError{Field: "ctx", Index: -1, Reason: "nil"}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return checkSubject(subject)
}

// Key returns the subject's key; see [KeyStore].
func (m *MemoryKeyStore) Key(ctx context.Context, subject string) ([]byte, error) {
	if err := callCheck(ctx, subject); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key, ok := m.keys[subject]
	if !ok {
		return nil, fmt.Errorf("%w: subject %q", ErrKeyNotFound, subject)
	}
	return bytes.Clone(key), nil
}

// Create returns the subject's key, creating it if needed; see [KeyStore].
func (m *MemoryKeyStore) Create(ctx context.Context, subject string) ([]byte, error) {
	if err := callCheck(ctx, subject); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if key, ok := m.keys[subject]; ok {
		return bytes.Clone(key), nil
	}
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	if m.keys == nil {
		m.keys = make(map[string][]byte)
	}
	m.keys[subject] = key
	return bytes.Clone(key), nil
}

// Forget deletes the subject's key; see [KeyStore]. The key's bytes are
// overwritten with zeros before the map lets go of them.
func (m *MemoryKeyStore) Forget(ctx context.Context, subject string) error {
	if err := callCheck(ctx, subject); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if key, ok := m.keys[subject]; ok {
		clear(key)
		delete(m.keys, subject)
	}
	return nil
}

// evicter is a key store with a cache that can drop one subject's entry.
type evicter interface{ evict(subject string) }

// KeyCache is a [KeyStore] that keeps the keys another one returns for a
// while, so that decoding a subject's events asks the database once rather
// than once per value. Forget through the cache drops the entry at once;
// a Forget by another process (or through the store behind the cache) is
// seen when the entry expires: until then this process can still decrypt
// that subject's values. Missing keys are never cached, so a key another
// process creates is seen at once. Safe for concurrent use.
type KeyCache struct {
	ks  KeyStore
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[string]cachedKey
	// gen counts Forgets begun and ended: a key read while one ran is
	// not cached, as it may have been read before the delete.
	gen uint64
}

type cachedKey struct {
	key     []byte
	expires time.Time
}

// Defaults of [NewKeyCache].
const (
	DefaultKeyCacheTTL  = time.Minute
	DefaultKeyCacheSize = 10000
)

var (
	_ KeyStore = (*KeyCache)(nil)
	_ evicter  = (*KeyCache)(nil)
)

// NewKeyCache returns a cache of ks's keys, each kept up to ttl (0 means
// [DefaultKeyCacheTTL]; negative means not at all) and at most size of
// them (0 means [DefaultKeyCacheSize]; when full, the cache is emptied).
func NewKeyCache(ks KeyStore, ttl time.Duration, size int) *KeyCache {
	if ttl == 0 {
		ttl = DefaultKeyCacheTTL
	}
	if size <= 0 {
		size = DefaultKeyCacheSize
	}
	return &KeyCache{ks: ks, ttl: ttl, max: size, m: make(map[string]cachedKey)}
}

func (c *KeyCache) get(subject string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[subject]
	if !ok {
		return nil, false
	}
	if time.Now().After(e.expires) {
		delete(c.m, subject)
		return nil, false
	}
	return bytes.Clone(e.key), true
}

func (c *KeyCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *KeyCache) put(subject string, key []byte, gen uint64) {
	if c.ttl < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return // a Forget ran meanwhile
	}
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[subject] = cachedKey{key: bytes.Clone(key), expires: time.Now().Add(c.ttl)}
}

func (c *KeyCache) evict(subject string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if e, ok := c.m[subject]; ok {
		clear(e.key)
		delete(c.m, subject)
	}
}

// Key returns the cached key or asks the store behind; see [KeyStore].
func (c *KeyCache) Key(ctx context.Context, subject string) ([]byte, error) {
	if err := callCheck(ctx, subject); err != nil {
		return nil, err
	}
	if key, ok := c.get(subject); ok {
		return key, nil
	}
	gen := c.generation()
	key, err := c.ks.Key(ctx, subject)
	if err != nil {
		return nil, err
	}
	c.put(subject, key, gen)
	return key, nil
}

// Create returns the cached key or has the store behind create it; see
// [KeyStore].
func (c *KeyCache) Create(ctx context.Context, subject string) ([]byte, error) {
	if err := callCheck(ctx, subject); err != nil {
		return nil, err
	}
	if key, ok := c.get(subject); ok {
		return key, nil
	}
	gen := c.generation()
	key, err := c.ks.Create(ctx, subject)
	if err != nil {
		return nil, err
	}
	c.put(subject, key, gen)
	return key, nil
}

// Forget drops the cached key and forgets it in the store behind; see
// [KeyStore].
func (c *KeyCache) Forget(ctx context.Context, subject string) error {
	if err := callCheck(ctx, subject); err != nil {
		return err
	}
	// Each evict also moves the generation on, so that a Key or Create
	// under way, whose read may come from before the delete, caches
	// nothing.
	c.evict(subject)
	err := c.ks.Forget(ctx, subject)
	c.evict(subject)
	return err
}
