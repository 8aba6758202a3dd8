package codec

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/vmihailenco/msgpack/v5"
)

// Personal is a value of type T that belongs to one data subject (a
// customer, a user): a field of an event or of a snapshot state marked as
// personal data. Encoded by a registry with a key store ([WithKeyStore],
// or an [Encoding] made by [PersonalEncoding]), it is stored encrypted
// with the subject's key (AES-256-GCM, a random nonce per value, the
// subject ID as additional authenticated data); decoded, it is decrypted.
// Once the subject's key is forgotten ([KeyStore].Forget), the value can
// never be decrypted again: it decodes as redacted ([Personal.Redacted]
// reports true, [Personal.Value] returns the zero T), not as an error, so
// that aggregates still load and subscriptions keep running. This is
// crypto-shredding: erasing a subject's data from an append-only log by
// erasing one key.
//
//	type Registered struct {
//		CustomerID string
//		Email      codec.Personal[string]
//	}
//	ev := Registered{CustomerID: id, Email: codec.NewPersonal(id, "ann@example.com")}
//
// The subject ID is stored in plain text beside the ciphertext (it names
// the key): use a pseudonymous identifier such as a customer ID, never the
// personal data itself. The zero Personal holds nothing (no subject) and
// encodes as nil.
//
// A Personal is immutable; copies share their state, including the
// ciphertext cached by the first encoding, so encoding the same value
// again does not encrypt it again, and re-encoding a value that was decoded
// (a snapshot of a state built from events) writes the ciphertext it was
// read from, whatever became of the key since: a value decoded before its
// subject was forgotten is never encrypted again under a new key. T itself
// must not contain Personal values. Without a key store, encoding a
// non-zero Personal fails and decoding one fails, both with an error
// wrapping [ErrNoKeyStore]: personal data is never written in the clear,
// and a misconfigured reader is not mistaken for a forgotten subject.
// Formatting a Personal with the fmt package prints its subject, never its
// value.
//
// Stored, a Personal is a map (msgpack) or object (JSON) of two fields:
// "subject", in plain text, and "sealed", the ciphertext (base64 in JSON):
// a version byte, an 8-byte fingerprint of the key (so that a value sealed
// under a forgotten key is told apart from a damaged one when the subject
// has a new key), the 12-byte nonce, and the AES-GCM ciphertext and tag.
// Bytes that fail authentication decode as an error wrapping
// [ErrMalformed], never as redacted.
type Personal[T any] struct {
	c *personalCell[T]
}

// personalCell is the shared state of a Personal and its copies.
type personalCell[T any] struct {
	subject string
	value   T
	// state is plain (made by NewPersonal), sealedOnly (decoded, not yet
	// opened), opened or redacted. It changes only while the value is
	// being decoded, before the caller sees it.
	state cellState
	// sealed is the stored form: set by the first encoding of a plain
	// value (and replaced when another key store encodes it), or by
	// decoding. Copies may be encoded concurrently: hence atomic.
	sealed atomic.Pointer[sealedValue]
}

type cellState uint8

const (
	cellPlain cellState = iota
	cellSealedOnly
	cellOpened
	cellRedacted
)

// sealedValue is a Personal's stored form and the key store it was sealed
// for (nil when it was decoded).
type sealedValue struct {
	by       *crypter
	envelope []byte
}

// NewPersonal returns v as personal data of the data subject subject. The
// subject must be 1 to [eventstore.MaxIDLength] bytes of UTF-8 without NUL
// (checked when the value is encoded).
func NewPersonal[T any](subject string, v T) Personal[T] {
	return Personal[T]{c: &personalCell[T]{subject: subject, value: v}}
}

// Subject returns the data subject's ID, empty for the zero Personal.
func (p Personal[T]) Subject() string {
	if p.c == nil {
		return ""
	}
	return p.c.subject
}

// Value returns the value; the zero T when p is redacted or zero.
func (p Personal[T]) Value() T {
	if p.c == nil || (p.c.state != cellPlain && p.c.state != cellOpened) {
		var zero T
		return zero
	}
	return p.c.value
}

// Redacted reports whether p was decoded after its subject's key was
// forgotten (or for data whose key this key store never had): its value is
// gone for good.
func (p Personal[T]) Redacted() bool { return p.c != nil && p.c.state == cellRedacted }

// IsZero reports whether p holds nothing (no subject). msgpack's omitempty
// uses it.
func (p Personal[T]) IsZero() bool { return p.c == nil }

// Equal reports whether p and q have the same subject, the same redaction
// and equal values (reflect.DeepEqual); go-cmp uses it.
func (p Personal[T]) Equal(q Personal[T]) bool {
	return p.Subject() == q.Subject() && p.Redacted() == q.Redacted() &&
		reflect.DeepEqual(p.Value(), q.Value())
}

// String returns a description that names the subject and never shows the
// value, so that logging an event does not leak it.
func (p Personal[T]) String() string {
	switch {
	case p.c == nil:
		return "personal()"
	case p.Redacted():
		return fmt.Sprintf("personal(%q, redacted)", p.c.subject)
	default:
		return fmt.Sprintf("personal(%q)", p.c.subject)
	}
}

// GoString is String, for %#v.
func (p Personal[T]) GoString() string { return p.String() }

// wirePersonal is a Personal's stored form in both encodings: the subject
// in plain text and the envelope (see seal), base64 in JSON.
type wirePersonal struct {
	Subject string `msgpack:"subject" json:"subject"`
	Sealed  []byte `msgpack:"sealed" json:"sealed"`
}

// wire returns p's stored form, or an error when p was never sealed.
func (p Personal[T]) wire() (*wirePersonal, error) {
	if p.c == nil {
		return nil, nil
	}
	s := p.c.sealed.Load()
	if s == nil {
		return nil, fmt.Errorf("codec: personal data of subject %q: %w", p.c.subject, ErrNoKeyStore)
	}
	return &wirePersonal{Subject: p.c.subject, Sealed: s.envelope}, nil
}

func (p *Personal[T]) fromWire(w *wirePersonal) error {
	if w == nil {
		p.c = nil
		return nil
	}
	if err := checkSubject(w.Subject); err != nil {
		return err
	}
	c := &personalCell[T]{subject: w.Subject, state: cellSealedOnly}
	c.sealed.Store(&sealedValue{envelope: w.Sealed})
	p.c = c
	return nil
}

// EncodeMsgpack implements msgpack.CustomEncoder: it writes the sealed
// form, and fails for a value no key store has sealed.
func (p Personal[T]) EncodeMsgpack(enc *msgpack.Encoder) error {
	w, err := p.wire()
	if err != nil {
		return err
	}
	return enc.Encode(w)
}

// DecodeMsgpack implements msgpack.CustomDecoder: it reads the sealed form,
// which the key store's decoding then opens.
func (p *Personal[T]) DecodeMsgpack(dec *msgpack.Decoder) error {
	var w *wirePersonal
	if err := dec.Decode(&w); err != nil {
		return err
	}
	return p.fromWire(w)
}

// MarshalJSON implements json.Marshaler, as EncodeMsgpack.
func (p Personal[T]) MarshalJSON() ([]byte, error) {
	w, err := p.wire()
	if err != nil {
		return nil, err
	}
	return json.Marshal(w)
}

// UnmarshalJSON implements json.Unmarshaler, as DecodeMsgpack.
func (p *Personal[T]) UnmarshalJSON(data []byte) error {
	var w *wirePersonal
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	return p.fromWire(w)
}

// personalValue is what the sealing and opening walks look for: every
// Personal[T] implements it.
type personalValue interface {
	seal(ctx context.Context, c *crypter) error
	open(ctx context.Context, c *crypter) error
	// unopened reports a decoded value no key store has opened.
	unopened() bool
}

func (p Personal[T]) seal(ctx context.Context, c *crypter) error {
	if p.c == nil {
		return nil
	}
	if s := p.c.sealed.Load(); s != nil && (s.by == c || s.by == nil) {
		// Sealed for this key store, or decoded: a decoded value is
		// written back as it was read (never sealed again under a key
		// created after its subject was forgotten).
		return nil
	}
	if p.c.state != cellPlain {
		return nil // decoded: keeps its envelope
	}
	if err := checkSubject(p.c.subject); err != nil {
		return err
	}
	plain, err := marshal(c.enc, p.c.value)
	if err != nil {
		return fmt.Errorf("codec: personal data of subject %q: %w", p.c.subject, err)
	}
	env, err := c.seal(ctx, p.c.subject, plain)
	if err != nil {
		return err
	}
	p.c.sealed.Store(&sealedValue{by: c, envelope: env})
	return nil
}

func (p Personal[T]) open(ctx context.Context, c *crypter) error {
	if p.c == nil || p.c.state != cellSealedOnly {
		return nil
	}
	plain, err := c.open(ctx, p.c.subject, p.c.sealed.Load().envelope)
	if errors.Is(err, errRedacted) {
		p.c.state = cellRedacted
		return nil
	}
	if err != nil {
		return err
	}
	var v T
	if err := unmarshal(c.enc, plain, &v); err != nil {
		return fmt.Errorf("codec: personal data of subject %q: %w", p.c.subject, err)
	}
	p.c.value, p.c.state = v, cellOpened
	return nil
}

func (p Personal[T]) unopened() bool { return p.c != nil && p.c.state == cellSealedOnly }

// Envelope: version byte, key fingerprint, nonce, AES-GCM ciphertext with
// its tag. The version byte, the fingerprint and the subject are the
// additional authenticated data.
const (
	envelopeVersion = 1
	fingerprintSize = 8
	nonceSize       = 12
	headerSize      = 1 + fingerprintSize + nonceSize
	// KeySize is the size of a subject's key in bytes: AES-256.
	KeySize = 32
)

// errRedacted is what crypter.open returns when the key is gone.
var errRedacted = errors.New("codec: redacted")

// crypter seals and opens personal values with the keys of one key store,
// the plaintext encoded with enc.
type crypter struct {
	ks  KeyStore
	enc Encoding

	// ciphers caches the AEAD and fingerprint of recent keys: deriving
	// them was a third of the time of opening a value. It is looked up
	// only with a key the key store has just returned, so a forgotten
	// key is never used from it.
	mu      sync.Mutex
	ciphers map[string]*keyCipher
}

type keyCipher struct {
	aead cipher.AEAD
	fp   []byte
}

// maxCiphers bounds crypter.ciphers; when full it is emptied.
const maxCiphers = 1024

// cipherFor returns the AEAD and fingerprint of key.
func (c *crypter) cipherFor(key []byte) (*keyCipher, error) {
	c.mu.Lock()
	kc, ok := c.ciphers[string(key)]
	c.mu.Unlock()
	if ok {
		return kc, nil
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	kc = &keyCipher{aead: aead, fp: fingerprint(key)}
	c.mu.Lock()
	if c.ciphers == nil || len(c.ciphers) >= maxCiphers {
		c.ciphers = make(map[string]*keyCipher)
	}
	c.ciphers[string(key)] = kc
	c.mu.Unlock()
	return kc, nil
}

// fingerprint names a key without revealing it, so that data sealed under
// an older key of a subject (forgotten, then created again) is recognised
// as redacted rather than as corrupt.
func fingerprint(key []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("esv2 subject key fingerprint"))
	return m.Sum(nil)[:fingerprintSize]
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("codec: a subject key has %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (c *crypter) seal(ctx context.Context, subject string, plain []byte) ([]byte, error) {
	key, err := c.ks.Create(ctx, subject)
	if err != nil {
		return nil, &keyStoreError{fmt.Errorf("codec: key of subject %q: %w", subject, err)}
	}
	kc, err := c.cipherFor(key)
	if err != nil {
		return nil, &keyStoreError{err}
	}
	aead := kc.aead
	env := make([]byte, headerSize, headerSize+len(plain)+aead.Overhead())
	env[0] = envelopeVersion
	copy(env[1:], kc.fp)
	if _, err := rand.Read(env[1+fingerprintSize : headerSize]); err != nil {
		return nil, err
	}
	return aead.Seal(env, env[1+fingerprintSize:headerSize], plain, additionalData(env[:1+fingerprintSize], subject)), nil
}

func additionalData(header []byte, subject string) []byte {
	return append(append(bytes.Clone(header), 0), subject...)
}

func (c *crypter) open(ctx context.Context, subject string, env []byte) ([]byte, error) {
	if len(env) < headerSize || env[0] != envelopeVersion {
		return nil, fmt.Errorf("codec: personal data of subject %q: not a sealed value (%d bytes)", subject, len(env))
	}
	kc, err := c.key(ctx, subject, env[1:1+fingerprintSize])
	if err != nil {
		return nil, err
	}
	plain, err := kc.aead.Open(nil, env[1+fingerprintSize:headerSize], env[headerSize:], additionalData(env[:1+fingerprintSize], subject))
	if err != nil {
		// The key is the one it was sealed with (the fingerprints
		// match): the bytes were altered.
		return nil, fmt.Errorf("codec: personal data of subject %q: %w", subject, err)
	}
	return plain, nil
}

// key returns the cipher of subject's key whose fingerprint is fp, or
// errRedacted when the key store has no such key.
func (c *crypter) key(ctx context.Context, subject string, fp []byte) (*keyCipher, error) {
	for attempt := 0; ; attempt++ {
		key, err := c.ks.Key(ctx, subject)
		switch {
		case errors.Is(err, ErrKeyNotFound):
			return nil, errRedacted
		case err != nil:
			return nil, &keyStoreError{fmt.Errorf("codec: key of subject %q: %w", subject, err)}
		}
		kc, err := c.cipherFor(key)
		if err != nil {
			return nil, &keyStoreError{err}
		}
		if hmac.Equal(kc.fp, fp) {
			return kc, nil
		}
		// Another key: the one it was sealed with was forgotten and a new
		// one created, or a cache holds an older key than the one another
		// process created since. Ask once past the cache.
		ev, ok := c.ks.(evicter)
		if !ok || attempt > 0 {
			return nil, errRedacted
		}
		ev.evict(subject)
	}
}

// keyStoreError marks a key store's failure while decoding, so that it is
// reported as ErrKeyStore rather than as malformed data.
type keyStoreError struct{ err error }

func (e *keyStoreError) Error() string { return e.err.Error() }
func (e *keyStoreError) Unwrap() error { return e.err }

// PersonalEncoding returns enc extended with personal data: [Personal]
// values are sealed with the keys of ks when encoding and opened when
// decoding (see [Personal]); everything else is enc's. [WithKeyStore] makes
// a registry's encoding one, so that snapshot states encoded with the
// registry's [Registry.Encoding] are sealed too.
//
// Its Marshal and Unmarshal call ks with context.Background(); the
// registry's and this package's Context functions ([Registry.EventContext],
// [Registry.DecodeRecordedContext], [EncodeStateContext], ...) pass their
// context on, through the [ContextEncoding] methods.
func PersonalEncoding(enc Encoding, ks KeyStore) Encoding {
	if enc == nil {
		enc = Msgpack{}
	}
	if p, ok := enc.(*personalEncoding); ok {
		enc = p.c.enc
	}
	return &personalEncoding{c: &crypter{ks: ks, enc: enc}}
}

// ContextEncoding is an [Encoding] whose work may do I/O (fetch keys, say),
// and so takes a context. The Context functions of this package use these
// methods when the encoding has them.
type ContextEncoding interface {
	Encoding
	// MarshalContext is Marshal with a context.
	MarshalContext(ctx context.Context, v any) ([]byte, error)
	// UnmarshalContext is Unmarshal with a context.
	UnmarshalContext(ctx context.Context, data []byte, v any) error
}

type personalEncoding struct{ c *crypter }

var _ ContextEncoding = (*personalEncoding)(nil)

func (p *personalEncoding) Name() string { return p.c.enc.Name() }

func (p *personalEncoding) Marshal(v any) ([]byte, error) {
	return p.MarshalContext(context.Background(), v)
}

func (p *personalEncoding) Unmarshal(data []byte, v any) error {
	return p.UnmarshalContext(context.Background(), data, v)
}

func (p *personalEncoding) MarshalContext(ctx context.Context, v any) ([]byte, error) {
	if err := walkPersonal(reflect.ValueOf(v), func(pv personalValue) error { return pv.seal(ctx, p.c) }); err != nil {
		return nil, err
	}
	return p.c.enc.Marshal(v)
}

func (p *personalEncoding) UnmarshalContext(ctx context.Context, data []byte, v any) error {
	if err := p.c.enc.Unmarshal(data, v); err != nil {
		return err
	}
	return walkPersonal(reflect.ValueOf(v), func(pv personalValue) error { return pv.open(ctx, p.c) })
}

// checkOpened returns an error wrapping ErrNoKeyStore when v holds a
// decoded Personal that no key store opened: decoded by an encoding
// without one.
func checkOpened(v any) error {
	return walkPersonal(reflect.ValueOf(v), func(pv personalValue) error {
		if pv.unopened() {
			return fmt.Errorf("codec: decoded personal data: %w", ErrNoKeyStore)
		}
		return nil
	})
}

var personalType = reflect.TypeFor[personalValue]()

// holders caches, per type, whether its values can hold a Personal, so
// that types without one (most events) are never walked.
var holders sync.Map // reflect.Type -> bool

func mayHold(t reflect.Type) bool {
	if v, ok := holders.Load(t); ok {
		return v.(bool)
	}
	h := computeHolds(t, make(map[reflect.Type]bool))
	holders.Store(t, h)
	return h
}

func computeHolds(t reflect.Type, visiting map[reflect.Type]bool) bool {
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface && t.Implements(personalType) {
		return true
	}
	if visiting[t] {
		return false // a recursive type: its other branches decide
	}
	visiting[t] = true
	switch t.Kind() {
	case reflect.Interface:
		return true // its dynamic value may hold one
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return computeHolds(t.Elem(), visiting)
	case reflect.Map:
		return computeHolds(t.Elem(), visiting)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); (f.IsExported() || f.Anonymous) && computeHolds(f.Type, visiting) {
				return true
			}
		}
	}
	return false
}

// walkPersonal calls fn with every Personal that v holds where an encoding
// would see it: exported struct fields, pointers, interfaces, slices,
// arrays and map values.
func walkPersonal(v reflect.Value, fn func(personalValue) error) error {
	if !v.IsValid() || !mayHold(v.Type()) {
		return nil
	}
	t := v.Type()
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return walkPersonal(v.Elem(), fn)
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if err := walkPersonal(v.Index(i), fn); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if err := walkPersonal(it.Value(), fn); err != nil {
				return err
			}
		}
		return nil
	}
	if t.Implements(personalType) {
		if !v.CanInterface() {
			return nil
		}
		return fn(v.Interface().(personalValue))
	}
	if t.Kind() == reflect.Struct {
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() || f.Anonymous {
				if err := walkPersonal(v.Field(i), fn); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
