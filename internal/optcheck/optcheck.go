// Package optcheck builds the adapters' With… options that check a value
// and set one field, so that every adapter refuses the same values in the
// same words: "sqlite: WithPollInterval(0s): must be positive". Before
// issue 10 PostgreSQL's options clamped such values silently where
// SQLite's refused them; the rules and their wording now live here once.
//
// Each function returns the option as a func(*C) error, which an adapter's
// named option type (type Option func(*config) error) takes as it is. The
// adapter wraps the refusal in eventstore.ErrInvalidInput when it applies
// its options.
package optcheck

import "fmt"

// Number is what the checks compare: counts and sizes (int) and durations
// (time.Duration).
type Number interface{ ~int | ~int64 }

// Positive returns an option that calls set when v > 0 and otherwise fails
// with "<name>(<v>): must be positive". name names the option with its
// package, e.g. "sqlite: WithPollInterval".
func Positive[C any, T Number](name string, v T, set func(*C)) func(*C) error {
	return check(name, v, v > 0, "must be positive", set)
}

// NonNegative is [Positive] for values that may be zero: it refuses v < 0
// with "must not be negative".
func NonNegative[C any, T Number](name string, v T, set func(*C)) func(*C) error {
	return check(name, v, v >= 0, "must not be negative", set)
}

// AtLeast1 is [Positive] for counts, where 1 is the smallest that means
// anything (one connection, one request per commit): it refuses v < 1
// with "must be at least 1".
func AtLeast1[C any](name string, v int, set func(*C)) func(*C) error {
	return check(name, v, v >= 1, "must be at least 1", set)
}

// PositiveAtMost is [Positive] with an upper bound: it refuses v <= 0 and
// v > most with "must be positive and at most <most>".
func PositiveAtMost[C any, T Number](name string, v, most T, set func(*C)) func(*C) error {
	return check(name, v, v > 0 && v <= most, fmt.Sprintf("must be positive and at most %v", most), set)
}

// WithHint returns opt with hint added in parentheses to its refusal: the
// option to use instead, or the bound in friendlier units.
func WithHint[C any](opt func(*C) error, hint string) func(*C) error {
	return func(c *C) error {
		if err := opt(c); err != nil {
			return fmt.Errorf("%w (%s)", err, hint)
		}
		return nil
	}
}

func check[C any, T Number](name string, v T, ok bool, rule string, set func(*C)) func(*C) error {
	return func(c *C) error {
		if !ok {
			return fmt.Errorf("%s(%v): %s", name, v, rule)
		}
		set(c)
		return nil
	}
}
