package aggregate

import "context"

// Hooks lets instrumentation (tracing, metrics; package esotel provides
// one) see a repository's calls. Set Config.Hooks; every field is optional
// and a nil field costs nothing.
type Hooks struct {
	// Call is called when Load, LoadExisting, Save or Update begins. The
	// context it returns is the one the call uses for its store
	// operations (a span's, so that they become its children); done is
	// called with the call's outcome when it returns. done may be nil.
	// Update's own loads are calls too, within the Update's context.
	Call func(ctx context.Context, c CallInfo) (callCtx context.Context, done func(CallResult))
}

// CallInfo describes a repository call to [Hooks].Call.
type CallInfo struct {
	// Op is "load", "save" or "update" (LoadExisting is a "load").
	Op string
	// StreamID is the aggregate's stream.
	StreamID string
	// CommandID is the digest of the call's command ID ([WithCommandID];
	// [CommandDigest] under Config.CommandKey), if any: what the events'
	// metadata holds. The ID itself, a client's idempotency key that may
	// be personal data, is not handed on to traces or logs.
	CommandID string
}

// CallResult is the outcome of a repository call, for [Hooks].Call.
type CallResult struct {
	// Version and Position are the aggregate's after the call (see
	// [Aggregate.Version] and [Aggregate.Position]); 0 when it failed.
	Version, Position uint64
	// Events counts the events the call saved (Save, Update).
	Events int
	// Attempts counts Update's attempts (1 for Load and Save).
	Attempts int
	// GaveUp reports an Update that met a conflict on each of its
	// Config.MaxAttempts attempts.
	GaveUp bool
	// Err is the call's error, nil on success.
	Err error
}

// call starts a hooked call; the returned done is never nil.
func (r *Repository[S, E]) call(ctx context.Context, op, id, commandID string) (context.Context, func(CallResult)) {
	if r.cfg.Hooks.Call == nil || ctx == nil {
		return ctx, noDone
	}
	if commandID != "" {
		commandID = r.commandDigest(commandID)
	}
	cctx, done := r.cfg.Hooks.Call(ctx, CallInfo{Op: op, StreamID: id, CommandID: commandID})
	if cctx == nil {
		cctx = ctx
	}
	if done == nil {
		done = noDone
	}
	return cctx, done
}

func noDone(CallResult) {}

// result describes a call's outcome for its hook.
func result[S, E any](a *Aggregate[S, E], events, attempts int, gaveUp bool, err error) CallResult {
	res := CallResult{Events: events, Attempts: attempts, GaveUp: gaveUp, Err: err}
	if a != nil && err == nil {
		res.Version, res.Position = a.version, a.position
	}
	return res
}
