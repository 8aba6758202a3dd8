package codec

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/esv2/esv2/eventstore"
)

// Router decodes the events of several aggregates, each with its own
// [Registry], by their stored type name: a consumer of all streams (a read
// model, a subscription handler) builds one from the registries of the
// aggregates it reads, with [NewRouter], and decodes every event with
// [Router.Decode], without routing by stream ID or trying each registry.
//
// A Router is safe for concurrent use. It sees names registered (or
// upcast) in its registries after it was built: registries only ever add
// names, so Decode compares each registry's count of names with the one
// its index was built from and rebuilds the index once when a registry
// grew. A name that such a later registration makes ambiguous (two of the
// router's registries now decode it) is refused, never routed to either;
// see [Router.Decode]. The zero Router has no registries.
type Router struct {
	mu sync.Mutex            // serialises rebuilds of the index
	ix atomic.Pointer[index] // copy-on-write, as a Registry's table: Decode takes no lock
}

// Routable is a registry a [Router] can route to: every *[Registry][E]
// implements it, whatever its E. Its methods are unexported, so nothing
// else does.
type Routable interface {
	// size returns the number of names, current and old, that the
	// registry decodes, or -1 for a nil registry. Registrations only add
	// names, so a different size means new names.
	size() int
	// routes calls add with each name the registry decodes and a decoder
	// for it, and returns how many names there were: the size the calls
	// describe, taken from one table.
	routes(add func(name string, dec anyDecoder)) int
	// eventType is the registry's E, to name it in errors.
	eventType() reflect.Type
}

// anyDecoder decodes one name's bytes into the registered Go type. It
// returns a *DecodeError rather than an error so that the router can add
// the stream and version without errors.As.
type anyDecoder func(ctx context.Context, data []byte) (any, *DecodeError)

// index is an immutable view of where each name is decoded.
type index struct {
	regs   []Routable
	sizes  []int // each registry's size when the index was built
	routes map[string]route
}

// route is how one type name decodes: dec, or err when two registries
// claim the name.
type route struct {
	dec anyDecoder
	err error
}

// NewRouter returns a router over the given registries, typically one per
// aggregate:
//
//	events, err := codec.NewRouter(accountEvents, transferEvents)
//
// A type name (current or upcast) that two of the registries decode makes
// it return an error wrapping [ErrDuplicate] that names the type and both
// registries, as does a registry given twice; a nil registry is an error
// too.
func NewRouter(regs ...Routable) (*Router, error) {
	regs = slices.Clone(regs)
	for i, r := range regs {
		if r == nil || r.size() < 0 {
			return nil, fmt.Errorf("codec: router: registry #%d is nil", i+1)
		}
		if j := slices.Index(regs[:i], r); j >= 0 {
			return nil, fmt.Errorf("codec: router: registry #%d (%v) is #%d again: %w", i+1, r.eventType(), j+1, ErrDuplicate)
		}
	}
	ix := build(regs)
	var dups []string
	for name, r := range ix.routes {
		if r.err != nil {
			dups = append(dups, name)
		}
	}
	if len(dups) > 0 {
		slices.Sort(dups) // the same message every time
		errs := make([]error, len(dups))
		for i, name := range dups {
			errs[i] = ix.routes[name].err
		}
		return nil, errors.Join(errs...)
	}
	rt := &Router{}
	rt.ix.Store(ix)
	return rt, nil
}

// build indexes the names of regs. A name two registries decode gets an
// error route wrapping ErrDuplicate.
func build(regs []Routable) *index {
	ix := &index{regs: regs, sizes: make([]int, len(regs)), routes: make(map[string]route)}
	owner := make(map[string]int)
	for i, r := range regs {
		ix.sizes[i] = r.routes(func(name string, dec anyDecoder) {
			j, dup := owner[name]
			if !dup {
				owner[name] = i
				ix.routes[name] = route{dec: dec}
				return
			}
			ix.routes[name] = route{err: fmt.Errorf("codec: router: type %q is registered in both registry #%d (%v) and registry #%d (%v): %w",
				name, j+1, regs[j].eventType(), i+1, r.eventType(), ErrDuplicate)}
		})
	}
	return ix
}

// fresh reports whether no registry gained names since ix was built.
func (ix *index) fresh() bool {
	for i, r := range ix.regs {
		if r.size() != ix.sizes[i] {
			return false
		}
	}
	return true
}

// current returns an index that includes every registration made before
// the call, or nil for the zero Router.
func (rt *Router) current() *index {
	ix := rt.ix.Load()
	if ix == nil || ix.fresh() {
		return ix
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if ix = rt.ix.Load(); !ix.fresh() { // another Decode may have rebuilt it
		ix = build(ix.regs)
		rt.ix.Store(ix)
	}
	return ix
}

// Decode decodes a stored event with the registry that has its type name,
// after that registry's upcasters, and returns it as the Go type
// registered for the name: a handler can switch on it.
//
//	switch ev := ev.(type) {
//	case Deposited: // registered with codec.Register[Deposited]
//	case *Moved:    // registered with codec.Register[*Moved]
//	}
//
// A name that none of the router's registries decodes returns a
// [*DecodeError] wrapping [ErrUnknownType], as [Registry.Decode] does, and
// bytes that do not decode or a failing upcaster one wrapping
// [ErrMalformed] or [ErrUpcast]; each names the event's stream and
// version. A name that two registries came to decode after [NewRouter]
// returns an error wrapping [ErrDuplicate]. Decode never skips an event
// silently: a consumer should treat each of these errors as its handler's.
//
// When the registries' event types are interfaces, as usual, Decode
// allocates nothing beyond what the registry's own decoding does (with a
// concrete E, returning it as an any may allocate).
func (rt *Router) Decode(rec eventstore.Recorded) (any, error) {
	return rt.DecodeContext(context.Background(), rec)
}

// DecodeContext is [Router.Decode] with a context, passed to the
// registries' key stores ([WithKeyStore]) to open [Personal] fields.
func (rt *Router) DecodeContext(ctx context.Context, rec eventstore.Recorded) (any, error) {
	var routes map[string]route
	if ix := rt.current(); ix != nil {
		routes = ix.routes
	}
	r, ok := routes[rec.Type]
	if !ok {
		return nil, &DecodeError{StreamID: rec.StreamID, Version: rec.Version, Type: rec.Type, Kind: ErrUnknownType}
	}
	if r.err != nil {
		return nil, fmt.Errorf("codec: decode stream %q version %d: %w", rec.StreamID, rec.Version, r.err)
	}
	e, de := r.dec(ctx, rec.Data)
	if de != nil {
		de.StreamID, de.Version = rec.StreamID, rec.Version
		return nil, de
	}
	return e, nil
}

func (r *Registry[E]) size() int {
	if r == nil {
		return -1
	}
	if t := r.tab.Load(); t != nil {
		return len(t.decoders)
	}
	return 0
}

func (r *Registry[E]) routes(add func(name string, dec anyDecoder)) int {
	t := r.table()
	enc := r.Encoding()
	for name, dec := range t.decoders {
		add(name, func(ctx context.Context, data []byte) (any, *DecodeError) {
			e, err := dec(ctx, enc, data)
			if err != nil {
				return nil, decodeError(name, err)
			}
			return e, nil
		})
	}
	return len(t.decoders)
}

func (r *Registry[E]) eventType() reflect.Type { return reflect.TypeFor[E]() }
